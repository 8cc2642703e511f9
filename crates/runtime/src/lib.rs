//! berth-runtime: everything between berthd and a running container process.
//!
//! - [`spec`]: turns berthd's high-level [`spec::SpecOptions`] into an OCI runtime spec with
//!   Docker's defaults (capabilities, seccomp, masked/read-only paths, devices, mounts).
//! - [`protocol`]: the wire types of the per-container shim control socket.
//! - [`seccomp`]: Docker's default seccomp profile and the Docker-format → OCI translation.
//! - [`client`]: the async (tokio) client berthd uses to spawn and talk to `berth-shim`.
//! - the `berth-shim` binary (src/bin/berth-shim.rs + [`shim`]): one per container,
//!   single-threaded, runs the container with youki's libcontainer, owns stdio/pty and the
//!   json-file log, records the exit status, outlives berthd.
pub mod cgroup_warm;
pub mod client;
pub mod devices;
pub mod protocol;
pub mod seccomp;
pub mod shim;
pub mod spec;

/// Whether this host runs the unified cgroup v2 hierarchy only (cgroup2 mounted at
/// `/sys/fs/cgroup`), as opposed to cgroup v1 or hybrid. Checked once.
pub fn cgroup_unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(|| std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists())
}
