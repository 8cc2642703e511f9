//! OCI runtime spec generation with Docker's defaults.
//!
//! berthd describes a container with [`SpecOptions`]; [`build`] returns the OCI spec that
//! Docker (moby `oci/defaults.go` + `daemon/oci_linux.go`) would produce for it: default
//! capability set, default seccomp profile, masked and read-only paths, default device
//! rules, /proc /sys /dev /dev/pts /dev/shm /dev/mqueue mounts, namespaces, cgroup limits.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// `--init`: this host executable is bind-mounted read-only at [`INIT_PATH`] and runs
    /// as PID 1 with `-- args...`.
    pub init: Option<PathBuf>,
    /// `--ulimit`: replace the default of the same resource.
    pub rlimits: Vec<Rlimit>,
    /// `--device` (and every host device with `--privileged`): node created in /dev and,
    /// unless privileged, allowed in the device cgroup with its permissions.
    pub devices: Vec<Device>,
    pub oom_kill_disable: bool,
    /// Soft memory limit in bytes (0 = unset).
    pub memory_reservation: i64,
    /// `--oom-score-adj` (-1000..=1000).
    pub oom_score_adj: i64,
    /// `--memory-swappiness` (0..=100; None = the kernel's).
    pub memory_swappiness: Option<u64>,
    /// `--cpuset-mems` ("" = unset).
    pub cpuset_mems: String,
    /// `--device-cgroup-rule`: extra device cgroup allow rules.
    pub device_rules: Vec<DeviceRule>,
    /// `--pid`: own namespace, the host's, or another container's.
    pub pid_ns: Join,
    /// `--ipc`: own namespace (`private`/`shareable`/`none`), the host's, or another's.
    pub ipc_ns: Join,
    /// `--ipc none`: no /dev/shm at all. With `ipc_ns` joined, `shm_source` is bound instead.
    pub no_shm: bool,
    /// /dev/shm to bind-mount instead of a fresh tmpfs (`--ipc host|container:`).
    pub shm_source: Option<PathBuf>,
    /// `--uts host`: the host's hostname and domain name.
    pub uts_host: bool,
    /// `--blkio-weight` and friends.
    pub block_io: BlockIo,
    /// `--cgroupns private`: a cgroup namespace of its own.
    pub cgroupns_private: bool,
    /// `--annotation`: OCI annotations.
    pub annotations: Vec<(String, String)>,
    /// Masked and read-only /proc and /sys paths instead of Docker's defaults
    /// (`HostConfig.MaskedPaths/ReadonlyPaths`; empty with `systempaths=unconfined`).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
}

/// Block I/O weight and throttling (`linux.resources.blockIO`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockIo {
    /// 10..=1000, 0 = unset.
    pub weight: u16,
    /// (major, minor, weight).
    pub weight_devices: Vec<(i64, i64, u16)>,
    /// (major, minor, rate) in bytes or operations per second.
    pub read_bps: Vec<(i64, i64, u64)>,
    pub write_bps: Vec<(i64, i64, u64)>,
    pub read_iops: Vec<(i64, i64, u64)>,
    pub write_iops: Vec<(i64, i64, u64)>,
}

impl BlockIo {
    fn to_json(&self) -> Option<Value> {
        let mut b = serde_json::Map::new();
        if self.weight > 0 {
            b.insert("weight".into(), json!(self.weight));
        }
        if !self.weight_devices.is_empty() {
            let w: Vec<Value> = self
                .weight_devices
                .iter()
                .map(|(ma, mi, w)| json!({"major": ma, "minor": mi, "weight": w}))
                .collect();
            b.insert("weightDevice".into(), Value::Array(w));
        }
        for (key, list) in [
            ("throttleReadBpsDevice", &self.read_bps),
            ("throttleWriteBpsDevice", &self.write_bps),
            ("throttleReadIOPSDevice", &self.read_iops),
            ("throttleWriteIOPSDevice", &self.write_iops),
        ] {
            if !list.is_empty() {
                let l: Vec<Value> = list
                    .iter()
                    .map(|(ma, mi, r)| json!({"major": ma, "minor": mi, "rate": r}))
                    .collect();
                b.insert(key.into(), Value::Array(l));
            }
        }
        (!b.is_empty()).then_some(Value::Object(b))
    }
}

/// A namespace the container gets: its own, the host's, or one joined by path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Join {
    #[default]
    Private,
    Host,
    Path(PathBuf),
}

/// One device cgroup allow rule (`c 1:3 rwm`, `b *:* m`); `None` = any number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// 'a', 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

/// Where Docker mounts its init in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// One `RLIMIT_*` (`name` without the prefix, lowercase as in `--ulimit`; -1 = unlimited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A device node to create in the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Path inside the container.
    pub path: String,
    /// 'c' or 'b'.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node (`st_mode & 0o7777`).
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Cgroup permissions, a combination of "r", "w", "m".
    pub access: String,
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

use serde_json::{json, Value};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("invalid seccomp profile")]
    Seccomp(#[source] crate::seccomp::SeccompError),
    #[error("building the OCI spec")]
    Encode(#[source] serde_json::Error),
}

fn normalize_cap(c: &str) -> Result<String, SpecError> {
    let up = c.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(c.to_owned()))
    }
}

/// The capabilities "all" stands for (`--privileged`, `--cap-add ALL`): every known one the
/// engine itself may hold (its bounding set; [`ALL_CAPS`] is in bit order), so a privileged
/// container also starts where the host withholds some (Docker's full list fails there).
pub fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The capability set after `--cap-add` / `--cap-drop` (Docker's rules: add ALL, drop ALL).
pub fn capabilities(opts: &SpecOptions) -> Result<Vec<String>, SpecError> {
    if opts.privileged {
        return Ok(all_caps());
    }
    let adds = opts
        .cap_add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = opts
        .cap_drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if adds.iter().any(|c| c == "ALL") {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drops.iter().any(|c| c == "ALL") {
        caps.clear();
    }
    for a in adds.iter().filter(|c| *c != "ALL") {
        if !caps.contains(a) {
            caps.push(a.clone());
        }
    }
    caps.retain(|c| !drops.contains(c) || adds.contains(c));
    Ok(caps)
}

fn swap_accounting() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || crate::cgroup_unified()
}

/// Builds the OCI runtime spec for `opts` with Docker's defaults.
pub fn build(opts: &SpecOptions) -> Result<oci_spec::runtime::Spec, SpecError> {
    let caps = capabilities(opts)?;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
    ];
    // Docker mounts /sys and the cgroup tree read-only unless privileged.
    let ro = |mut o: Vec<&'static str>| {
        if !opts.privileged {
            o.insert(0, "ro");
        }
        o
    };
    if opts.network == NetworkMode::Host {
        // Without an own network namespace sysfs cannot be mounted afresh: bind the host's.
        mounts.push(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ro(vec!["rbind", "nosuid", "noexec", "nodev"])}));
    } else {
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ro(vec!["nosuid", "noexec", "nodev"])}));
    }
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ro(vec!["nosuid", "noexec", "nodev"])}));
    mounts.push(json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}));
    let shm = if opts.shm_size > 0 {
        opts.shm_size
    } else {
        64 * 1024 * 1024
    };
    match &opts.shm_source {
        Some(src) => mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": src, "options": ["rbind", "rprivate"]})),
        None if opts.no_shm => {}
        None => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]})),
    }
    if let Some(init) = &opts.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro"]}));
    }
    for m in &opts.mounts {
        let mut o = vec!["rbind", "rprivate"];
        if m.readonly {
            o.push("ro");
        }
        mounts.push(
            json!({"destination": m.destination, "type": "bind", "source": m.source, "options": o}),
        );
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    for (ty, join) in [("pid", &opts.pid_ns), ("ipc", &opts.ipc_ns)] {
        match join {
            Join::Private => namespaces.push(json!({ "type": ty })),
            Join::Host => {}
            Join::Path(p) => namespaces.push(json!({"type": ty, "path": p})),
        }
    }
    match &opts.network {
        NetworkMode::None => {
            namespaces.push(json!({"type": "network"}));
        }
        NetworkMode::Host => {}
        NetworkMode::Path(p) => {
            namespaces.push(json!({"type": "network", "path": p}));
        }
    }
    if opts.network != NetworkMode::Host && !opts.uts_host {
        namespaces.push(json!({"type": "uts"}));
    }
    if opts.cgroupns_private {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    if opts.privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        for t in ["c", "b"] {
            devices.push(json!({"allow": true, "type": t, "access": "m"}));
        }
        for (maj, min) in [
            (1, Some(3)),
            (1, Some(8)),
            (1, Some(7)),
            (5, Some(0)),
            (1, Some(5)),
            (1, Some(9)),
            (136, None),
            (5, Some(2)),
            (5, Some(1)),
            (10, Some(200)),
        ] {
            let mut d = json!({"allow": true, "type": "c", "major": maj, "access": "rwm"});
            if let Some(m) = min {
                d["minor"] = json!(m);
            }
            devices.push(d);
        }
        for d in &opts.devices {
            devices.push(json!({"allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "access": d.access}));
        }
        for r in &opts.device_rules {
            let mut rule = json!({"allow": true, "type": r.kind.to_string(), "access": r.access});
            if let Some(m) = r.major {
                rule["major"] = json!(m);
            }
            if let Some(m) = r.minor {
                rule["minor"] = json!(m);
            }
            devices.push(rule);
        }
    }
    let mut resources = json!({ "devices": devices });
    let mut memory = serde_json::Map::new();
    if opts.memory > 0 {
        memory.insert("limit".into(), json!(opts.memory));
        if swap_accounting() {
            let swap = match opts.memory_swap {
                0 => opts.memory * 2,
                -1 => -1,
                s => s,
            };
            memory.insert("swap".into(), json!(swap));
        }
    }
    if opts.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(opts.memory_reservation));
    }
    if opts.oom_kill_disable {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if let Some(s) = opts.memory_swappiness {
        memory.insert("swappiness".into(), json!(s));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if opts.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert(
            "quota".into(),
            json!(opts.nano_cpus * 100_000 / 1_000_000_000),
        );
    } else {
        if opts.cpu_period > 0 {
            cpu.insert("period".into(), json!(opts.cpu_period));
        }
        if opts.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(opts.cpu_quota));
        }
    }
    if opts.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(opts.cpu_shares));
    }
    if !opts.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(opts.cpuset_cpus));
    }
    if !opts.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(opts.cpuset_mems));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if opts.pids_limit > 0 {
        resources["pids"] = json!({ "limit": opts.pids_limit });
    }
    if let Some(b) = opts.block_io.to_json() {
        resources["blockIO"] = b;
    }

    // Docker containers get an open-files limit as high as the engine's own hard limit.
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h.min(1_048_576))
        .unwrap_or(1_048_576);
    let mut rlimits = vec![json!({"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile})];
    for r in &opts.rlimits {
        let ty = format!("RLIMIT_{}", r.name.to_ascii_uppercase());
        rlimits.retain(|x| x["type"] != ty.as_str());
        // -1 (unlimited) is RLIM_INFINITY, all bits set.
        rlimits.push(json!({"type": ty, "hard": r.hard as u64, "soft": r.soft as u64}));
    }
    let args: Vec<String> = match &opts.init {
        Some(_) => [INIT_PATH.to_owned(), "--".to_owned()]
            .into_iter()
            .chain(opts.args.iter().cloned())
            .collect(),
        None => opts.args.clone(),
    };
    let mut process = json!({
        "terminal": opts.tty,
        "user": {"uid": opts.uid, "gid": opts.gid, "additionalGids": opts.additional_gids},
        "args": args,
        "env": opts.env,
        "cwd": if opts.cwd.is_empty() { "/" } else { opts.cwd.as_str() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "oomScoreAdj": opts.oom_score_adj,
    });
    // libcontainer loads seccomp before dropping capabilities only when the field is
    // absent (it tests presence, not value), so "false" must be left out.
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if let Some((h, w)) = opts.console_size {
        process["consoleSize"] = json!({"height": h, "width": w});
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": opts.cgroup_parent.clone().unwrap_or_else(|| format!("/berth/{}", opts.id)),
        "sysctl": opts.sysctls.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    });
    if !opts.devices.is_empty() {
        linux["devices"] = opts
            .devices
            .iter()
            .map(|d| json!({"path": d.path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}))
            .collect();
    }
    if !opts.privileged {
        linux["maskedPaths"] = match &opts.masked_paths {
            Some(p) => json!(p),
            None => json!(MASKED_PATHS),
        };
        linux["readonlyPaths"] = match &opts.readonly_paths {
            Some(p) => json!(p),
            None => json!(READONLY_PATHS),
        };
        match &opts.seccomp {
            None => linux["seccomp"] = crate::seccomp::default_profile(&caps),
            Some(None) => {}
            Some(Some(profile)) => {
                linux["seccomp"] =
                    crate::seccomp::render(profile, &caps).map_err(SpecError::Seccomp)?;
            }
        }
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": opts.rootfs, "readonly": opts.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !opts.annotations.is_empty() {
        spec["annotations"] = json!(opts
            .annotations
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>());
    }
    // Without its own UTS namespace (host network) the container has the host's names.
    let own_uts = opts.network != NetworkMode::Host && !opts.uts_host;
    if own_uts && !opts.hostname.is_empty() {
        spec["hostname"] = json!(opts.hostname);
    }
    if own_uts && !opts.domainname.is_empty() {
        spec["domainname"] = json!(opts.domainname);
    }
    serde_json::from_value(spec).map_err(SpecError::Encode)
}

/// A general OCI mount (volumes, `--mount`, `--tmpfs`), added by [`push_mounts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Destinations of the mounts [`build`] always makes.
const DEFAULT_DESTS: &[&str] = &[
    "/proc",
    "/dev",
    "/dev/pts",
    "/sys",
    "/sys/fs/cgroup",
    "/dev/mqueue",
    "/dev/shm",
];

/// Adds `extra` to a built spec and orders every non-default mount parents first (stable,
/// by path depth), so a volume on `/etc` comes before the `/etc/hosts` bind, as Docker
/// sorts its mounts.
pub fn push_mounts(spec: &mut oci_spec::runtime::Spec, extra: &[Mount]) -> Result<(), SpecError> {
    let mut all = spec.mounts().clone().unwrap_or_default();
    for m in extra {
        let v = json!({"destination": m.destination, "type": m.typ, "source": m.source, "options": m.options});
        all.push(serde_json::from_value(v).map_err(SpecError::Encode)?);
    }
    // The defaults lead the list.
    let n = all
        .iter()
        .take_while(|m| DEFAULT_DESTS.contains(&m.destination().to_string_lossy().as_ref()))
        .count();
    let mut user = all.split_off(n);
    let defaults = all;
    let depth = |m: &oci_spec::runtime::Mount| {
        m.destination()
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .count()
    };
    user.sort_by_key(depth);
    let mut out = defaults;
    out.extend(user);
    spec.set_mounts(Some(out));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SpecOptions {
        SpecOptions {
            id: "abc".into(),
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            hostname: "h".into(),
            ..Default::default()
        }
    }

    #[test]
    fn user_mounts_parents_first_after_the_defaults() {
        let mut o = base();
        o.mounts = vec![BindMount {
            source: "/c/hosts".into(),
            destination: "/etc/hosts".into(),
            readonly: false,
        }];
        let mut s = build(&o).unwrap();
        push_mounts(
            &mut s,
            &[
                Mount {
                    destination: "/etc".into(),
                    typ: "bind".into(),
                    source: "/v/_data".into(),
                    options: vec!["rbind".into()],
                },
                Mount {
                    destination: "/run/x".into(),
                    typ: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options: vec!["rw".into()],
                },
            ],
        )
        .unwrap();
        let dests: Vec<String> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        let n = dests.len();
        assert_eq!(&dests[n - 3..], ["/etc", "/etc/hosts", "/run/x"]);
        assert_eq!(dests[0], "/proc");
    }

    #[test]
    fn docker_defaults() {
        let s = build(&base()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
        assert!(v["linux"]["seccomp"]["syscalls"].is_array());
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(ns.contains(&"network".to_owned()) && ns.contains(&"uts".to_owned()));
        assert_eq!(v["hostname"], "h");
    }

    #[test]
    fn host_network_and_limits() {
        let o = SpecOptions {
            network: NetworkMode::Host,
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: 10,
            ..base()
        };
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(!ns.contains(&"network".to_owned()) && !ns.contains(&"uts".to_owned()));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
    }

    #[test]
    fn privileged_binds_sysctls_and_custom_seccomp() {
        let o = SpecOptions {
            privileged: true,
            mounts: vec![BindMount {
                source: "/data".into(),
                destination: "/d".into(),
                readonly: true,
            }],
            sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
            shm_size: 1 << 20,
            readonly_rootfs: true,
            ..base()
        };
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert!(v["linux"].get("seccomp").is_none() && v["linux"].get("maskedPaths").is_none());
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            all_caps().len()
        );
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        let m = |d: &str| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap()
                .clone()
        };
        assert!(!m("/sys")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert_eq!(m("/d")["options"], json!(["rbind", "rprivate", "ro"]));
        assert!(m("/dev/shm")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=1048576")));
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(v["root"]["readonly"], true);

        let v = serde_json::to_value(build(&base()).unwrap()).unwrap();
        let m = |d: &str| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap()
                .clone()
        };
        assert!(m("/sys")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(m("/sys/fs/cgroup")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(m("/dev/shm")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=67108864")));
        assert_eq!(v["process"]["capabilities"].get("inheritable"), None);
        assert_eq!(v["process"]["capabilities"].get("ambient"), None);
        assert_eq!(v["process"]["oomScoreAdj"], 0);
        assert_eq!(
            v["linux"]["resources"]["devices"][0],
            json!({"allow": false, "access": "rwm"})
        );

        let custom = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let v = serde_json::to_value(
            build(&SpecOptions {
                seccomp: Some(Some(custom.into())),
                ..base()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let v = serde_json::to_value(
            build(&SpecOptions {
                seccomp: Some(None),
                ..base()
            })
            .unwrap(),
        )
        .unwrap();
        assert!(v["linux"].get("seccomp").is_none());
        assert!(matches!(
            build(&SpecOptions {
                seccomp: Some(Some("{".into())),
                ..base()
            }),
            Err(SpecError::Seccomp(_))
        ));
        // Host network: no UTS namespace, hence no hostname.
        let v = serde_json::to_value(
            build(&SpecOptions {
                network: NetworkMode::Host,
                ..base()
            })
            .unwrap(),
        )
        .unwrap();
        assert!(v.get("hostname").is_none());
        let v = serde_json::to_value(
            build(&SpecOptions {
                network: NetworkMode::Path("/proc/1/ns/net".into()),
                ..base()
            })
            .unwrap(),
        )
        .unwrap();
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "network", "path": "/proc/1/ns/net"})));
    }

    #[test]
    fn cap_rules() {
        let o = SpecOptions {
            cap_add: vec!["net_admin".into()],
            cap_drop: vec!["CHOWN".into()],
            ..base()
        };
        let caps = capabilities(&o).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".into()) && !caps.contains(&"CAP_CHOWN".into()));
        let o = SpecOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["KILL".into()],
            ..base()
        };
        assert_eq!(capabilities(&o).unwrap(), vec!["CAP_KILL"]);
        assert!(capabilities(&SpecOptions {
            cap_add: vec!["BOGUS".into()],
            ..base()
        })
        .is_err());
        assert_eq!(
            capabilities(&SpecOptions {
                privileged: true,
                ..base()
            })
            .unwrap()
            .len(),
            all_caps().len()
        );
    }

    #[test]
    fn init_rlimits_devices_memory() {
        let o = SpecOptions {
            init: Some("/run/berth/berth-init".into()),
            rlimits: vec![
                Rlimit {
                    name: "nofile".into(),
                    soft: 100,
                    hard: 200,
                },
                Rlimit {
                    name: "core".into(),
                    soft: -1,
                    hard: -1,
                },
            ],
            devices: vec![Device {
                path: "/dev/mynull".into(),
                kind: 'c',
                major: 1,
                minor: 3,
                file_mode: 0o666,
                uid: 0,
                gid: 0,
                access: "rw".into(),
            }],
            oom_kill_disable: true,
            memory_reservation: 32 << 20,
            ..base()
        };
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], json!([INIT_PATH, "--", "sh"]));
        assert!(v["mounts"].as_array().unwrap().contains(&json!({"destination": INIT_PATH, "type": "bind", "source": "/run/berth/berth-init", "options": ["bind", "ro"]})));
        assert_eq!(
            v["process"]["rlimits"],
            json!([
                {"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100},
                {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX}
            ])
        );
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/mynull");
        assert_eq!(v["linux"]["devices"][0]["fileMode"], 0o666);
        assert!(v["linux"]["resources"]["devices"]
            .as_array()
            .unwrap()
            .contains(
                &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
            ));
        assert_eq!(v["linux"]["resources"]["memory"]["reservation"], 32 << 20);
        assert_eq!(v["linux"]["resources"]["memory"]["disableOOMKiller"], true);

        let o = SpecOptions {
            oom_score_adj: 100,
            memory_swappiness: Some(10),
            cpuset_mems: "0".into(),
            device_rules: vec![DeviceRule {
                kind: 'b',
                major: None,
                minor: None,
                access: "m".into(),
            }],
            ..base()
        };
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(v["process"]["oomScoreAdj"], 100);
        let bio = SpecOptions {
            block_io: BlockIo {
                read_bps: vec![(7, 0, 1 << 20)],
                write_iops: vec![(7, 0, 100)],
                ..Default::default()
            },
            ..base()
        };
        let b = serde_json::to_value(build(&bio).unwrap()).unwrap();
        assert_eq!(
            b["linux"]["resources"]["blockIO"],
            json!({"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1 << 20}], "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 100}]})
        );
        assert_eq!(v["linux"]["resources"]["memory"]["swappiness"], 10);
        assert_eq!(v["linux"]["resources"]["cpu"]["mems"], "0");
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(
            rules.last().unwrap(),
            &json!({"allow": true, "type": "b", "access": "m"})
        );
        let o = SpecOptions {
            pid_ns: Join::Host,
            ipc_ns: Join::Path("/proc/9/ns/ipc".into()),
            shm_source: Some("/proc/9/root/dev/shm".into()),
            uts_host: true,
            ..base()
        };
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(
            v["linux"]["namespaces"],
            json!([{"type": "mount"}, {"type": "ipc", "path": "/proc/9/ns/ipc"}, {"type": "network"}])
        );
        assert!(v.get("hostname").is_none());
        assert!(v["mounts"].as_array().unwrap().contains(&json!({"destination": "/dev/shm", "type": "bind", "source": "/proc/9/root/dev/shm", "options": ["rbind", "rprivate"]})));
    }
}
