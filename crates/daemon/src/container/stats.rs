//! `GET /containers/{id}/stats`: Docker's stats JSON (moby `types.StatsJSON`) read from the
//! container's cgroups (v1: one directory per controller under /sys/fs/cgroup/<ctrl>; v2:
//! the unified directory) and its network namespace (`/proc/<pid>/net/dev`).
//!
//! `precpu_stats` is the previous sample: in a stream the one before; for a single sample
//! the last one taken for the container (any earlier request), else one taken 50 ms
//! before, so `docker stats --no-stream` over many containers answers at once with real
//! CPU percentages. `one-shot` skips the previous sample, as Docker does.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_api::{ApiResult, BoxStream};
use berth_runtime::cgroup_unified as unified;
use serde::Serialize;

use super::{Containers, Record, Status, ZERO_TIME};

/// How long a remembered sample serves as `precpu_stats` of a single-sample request.
const PRECPU_MAX_AGE: Duration = Duration::from_secs(30);
const COLD_DELTA: Duration = Duration::from_millis(50);
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// One reading of a container's cgroups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    pub cpu_total: u64,
    /// v1 only (v2 has no per-CPU accounting).
    pub percpu: Option<Vec<u64>>,
    pub cpu_kernel: u64,
    pub cpu_user: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    pub mem_usage: u64,
    /// v1 only.
    pub mem_max_usage: Option<u64>,
    pub mem_failcnt: u64,
    /// None = unlimited.
    pub mem_limit: Option<u64>,
    pub mem_stats: BTreeMap<String, u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    pub blkio: Blkio,
}

/// One `blkio_stats` entry: (major, minor, op, value).
pub type BlkioEntry = (u64, u64, String, u64);

/// `blkio_stats`: the named lists; `None` is JSON null (v2 has only the first two).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blkio {
    pub lists: Vec<(&'static str, Option<Vec<BlkioEntry>>)>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn kv(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// v1 `blkio.*_recursive`: `8:0 Read 4096` lines (the device-less `Total` line skipped).
fn blkio_v1_entries(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.next()?;
            let (maj, min) = dev.split_once(':')?;
            let (op, v) = match (f.next(), f.next()) {
                (Some(op), Some(v)) => (op.to_owned(), v),
                // Files without an op (sectors, time): one value per device.
                (Some(v), None) => (String::new(), v),
                _ => return None,
            };
            Some((maj.parse().ok()?, min.parse().ok()?, op, v.parse().ok()?))
        })
        .collect()
}

/// The cgroup v1 directories of one container, by controller.
#[derive(Debug, Clone)]
pub struct V1Dirs {
    pub cpuacct: PathBuf,
    pub cpu: PathBuf,
    pub memory: PathBuf,
    pub pids: PathBuf,
    pub blkio: PathBuf,
}

/// Reads a cgroup v1 container (moby's v1 collector and containerd's cgroups v1 metrics).
pub fn read_v1(d: &V1Dirs) -> CgroupSample {
    let ticks = |n: u64| n * (1_000_000_000 / clock_ticks());
    let cpuacct = kv(&read(&d.cpuacct.join("cpuacct.stat")).unwrap_or_default());
    let cpu = kv(&read(&d.cpu.join("cpu.stat")).unwrap_or_default());
    let percpu = read(&d.cpuacct.join("cpuacct.usage_percpu")).map(|s| {
        s.split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    });
    let limit = read_u64(&d.memory.join("memory.limit_in_bytes"));
    let mut lists = Vec::new();
    let files = [
        (
            "io_service_bytes_recursive",
            "blkio.io_service_bytes_recursive",
        ),
        ("io_serviced_recursive", "blkio.io_serviced_recursive"),
        ("io_queue_recursive", "blkio.io_queued_recursive"),
        (
            "io_service_time_recursive",
            "blkio.io_service_time_recursive",
        ),
        ("io_wait_time_recursive", "blkio.io_wait_time_recursive"),
        ("io_merged_recursive", "blkio.io_merged_recursive"),
        ("io_time_recursive", "blkio.time_recursive"),
        ("sectors_recursive", "blkio.sectors_recursive"),
    ];
    for (key, file) in files {
        let mut v = blkio_v1_entries(&read(&d.blkio.join(file)).unwrap_or_default());
        // Without the CFQ scheduler the kernel only counts in the throttle files.
        if v.is_empty() && key == "io_service_bytes_recursive" {
            v = blkio_v1_entries(
                &read(&d.blkio.join("blkio.throttle.io_service_bytes_recursive"))
                    .unwrap_or_default(),
            );
        }
        if v.is_empty() && key == "io_serviced_recursive" {
            v = blkio_v1_entries(
                &read(&d.blkio.join("blkio.throttle.io_serviced_recursive")).unwrap_or_default(),
            );
        }
        lists.push((key, Some(v)));
    }
    CgroupSample {
        cpu_total: read_u64(&d.cpuacct.join("cpuacct.usage")).unwrap_or(0),
        percpu,
        cpu_kernel: ticks(cpuacct.get("system").copied().unwrap_or(0)),
        cpu_user: ticks(cpuacct.get("user").copied().unwrap_or(0)),
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: cpu.get("throttled_time").copied().unwrap_or(0),
        mem_usage: read_u64(&d.memory.join("memory.usage_in_bytes")).unwrap_or(0),
        mem_max_usage: read_u64(&d.memory.join("memory.max_usage_in_bytes")),
        mem_failcnt: read_u64(&d.memory.join("memory.failcnt")).unwrap_or(0),
        // The kernel's "unlimited" is a page-rounded i64::MAX.
        mem_limit: limit.filter(|l| *l < (i64::MAX as u64) - 4096 * 2),
        mem_stats: kv(&read(&d.memory.join("memory.stat")).unwrap_or_default()),
        pids_current: read_u64(&d.pids.join("pids.current")).unwrap_or(0),
        pids_limit: read_u64(&d.pids.join("pids.max")),
        blkio: Blkio { lists },
    }
}

/// Reads a cgroup v2 container (moby's v2 collector).
pub fn read_v2(dir: &Path) -> CgroupSample {
    let cpu = kv(&read(&dir.join("cpu.stat")).unwrap_or_default());
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    let max = |f: &str| {
        read(&dir.join(f)).and_then(|s| {
            let s = s.trim();
            if s == "max" {
                None
            } else {
                s.parse().ok()
            }
        })
    };
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in read(&dir.join("io.stat")).unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        let vals: HashMap<&str, u64> = f
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let get = |k: &str| vals.get(k).copied().unwrap_or(0);
        bytes.push((maj, min, "read".to_owned(), get("rbytes")));
        bytes.push((maj, min, "write".to_owned(), get("wbytes")));
        ios.push((maj, min, "read".to_owned(), get("rios")));
        ios.push((maj, min, "write".to_owned(), get("wios")));
    }
    let mut lists: Vec<(&'static str, Option<Vec<_>>)> = vec![
        ("io_service_bytes_recursive", Some(bytes)),
        ("io_serviced_recursive", Some(ios)),
    ];
    for k in [
        "io_queue_recursive",
        "io_service_time_recursive",
        "io_wait_time_recursive",
        "io_merged_recursive",
        "io_time_recursive",
        "sectors_recursive",
    ] {
        lists.push((k, None));
    }
    let events = kv(&read(&dir.join("memory.events")).unwrap_or_default());
    CgroupSample {
        cpu_total: us("usage_usec"),
        percpu: None,
        cpu_kernel: us("system_usec"),
        cpu_user: us("user_usec"),
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
        mem_usage: read_u64(&dir.join("memory.current")).unwrap_or(0),
        mem_max_usage: None,
        mem_failcnt: events.get("oom").copied().unwrap_or(0),
        mem_limit: max("memory.max"),
        mem_stats: kv(&read(&dir.join("memory.stat")).unwrap_or_default()),
        pids_current: read_u64(&dir.join("pids.current")).unwrap_or(0),
        pids_limit: max("pids.max"),
        blkio: Blkio { lists },
    }
}

/// `/proc/<pid>/net/dev` → `networks` (loopback left out, as Docker's endpoints).
pub fn parse_net_dev(s: &str) -> BTreeMap<String, NetOut> {
    let mut out = BTreeMap::new();
    for line in s.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() < 12 {
            continue;
        }
        out.insert(
            name.to_owned(),
            NetOut {
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            },
        );
    }
    out
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// moby `getSystemCPUUsage`: the first 7 fields of /proc/stat's `cpu` line, in ns; and the
/// number of online CPUs (`cpuN` lines).
pub fn system_cpu(proc_stat: &str) -> (u64, u32) {
    let mut total = 0;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            let ticks: u64 = rest
                .split_whitespace()
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
            total = ticks * (1_000_000_000 / clock_ticks());
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

fn host_memory() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

// Docker's `types.StatsJSON`, field for field and in its order (Go marshals struct
// fields in declaration order; `omitempty` fields are `Option`s skipped when `None`).

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct CpuUsage {
    total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    percpu_usage: Option<Vec<u64>>,
    usage_in_kernelmode: u64,
    usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct Throttling {
    periods: u64,
    throttled_periods: u64,
    throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct CpuStats {
    cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    online_cpus: Option<u32>,
    throttling_data: Throttling,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
struct BlkioEntryOut {
    major: u64,
    minor: u64,
    op: String,
    value: u64,
}

/// `None` is `null`, as Go's nil slices.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct BlkioOut {
    io_service_bytes_recursive: Option<Vec<BlkioEntryOut>>,
    io_serviced_recursive: Option<Vec<BlkioEntryOut>>,
    io_queue_recursive: Option<Vec<BlkioEntryOut>>,
    io_service_time_recursive: Option<Vec<BlkioEntryOut>>,
    io_wait_time_recursive: Option<Vec<BlkioEntryOut>>,
    io_merged_recursive: Option<Vec<BlkioEntryOut>>,
    io_time_recursive: Option<Vec<BlkioEntryOut>>,
    sectors_recursive: Option<Vec<BlkioEntryOut>>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct PidsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct MemOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failcnt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NetOut {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Empty {}

#[derive(Debug, Clone, Serialize)]
struct StatsOut {
    read: String,
    preread: String,
    pids_stats: PidsOut,
    blkio_stats: BlkioOut,
    num_procs: u32,
    storage_stats: Empty,
    cpu_stats: CpuStats,
    precpu_stats: CpuStats,
    memory_stats: MemOut,
    name: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    networks: Option<BTreeMap<String, NetOut>>,
}

/// A full sample: cgroup reading, system CPU, networks, time.
#[derive(Debug, Clone)]
struct Sample {
    read: String,
    cpu: CpuStats,
    pids: PidsOut,
    blkio: BlkioOut,
    mem: MemOut,
    networks: Option<BTreeMap<String, NetOut>>,
}

fn cpu_stats(s: &CgroupSample, system: u64, cpus: u32) -> CpuStats {
    CpuStats {
        cpu_usage: CpuUsage {
            total_usage: s.cpu_total,
            percpu_usage: s.percpu.clone(),
            usage_in_kernelmode: s.cpu_kernel,
            usage_in_usermode: s.cpu_user,
        },
        system_cpu_usage: Some(system),
        online_cpus: Some(cpus),
        throttling_data: Throttling {
            periods: s.periods,
            throttled_periods: s.throttled_periods,
            throttled_time: s.throttled_time,
        },
    }
}

fn blkio_out(b: &Blkio) -> BlkioOut {
    let get = |k: &str| {
        b.lists.iter().find(|(n, _)| *n == k).and_then(|(_, v)| {
            v.as_ref().map(|e| {
                e.iter()
                    .map(|(major, minor, op, value)| BlkioEntryOut {
                        major: *major,
                        minor: *minor,
                        op: op.clone(),
                        value: *value,
                    })
                    .collect()
            })
        })
    };
    BlkioOut {
        io_service_bytes_recursive: get("io_service_bytes_recursive"),
        io_serviced_recursive: get("io_serviced_recursive"),
        io_queue_recursive: get("io_queue_recursive"),
        io_service_time_recursive: get("io_service_time_recursive"),
        io_wait_time_recursive: get("io_wait_time_recursive"),
        io_merged_recursive: get("io_merged_recursive"),
        io_time_recursive: get("io_time_recursive"),
        sectors_recursive: get("sectors_recursive"),
    }
}

/// What a sample needs of a container record (taken under its lock, without cloning the
/// whole record: `stats` of every container is one request each).
#[derive(Debug, Clone)]
struct Target {
    id: String,
    name: String,
    status: Status,
    pid: u32,
    host_net: bool,
    /// The cgroup path inside a hierarchy (`berth/<id>`).
    cgroup: String,
}

impl Target {
    fn of(rec: &Record) -> Self {
        Self {
            id: rec.id.clone(),
            name: rec.name.clone(),
            status: rec.state.status,
            pid: rec.state.pid,
            host_net: rec.host_config.network_mode.as_deref() == Some("host"),
            cgroup: super::control::cgroup_path(rec)
                .trim_start_matches('/')
                .to_owned(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

/// Reads sysfs and procfs files only: quick enough to do on the runtime's thread.
fn take_sample(rec: &Target, host_mem: u64) -> Sample {
    let root = Path::new("/sys/fs/cgroup");
    let cg = if unified() {
        read_v2(&root.join(&rec.cgroup))
    } else {
        let dir = |ctrl: &str| root.join(ctrl).join(&rec.cgroup);
        read_v1(&V1Dirs {
            cpuacct: dir("cpuacct"),
            cpu: dir("cpu"),
            memory: dir("memory"),
            pids: dir("pids"),
            blkio: dir("blkio"),
        })
    };
    let (system, cpus) = system_cpu(&read(Path::new("/proc/stat")).unwrap_or_default());
    let limit = match cg.mem_limit {
        Some(l) if host_mem == 0 || l < host_mem => l,
        _ => host_mem,
    };
    let networks = (!rec.host_net && rec.pid > 0)
        .then(|| {
            parse_net_dev(
                &read(Path::new(&format!("/proc/{}/net/dev", rec.pid))).unwrap_or_default(),
            )
        })
        .filter(|n| !n.is_empty());
    Sample {
        read: super::now_rfc3339(),
        cpu: cpu_stats(&cg, system, cpus),
        pids: PidsOut {
            current: Some(cg.pids_current),
            limit: cg.pids_limit,
        },
        blkio: blkio_out(&cg.blkio),
        mem: MemOut {
            usage: Some(cg.mem_usage),
            max_usage: cg.mem_max_usage,
            stats: Some(cg.mem_stats.clone()),
            failcnt: Some(cg.mem_failcnt).filter(|f| *f > 0),
            limit: Some(limit),
        },
        networks,
    }
}

fn to_json(out: &StatsOut) -> String {
    serde_json::to_string(out).expect("stats encode")
}

/// The sample Docker sends for a container that is not running.
fn empty_stats(rec: &Target) -> String {
    to_json(&StatsOut {
        read: ZERO_TIME.into(),
        preread: ZERO_TIME.into(),
        pids_stats: PidsOut::default(),
        blkio_stats: BlkioOut::default(),
        num_procs: 0,
        storage_stats: Empty {},
        cpu_stats: CpuStats::default(),
        precpu_stats: CpuStats::default(),
        memory_stats: MemOut::default(),
        name: format!("/{}", rec.name),
        id: rec.id.clone(),
        networks: None,
    })
}

fn compose(rec: &Target, cur: &Sample, pre: Option<&Sample>) -> String {
    to_json(&StatsOut {
        read: cur.read.clone(),
        preread: pre.map_or_else(|| ZERO_TIME.to_owned(), |p| p.read.clone()),
        pids_stats: cur.pids.clone(),
        blkio_stats: cur.blkio.clone(),
        num_procs: 0,
        storage_stats: Empty {},
        cpu_stats: cur.cpu.clone(),
        precpu_stats: pre.map(|p| p.cpu.clone()).unwrap_or_default(),
        memory_stats: cur.mem.clone(),
        name: format!("/{}", rec.name),
        id: rec.id.clone(),
        networks: cur.networks.clone(),
    })
}

/// The stats service: samples and the last one per container.
pub struct StatsService {
    pub containers: Arc<Containers>,
    last: Mutex<HashMap<String, (Instant, Sample)>>,
    host_mem: u64,
}

impl StatsService {
    pub fn new(containers: Arc<Containers>) -> Arc<Self> {
        Arc::new(Self {
            containers,
            last: Mutex::new(HashMap::new()),
            host_mem: host_memory(),
        })
    }

    fn sample(&self, rec: &Target) -> Sample {
        take_sample(rec, self.host_mem)
    }

    fn remember(&self, id: &str, s: &Sample) {
        let mut last = self.last.lock().expect("stats lock");
        // Forget containers that are gone.
        if last.len() > 64 {
            last.retain(|k, _| self.containers.get(k).is_ok());
        }
        last.insert(id.to_owned(), (Instant::now(), s.clone()));
    }

    fn recent(&self, id: &str) -> Option<Sample> {
        let last = self.last.lock().expect("stats lock");
        last.get(id)
            .filter(|(t, _)| {
                t.elapsed() <= PRECPU_MAX_AGE && t.elapsed() >= Duration::from_millis(1)
            })
            .map(|(_, s)| s.clone())
    }

    /// One sample with Docker's shape (empty for a container that is not running).
    pub async fn one(&self, key: &str, one_shot: bool) -> ApiResult<String> {
        let c = self.containers.get(key)?;
        let rec = Target::of(&c.rec.lock().expect("record lock"));
        if !rec.running() {
            return Ok(empty_stats(&rec));
        }
        if one_shot {
            let cur = self.sample(&rec);
            self.remember(&rec.id, &cur);
            return Ok(compose(&rec, &cur, None));
        }
        let pre = match self.recent(&rec.id) {
            Some(p) => p,
            None => {
                let p = self.sample(&rec);
                tokio::time::sleep(COLD_DELTA).await;
                p
            }
        };
        let cur = self.sample(&rec);
        self.remember(&rec.id, &cur);
        Ok(compose(&rec, &cur, Some(&pre)))
    }

    /// A sample now and every second after, until the container is removed.
    pub fn stream(self: &Arc<Self>, key: &str) -> ApiResult<BoxStream<String>> {
        let c = self.containers.get(key)?;
        let this = self.clone();
        let pre = self.recent(&c.id);
        let s = futures_util::stream::unfold(
            (this, c, pre, true),
            |(this, c, pre, first)| async move {
                if !first {
                    tokio::time::sleep(STREAM_INTERVAL).await;
                }
                if c.exits.borrow().removed {
                    return None;
                }
                let rec = Target::of(&c.rec.lock().expect("record lock"));
                if !rec.running() {
                    return Some((empty_stats(&rec), (this, c, None, false)));
                }
                let cur = this.sample(&rec);
                this.remember(&rec.id, &cur);
                let v = compose(&rec, &cur, pre.as_ref());
                Some((v, (this, c, Some(cur), false)))
            },
        );
        Ok(Box::pin(s))
    }
}

/// The API face of the stats service and of `update`.
pub struct StatsApi(pub Arc<StatsService>);

impl StatsApi {
    pub fn new(containers: Arc<Containers>) -> Self {
        Self(StatsService::new(containers))
    }
}

#[async_trait::async_trait]
impl berth_api::StatsBackend for StatsApi {
    async fn stats(&self, id: &str, stream: bool, one_shot: bool) -> ApiResult<BoxStream<String>> {
        if stream {
            return self.0.stream(id);
        }
        let v = self.0.one(id, one_shot).await?;
        Ok(Box::pin(futures_util::stream::once(async move { v })))
    }
    async fn update(
        &self,
        id: &str,
        body: berth_api::models::ContainerUpdateBody,
        restart: Option<(String, i64)>,
    ) -> ApiResult<berth_api::models::ContainerUpdateResponse> {
        self.0.containers.update_container(id, body, restart).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn docker_field_order() {
        let rec_json = r#"{"id":"c1","name":"x","created":"","image":"","image_id":"","path":"","args":[],"config":{},"host_config":{},"state":{"status":"exited","pid":0,"exit_code":0,"error":"","oom_killed":false,"started_at":"","finished_at":""},"restart_count":0}"#;
        let rec: Record = serde_json::from_str(rec_json).unwrap();
        // dockerd 20.10's answer for a container that is not running, byte for byte.
        assert_eq!(
            empty_stats(&Target::of(&rec)),
            r#"{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},"blkio_stats":{"io_service_bytes_recursive":null,"io_serviced_recursive":null,"io_queue_recursive":null,"io_service_time_recursive":null,"io_wait_time_recursive":null,"io_merged_recursive":null,"io_time_recursive":null,"sectors_recursive":null},"num_procs":0,"storage_stats":{},"cpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},"memory_stats":{},"name":"/x","id":"c1"}"#
        );
    }

    fn write(dir: &Path, name: &str, content: &str) {
        std::fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn reads_v2_fixture() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(p, "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n");
        write(p, "memory.current", "4194304\n");
        write(p, "memory.max", "max\n");
        write(
            p,
            "memory.stat",
            "anon 1000\nfile 2000\ninactive_file 500\n",
        );
        write(
            p,
            "memory.events",
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        );
        write(p, "pids.current", "3\n");
        write(p, "pids.max", "100\n");
        write(
            p,
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let s = read_v2(p);
        assert_eq!(s.cpu_total, 2_500_000);
        assert_eq!((s.cpu_user, s.cpu_kernel), (2_000_000, 500_000));
        assert_eq!(
            (s.periods, s.throttled_periods, s.throttled_time),
            (7, 2, 30_000)
        );
        assert_eq!(s.percpu, None);
        assert_eq!(s.mem_usage, 4194304);
        assert_eq!(s.mem_limit, None);
        assert_eq!(s.mem_stats["inactive_file"], 500);
        assert_eq!((s.pids_current, s.pids_limit), (3, Some(100)));
        let b = serde_json::to_value(blkio_out(&s.blkio)).unwrap();
        assert_eq!(
            b["io_service_bytes_recursive"],
            json!([{"major": 8, "minor": 0, "op": "read", "value": 4096}, {"major": 8, "minor": 0, "op": "write", "value": 8192}])
        );
        assert_eq!(b["io_serviced_recursive"][1]["value"], 2);
        assert!(b["sectors_recursive"].is_null());
        write(p, "memory.max", "104857600\n");
        write(p, "pids.max", "max\n");
        let s = read_v2(p);
        assert_eq!((s.mem_limit, s.pids_limit), (Some(104857600), None));
    }

    #[test]
    fn reads_v1_fixture() {
        let d = tempfile::tempdir().unwrap();
        let mk = |n: &str| {
            let p = d.path().join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let dirs = V1Dirs {
            cpuacct: mk("cpuacct"),
            cpu: mk("cpu"),
            memory: mk("memory"),
            pids: mk("pids"),
            blkio: mk("blkio"),
        };
        write(&dirs.cpuacct, "cpuacct.usage", "21389291\n");
        write(&dirs.cpuacct, "cpuacct.usage_percpu", "8187846 13201445 \n");
        write(&dirs.cpuacct, "cpuacct.stat", "user 1\nsystem 2\n");
        write(
            &dirs.cpu,
            "cpu.stat",
            "nr_periods 2\nnr_throttled 1\nthrottled_time 5\n",
        );
        write(&dirs.memory, "memory.usage_in_bytes", "327680\n");
        write(&dirs.memory, "memory.max_usage_in_bytes", "4059136\n");
        write(
            &dirs.memory,
            "memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(&dirs.memory, "memory.failcnt", "0\n");
        write(
            &dirs.memory,
            "memory.stat",
            "cache 0\nrss 49152\ntotal_inactive_file 0\n",
        );
        write(&dirs.pids, "pids.current", "1\n");
        write(&dirs.pids, "pids.max", "max\n");
        write(&dirs.blkio, "blkio.io_service_bytes_recursive", "Total 0\n");
        write(&dirs.blkio, "blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Async 4608\n8:0 Total 4608\nTotal 4608\n");
        let s = read_v1(&dirs);
        assert_eq!(s.cpu_total, 21389291);
        assert_eq!(s.percpu, Some(vec![8187846, 13201445]));
        let tick = 1_000_000_000 / clock_ticks();
        assert_eq!((s.cpu_user, s.cpu_kernel), (tick, 2 * tick));
        assert_eq!(
            (s.periods, s.throttled_periods, s.throttled_time),
            (2, 1, 5)
        );
        assert_eq!(
            (s.mem_usage, s.mem_max_usage, s.mem_limit),
            (327680, Some(4059136), None)
        );
        assert_eq!((s.pids_current, s.pids_limit), (1, None));
        let b = serde_json::to_value(blkio_out(&s.blkio)).unwrap();
        assert_eq!(b["io_service_bytes_recursive"].as_array().unwrap().len(), 5);
        assert_eq!(b["io_service_bytes_recursive"][0]["op"], "Read");
        assert_eq!(b["io_service_bytes_recursive"][0]["value"], 4096);
        assert_eq!(b["io_queue_recursive"], json!([]));
    }

    #[test]
    fn net_dev_and_proc_stat() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0\n";
        let n = parse_net_dev(dev);
        assert_eq!(n.len(), 1);
        assert_eq!(n["eth0"].rx_bytes, 1500);
        assert_eq!(n["eth0"].tx_dropped, 4);
        let (total, cpus) = system_cpu("cpu  10 0 10 80 0 0 0 5 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1\n");
        assert_eq!(total, 100 * (1_000_000_000 / clock_ticks()));
        assert_eq!(cpus, 2);
    }
}
