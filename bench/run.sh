#!/usr/bin/env bash
# Benchmarks, side by side in one run (never part of the tests):
#   - `run --rm busybox true`: berth CLI -> berthd (--network none, and on berthd's
#     default bridge), docker CLI -> berthd, docker CLI -> Debian's dockerd (--network none),
#     bare `runc run` of the same rootfs
#   - idle daemon RSS: berthd vs dockerd + containerd
#   - shim PSS per container with 100 running `sleep` containers: berth-shim vs containerd-shim
#   - `ps` latency with 200 running containers
# Prints a table and writes bench/results.md. Needs root; installs docker.io runc if missing.
#
# Env: N (timed runs, default 30), WARMUP (3), CONTAINERS (100), PS_CONTAINERS (200),
#      BERTH_BIN_DIR (skip the release build and use these binaries),
#      SKIP_DOCKERD=1 (no dockerd at all), RUN_ONLY=1 (only the `run` timings).
# The `run` timings are interleaved: each round runs every command once, in rotating order,
# so load from other processes falls on all of them alike. With SKIP_DOCKERD or RUN_ONLY the
# table is printed but bench/results.md is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

N=${N:-30}
WARMUP=${WARMUP:-3}
CONTAINERS=${CONTAINERS:-100}
PS_CONTAINERS=${PS_CONTAINERS:-200}
SKIP_DOCKERD=${SKIP_DOCKERD:-}
RUN_ONLY=${RUN_ONLY:-}

. bench/lib.sh
bench_setup run.sh libseccomp-dev pkg-config busybox-static docker.io runc ca-certificates e2fsprogs iproute2 nftables iptables

work=/tmp/bench-berth-run
# Data roots (images, layers, container records, runc's rootfs) on a fresh journaled ext4
# of their own (a loop-mounted sparse file), as /var/lib is on a real host: the shared /tmp
# here churns files for other processes, which makes every new inode slow and uneven.
# Runtime state on a tmpfs, as on a real host (/run/berth, /run/docker, /run/runc are tmpfs).
disk=$work/disk
B=$disk/b   # berthd: s (socket), d (data-root)
D=$disk/k   # dockerd
R=$disk/r   # runc
X=$work/run
BX=$X/b DX=$X/k RS=$X/r
results=$work/results.jsonl
measure() { python3 "$top/bench/measure.py" "$@"; }
bridge=bbench1

berth_pid="" dockerd_pid=""
cleanup() {
  set +e
  if [ -n "$berth_pid" ]; then
    ids=$("$bin/berth" -H "unix://$B/s" ps -aq 2>/dev/null)
    [ -z "$ids" ] || "$bin/berth" -H "unix://$B/s" rm -f $ids >/dev/null 2>&1
    kill "$berth_pid" 2>/dev/null; wait "$berth_pid" 2>/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    ids=$("$DOCKER" -H "unix://$D/s" ps -aq 2>/dev/null)
    [ -z "$ids" ] || "$DOCKER" -H "unix://$D/s" rm -f $ids >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null
  fi
  remove_bridge "$bridge"
  runc --root "$RS" delete -f benchctr >/dev/null 2>&1
  runc --root "$RS" delete -f benchctr2 >/dev/null 2>&1
  for f in "$BX"/c/*/shim.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  for p in /proc/[0-9]*; do
    grep -qsF "$work/" "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  { grep -o " $work/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$disk" "$X" "$work/cfg"
truncate -s 8G "$work/disk.img"
mkfs.ext4 -q -F "$work/disk.img"
mount -o loop "$work/disk.img" "$disk"
mount -t tmpfs -o mode=0711 berth-bench "$X"
mkdir -p "$B" "$D" "$R/bundle/rootfs"
mkdir -p "$BX" "$DX" "$RS"
export DOCKER_CONFIG=$work/cfg

echo "==> busybox rootfs"
bash scripts/mkbusybox.sh --tar "$work/busybox.tar"

pool=$(pick_pool)
echo "==> starting berthd (bridge $bridge, pool $pool) and dockerd (--bridge none --iptables=false)"
"$bin/berthd" -H "unix://$B/s" --data-root "$B/d" --exec-root "$BX" --pidfile "$B/pid" --log-level warn \
  --bridge "$bridge" --default-address-pool "base=$pool,size=24" >"$work/berthd.log" 2>&1 &
berth_pid=$!
if [ -z "$SKIP_DOCKERD" ]; then
  dockerd -H "unix://$D/s" --data-root "$D/d" --exec-root "$DX" --pidfile "$D/pid" \
    --bridge none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --storage-driver overlay2 --log-level warn >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
fi
wait_sock "$B/s"
[ -n "$SKIP_DOCKERD" ] || wait_sock "$D/s"
berth() { "$bin/berth" -H "unix://$B/s" "$@"; }
dk() { "$DOCKER" -H "unix://$D/s" "$@"; }
berth import "$work/busybox.tar" busybox >/dev/null
[ -n "$SKIP_DOCKERD" ] || dk import --change 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null

echo "==> runc bundles"
# The same bundle: the config.json berth writes for `busybox true` (Docker's seccomp profile,
# capabilities, masked paths, mounts, cgroups), pointed at a plain copy of the rootfs. Also
# `runc spec`'s minimal default (no seccomp) as a floor.
tar -C "$R/bundle/rootfs" -xf "$work/busybox.tar"
mkdir -p "$R/spec/rootfs" "$R/etc"
tar -C "$R/spec/rootfs" -xf "$work/busybox.tar"
(cd "$R/spec" && runc spec)
sample=$(berth run -d --network none busybox sleep 1000)
python3 - "$BX/c/$sample/config.json" "$R" <<'PY'
import json, os, shutil, sys
src, R = sys.argv[1], sys.argv[2]
c = json.load(open(src))
c["root"] = {"path": R + "/bundle/rootfs", "readonly": False}
c["process"]["args"] = ["true"]
c["linux"]["cgroupsPath"] = "/bench-runc/same"
for m in c["mounts"]:
    if m["type"] == "bind" and not m["source"].startswith(R):
        dst = os.path.join(R, "etc", os.path.basename(m["source"]))
        shutil.copy(m["source"], dst)
        m["source"] = dst
assert "seccomp" in c["linux"]
json.dump(c, open(R + "/bundle/config.json", "w"), indent=2)
p = R + "/spec/config.json"
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"), indent=2)
PY
berth rm -f "$sample" >/dev/null

echo "==> run --rm busybox true (warm-up $WARMUP, $N interleaved rounds)"
spec=$(python3 - "$bin" "$B" "$D" "$R" "$DOCKER" "$SKIP_DOCKERD" "$RS" <<'PY'
import json, sys
bin, B, D, R, docker, skip, RS = sys.argv[1:8]
cmds = [
    ["berth run --rm true", [bin + "/berth", "-H", "unix://" + B + "/s", "run", "--rm", "--network", "none", "busybox", "true"]],
    ["berth run --rm true (default bridge)", [bin + "/berth", "-H", "unix://" + B + "/s", "run", "--rm", "busybox", "true"]],
    ["docker->berthd run --rm true", [docker, "-H", "unix://" + B + "/s", "run", "--rm", "--network", "none", "busybox", "true"]],
    ["runc run true", ["runc", "--root", RS, "run", "--bundle", R + "/bundle", "benchctr"]],
    ["runc run true (runc spec default)", ["runc", "--root", RS, "run", "--bundle", R + "/spec", "benchctr2"]],
]
if not skip:
    cmds.insert(2, ["docker->dockerd run --rm true", [docker, "-H", "unix://" + D + "/s", "run", "--rm", "--network", "none", "busybox", "true"]])
print(json.dumps(cmds))
PY
)
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
measure interleave "$results" "$WARMUP" "$N" "$spec"

if [ -n "$RUN_ONLY" ]; then
  echo
  measure report "$results"
  exit 0
fi

[ -z "$SKIP_DOCKERD" ] || { echo "SKIP_DOCKERD needs RUN_ONLY" >&2; exit 1; }
echo "==> idle daemon memory"
sleep 2
containerd_pids=$(for p in /proc/[0-9]*; do
  c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
  case $c in containerd\ *"$work/"*|/usr/bin/containerd\ *"$work/"*) echo "${p#/proc/}";; esac
done)
measure mem "$results" "berthd idle" "$berth_pid"
measure mem "$results" "dockerd+containerd idle" "$dockerd_pid" $containerd_pids

start_many() { # daemon-fn count
  local i
  for i in $(seq "$2"); do "$1" run -d --network none busybox sleep 100000 >/dev/null; done
}
echo "==> $CONTAINERS running sleep containers on each daemon"
start_many berth "$CONTAINERS"
start_many dk "$CONTAINERS"
sleep 2
berth_shims=$(for f in "$BX"/c/*/shim.pid; do [ -f "$f" ] && echo "$(cat "$f")"; done | tr '\n' ' ')
docker_shims=$(for p in /proc/[0-9]*; do
  c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
  case $c in *containerd-shim*"$work/"*) echo "${p#/proc/}";; esac
done)
measure mem "$results" "berth-shim x100" $berth_shims
measure mem "$results" "containerd-shim x100" $docker_shims

more=$((PS_CONTAINERS - CONTAINERS))
if [ "$more" -gt 0 ]; then
  echo "==> $more more (total $PS_CONTAINERS) on each daemon"
  start_many berth "$more"
  start_many dk "$more"
fi
echo "==> ps with $PS_CONTAINERS running"
measure time "$results" "berth ps (200 running)" "$WARMUP" "$N" -- "$bin/berth" -H "unix://$B/s" ps
measure time "$results" "docker->berthd ps (200 running)" "$WARMUP" "$N" -- "$DOCKER" -H "unix://$B/s" ps
measure time "$results" "docker->dockerd ps (200 running)" "$WARMUP" "$N" -- "$DOCKER" -H "unix://$D/s" ps

table=$(measure report "$results")
{
  echo "# berth benchmarks"
  echo
  echo "Run by \`bash bench/run.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r)."
  echo "berth $("$bin/berth" -H "unix://$B/s" version --format '{{.Server.Version}}'), dockerd $(dk version --format '{{.Server.Version}}'), $(runc --version | head -1)."
  echo "Medians of $N runs after $WARMUP warm-ups; all three runtimes measured in the same run (\`run\` timings interleaved round by round)."
  echo "Runtime state (berthd/dockerd exec-root, runc root) on a tmpfs as on a real host's /run; data roots on a fresh ext4 (loop device)."
  echo "Load average when the \`run\` timings were taken: $load_avg (other work shares this machine: compare ratios, not absolute times)."
  echo "dockerd runs without a bridge (\`--bridge none --iptables=false\`): its \`--network none\` time is also the reference for berth's run on its bridge, which is the stricter comparison (dockerd's own bridge setup would only add to its time)."
  echo "runc's bundle is the config.json berth writes for a \`--network none\` container (Docker's seccomp profile, capabilities, mounts, cgroups)."
  echo "Ratios above 1 mean the first named is slower / bigger."
  echo
  echo "$table"
} >"$top/bench/results.md"
echo
echo "$table"
echo
echo "(written to bench/results.md)"
