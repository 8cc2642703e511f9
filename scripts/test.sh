#!/usr/bin/env bash
# All tests: unit, integration and end to end. Needs root (containers, mounts, cgroups)
# and the docker CLI at /usr/local/bin/docker (the e2e suites drive berthd with it).
#
#   bash scripts/test.sh [extra cargo test args...]
#
# Env: BERTH_E2E_REFERENCE=dockerd runs the e2e suites against Debian's dockerd instead,
# to check the expectations against the real Docker (needs docker.io).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the end-to-end tests need root" >&2
  exit 1
fi
# docker.io: dockerd for the save/load interop suite (e2e save_load)
deps=(libseccomp-dev pkg-config busybox-static ca-certificates iproute2 util-linux nftables iptables docker.io)
[ "${BERTH_E2E_REFERENCE:-}" = dockerd ] && deps+=(docker.io runc)
bash scripts/deps.sh "${deps[@]}"
if [ ! -x /usr/local/bin/docker ]; then
  echo "scripts/test.sh: the docker CLI is needed at /usr/local/bin/docker" >&2
  exit 1
fi

target=${CARGO_TARGET_DIR:-$PWD/target}
export BERTH_BIN_DIR=$target/debug

echo "==> cargo build --workspace --bins"
cargo build --workspace --bins

# Unit and integration tests of the engine crates; some of them start real shims and
# containers from the host's busybox, so one at a time.
status=0
echo "==> cargo test --workspace --exclude berth-e2e"
cargo test --workspace --exclude berth-e2e --no-fail-fast "$@" -- --test-threads=1 || status=1

# End-to-end suites: every test starts its own berthd (own socket, data-root, exec-root),
# so they are independent and can run side by side.
echo "==> cargo test -p berth-e2e (BERTH_BIN_DIR=$BERTH_BIN_DIR)"
cargo test -p berth-e2e --no-fail-fast "$@" -- --test-threads=3 || status=1

if [ "$status" -ne 0 ]; then
  echo "==> FAILED (see above)" >&2
fi
exit "$status"
