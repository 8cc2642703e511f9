#!/usr/bin/env bash
# `stats --no-stream` over 100 running containers, side by side in one run:
#   berth CLI -> berthd, docker CLI -> berthd, docker CLI -> Debian's dockerd.
# Target: berth <= 100 ms median. Prints the table and writes bench/stats-results.md.
# (The docker CLI itself waits for a 500 ms display tick before printing, whatever daemon.)
# Needs root; installs docker.io if missing (as bench/run.sh).
#
# Env: N (timed runs, default 20), WARMUP (2), CONTAINERS (100),
#      BERTH_BIN_DIR (skip the release build and use these binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

N=${N:-20}
WARMUP=${WARMUP:-2}
CONTAINERS=${CONTAINERS:-100}

. bench/lib.sh
bench_setup stats.sh libseccomp-dev pkg-config busybox-static docker.io ca-certificates

work=/tmp/bench-berth-stats
B=$work/b   # berthd: s (socket), d (data-root), x (exec-root)
D=$work/k   # dockerd
results=$work/results.jsonl
measure() { python3 "$top/bench/measure.py" "$@"; }  # time only

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
mkdir -p "$B" "$D" "$work/cfg"
export DOCKER_CONFIG=$work/cfg

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
berth() { "$bin/berth" -H "unix://$B/s" "$@"; }
dk() { "$DOCKER" -H "unix://$D/s" "$@"; }
berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null
dk import --change 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null

echo "==> $CONTAINERS running sleep containers on each daemon"
for i in $(seq "$CONTAINERS"); do
  berth run -d --network none busybox sleep 100000 >/dev/null
  dk run -d --network none busybox sleep 100000 >/dev/null
done
sleep 2
n_b=$(berth ps -q | wc -l) n_d=$(dk ps -q | wc -l)
[ "$n_b" -eq "$CONTAINERS" ] && [ "$n_d" -eq "$CONTAINERS" ] || {
  echo "expected $CONTAINERS running on each daemon, got berthd $n_b, dockerd $n_d" >&2; exit 1; }
# Each answer must have a row per container with real numbers (not an empty table).
rows=$("$DOCKER" -H "unix://$B/s" stats --no-stream --format '{{.MemUsage}}' | grep -c ' / ')
[ "$rows" -eq "$CONTAINERS" ] || { echo "docker stats on berthd gave $rows rows" >&2; exit 1; }

echo "==> stats --no-stream with $CONTAINERS running"
measure time "$results" "berth stats --no-stream ($CONTAINERS running)" "$WARMUP" "$N" -- "$bin/berth" -H "unix://$B/s" stats --no-stream
measure time "$results" "docker->berthd stats --no-stream ($CONTAINERS running)" "$WARMUP" "$N" -- "$DOCKER" -H "unix://$B/s" stats --no-stream
measure time "$results" "docker->dockerd stats --no-stream ($CONTAINERS running)" "$WARMUP" "$N" -- "$DOCKER" -H "unix://$D/s" stats --no-stream

table=$(python3 - "$results" "$CONTAINERS" <<'PY'
import json, sys
recs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    recs[r["label"]] = r
n = sys.argv[2]
def get(label):
    r = recs.get(f"{label} stats --no-stream ({n} running)")
    return r["median_ms"] if r else None
b, bd, d = get("berth"), get("docker->berthd"), get("docker->dockerd")
ms = lambda v: f"{v:.1f} ms" if v is not None else "n/a"
ratio = lambda a, c: f"{a / c:.2f}x" if a and c else "n/a"
print("| measurement | berth | dockerd | ratios |")
print("|---|---|---|---|")
print(f"| `stats --no-stream`, {n} running, median | {ms(b)} (berth CLI), {ms(bd)} (docker CLI) | {ms(d)} | dockerd/berth {ratio(d, bd)} (same docker CLI); target berth <= 100 ms: {'met' if b is not None and b <= 100 else 'NOT met'} |")
PY
)
{
  echo "# berth stats benchmark"
  echo
  echo "Run by \`bash bench/stats.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r)."
  echo "berth $("$bin/berth" -H "unix://$B/s" version --format '{{.Server.Version}}'), dockerd $(dk version --format '{{.Server.Version}}')."
  echo "Medians of $N runs after $WARMUP warm-ups, $CONTAINERS running containers on each daemon, measured in the same run."
  echo "Target: berth stats --no-stream <= 100 ms median. The docker CLI waits for its own 500 ms"
  echo "display tick before it prints (even for one container), so docker->berthd cannot go below ~500 ms."
  echo
  echo "$table"
} >"$top/bench/stats-results.md"
echo
echo "$table"
echo
echo "(written to bench/stats-results.md)"
