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
