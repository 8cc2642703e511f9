//! OCI runtime spec generation with Docker's defaults.
//!
//! berthd describes a container with [`SpecOptions`]; [`build`] returns the OCI spec that
//! Docker (moby `oci/defaults.go` + `daemon/oci_linux.go`) would produce for it: default
//! capability set, default seccomp profile, masked and read-only paths, default device
//! rules, /proc /sys /dev /dev/pts /dev/shm /dev/mqueue mounts, namespaces, cgroup limits.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpecOptions {
    /// Container ID (used for the cgroup path `/berth/<id>` unless `cgroup_parent` is set).
    pub id: String,
    /// Absolute path of the mounted rootfs.
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    /// argv (entrypoint + cmd already combined by berthd).
    pub args: Vec<String>,
    /// `KEY=value`, including PATH/HOSTNAME/TERM as Docker sets them (berthd fills these).
    pub env: Vec<String>,
    /// Working directory inside the container ("/" if empty).
    pub cwd: String,
    /// Already resolved from the image's /etc/passwd and /etc/group by berthd.
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub hostname: String,
    pub domainname: String,
    pub network: NetworkMode,
    /// Bind mounts (binds, /etc/hosts, /etc/hostname, /etc/resolv.conf, volumes).
    pub mounts: Vec<BindMount>,
    /// Memory limit in bytes (0 = unlimited).
    pub memory: i64,
    /// Memory + swap limit in bytes (0 = unset, -1 = unlimited).
    pub memory_swap: i64,
    /// CPU quota in nano CPUs (`--cpus 1.5` = 1_500_000_000); 0 = unset.
    pub nano_cpus: i64,
    pub cpu_shares: u64,
    pub cpu_quota: i64,
    pub cpu_period: u64,
    pub cpuset_cpus: String,
    /// 0 or negative = unlimited.
    pub pids_limit: i64,
    /// cgroups path; default `/berth/<id>`.
    pub cgroup_parent: Option<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// `None` = Docker's default profile; `Some(None)` = unconfined; `Some(Some(json))` = a
    /// Docker-format seccomp profile.
    pub seccomp: Option<Option<String>>,
    /// /dev/shm size in bytes (0 = Docker's 64 MiB).
    pub shm_size: i64,
    /// Extra sysctls.
    pub sysctls: Vec<(String, String)>,
    /// Initial console size (rows, cols).
    pub console_size: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// New, empty network namespace (only lo).
    #[default]
    None,
    /// Share the host's network (and UTS) namespace.
    Host,
    /// Join an existing network namespace at this path (e.g. `/proc/<pid>/ns/net` or a
    /// bind-mounted netns file).
    Path(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}
