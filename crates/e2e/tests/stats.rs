//! `stats` and `update`: docker's stats table with real numbers (CPU of a busy container,
//! memory limit, PIDs, network bytes through a veth the test plugs into the container),
//! the stats JSON shape (one sample, one-shot, a stream, a stopped container), `update`
//! of memory/cpus/shares/cpuset/pids on a running container (cgroup files on the host and
//! HostConfig), its errors (removed container, conflicts) leaving the cgroup untouched,
//! and the `exec_die` and `oom` events.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use berth_e2e::*;
use serde_json::Value;

fn stats_json(d: &Daemon, c: &str, query: &str) -> Value {
    let r = d
        .http("GET", &format!("/containers/{c}/stats?{query}"), &[], None)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn cg(d: &Daemon, ctrl: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(d.cgroup_dir(ctrl, id).join(file))
        .unwrap()
        .trim()
        .to_owned()
}

/// Seconds since midnight of an RFC 3339 UTC time (`…T20:01:08.658597942Z`).
fn secs_of_day(v: &Value) -> f64 {
    let t = v.as_str().unwrap();
    let hms = t.split_once('T').unwrap().1.trim_end_matches('Z');
    let f: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    f[0] * 3600.0 + f[1] * 60.0 + f[2]
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn stats_table_and_json() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]))
    .ok();
    d.docker(&run_args(&[
        "-d", "--name", "idle", "busybox", "sleep", "300",
    ]))
    .ok();
    d.docker(&["create", "--name", "stopped", "busybox", "true"])
        .ok();
    std::thread::sleep(Duration::from_millis(1500));

    let out = d.docker(&["stats", "--no-stream"]).ok();
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    assert_eq!(lines.count(), 2, "{out}");

    let f = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.PIDs}}";
    let row = |c: &str| {
        let o = d.docker(&["stats", "--no-stream", "--format", f, c]).ok();
        o.split('|').map(str::to_owned).collect::<Vec<_>>()
    };
    let busy = row("busy");
    assert_eq!(busy[0], "busy");
    let cpu: f64 = busy[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0, "{busy:?}");
    let (used, limit) = busy[2].split_once(" / ").unwrap();
    assert_eq!(limit, "64MiB", "{busy:?}");
    assert!(used.ends_with("KiB") || used.ends_with("MiB"), "{busy:?}");
    assert_ne!(busy[3], "0.00%");
    assert_eq!(busy[4], "0B / 0B");
    assert_eq!(busy[5], "1");
    let idle = row("idle");
    let cpu: f64 = idle[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu < 5.0, "{idle:?}");
    assert_eq!(idle[5], "1");
    // Without a limit the host's memory is the limit.
    assert!(idle[2].ends_with("GiB"), "{idle:?}");
    let stopped = row("stopped");
    assert_eq!(stopped[1..], ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0"]);

    // The JSON: Docker's fields.
    let v = stats_json(&d, "busy", "stream=false");
    assert_eq!(
        keys(&v),
        [
            "blkio_stats",
            "cpu_stats",
            "id",
            "memory_stats",
            "name",
            "num_procs",
            "pids_stats",
            "precpu_stats",
            "preread",
            "read",
            "storage_stats"
        ]
    );
    assert_eq!(v["name"], "/busy");
    assert_eq!(v["memory_stats"]["limit"], 64 * 1024 * 1024);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(v["memory_stats"]["stats"].is_object());
    assert_eq!(v["pids_stats"]["current"], 1);
    let cpu = &v["cpu_stats"];
    assert!(cpu["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(cpu["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(cpu["online_cpus"].as_u64().unwrap() >= 1);
    assert!(cpu["throttling_data"].is_object());
    assert!(
        v["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            <= cpu["cpu_usage"]["total_usage"].as_u64().unwrap()
    );
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");
    for k in ["io_service_bytes_recursive", "io_serviced_recursive"] {
        assert!(v["blkio_stats"][k].is_array(), "{}", v["blkio_stats"]);
    }
    // One-shot: no previous sample.
    let v = stats_json(&d, "idle", "stream=false&one-shot=true");
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    // A container that is not running: an empty sample.
    let v = stats_json(&d, "stopped", "stream=false");
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["memory_stats"], serde_json::json!({}));
    assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);

    // Errors.
    let o = d.docker(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    let r = d
        .http(
            "GET",
            "/containers/busy/stats?stream=true&one-shot=true",
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());

    // berth's CLI: the same table.
    if !is_reference() {
        let o = d
            .berth(&["stats", "--no-stream", "--format", f, "busy", "stopped"])
            .ok();
        let rows: Vec<&str> = o.lines().collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].starts_with("busy|") && rows[0].ends_with("|0B / 0B|1"),
            "{o}"
        );
        assert_eq!(rows[1], "stopped|0.00%|0B / 0B|0.00%|0B / 0B|0");
        let t = d.berth(&["stats", "--no-stream"]).ok();
        assert!(t.starts_with("CONTAINER ID   NAME      CPU %"), "{t}");
        let e = d.berth(&["stats", "--no-stream", "nosuch"]);
        assert_eq!(e.code, 1);
        assert!(e.stderr.contains("No such container: nosuch"), "{e:?}");
    }
}

#[test]
fn stats_stream() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]))
    .ok();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /containers/st/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    // Headers, then chunked JSON lines: pick the lines that are JSON objects.
    let mut samples = Vec::new();
    let mut line = String::new();
    while samples.len() < 3 {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // (Chunk sizes are hex numbers, some of them valid JSON numbers.)
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
            samples.push(v);
        }
    }
    assert_eq!(samples.len(), 3);
    // Each sample's precpu is the one before.
    for w in samples.windows(2) {
        assert_eq!(w[1]["precpu_stats"], w[0]["cpu_stats"]);
        assert_eq!(w[1]["preread"], w[0]["read"]);
        let gap = secs_of_day(&w[1]["read"]) - secs_of_day(&w[0]["read"]);
        assert!((0.8..=3.0).contains(&gap), "{gap}");
    }
}

/// A veth pair with one end in the container's network namespace: the bytes sent over it
/// show in `networks` and in NET I/O (berth reads the namespace's counters; dockerd only
/// reports the interfaces it created itself).
#[test]
fn network_bytes_from_the_container_namespace() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d", "--name", "net", "busybox", "sleep", "300",
        ]))
        .ok();
    let pid = d.container_pid(&id).to_string();
    // Names and a /30 of TEST-NET-2 (198.51.100.0/24, no route here) unique to this test.
    let host_if = format!("bs{}", &id[..8]);
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", "eth7",
    ]);
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _cleanup = Cleanup(host_if.clone());
    ip(&["link", "set", "eth7", "netns", &pid]);
    ip(&["addr", "add", "198.51.100.229/30", "dev", &host_if]);
    ip(&["link", "set", &host_if, "up"]);
    let nsenter = |args: &[&str]| {
        let mut a = vec!["-t", pid.as_str(), "-n", "ip"];
        a.extend_from_slice(args);
        let o = Command::new("nsenter").args(&a).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    nsenter(&["addr", "add", "198.51.100.230/30", "dev", "eth7"]);
    nsenter(&["link", "set", "eth7", "up"]);
    let ping = Command::new("busybox")
        .args(["ping", "-c", "3", "-W", "2", "-s", "1000", "198.51.100.230"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );

    if is_reference() {
        // dockerd counts only the interfaces of its own network sandbox (none here).
        return;
    }
    let v = stats_json(&d, "net", "stream=false");
    let eth = &v["networks"]["eth7"];
    assert!(eth["rx_bytes"].as_u64().unwrap() >= 3000, "{v}");
    assert!(eth["tx_bytes"].as_u64().unwrap() >= 3000, "{v}");
    assert!(eth["rx_packets"].as_u64().unwrap() >= 3, "{v}");
    assert!(v["networks"].get("lo").is_none());
    let o = d
        .docker(&["stats", "--no-stream", "--format", "{{.NetIO}}", "net"])
        .ok();
    let (rx, tx) = o.split_once(" / ").unwrap();
    assert!(rx.ends_with("kB") && tx.ends_with("kB"), "{o}");
}

#[test]
fn update_resources_of_a_running_container() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d", "--name", "u1", "busybox", "sleep", "300",
        ]))
        .ok();
    let o = d.docker(&[
        "update",
        "-m",
        "300m",
        "--memory-swap",
        "600m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--cpuset-cpus",
        "0",
        "u1",
    ]);
    assert_eq!(o.ok(), "u1");
    let v2 = d.cgroup_dir("memory", &id).join("memory.max").exists();
    if v2 {
        assert_eq!(
            cg(&d, "memory", &id, "memory.max"),
            (300u64 << 20).to_string()
        );
        assert_eq!(cg(&d, "cpu", &id, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(
            cg(&d, "memory", &id, "memory.limit_in_bytes"),
            (300u64 << 20).to_string()
        );
        assert_eq!(
            cg(&d, "memory", &id, "memory.memsw.limit_in_bytes"),
            (600u64 << 20).to_string()
        );
        assert_eq!(cg(&d, "cpu", &id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg(&d, "cpu", &id, "cpu.cfs_period_us"), "100000");
        assert_eq!(cg(&d, "cpu", &id, "cpu.shares"), "512");
    }
    assert_eq!(cg(&d, "pids", &id, "pids.max"), "50");
    assert_eq!(cg(&d, "cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(
        d.inspect(
            "u1",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}}"
        ),
        format!("{} {} 500000000 512 50 0", 300u64 << 20, 600u64 << 20)
    );
    // The new limit is what stats shows.
    let o = d
        .docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "u1"])
        .ok();
    assert!(o.ends_with(" / 300MiB"), "{o}");

    // Smaller memory, unlimited pids.
    d.docker(&["update", "-m", "100m", "--pids-limit", "-1", "u1"])
        .ok();
    let mem_file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(cg(&d, "memory", &id, mem_file), (100u64 << 20).to_string());
    assert_eq!(cg(&d, "pids", &id, "pids.max"), "max");

    // Refused updates leave the cgroup and the config as they were.
    let e = d.docker(&["update", "--cpu-quota", "20000", "u1"]).err();
    assert!(
        e.contains(&format!("Cannot update container {id}: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")),
        "{e}"
    );
    let e = d.docker(&["update", "-m", "1k", "u1"]).err();
    assert!(e.contains("Minimum memory limit allowed is 6MB"), "{e}");
    let e = d.docker(&["update", "-m", "700m", "u1"]).err();
    assert!(
        e.contains("Memory limit should be smaller than already set memoryswap limit"),
        "{e}"
    );
    assert_eq!(cg(&d, "memory", &id, mem_file), (100u64 << 20).to_string());
    if !v2 {
        assert_eq!(cg(&d, "cpu", &id, "cpu.cfs_quota_us"), "50000");
    }
    assert_eq!(
        d.inspect("u1", "{{.HostConfig.Memory}}"),
        (100u64 << 20).to_string()
    );
    let o = d.docker(&["update", "u1"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("you must provide one or more flags when using this command"),
        "{o:?}"
    );

    // A removed container.
    d.docker(&["rm", "-f", "u1"]).ok();
    let e = d.docker(&["update", "-m", "100m", "u1"]).err();
    assert!(e.contains("No such container: u1"), "{e}");

    // A stopped container: the config changes, applied at the next start.
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--name",
            "u2",
            "busybox",
            "sleep",
            "300",
        ])
        .ok();
    d.docker(&["update", "--pids-limit", "20", "--cpu-shares", "256", "u2"])
        .ok();
    d.docker(&["start", "u2"]).ok();
    assert_eq!(cg(&d, "pids", &id, "pids.max"), "20");
    if !v2 {
        assert_eq!(cg(&d, "cpu", &id, "cpu.shares"), "256");
    }

    // berth's CLI.
    if !is_reference() {
        assert_eq!(d.berth(&["update", "--pids-limit", "30", "u2"]).ok(), "u2");
        assert_eq!(cg(&d, "pids", &id, "pids.max"), "30");
        let e = d.berth(&["update", "-m", "10m", "nosuch"]);
        assert_eq!(e.code, 1);
        assert!(e.stderr.contains("No such container: nosuch"), "{e:?}");
        let e = d.berth(&["update", "u2"]);
        assert_eq!(e.code, 1);
        assert!(
            e.stderr.contains("you must provide one or more flags"),
            "{e:?}"
        );
    }
}

#[test]
fn exec_die_and_oom_events() {
    let Some(d) = setup() else { return };
    let since = now_secs() - 1;
    d.docker(&run_args(&[
        "-d", "--name", "ex", "busybox", "sleep", "300",
    ]))
    .ok();
    let o = d.docker(&["exec", "ex", "sh", "-c", "exit 3"]);
    assert_eq!(o.code, 3);
    d.docker(&["exec", "-d", "ex", "true"]).ok();
    let o = d.docker(&run_args(&[
        "--name",
        "oom",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=a; while :; do x=$x$x; done",
    ]));
    assert_eq!(o.code, 137, "{o:?}");
    assert_eq!(d.inspect("oom", "{{.State.OOMKilled}}"), "true");
    std::thread::sleep(Duration::from_millis(500));
    let until = (now_secs() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let ev = |name: &str| {
        d.docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until,
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}}|{{index .Actor.Attributes \"exitCode\"}}",
        ])
        .ok()
    };
    let ex = ev("ex");
    let dies: Vec<&str> = ex.lines().filter(|l| l.starts_with("exec_die")).collect();
    assert_eq!(dies, ["exec_die|3", "exec_die|0"], "{ex}");
    let oom = ev("oom");
    let acts: Vec<&str> = oom.lines().collect();
    let i = acts.iter().position(|a| *a == "oom|").expect(&oom);
    assert_eq!(acts.get(i + 1), Some(&"die|137"), "{oom}");
}
