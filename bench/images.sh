#!/usr/bin/env bash
# Image benchmarks, berthd and Debian's dockerd side by side in one run, both driven by the
# same docker CLI (never part of the tests):
#   - `commit` of a stopped container with a COMMIT_MB (100) MB rw layer
#   - `save -o FILE` + `load -i FILE` of a SAVE_MB (300) MB image (the image removed before
#     each round, so `load` really adds it)
# Prints medians and the dockerd/berthd ratio (target: >= 2) and writes
# bench/results-images.md. Needs root; installs docker.io if missing.
#
# Env: N (timed rounds, default 5), WARMUP (1), COMMIT_MB (100), SAVE_MB (300),
#      BERTH_BIN_DIR (skip the release build and use these binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

N=${N:-5}
WARMUP=${WARMUP:-1}
COMMIT_MB=${COMMIT_MB:-100}
SAVE_MB=${SAVE_MB:-300}

. bench/lib.sh
bench_setup images.sh libseccomp-dev pkg-config busybox-static docker.io ca-certificates

work=/tmp/bench-berth-images
B=$work/b   # berthd: s (socket), d (data-root), x (exec-root)
D=$work/k   # dockerd
results=$work/results.tsv

berth_pid="" dockerd_pid=""
cleanup() {
  set +e
  for pair in "$B:$berth_pid" "$D:$dockerd_pid"; do
    dir=${pair%%:*} pid=${pair#*:}
    [ -n "$pid" ] || continue
    ids=$("$DOCKER" -H "unix://$dir/s" ps -aq 2>/dev/null)
    [ -z "$ids" ] || "$DOCKER" -H "unix://$dir/s" rm -f $ids >/dev/null 2>&1
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  for f in "$B"/x/c/*/shim.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  for p in /proc/[0-9]*; do
    grep -qsF "$work/" "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  { grep -o " $work/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$B" "$D" "$work/cfg" "$work/files"
export DOCKER_CONFIG=$work/cfg
: >"$results"

echo "==> busybox rootfs"
bash scripts/mkbusybox.sh --tar "$work/busybox.tar"

echo "==> starting berthd and dockerd (--bridge none --iptables=false)"
"$bin/berthd" -H "unix://$B/s" --data-root "$B/d" --exec-root "$B/x" --pidfile "$B/pid" --log-level warn --bridge none >"$work/berthd.log" 2>&1 &
berth_pid=$!
dockerd -H "unix://$D/s" --data-root "$D/d" --exec-root "$D/x" --pidfile "$D/pid" \
  --bridge none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
  --storage-driver overlay2 --log-level warn >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
wait_sock "$B/s"
wait_sock "$D/s"
on() { local d=$1; shift; "$DOCKER" -H "unix://$d/s" "$@"; }
for d in "$B" "$D"; do on "$d" import --change 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null; done

# The same SAVE_MB image on both daemons, in four layers: busybox plus a third of the
# random 1 MiB files imported as the base, then two commits adding a third each.
echo "==> building the ${SAVE_MB} MB image on both daemons"
per=$((SAVE_MB / 3))
root=$work/files/root
mkdir -p "$root/big"
tar -C "$root" -xf "$work/busybox.tar"
for i in $(seq "$per"); do head -c 1048576 /dev/urandom >"$root/big/f$i"; done
tar -C "$root" -cf "$work/base.tar" .
rm -rf "$root"
gen="mkdir -p /DIR; i=0; while [ \$i -lt $per ]; do i=\$((i+1)); head -c 1048576 /dev/urandom > /DIR/\$i; done"
for d in "$B" "$D"; do
  on "$d" import --change 'CMD ["sh"]' "$work/base.tar" bigbase >/dev/null
  on "$d" run --name l2 --network none bigbase sh -c "${gen//DIR/more}" >/dev/null
  on "$d" commit l2 bigimg:step >/dev/null
  on "$d" rm l2 >/dev/null
  on "$d" run --name l3 --network none bigimg:step sh -c "${gen//DIR/more2}" >/dev/null
  on "$d" commit l3 bigimg:1 >/dev/null
  on "$d" rm l3 >/dev/null
  on "$d" rmi bigimg:step bigbase >/dev/null
done
rm -f "$work/base.tar"

echo "==> a stopped container with a ${COMMIT_MB} MB rw layer on each daemon"
gen_c="mkdir -p /rw; i=0; while [ \$i -lt $COMMIT_MB ]; do i=\$((i+1)); head -c 1048576 /dev/urandom > /rw/\$i; done"
for d in "$B" "$D"; do
  on "$d" run --name big --network none busybox sh -c "$gen_c" >/dev/null
done

now_ns() { date +%s%N; }
record() { # label ms...
  local label=$1; shift
  printf '%s\t%s\n' "$label" "$*" >>"$results"
  python3 - "$label" "$@" <<'PY'
import statistics, sys
label, xs = sys.argv[1], [float(x) for x in sys.argv[2:]]
print(f"  {label}: median {statistics.median(xs):.0f} ms (n={len(xs)}, min {min(xs):.0f}, max {max(xs):.0f})")
PY
}

# Rounds alternate between the daemons (which one goes first alternates too), so that this
# host's varying disk speed falls on both alike.
one_commit() { # dir round -> ms
  local d=$1 i=$2 t0 t1
  t0=$(now_ns)
  on "$d" commit big "committed:$i" >/dev/null
  t1=$(now_ns)
  on "$d" rmi "committed:$i" >/dev/null
  echo $(( (t1 - t0) / 1000000 ))
}

one_save_load() { # dir -> ms
  local d=$1 t0 t1 t2 t3 f="$work/archive.tar"
  rm -f "$f"
  t0=$(now_ns)
  on "$d" save -o "$f" bigimg:1
  t1=$(now_ns)
  # Untimed: remove the image (its layers go with it), so that load really adds them.
  on "$d" rmi bigimg:1 >/dev/null
  sync
  t2=$(now_ns)
  on "$d" load -i "$f" >/dev/null
  t3=$(now_ns)
  rm -f "$f"
  sync
  echo $(( (t1 - t0 + t3 - t2) / 1000000 ))
}

bench_pair() { # fn label
  local fn=$1 label=$2 i b k sb=() sk=()
  for i in $(seq $((WARMUP + N))); do
    if [ $((i % 2)) -eq 1 ]; then
      b=$("$fn" "$B" "$i"); k=$("$fn" "$D" "$i")
    else
      k=$("$fn" "$D" "$i"); b=$("$fn" "$B" "$i")
    fi
    [ "$i" -le "$WARMUP" ] || { sb+=("$b"); sk+=("$k"); }
  done
  record "$label: docker->berthd" "${sb[@]}"
  record "$label: docker->dockerd" "${sk[@]}"
}

echo "==> commit of a ${COMMIT_MB} MB rw layer (warm-up $WARMUP, $N alternating rounds)"
bench_pair one_commit "commit ${COMMIT_MB}MB"
echo "==> save + load of a ${SAVE_MB} MB image (warm-up $WARMUP, $N alternating rounds)"
bench_pair one_save_load "save+load ${SAVE_MB}MB"

# Sanity: the loaded image runs on both and has its files.
for d in "$B" "$D"; do
  n=$(on "$d" run --rm --network none bigimg:1 sh -c 'ls /big /more /more2 | wc -l')
  n=${n//[^0-9]/}
  [ "$n" -ge $((3 * per)) ] || { echo "loaded image incomplete on $d ($n files)" >&2; exit 1; }
done

table=$(python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, xs = line.rstrip("\n").split("\t")
    rows[label] = statistics.median(float(x) for x in xs.split())
out = ["| benchmark | median ms |", "|---|---|"]
for k, v in rows.items():
    out.append(f"| {k} | {v:.0f} |")
out.append("")
out.append("| ratio (dockerd / berthd; target >= 2) | |")
out.append("|---|---|")
for what in ("commit", "save+load"):
    b = [v for k, v in rows.items() if k.startswith(what) and k.endswith("berthd")]
    d = [v for k, v in rows.items() if k.startswith(what) and k.endswith("dockerd")]
    if b and d:
        out.append(f"| {what} | {d[0] / b[0]:.2f}x |")
print("\n".join(out))
PY
)
{
  echo "# berth image benchmarks"
  echo
  echo "Run by \`bash bench/images.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r)."
  echo "berth $(on "$B" version --format '{{.Server.Version}}'), dockerd $(on "$D" version --format '{{.Server.Version}}'); the same docker CLI drives both."
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (layer writes are fsynced by berthd, not by dockerd: other writers on the disk slow berthd's syncfs)."
  echo "Medians of $N rounds (berthd and dockerd in turn) after $WARMUP warm-up; commit of a stopped container with a ${COMMIT_MB} MB rw layer (100 random 1 MiB files per 100 MB);"
  echo "save -o + load -i of a ${SAVE_MB} MB image in 4 layers (the image removed and its layers pruned before each load, untimed)."
  echo
  echo "$table"
} >"$top/bench/results-images.md"
echo
echo "$table"
echo
echo "(written to bench/results-images.md)"
