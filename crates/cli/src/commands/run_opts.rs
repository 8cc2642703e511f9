//! The container options of `run` / `create` beyond the basics (flattened into `RunArgs`):
//! `--ulimit`, `--security-opt`, `--shm-size`, `--sysctl`, `--device`, `--group-add`,
//! `--label-file`, `--oom-kill-disable`, `--cpuset-cpus`, `--memory-reservation`. Each is
//! parsed and checked as docker/cli does (same error texts) and put into the create body.
use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use super::run::ram_in_bytes;

#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes", allow_hyphen_values = true)]
    pub shm_size: Option<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map")]
    pub sysctl: Vec<String>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    pub device: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub memory_swappiness: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    pub device_cgroup_rule: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "string")]
    pub domainname: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    pub cidfile: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid", value_name = "string")]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc", value_name = "string")]
    pub ipc: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts", value_name = "string")]
    pub uts: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device", value_name = "list")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list")]
    pub device_write_iops: Vec<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "string")]
    pub cgroupns: Option<String>,
    /// Runtime to use for this container
    #[arg(long = "runtime", value_name = "string")]
    pub runtime: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation", value_name = "map")]
    pub annotation: Vec<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long = "gpus", value_name = "gpu-request")]
    pub gpus: Option<String>,
    /// User namespace to use
    #[arg(long = "userns", value_name = "string")]
    pub userns: Option<String>,
}

/// docker/cli `ValidateThrottleBpsDevice` / `ValidateThrottleIOpsDevice`.
pub fn parse_throttle(val: &str, bps: bool) -> Result<Value> {
    let (k, v) = match val.split_once(':') {
        Some((k, v)) if !k.is_empty() => (k, v),
        _ => bail!("bad format: {val}"),
    };
    if !k.starts_with("/dev/") {
        bail!("bad format for device path: {val}");
    }
    let rate = if bps {
        ram_in_bytes(v).ok().filter(|r| *r >= 0 && !v.starts_with('-')).ok_or_else(|| {
            anyhow::anyhow!("invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
        })?
    } else {
        v.parse::<u64>().map(|r| r as i64).map_err(|_| {
            anyhow::anyhow!("invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer")
        })?
    };
    Ok(json!({"Path": k, "Rate": rate}))
}

/// docker/cli `ValidateWeightDevice`.
pub fn parse_weight_device(val: &str) -> Result<Value> {
    let (k, v) = match val.split_once(':') {
        Some((k, v)) if !k.is_empty() => (k, v),
        _ => bail!("bad format: {val}"),
    };
    if !k.starts_with("/dev/") {
        bail!("bad format for device path: {val}");
    }
    let w: u16 = v
        .parse()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| anyhow::anyhow!("invalid weight for device: {val}"))?;
    Ok(json!({"Path": k, "Weight": w}))
}

/// docker/cli's `--device-cgroup-rule` check: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`.
pub fn valid_device_cgroup_rule(rule: &str) -> bool {
    let num = |s: &str| s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let parts: Vec<&str> = rule.split(' ').collect();
    match parts.as_slice() {
        [kind, nums, access] => {
            matches!(*kind, "a" | "b" | "c")
                && nums.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
                && (1..=3).contains(&access.len())
                && access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        }
        _ => false,
    }
}

/// `--cidfile`: created before the container (refused when it exists), the ID written
/// once the container exists, removed again when creation fails (docker/cli `cidFile`).
pub struct CidFile {
    path: String,
    written: bool,
}

impl CidFile {
    pub fn create(path: &str) -> Result<CidFile> {
        if std::path::Path::new(path).exists() {
            bail!("container ID file found, make sure the other container isn't running or delete {path}");
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "failed to create the container ID file: open {path}: {}",
                    io_text(&e)
                )
            })?;
        Ok(CidFile {
            path: path.to_owned(),
            written: false,
        })
    }

    pub fn write(&mut self, id: &str) -> Result<()> {
        std::fs::write(&self.path, id).map_err(|e| {
            anyhow::anyhow!(
                "failed to write the container ID to the file: {}",
                io_text(&e)
            )
        })?;
        self.written = true;
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The names go-units `ParseUlimit` knows.
const ULIMITS: &[&str] = &[
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

fn go_parse_int(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .map_err(|_| anyhow::anyhow!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
}

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub fn parse_ulimit(val: &str) -> Result<Value> {
    let Some((name, limits)) = val.split_once('=') else {
        bail!("invalid ulimit argument: {val}");
    };
    if !ULIMITS.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = go_parse_int(s)?;
            (s, s)
        }
        [s, h] => {
            let h = go_parse_int(h)?;
            (go_parse_int(s)?, h)
        }
        _ => bail!(
            "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
        ),
    };
    if hard != -1 {
        if soft == -1 {
            bail!("ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}");
        }
        if soft > hard {
            bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
        }
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// docker/cli `ValidateSysctl`: only sysctls of the container's own namespaces.
pub fn parse_sysctl(val: &str) -> Result<(String, String)> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let Some((k, v)) = val.split_once('=') else {
        bail!("sysctl '{val}' is not allowed");
    };
    if IPC.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
        Ok((k.to_owned(), v.to_owned()))
    } else {
        bail!("sysctl '{val}' is not allowed")
    }
}

fn valid_device_mode(m: &str) -> bool {
    !m.is_empty() && m.len() <= 3 && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// docker/cli `validateLinuxPath` + `parseLinuxDevice`: `host[:container][:perms]`.
pub fn parse_device(val: &str) -> Result<Value> {
    if val.matches(':').count() > 2 || val.split(':').next() == Some("") {
        bail!("bad format for path: {val}");
    }
    let arr: Vec<&str> = val.split(':').collect();
    let (src, mut dst, mut perms) = (arr[0], "", "rwm");
    match arr.as_slice() {
        [_] => {}
        [_, b] if valid_device_mode(b) => perms = b,
        [_, b] => dst = b,
        [_, b, m] => {
            if !valid_device_mode(m) {
                bail!("bad mode specified: {m}");
            }
            dst = b;
            perms = m;
        }
        _ => bail!("invalid device specification: {val}"),
    }
    let dst = if dst.is_empty() { src } else { dst };
    if !dst.starts_with('/') {
        bail!("{dst} is not an absolute path");
    }
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

/// JSON with the whitespace between tokens removed, keys in their order (Go's
/// `json.Compact`); the input must be valid JSON.
fn compact_json(src: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str::<Value>(src)?;
    let mut out = String::with_capacity(src.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in src.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    Ok(out)
}

/// docker/cli `parseSecurityOpts`: `seccomp=<file>` is sent as the file's compacted JSON.
pub fn parse_security_opts(opts: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for opt in opts {
        let (k, v, ok) = match opt.split_once('=') {
            Some((k, v)) => (k, v, true),
            None if opt != "no-new-privileges" => match opt.split_once(':') {
                Some((k, v)) => (k, v, true),
                None => (opt.as_str(), "", false),
            },
            None => (opt.as_str(), "", false),
        };
        if (!ok || v.is_empty()) && k != "no-new-privileges" {
            bail!("Invalid --security-opt: {opt:?}");
        }
        if k == "seccomp" && !matches!(v, "builtin" | "unconfined") {
            let content = std::fs::read_to_string(v).map_err(|e| {
                anyhow::anyhow!(
                    "opening seccomp profile ({v}) failed: open {v}: {}",
                    io_text(&e)
                )
            })?;
            let c = compact_json(&content).map_err(|e| {
                anyhow::anyhow!("compacting json for seccomp profile ({v}) failed: {e}")
            })?;
            out.push(format!("seccomp={c}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok(out)
}

/// Go's wording of an I/O error ("no such file or directory").
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    s.to_ascii_lowercase()
}

/// docker/cli `ReadKVStrings` for `--label-file`: lines, `#` comments and blank lines
/// skipped, a line without `=` is a key with an empty value.
pub fn read_kv_file(path: &str) -> Result<Vec<String>> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("open {path}: {}", io_text(&e)))?;
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let raw = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.contains(char::is_whitespace) {
            bail!("variable '{}' contains whitespaces", key.trim_start());
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

/// A flag value docker/cli refuses while parsing flags.
fn flag_err(flag: &str, val: &str, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("invalid argument {val:?} for \"{flag}\" flag: {e}")
}

impl ContainerOpts {
    /// Adds these options to the create body's config and host config.
    pub fn apply(
        &self,
        config: &mut Map<String, Value>,
        host: &mut Map<String, Value>,
    ) -> Result<()> {
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(parse_ulimit(u).map_err(|e| flag_err("--ulimit", u, e))?);
        }
        host.insert("Ulimits".into(), Value::Array(ulimits));
        let mut sysctls = Map::new();
        for s in &self.sysctl {
            let (k, v) = parse_sysctl(s).map_err(|e| flag_err("--sysctl", s, e))?;
            sysctls.insert(k, Value::String(v));
        }
        if !sysctls.is_empty() {
            host.insert("Sysctls".into(), Value::Object(sysctls));
        }
        let devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<Result<Vec<_>>>()?;
        host.insert("Devices".into(), Value::Array(devices));
        if let Some(s) = &self.shm_size {
            let n = ram_in_bytes(s)
                .ok()
                .filter(|n| *n >= 0 && !s.starts_with('-'))
                .ok_or_else(|| flag_err("--shm-size", s, anyhow::anyhow!("invalid size: '{s}'")))?;
            host.insert("ShmSize".into(), json!(n));
        }
        if !self.security_opt.is_empty() {
            // docker/cli `parseSystemPaths`: `systempaths=unconfined` empties the masked and
            // read-only paths and is not sent itself.
            let (system, rest): (Vec<String>, Vec<String>) = self
                .security_opt
                .iter()
                .cloned()
                .partition(|o| o == "systempaths=unconfined");
            if !system.is_empty() {
                host.insert("MaskedPaths".into(), json!([]));
                host.insert("ReadonlyPaths".into(), json!([]));
            }
            host.insert("SecurityOpt".into(), json!(parse_security_opts(&rest)?));
        }
        if !self.group_add.is_empty() {
            host.insert("GroupAdd".into(), json!(self.group_add));
        }
        if self.oom_kill_disable {
            host.insert("OomKillDisable".into(), json!(true));
        }
        if let Some(c) = &self.cpuset_cpus {
            host.insert("CpusetCpus".into(), json!(c));
        }
        if let Some(r) = &self.memory_reservation {
            let n = ram_in_bytes(r).map_err(|e| flag_err("--memory-reservation", r, e))?;
            host.insert("MemoryReservation".into(), json!(n));
        }
        if let Some(p) = self.cpu_period {
            host.insert("CpuPeriod".into(), json!(p));
        }
        if let Some(q) = self.cpu_quota {
            host.insert("CpuQuota".into(), json!(q));
        }
        if let Some(c) = &self.cgroup_parent {
            host.insert("CgroupParent".into(), json!(c));
        }
        if let Some(a) = self.oom_score_adj {
            host.insert("OomScoreAdj".into(), json!(a));
        }
        if let Some(s) = self.memory_swappiness {
            if !(-1..=100).contains(&s) {
                bail!("invalid value: {s}. Valid memory swappiness range is 0-100");
            }
            host.insert("MemorySwappiness".into(), json!(s));
        }
        if let Some(m) = &self.cpuset_mems {
            host.insert("CpusetMems".into(), json!(m));
        }
        for r in &self.device_cgroup_rule {
            if !valid_device_cgroup_rule(r) {
                return Err(flag_err(
                    "--device-cgroup-rule",
                    r,
                    anyhow::anyhow!("invalid device cgroup format '{r}'"),
                ));
            }
        }
        if !self.device_cgroup_rule.is_empty() {
            host.insert("DeviceCgroupRules".into(), json!(self.device_cgroup_rule));
        }
        if let Some(p) = &self.pid {
            if !(p.is_empty()
                || p == "host"
                || p.strip_prefix("container:").is_some_and(|c| !c.is_empty()))
            {
                bail!("--pid: invalid PID mode");
            }
            host.insert("PidMode".into(), json!(p));
        }
        if let Some(i) = &self.ipc {
            host.insert("IpcMode".into(), json!(i));
        }
        if let Some(u) = &self.uts {
            if !(u.is_empty() || u == "host") {
                bail!("--uts: invalid UTS mode");
            }
            host.insert("UTSMode".into(), json!(u));
        }
        if let Some(w) = self.blkio_weight {
            host.insert("BlkioWeight".into(), json!(w));
        }
        let mut weights = Vec::new();
        for w in &self.blkio_weight_device {
            weights
                .push(parse_weight_device(w).map_err(|e| flag_err("--blkio-weight-device", w, e))?);
        }
        host.insert("BlkioWeightDevice".into(), Value::Array(weights));
        for (flag, key, list, bps) in [
            (
                "--device-read-bps",
                "BlkioDeviceReadBps",
                &self.device_read_bps,
                true,
            ),
            (
                "--device-write-bps",
                "BlkioDeviceWriteBps",
                &self.device_write_bps,
                true,
            ),
            (
                "--device-read-iops",
                "BlkioDeviceReadIOps",
                &self.device_read_iops,
                false,
            ),
            (
                "--device-write-iops",
                "BlkioDeviceWriteIOps",
                &self.device_write_iops,
                false,
            ),
        ] {
            let mut out = Vec::new();
            for v in list {
                out.push(parse_throttle(v, bps).map_err(|e| flag_err(flag, v, e))?);
            }
            host.insert(key.into(), Value::Array(out));
        }
        if let Some(c) = &self.cgroupns {
            if !matches!(c.as_str(), "" | "host" | "private") {
                bail!("--cgroupns: invalid CGROUP mode");
            }
            host.insert("CgroupnsMode".into(), json!(c));
        }
        if let Some(r) = &self.runtime {
            host.insert("Runtime".into(), json!(r));
        }
        if !self.annotation.is_empty() {
            let mut m = Map::new();
            for a in &self.annotation {
                let (k, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
                m.insert(k.to_owned(), json!(v));
            }
            host.insert("Annotations".into(), Value::Object(m));
        }
        if !self.storage_opt.is_empty() {
            let mut m = Map::new();
            for o in &self.storage_opt {
                let Some((k, v)) = o.split_once('=') else {
                    bail!("invalid storage option");
                };
                m.insert(k.to_owned(), json!(v));
            }
            host.insert("StorageOpt".into(), Value::Object(m));
        }
        if let Some(g) = &self.gpus {
            // docker/cli's `GpuOpts`: `all` or a count; capabilities [["gpu"]].
            let count: i64 = match g.as_str() {
                "all" => -1,
                n => n.parse().unwrap_or(0),
            };
            host.insert(
                "DeviceRequests".into(),
                json!([{"Driver": "", "Count": count, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}}]),
            );
        }
        if let Some(u) = &self.userns {
            if !matches!(u.as_str(), "" | "host") {
                bail!("--userns: invalid USER mode");
            }
            host.insert("UsernsMode".into(), json!(u));
        }
        if let Some(d) = &self.domainname {
            config.insert("Domainname".into(), json!(d));
        }
        if !self.label_file.is_empty() {
            // File labels first, `--label` after: a later key wins.
            let mut labels = Map::new();
            for f in &self.label_file {
                for kv in read_kv_file(f)? {
                    let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                    labels.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            }
            if let Some(Value::Object(flags)) = config.get("Labels") {
                for (k, v) in flags {
                    labels.insert(k.clone(), v.clone());
                }
            }
            config.insert("Labels".into(), Value::Object(labels));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=100:200").unwrap(),
            json!({"Name": "nofile", "Hard": 200, "Soft": 100})
        );
        assert_eq!(parse_ulimit("nproc=-1").unwrap()["Hard"], -1);
        let e = |v: &str| parse_ulimit(v).unwrap_err().to_string();
        assert_eq!(e("nofile"), "invalid ulimit argument: nofile");
        assert_eq!(e("foo=1"), "invalid ulimit type: foo");
        assert_eq!(
            e("nofile=x"),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            e("nofile=10:5"),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
        assert!(e("nofile=1:2:3").starts_with("too many limit value arguments"));
    }

    #[test]
    fn sysctls_devices_security() {
        assert!(parse_sysctl("net.ipv4.ip_forward=1").is_ok());
        assert!(parse_sysctl("kernel.shmmax=1").is_ok());
        assert_eq!(
            parse_sysctl("kernel.pid_max=1").unwrap_err().to_string(),
            "sysctl 'kernel.pid_max=1' is not allowed"
        );
        assert_eq!(
            parse_device("/dev/null").unwrap(),
            json!({"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"})
        );
        assert_eq!(
            parse_device("/dev/null:r").unwrap()["CgroupPermissions"],
            "r"
        );
        assert_eq!(
            parse_device("/dev/null:/dev/x:rw").unwrap()["PathInContainer"],
            "/dev/x"
        );
        assert_eq!(
            parse_device("/dev/null:/dev/x:bad")
                .unwrap_err()
                .to_string(),
            "bad mode specified: bad"
        );
        assert!(parse_device(":/x").is_err() && parse_device("/a:rel").is_err());
        assert_eq!(
            compact_json("{ \"a\" : [1, 2],\n \"b c\": \"x y\" }").unwrap(),
            r#"{"a":[1,2],"b c":"x y"}"#
        );
        assert!(compact_json("{").is_err());
        assert_eq!(
            parse_throttle("/dev/sda:1mb", true).unwrap(),
            json!({"Path": "/dev/sda", "Rate": 1048576})
        );
        assert_eq!(parse_throttle("/dev/sda:100", false).unwrap()["Rate"], 100);
        assert_eq!(
            parse_throttle("/dev/sda", true).unwrap_err().to_string(),
            "bad format: /dev/sda"
        );
        assert!(parse_throttle("rel:1", true)
            .unwrap_err()
            .to_string()
            .starts_with("bad format for device path"));
        assert!(
            parse_throttle("/dev/sda:1.5", false).is_err()
                && parse_throttle("/dev/sda:x", true).is_err()
        );
        assert_eq!(parse_weight_device("/dev/sda:200").unwrap()["Weight"], 200);
        assert!(parse_weight_device("/dev/sda:5").is_err());
        assert!(valid_device_cgroup_rule("c 1:3 rwm") && valid_device_cgroup_rule("b *:* m"));
        assert!(!valid_device_cgroup_rule("x 1:3 rwm") && !valid_device_cgroup_rule("c 1:3 rwx"));
        assert_eq!(
            parse_security_opts(&["bogus".into()])
                .unwrap_err()
                .to_string(),
            "Invalid --security-opt: \"bogus\""
        );
        assert_eq!(
            parse_security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()])
                .unwrap(),
            ["no-new-privileges", "seccomp=unconfined"]
        );
    }
}
