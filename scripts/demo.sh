#!/usr/bin/env bash
# The main job end to end on a fresh machine: installs what is missing, builds berth
# (release), starts berthd on its own socket and roots under /tmp/berth-demo, makes a
# `busybox` image from the host's static busybox (no registry), runs the first containers
# of the study notes with the real docker CLI pointed at berthd, and stops berthd.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: berthd needs root (namespaces, mounts, cgroups)" >&2
  exit 1
fi
bash scripts/deps.sh libseccomp-dev pkg-config busybox-static ca-certificates iproute2 nftables iptables

if [ -n "${BERTH_BIN_DIR:-}" ]; then
  bin=$BERTH_BIN_DIR   # already built elsewhere
else
  echo "==> cargo build --release"
  cargo build --release
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release
fi

docker=docker
command -v docker >/dev/null || docker=$bin/berth   # the berth CLI speaks the same language

demo=/tmp/berth-demo
bridge=berthdemo0   # the demo's default bridge (berthd's own default is berth0)
sock=$demo/berth.sock
export DOCKER_HOST=unix://$sock
export DOCKER_CONFIG=$demo/docker-config   # no user config interferes

cleanup_roots() {
  # Whatever a previous, interrupted run left: its daemon, containers and mounts.
  if [ -f "$demo/berthd.pid" ] && kill -0 "$(cat "$demo/berthd.pid")" 2>/dev/null; then
    kill "$(cat "$demo/berthd.pid")" || true
    sleep 1
  fi
  for f in "$demo"/exec/c/*/shim.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  { grep -o " $demo/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$demo"
  # Its default bridge and rules (a real berthd keeps them, as dockerd keeps docker0).
  if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge" || true; fi
  nft delete table inet "berth-$bridge" 2>/dev/null || true
  while iptables -D FORWARD -o "$bridge" -m comment --comment berth -j ACCEPT 2>/dev/null; do :; done
  while iptables -D FORWARD -i "$bridge" -m comment --comment berth -j ACCEPT 2>/dev/null; do :; done
}
cleanup_roots
mkdir -p "$demo" "$DOCKER_CONFIG"

echo "==> starting berthd (socket $sock, data-root $demo/data, exec-root $demo/exec)"
"$bin/berthd" -H "unix://$sock" --data-root "$demo/data" --exec-root "$demo/exec" \
  --pidfile "$demo/berthd.pid" --bridge "$bridge" --log-level info >"$demo/berthd.log" 2>&1 &
berthd_pid=$!
stop_berthd() {
  status=$?
  # Containers outlive berthd by design (live restore): remove what the demo left.
  if kill -0 "$berthd_pid" 2>/dev/null; then
    ids=$("$docker" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || "$docker" rm -f $ids >/dev/null 2>&1 || true
    echo "==> stopping berthd"
    kill "$berthd_pid" && wait "$berthd_pid" || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "==> demo failed (exit $status); berthd log:" >&2
    tail -n 30 "$demo/berthd.log" >&2 || true
  fi
  cleanup_roots
  exit "$status"
}
trap stop_berthd EXIT
for _ in $(seq 100); do
  [ -S "$sock" ] && "$docker" version >/dev/null 2>&1 && break
  kill -0 "$berthd_pid" 2>/dev/null || { echo "berthd exited" >&2; exit 1; }
  sleep 0.1
done

bold="" plain=""
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
# Prints a command as one would type it (shell-quoted), then runs it.
run() {
  local line="" a q="'"
  for a in "$@"; do
    if [[ $a =~ [^A-Za-z0-9_./:=@%+,-] ]]; then line+=" '${a//$q/$q\\$q$q}'"; else line+=" $a"; fi
  done
  printf '\n%s$%s%s\n' "$bold" "$line" "$plain"
  "$@"
}

printf '\n==> making the busybox image from %s (no registry)\n' "$(readlink -f /bin/busybox)"
run bash scripts/mkbusybox.sh busybox:latest

run "$docker" version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})'
run "$docker" images
run "$docker" run --rm busybox echo hello
run "$docker" run -e env_name=test1234 busybox printenv env_name
run "$docker" run -d --name nx busybox sh -c 'while true; do echo hi; sleep 1; done'
sleep 3
run "$docker" logs nx
run "$docker" exec nx printenv
run "$docker" ps -a
run "$docker" inspect -f 'status={{.State.Status}} pid={{.State.Pid}} name={{.Name}} cmd={{json .Config.Cmd}}' nx
run "$bin/berth" ps --filter name=nx --format '{{.Names}}: {{.Status}} (via the berth CLI)'
run "$docker" stop nx
run "$docker" rm nx
run "$docker" ps -a
run "$docker" image inspect -f 'id={{.Id}} os={{.Os}}/{{.Architecture}} cmd={{json .Config.Cmd}}' busybox
run "$docker" history busybox

printf '\n==> networks, published ports, volumes and cp (seeds 000, 002, 004)\n'
# Seed 002 creates custom-network with --subnet 182.18.0.0/16; a private range here.
run "$docker" network create --driver bridge --subnet 10.218.0.0/16 custom-network
run "$docker" network ls
run "$docker" run -d --name web --network custom-network busybox httpd -f -p 80 -h /etc
run "$docker" run --rm --network custom-network busybox wget -qO- http://web/hostname
run "$docker" run -d -p 4000:80 --name my-app busybox httpd -f -p 80 -h /etc
sleep 0.5
run busybox wget -qO- http://127.0.0.1:4000/hostname
run "$docker" port my-app
run "$docker" inspect --format='{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' my-app web
run "$docker" volume create data
run "$docker" run --rm -v data:/data busybox sh -c 'echo kept > /data/f'
run "$docker" run --rm -v data:/data busybox cat /data/f
echo 'from the host' > "$demo/foo.txt"
run "$docker" cp "$demo/foo.txt" my-app:/tmp/foo.txt
run "$docker" cp my-app:/tmp/foo.txt "$demo/back.txt"
run cat "$demo/back.txt"
run "$docker" stats --no-stream my-app web
# shellcheck disable=SC2046
run "$docker" stop $("$docker" ps -q)
# shellcheck disable=SC2046
run "$docker" rm $("$docker" ps -aq)
run "$docker" network rm custom-network
run "$docker" volume rm data
echo
echo "==> demo done"
