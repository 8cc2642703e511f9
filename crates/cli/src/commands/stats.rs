//! `berth stats` (docker's table, computed as docker/cli does from the daemon's stats
//! JSON) and `berth update`.
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use gotmpl::Value as T;
use serde_json::{json, Value};

use super::{status, Failures};
use crate::client::Client;
use crate::format::json::{ordered_map, HTML_ESCAPE_KEY};
use crate::format::units::{bytes_size, human_size_prec, truncate_id};
use crate::format::Formatter;

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn u(v: &Value, p: &str) -> f64 {
    v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0)
}

/// docker/cli `calculateCPUPercentUnix`.
pub fn cpu_percent(v: &Value) -> f64 {
    let cpu_delta =
        u(v, "/cpu_stats/cpu_usage/total_usage") - u(v, "/precpu_stats/cpu_usage/total_usage");
    let sys_delta = u(v, "/cpu_stats/system_cpu_usage") - u(v, "/precpu_stats/system_cpu_usage");
    let mut cpus = u(v, "/cpu_stats/online_cpus");
    if cpus == 0.0 {
        cpus = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0, |a| a.len()) as f64;
    }
    if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// docker/cli `calculateMemUsageUnixNoCache`.
pub fn mem_usage(v: &Value) -> f64 {
    let usage = u(v, "/memory_stats/usage");
    let stats = v.pointer("/memory_stats/stats");
    if let Some(x) = stats
        .and_then(|s| s.get("total_inactive_file"))
        .and_then(Value::as_f64)
    {
        if x < usage {
            return usage - x;
        }
    }
    let x = stats
        .and_then(|s| s.get("inactive_file"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    if x < usage {
        usage - x
    } else {
        usage
    }
}

fn blkio(v: &Value) -> (f64, f64) {
    let (mut r, mut w) = (0.0, 0.0);
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let val = e.get("value").and_then(Value::as_f64).unwrap_or(0.0);
        match e
            .get("op")
            .and_then(Value::as_str)
            .and_then(|o| o.chars().next())
        {
            Some('r' | 'R') => r += val,
            Some('w' | 'W') => w += val,
            _ => {}
        }
    }
    (r, w)
}

fn net(v: &Value) -> (f64, f64) {
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(n) = v.get("networks").and_then(Value::as_object) {
        for i in n.values() {
            rx += i.get("rx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
            tx += i.get("tx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
        }
    }
    (rx, tx)
}

/// One row of docker's stats table for a sample; `container` is what the user named.
pub fn row(container: &str, v: &Value, trunc: bool) -> T {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/');
    let mem = mem_usage(v);
    let limit = u(v, "/memory_stats/limit");
    let mem_pct = if limit != 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = net(v);
    let (br, bw) = blkio(v);
    let pids = u(v, "/pids_stats/current") as u64;
    let st = |v: String| T::String(v.into());
    // In key order: `{{json .}}` prints them so (docker marshals a map).
    let entries: Vec<(Arc<str>, T)> = vec![
        (
            "BlockIO".into(),
            st(format!(
                "{} / {}",
                human_size_prec(br, 3),
                human_size_prec(bw, 3)
            )),
        ),
        ("CPUPerc".into(), st(format!("{:.2}%", cpu_percent(v)))),
        ("Container".into(), st(container.to_owned())),
        (
            "ID".into(),
            st(if trunc {
                truncate_id(id)
            } else {
                id.to_owned()
            }),
        ),
        ("MemPerc".into(), st(format!("{mem_pct:.2}%"))),
        (
            "MemUsage".into(),
            st(format!("{} / {}", bytes_size(mem), bytes_size(limit))),
        ),
        ("Name".into(), st(name.to_owned())),
        (
            "NetIO".into(),
            st(format!(
                "{} / {}",
                human_size_prec(rx, 3),
                human_size_prec(tx, 3)
            )),
        ),
        ("PIDs".into(), st(pids.to_string())),
        (HTML_ESCAPE_KEY.into(), T::Bool(true)),
    ];
    ordered_map(entries)
}

async fn sample(client: &Client, c: &str) -> Result<Value> {
    client
        .get_json(
            &format!("/containers/{c}/stats"),
            &[("stream", "0".to_string())],
        )
        .await
}

pub async fn stats(client: Client, a: StatsArgs) -> Result<i32> {
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" => DEFAULT_TABLE.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let fmt = Formatter::new(&format)?;
    loop {
        // (shown as, asked for): docker shows the short ID; the full one is a direct lookup.
        let names: Vec<(String, String)> = if a.containers.is_empty() {
            let mut q = Vec::new();
            if a.all {
                q.push(("all", "1".to_string()));
            }
            let list: Vec<Value> = client.get_json("/containers/json", &q).await?;
            list.iter()
                .filter_map(|c| c.get("Id").and_then(Value::as_str))
                .map(|id| (id[..12.min(id.len())].to_owned(), id.to_owned()))
                .collect()
        } else {
            a.containers
                .iter()
                .map(|c| (c.clone(), c.clone()))
                .collect()
        };
        let samples =
            futures_util::future::join_all(names.iter().map(|(_, n)| sample(&client, n))).await;
        let mut rows = Vec::new();
        let mut failures = Failures::default();
        for ((n, _), s) in names.iter().zip(samples) {
            match s {
                Ok(v) => rows.push(row(n, &v, !a.no_trunc)),
                Err(e) => failures.push(&e),
            }
        }
        if !a.containers.is_empty() && rows.is_empty() {
            return failures.finish();
        }
        let out = fmt.render(&rows, HEADERS)?;
        if a.no_stream {
            print!("{out}");
            return failures.finish();
        }
        // As docker: clear the screen and redraw every second.
        print!("\x1b[2J\x1b[H{out}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

fn flag_err(e: impl std::fmt::Display) -> anyhow::Error {
    status(125, Some(format!("{e}\nSee 'berth update --help'.")))
}

/// The `POST /containers/{id}/update` body for these flags (docker/cli's `runUpdate`).
pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut b = serde_json::Map::new();
    let mut any = false;
    let mut set = |k: &str, v: Value| {
        b.insert(k.into(), v);
    };
    if let Some(v) = a.blkio_weight {
        set("BlkioWeight", json!(v));
        any = true;
    }
    for (k, v) in [
        ("CpuPeriod", a.cpu_period),
        ("CpuQuota", a.cpu_quota),
        ("CpuRealtimePeriod", a.cpu_rt_period),
        ("CpuRealtimeRuntime", a.cpu_rt_runtime),
        ("CpuShares", a.cpu_shares),
    ] {
        if let Some(v) = v {
            set(k, json!(v));
            any = true;
        }
    }
    if let Some(c) = &a.cpus {
        let n: f64 = c.parse().map_err(|_| {
            flag_err(format!(
                "invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number"
            ))
        })?;
        set("NanoCpus", json!((n * 1e9).round() as i64));
        any = true;
    }
    if let Some(c) = &a.cpuset_cpus {
        set("CpusetCpus", json!(c));
        any = true;
    }
    if let Some(c) = &a.cpuset_mems {
        set("CpusetMems", json!(c));
        any = true;
    }
    let size = |s: &str, flag: &str| {
        super::run::ram_in_bytes(s)
            .map_err(|e| flag_err(format!("invalid argument \"{s}\" for \"{flag}\" flag: {e}")))
    };
    if let Some(m) = &a.memory {
        set("Memory", json!(size(m, "-m, --memory")?));
        any = true;
    }
    if let Some(m) = &a.memory_reservation {
        set("MemoryReservation", json!(size(m, "--memory-reservation")?));
        any = true;
    }
    if let Some(m) = &a.memory_swap {
        let v = if m == "-1" {
            -1
        } else {
            size(m, "--memory-swap")?
        };
        set("MemorySwap", json!(v));
        any = true;
    }
    if let Some(p) = a.pids_limit {
        set("PidsLimit", json!(p));
        any = true;
    }
    if let Some(r) = &a.restart {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (r.as_str(), None),
        };
        let max: i64 = match count {
            Some(c) => c.parse().map_err(|_| {
                status(
                    1,
                    Some(
                        "invalid restart policy format: maximum retry count must be an integer"
                            .into(),
                    ),
                )
            })?,
            None => 0,
        };
        set(
            "RestartPolicy",
            json!({"Name": name, "MaximumRetryCount": max}),
        );
        any = true;
    }
    if !any {
        return Err(status(
            1,
            Some("you must provide one or more flags when using this command".into()),
        ));
    }
    Ok(Value::Object(b))
}

pub async fn update(client: Client, a: UpdateArgs) -> Result<i32> {
    let body = update_body(&a)?;
    let mut failures = Failures::default();
    for c in &a.containers {
        match client
            .post_json(&format!("/containers/{c}/update"), &[], &body)
            .await
        {
            Ok(resp) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&resp) {
                    for w in v
                        .get("Warnings")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(w) = w.as_str() {
                            eprintln!("{w}");
                        }
                    }
                }
                println!("{c}");
            }
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_like_docker_cli() {
        let v = json!({
            "id": "412f1a26c294983d5cc34b60f60dd1f8b77a7f728fde2ae7ca56067a7e189a20",
            "name": "/u1",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2_097_152u64, "limit": 4_194_304u64, "stats": {"total_inactive_file": 1_048_576u64}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 1500},
                {"major": 8, "minor": 0, "op": "write", "value": 2000},
                {"major": 8, "minor": 0, "op": "Total", "value": 3500}]},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 0}, "eth1": {"rx_bytes": 234, "tx_bytes": 5}},
            "pids_stats": {"current": 3}
        });
        let f = Formatter::new("{{.ID}}|{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}").unwrap();
        let out = f.render(&[row("u1", &v, true)], HEADERS).unwrap();
        assert_eq!(
            out,
            "412f1a26c294|u1|40.00%|1MiB / 4MiB|25.00%|1.23kB / 5B|1.5kB / 2kB|3\n"
        );
        // A stopped container's empty sample.
        let out = f
            .render(
                &[row(
                    "x",
                    &json!({"id": "abc", "name": "/x", "memory_stats": {}}),
                    true,
                )],
                HEADERS,
            )
            .unwrap();
        assert_eq!(out, "abc|x|0.00%|0B / 0B|0.00%|0B / 0B|0B / 0B|0\n");
    }
}
