# Set-up shared by the benchmarks; sourced from the repository root, never run.

# bench_setup SCRIPT PACKAGE...: needs root, installs the Debian packages, sets DOCKER (the
# docker CLI) and bin (berth's release binaries: $BERTH_BIN_DIR, or built now).
bench_setup() {
  local script=$1
  shift
  [ "$(id -u)" -eq 0 ] || { echo "bench/$script needs root" >&2; exit 1; }
  bash scripts/deps.sh "$@"
  DOCKER=/usr/local/bin/docker
  [ -x "$DOCKER" ] || DOCKER=$(command -v docker)
  if [ -n "${BERTH_BIN_DIR:-}" ]; then
    bin=$BERTH_BIN_DIR
  else
    echo "==> cargo build --release"
    cargo build --release
    bin=${CARGO_TARGET_DIR:-$PWD/target}/release
  fi
}

# wait_sock SOCKET: until a daemon answers `docker version` there (60 s at most).
wait_sock() {
  for _ in $(seq 600); do
    "$DOCKER" -H "unix://$1" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon on $1 did not come up" >&2
  return 1
}

# A /20 of 10.0.0.0/8 that no host route touches.
pick_pool() {
  python3 - <<'EOF'
import ipaddress, random
routes = []
for l in open("/proc/net/route").read().splitlines()[1:]:
    f = l.split()
    d, m = int(f[1], 16), int(f[7], 16)
    if m == 0:
        continue
    routes.append(ipaddress.ip_network((ipaddress.IPv4Address(d.to_bytes(4, "little")), bin(m).count("1")), strict=False))
for _ in range(10000):
    n = ipaddress.ip_network(f"10.{random.randint(1, 250)}.{random.randrange(0, 256, 16)}.0/20")
    if not any(n.overlaps(r) for r in routes):
        print(n)
        break
EOF
}

# remove_bridge NAME: what a berthd with `--bridge NAME` leaves on the host if it was killed.
remove_bridge() {
  ip link del "$1" 2>/dev/null
  nft delete table inet "berth-$1" 2>/dev/null
  for d in -i -o; do iptables -w -D FORWARD $d "$1" -m comment --comment berth -j ACCEPT 2>/dev/null; done
  return 0
}
