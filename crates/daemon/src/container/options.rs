//! The container options users reach for: `--init`, `--cap-add/--cap-drop`, `--security-opt`,
//! `--ulimit`, `--sysctl`, `--device`, `--shm-size`, `--cpuset-cpus`, `--memory-reservation`,
//! `--oom-kill-disable`, `--stop-signal`, the `local` log driver (`--platform` is checked
//! in `berth_api::platform`).
//!
//! [`validate`] checks and normalises them at create the way dockerd does (same messages), so
//! a bad option fails `create` and leaves no container; [`apply`] turns the stored host config
//! into [`SpecOptions`] fields at start.
use std::path::{Path, PathBuf};

use berth_api::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum,
};
use berth_api::ApiError;
use berth_runtime::spec::{self, Rlimit, SpecOptions};

use crate::paths::Paths;

/// Docker's /dev/shm size when `--shm-size` is not given.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;
/// Docker's minimum memory reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// go-units `ulimitNameMapping`: the names `--ulimit` accepts.
pub const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Sysctls with their own value per IPC namespace (docker/cli `ValidateSysctl`).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Whether a sysctl lives in a namespace of the container (IPC, network), as Docker allows.
pub fn namespaced_sysctl(key: &str) -> bool {
    IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") || key.starts_with("net.")
}

/// The parsed `--security-opt` list (moby `parseSecurityOpt`).
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// `None` = default profile; `Some(None)` = unconfined; `Some(Some(json))` = custom.
    pub seccomp: Option<Option<String>>,
}

pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, ApiError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let kv = opt.split_once('=').or_else(|| opt.split_once(':'));
        let Some((k, v)) = kv else {
            return Err(ApiError::invalid(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        match k {
            "label" | "apparmor" => {}
            "seccomp" => {
                out.seccomp = match v {
                    "builtin" | "" => None,
                    "unconfined" => Some(None),
                    json => Some(Some(json.to_owned())),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges = parse_go_bool(v).ok_or_else(|| {
                    ApiError::invalid(format!("invalid --security-opt 2: {opt:?}"))
                })?
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "invalid --security-opt 2: {opt:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Normalises `--cap-add/--cap-drop` entries to `CAP_X` (and `ALL`), as dockerd stores them.
fn normalize_caps(list: &mut Option<Vec<String>>, what: &str) -> Result<(), ApiError> {
    let Some(caps) = list.as_mut() else {
        return Ok(());
    };
    for c in caps.iter_mut() {
        let up = c.trim().to_ascii_uppercase();
        let full = if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if full != "ALL" && !spec::ALL_CAPS.contains(&full.as_str()) {
            return Err(ApiError::invalid(format!(
                "invalid {what}: unknown capability: {full:?}"
            )));
        }
        *c = full;
    }
    Ok(())
}

/// A cpuset list (`0-2,4`) into CPU numbers, or None when malformed.
fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn online(what: &str) -> String {
    std::fs::read_to_string(format!("/sys/devices/system/{what}/online"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "0".into())
}

/// `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `b *:* m`, `a *:* rwm`).
pub fn parse_device_rule(rule: &str) -> Option<spec::DeviceRule> {
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, nums, access] = parts.as_slice() else {
        return None;
    };
    let kind = match *kind {
        "a" | "b" | "c" => kind.chars().next()?,
        _ => return None,
    };
    let (maj, min) = nums.split_once(':')?;
    let num = |s: &str| -> Option<Option<i64>> {
        match s {
            "*" => Some(None),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok().map(Some),
            _ => None,
        }
    };
    let ok_access = !access.is_empty()
        && access.len() <= 3
        && access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    if !ok_access {
        return None;
    }
    Some(spec::DeviceRule {
        kind,
        major: num(maj)?,
        minor: num(min)?,
        access: access.to_string(),
    })
}

/// Whether the kernel can weigh block I/O (cgroup v1 `blkio.weight`, or BFQ's; v2 `io`).
fn blkio_weight_supported() -> bool {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
    if v2.exists() {
        return std::fs::read_to_string(v2).is_ok_and(|c| c.split_whitespace().any(|x| x == "io"));
    }
    ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .any(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists())
}

/// `major:minor` of a device path (for blkio rules), with Go's stat error wording.
fn dev_numbers(path: &str) -> Result<(i64, i64), ApiError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| {
        let t = e.to_string();
        let t = t
            .split(" (os error")
            .next()
            .unwrap_or(&t)
            .to_ascii_lowercase();
        ApiError::invalid(format!("stat {path}: {t}"))
    })?;
    let rdev = m.rdev();
    Ok((
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
    ))
}

fn throttle(
    list: &Option<Vec<berth_api::models::ThrottleDevice>>,
) -> Result<Vec<(i64, i64, u64)>, ApiError> {
    let mut out = Vec::new();
    for t in list.iter().flatten() {
        let (ma, mi) = dev_numbers(t.path.as_deref().unwrap_or(""))?;
        out.push((ma, mi, t.rate.unwrap_or(0).max(0) as u64));
    }
    Ok(out)
}

/// Go's `%v` of `[][]string`: `[[gpu utility]]`.
fn go_caps(caps: &[Vec<String>]) -> String {
    let inner: Vec<String> = caps.iter().map(|c| format!("[{}]", c.join(" "))).collect();
    format!("[{}]", inner.join(" "))
}

/// Checks and normalises the options of this module in a create request; returns warnings.
pub fn validate(body: &ContainerCreateBody, h: &mut HostConfig) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    normalize_caps(&mut h.cap_add, "CapAdd")?;
    normalize_caps(&mut h.cap_drop, "CapDrop")?;
    let sec = parse_security_opts(h.security_opt.as_deref().unwrap_or(&[]))?;
    if let Some(Some(profile)) = &sec.seccomp {
        berth_runtime::seccomp::render(profile, &[])
            .map_err(|e| ApiError::invalid(format!("Decoding seccomp profile failed: {e}")))?;
    }
    for u in h.ulimits.as_deref().unwrap_or(&[]) {
        let name = u.name.clone().unwrap_or_default();
        if !ULIMITS.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!("invalid ulimit type: {name}")));
        }
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if hard != -1 && (soft == -1 || soft > hard) {
            return Err(ApiError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
    }
    let host_net = h.network_mode.as_deref() == Some("host");
    for k in h.sysctls.as_ref().map(|m| m.keys()).into_iter().flatten() {
        if !namespaced_sysctl(k) {
            return Err(ApiError::invalid(format!(
                "sysctl '{k}' is not allowed: it is not in a separate kernel namespace"
            )));
        }
        if host_net && k.starts_with("net.") {
            return Err(ApiError::invalid(format!(
                "sysctl '{k}' is not allowed in host network namespace"
            )));
        }
    }
    for d in h.devices.as_deref().unwrap_or(&[]) {
        let host = d.path_on_host.clone().unwrap_or_default();
        let perms = d.cgroup_permissions.clone().unwrap_or_default();
        if perms.is_empty() || !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(ApiError::invalid(format!("bad mode specified: {perms}")));
        }
        let ctr = d.path_in_container.clone().unwrap_or_default();
        if !ctr.is_empty() && !ctr.starts_with('/') {
            return Err(ApiError::invalid(format!("{ctr} is not an absolute path")));
        }
        device_nodes(&host, &ctr, &perms)?;
    }
    match h.shm_size {
        Some(s) if s < 0 => return Err(ApiError::invalid("SHM size can not be less than 0")),
        Some(s) if s > 0 => {}
        _ => h.shm_size = Some(DEFAULT_SHM_SIZE),
    }
    if h.memory.unwrap_or(0) == 0 && h.memory_swap.unwrap_or(0) > 0 {
        return Err(ApiError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if h.oom_kill_disable == Some(true) && berth_runtime::cgroup_unified() {
        // cgroup v2 has no switch for it: dockerd discards it with this warning.
        h.oom_kill_disable = Some(false);
        warnings.push(
            "Your kernel does not support OomKillDisable. OomKillDisable discarded.".to_owned(),
        );
    }
    if let Some(r) = h.memory_reservation.filter(|r| *r != 0) {
        if r < MIN_MEMORY {
            return Err(ApiError::invalid(
                "Minimum memory reservation allowed is 6MB",
            ));
        }
        if h.memory.unwrap_or(0) > 0 && h.memory.unwrap_or(0) < r {
            return Err(ApiError::invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
    }
    if let Some(set) = h.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        let want = parse_cpuset(set).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {set} for cpuset cpus: invalid format: {set}"
            ))
        })?;
        let online = online("cpu");
        let have = parse_cpuset(&online).unwrap_or_default();
        if want.iter().any(|c| !have.contains(c)) {
            return Err(ApiError::invalid(format!(
                "Requested CPUs are not available - requested {set}, available: {online}"
            )));
        }
    }
    if let Some(set) = h.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
        let want = parse_cpuset(set)
            .ok_or_else(|| ApiError::invalid(format!("Invalid value {set} for cpuset mems")))?;
        let online = online("node");
        let have = parse_cpuset(&online).unwrap_or_default();
        if want.iter().any(|c| !have.contains(c)) {
            return Err(ApiError::invalid(format!(
                "Requested memory nodes are not available - requested {set}, available: {online}"
            )));
        }
    }
    if let Some(p) = h.cpu_period.filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            return Err(ApiError::invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ));
        }
    }
    if h.cpu_quota.is_some_and(|q| q > 0 && q < 1000) {
        return Err(ApiError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if let Some(adj) = h.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
        return Err(ApiError::invalid(format!(
            "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
        )));
    }
    if let Some(s) = h
        .memory_swappiness
        .filter(|s| *s != -1 && !(0..=100).contains(s))
    {
        return Err(ApiError::invalid(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    for r in h.device_cgroup_rules.iter().flatten() {
        if parse_device_rule(r).is_none() {
            return Err(ApiError::invalid(format!(
                "invalid device cgroup format '{r}'"
            )));
        }
    }
    if h.oom_kill_disable == Some(true) && h.memory.unwrap_or(0) == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_owned());
    }
    // dockerd stores "unlimited" (0 or -1) as no limit.
    if h.pids_limit.is_some_and(|p| p <= 0) {
        h.pids_limit = None;
    }
    // What dockerd fills in at create, so inspect shows the same.
    if h.privileged != Some(true) {
        let own = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        h.masked_paths = h.masked_paths.take().or_else(|| own(spec::MASKED_PATHS));
        h.readonly_paths = h
            .readonly_paths
            .take()
            .or_else(|| own(spec::READONLY_PATHS));
    }
    if h.ipc_mode.as_deref().unwrap_or("").is_empty() {
        h.ipc_mode = Some("private".into());
    }
    if matches!(
        h.cgroupns_mode,
        None | Some(HostConfigCgroupnsModeEnum::EMPTY)
    ) {
        // Docker's default on cgroup v1; berth keeps it on v2 as well.
        h.cgroupns_mode = Some(HostConfigCgroupnsModeEnum::HOST);
    }
    if h.storage_opt.as_ref().is_some_and(|o| !o.is_empty()) {
        // berth's overlayfs snapshots have no per-container size quota.
        return Err(ApiError::invalid(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ));
    }
    if let Some(r) = h.device_requests.iter().flatten().next() {
        // No device drivers (GPU and the like) are available to berth.
        let caps = r.capabilities.clone().unwrap_or_default();
        return Err(ApiError::invalid(format!(
            "could not select device driver {:?} with capabilities: {}",
            r.driver.clone().unwrap_or_default(),
            go_caps(&caps)
        )));
    }
    match h.userns_mode.as_deref().unwrap_or("") {
        "" | "host" => {}
        other => {
            return Err(ApiError::invalid(format!(
                "invalid user namespace mode {other:?}: berth has no user namespace remapping"
            )))
        }
    }
    match h.isolation {
        None | Some(HostConfigIsolationEnum::EMPTY) | Some(HostConfigIsolationEnum::DEFAULT) => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid isolation: {:?} - linux only supports 'default'",
                other.to_string()
            )))
        }
    }
    match h.runtime.as_deref().unwrap_or("") {
        "" | "runc" | "berth" => {}
        other => {
            return Err(ApiError::invalid(format!(
                "Unknown runtime specified {other}"
            )))
        }
    }
    if h.memory_swappiness == Some(-1) {
        h.memory_swappiness = None;
    }
    let pid = h.pid_mode.clone().unwrap_or_default();
    if !(pid.is_empty()
        || pid == "host"
        || pid
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty()))
    {
        return Err(ApiError::invalid(format!("invalid PID mode: {pid}")));
    }
    let ipc = h.ipc_mode.clone().unwrap_or_default();
    let ipc_ok = matches!(ipc.as_str(), "private" | "shareable" | "host" | "none")
        || ipc
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty());
    if !ipc_ok {
        return Err(ApiError::invalid(format!("Invalid IPC mode: {ipc}")));
    }
    match h.uts_mode.as_deref().unwrap_or("") {
        "" => {}
        "host" => {
            if body.hostname.as_deref().is_some_and(|n| !n.is_empty()) {
                return Err(ApiError::invalid(
                    "conflicting options: hostname and the UTS mode",
                ));
            }
        }
        other => return Err(ApiError::invalid(format!("invalid UTS mode: {other}"))),
    }
    if h.blkio_weight.unwrap_or(0) > 0 && !blkio_weight_supported() {
        warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_owned());
        h.blkio_weight = Some(0);
    }
    if h.blkio_weight_device
        .as_ref()
        .is_some_and(|d| !d.is_empty())
        && !blkio_weight_supported()
    {
        warnings.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".to_owned());
        h.blkio_weight_device = Some(vec![]);
    }
    if h.blkio_weight
        .is_some_and(|w| w > 0 && !(10..=1000).contains(&w))
    {
        return Err(ApiError::invalid(
            "Range of blkio weight is from 10 to 1000",
        ));
    }
    for w in h.blkio_weight_device.iter().flatten() {
        dev_numbers(w.path.as_deref().unwrap_or(""))?;
    }
    for list in [
        &h.blkio_device_read_bps,
        &h.blkio_device_write_bps,
        &h.blkio_device_read_iops,
        &h.blkio_device_write_iops,
    ] {
        throttle(list)?;
    }
    if let Some(s) = body.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        super::lifecycle::parse_signal(s)?;
    }
    Ok(warnings)
}

fn device_nodes(host: &str, ctr: &str, perms: &str) -> Result<Vec<spec::Device>, ApiError> {
    let ctr = if ctr.is_empty() { host } else { ctr };
    berth_runtime::devices::from_path(host, ctr, perms)
        .map_err(|e| ApiError::invalid(ApiError::from_chain(&e).message))
}

/// The init executable in the exec-root, written from the embedded copy once per daemon
/// (when missing or different: an upgrade). Running containers keep the inode they have
/// mounted, since the file is replaced by rename.
fn init_binary(paths: &Paths) -> Result<PathBuf, ApiError> {
    static WRITTEN: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let path = paths.exec_root.join("berth-init");
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    if written.as_deref() == Some(path.as_path()) {
        return Ok(path);
    }
    let want = berth_init::BINARY;
    if std::fs::read(&path).is_ok_and(|have| have == want) {
        *written = Some(path.clone());
        return Ok(path);
    }
    let tmp = paths
        .exec_root
        .join(format!("berth-init.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(want)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ApiError::internal(format!("writing {}: {e}", path.display()))
    })?;
    *written = Some(path.clone());
    Ok(path)
}

/// Fills the spec fields of this module from the stored host config (at start).
pub fn apply(
    paths: &Paths,
    h: &HostConfig,
    joins: Joins,
    opts: &mut SpecOptions,
) -> Result<(), ApiError> {
    opts.pid_ns = joins.pid;
    opts.ipc_ns = joins.ipc;
    opts.shm_source = joins.shm_source;
    opts.no_shm = h.ipc_mode.as_deref() == Some("none");
    if h.ipc_mode.as_deref() == Some("shareable") {
        opts.shm_source = Some(mount_shareable_shm(paths, &opts.id, opts.shm_size)?);
    }
    opts.uts_host = h.uts_mode.as_deref() == Some("host");
    opts.cgroupns_private = h.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::PRIVATE);
    opts.masked_paths = h.masked_paths.clone();
    opts.readonly_paths = h.readonly_paths.clone();
    opts.annotations = h
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if h.init == Some(true) {
        opts.init = Some(init_binary(paths)?);
    }
    let sec = parse_security_opts(h.security_opt.as_deref().unwrap_or(&[]))?;
    opts.no_new_privileges = sec.no_new_privileges;
    opts.seccomp = sec.seccomp;
    opts.rlimits = h
        .ulimits
        .iter()
        .flatten()
        .map(|u| Rlimit {
            name: u.name.clone().unwrap_or_default(),
            soft: u.soft.unwrap_or(0),
            hard: u.hard.unwrap_or(0),
        })
        .collect();
    let mut devices = Vec::new();
    if opts.privileged {
        devices = berth_runtime::devices::host_devices();
    }
    for d in h.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let perms = d.cgroup_permissions.clone().unwrap_or_else(|| "rwm".into());
        for n in device_nodes(&host, d.path_in_container.as_deref().unwrap_or(""), &perms)? {
            devices.retain(|x: &spec::Device| x.path != n.path);
            devices.push(n);
        }
    }
    opts.devices = devices;
    opts.oom_kill_disable = h.oom_kill_disable.unwrap_or(false);
    opts.memory_reservation = h.memory_reservation.unwrap_or(0);
    opts.oom_score_adj = h.oom_score_adj.unwrap_or(0);
    opts.memory_swappiness = h
        .memory_swappiness
        .filter(|s| (0..=100).contains(s))
        .map(|s| s as u64);
    opts.cpuset_mems = h.cpuset_mems.clone().unwrap_or_default();
    let mut weight_devices = Vec::new();
    for w in h.blkio_weight_device.iter().flatten() {
        let (ma, mi) = dev_numbers(w.path.as_deref().unwrap_or(""))?;
        weight_devices.push((ma, mi, w.weight.unwrap_or(0).min(1000) as u16));
    }
    opts.block_io = spec::BlockIo {
        weight: h.blkio_weight.unwrap_or(0),
        weight_devices,
        read_bps: throttle(&h.blkio_device_read_bps)?,
        write_bps: throttle(&h.blkio_device_write_bps)?,
        read_iops: throttle(&h.blkio_device_read_iops)?,
        write_iops: throttle(&h.blkio_device_write_iops)?,
    };
    opts.device_rules = h
        .device_cgroup_rules
        .iter()
        .flatten()
        .filter_map(|r| parse_device_rule(r))
        .collect();
    Ok(())
}

/// What libcontainer leaves out, done once the container exists and before its process
/// runs: `--oom-kill-disable` (libcontainer always writes 0 to cgroup v1
/// `memory.oom_control`; cgroup v2 has no such switch, as with Docker there).
pub fn after_create(id: &str, h: &HostConfig) {
    if h.oom_kill_disable != Some(true) {
        return;
    }
    let cgroup = match h.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => format!("{}/{id}", p.trim_end_matches('/')),
        None => format!("/berth/{id}"),
    };
    let file = Path::new("/sys/fs/cgroup/memory")
        .join(cgroup.trim_start_matches('/'))
        .join("memory.oom_control");
    if let Err(e) = std::fs::write(&file, "1") {
        tracing::warn!(%id, path = %file.display(), error = %e, "disabling the OOM killer");
    }
}

/// The host-side /dev/shm of a `--ipc shareable` container (a tmpfs in its bundle, which
/// `cleanup_bundle` unmounts), so that `--ipc container:<it>` can bind the same one.
pub fn shareable_shm(paths: &Paths, id: &str) -> PathBuf {
    paths.bundle(id).join("shm")
}

fn mount_shareable_shm(paths: &Paths, id: &str, size: i64) -> Result<PathBuf, ApiError> {
    let dir = shareable_shm(paths, id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    let size = if size > 0 { size } else { DEFAULT_SHM_SIZE };
    let data = format!("mode=1777,size={size}");
    nix::mount::mount(
        Some("shm"),
        &dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some(data.as_str()),
    )
    .map_err(|e| ApiError::internal(format!("mounting the shareable /dev/shm: {e}")))?;
    Ok(dir)
}

/// The namespaces a container joins at start (`--pid`, `--ipc` with `host` or
/// `container:<name>`), resolved against the containers it names.
#[derive(Debug, Default)]
pub struct Joins {
    pub pid: spec::Join,
    pub ipc: spec::Join,
    pub shm_source: Option<PathBuf>,
}

impl super::Containers {
    /// At start: the paths of the namespaces to join (the donor must be running).
    pub(crate) fn resolve_joins(&self, h: &HostConfig) -> Result<Joins, ApiError> {
        let mut j = Joins::default();
        let running_pid = |name: &str| -> Result<(String, u32, super::Record), ApiError> {
            let c = self.get(name)?;
            let rec = c.snapshot();
            if !rec.state.status.is_running() || rec.state.pid == 0 {
                return Err(ApiError::conflict(format!(
                    "container {} is not running",
                    rec.id
                )));
            }
            Ok((rec.id.clone(), rec.state.pid, rec))
        };
        match h.pid_mode.as_deref().unwrap_or("") {
            "host" => j.pid = spec::Join::Host,
            m => {
                if let Some(name) = m.strip_prefix("container:") {
                    let (_, pid, _) = running_pid(name)?;
                    j.pid = spec::Join::Path(format!("/proc/{pid}/ns/pid").into());
                }
            }
        }
        match h.ipc_mode.as_deref().unwrap_or("") {
            "host" => {
                j.ipc = spec::Join::Host;
                j.shm_source = Some("/dev/shm".into());
            }
            m => {
                if let Some(name) = m.strip_prefix("container:") {
                    let (id, pid, rec) = running_pid(name).map_err(|e| {
                        ApiError::new(
                            e.kind,
                            format!("can't join IPC of container {name}: {}", e.message),
                        )
                    })?;
                    let donor = rec.host_config.ipc_mode.as_deref().unwrap_or("");
                    if !matches!(donor, "shareable" | "host") {
                        return Err(ApiError::invalid(format!("can't join IPC of container {id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)")));
                    }
                    j.ipc = spec::Join::Path(format!("/proc/{pid}/ns/ipc").into());
                    j.shm_source = Some(shareable_shm(&self.paths, &id));
                }
            }
        }
        Ok(j)
    }
}

/// Where the shim writes the log of this container, by driver (`None` for `none`).
/// `local` keeps its files in `local-logs/container.log`, not exposed as `LogPath`.
pub fn log_file(container_dir: &Path, id: &str, driver: &str) -> Option<PathBuf> {
    match driver {
        "none" => None,
        "local" => Some(container_dir.join("local-logs").join("container.log")),
        _ => Some(container_dir.join(format!("{id}-json.log"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opts() {
        let p =
            |v: &[&str]| parse_security_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges=false"]).unwrap().no_new_privileges);
        assert_eq!(p(&["seccomp=unconfined"]).unwrap().seccomp, Some(None));
        assert_eq!(p(&["seccomp=builtin"]).unwrap().seccomp, None);
        assert_eq!(p(&["seccomp={}"]).unwrap().seccomp, Some(Some("{}".into())));
        assert_eq!(
            p(&["foo=bar"]).unwrap_err().message,
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            p(&["bogus"]).unwrap_err().message,
            "invalid --security-opt 1: \"bogus\""
        );
        assert!(p(&["no-new-privileges=maybe"]).is_err());
    }

    #[test]
    fn caps_sysctls_cpusets() {
        let mut c = Some(vec![
            "net_admin".to_string(),
            "CAP_KILL".into(),
            "all".into(),
        ]);
        normalize_caps(&mut c, "CapAdd").unwrap();
        assert_eq!(c.unwrap(), ["CAP_NET_ADMIN", "CAP_KILL", "ALL"]);
        let mut c = Some(vec!["bogus".to_string()]);
        assert_eq!(
            normalize_caps(&mut c, "CapDrop").unwrap_err().message,
            "invalid CapDrop: unknown capability: \"CAP_BOGUS\""
        );
        assert!(namespaced_sysctl("net.ipv4.ip_forward") && namespaced_sysctl("kernel.shmmax"));
        assert!(!namespaced_sysctl("kernel.pid_max") && !namespaced_sysctl("vm.swappiness"));
        assert_eq!(parse_cpuset("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpuset("x"), None);
        assert_eq!(parse_cpuset("3-1"), None);
        let r = parse_device_rule("c 1:3 rwm").unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor, r.access.as_str()),
            ('c', Some(1), Some(3), "rwm")
        );
        let r = parse_device_rule("b *:* m").unwrap();
        assert_eq!((r.major, r.minor), (None, None));
        for bad in ["x 1:3 rwm", "c 1:3 rwx", "c 1 rwm", "c a:3 r", "c 1:3", ""] {
            assert!(parse_device_rule(bad).is_none(), "{bad}");
        }
    }
}
