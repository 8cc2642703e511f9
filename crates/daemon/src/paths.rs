//! Where berthd keeps things (DESIGN.md §2).
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent state (`--data-root`, default /var/lib/berth).
    pub data_root: PathBuf,
    /// Runtime state that dies with the host (`--exec-root`, default /run/berth).
    pub exec_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim_bin: PathBuf,
}

impl Paths {
    /// `<data-root>/containers/<id>`: config.v2.json, hostname, hosts, resolv.conf, rw
    /// layer, json log.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }
    /// `<exec-root>/c/<id>`: OCI bundle (config.json, shim.json, rootfs mount point, shim
    /// socket, exit.json). Kept short: unix socket paths are limited to 108 bytes.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.exec_root.join("c").join(id)
    }
    /// libcontainer's state root, shared by all containers of this daemon.
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }
}
