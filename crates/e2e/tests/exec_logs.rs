//! `docker logs`, `docker exec` and `docker attach` through the real docker CLI.
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use berth_e2e::*;

/// Reads lines of a child's stdout on a thread, so tests can wait with a timeout.
fn line_reader(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn logs_stdout_stderr_tail_and_timestamps() {
    let Some(d) = setup() else { return };
    let o = d.docker(&run_args(&[
        "--name",
        "l1",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; echo four",
    ]));
    assert_eq!(o.code, 0, "{o:?}");
    let o = d.docker(&["logs", "l1"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "one\nthree\nfour\n", "two\n"),
        "{o:?}"
    );
    // --tail N: the last N lines of both streams, in the order they were written.
    assert_eq!(d.docker(&["logs", "--tail", "1", "l1"]).stdout, "four\n");
    assert_eq!(
        d.docker(&["logs", "--tail", "2", "l1"]).stdout,
        "three\nfour\n"
    );
    let o = d.docker(&["logs", "--tail", "3", "l1"]);
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("three\nfour\n", "two\n")
    );
    assert_eq!(d.docker(&["logs", "--tail", "0", "l1"]).stdout, "");
    assert_eq!(
        d.docker(&["logs", "--tail", "all", "l1"]).stdout,
        "one\nthree\nfour\n"
    );
    // A last line without a newline comes back as written.
    d.docker(&run_args(&[
        "--name",
        "l2",
        "busybox",
        "printf",
        "a\\nno-newline",
    ]))
    .ok();
    assert_eq!(d.docker(&["logs", "l2"]).stdout, "a\nno-newline");

    // -t: RFC 3339 nanosecond timestamps, one space, then the line.
    let o = d.docker(&["logs", "-t", "l1"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{o:?}");
    for (line, want) in lines.iter().zip(["one", "three", "four"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, want);
        assert!(
            ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        assert!(ts.contains('.'), "no fractional seconds: {ts}");
    }
    assert!(o.stderr.ends_with(" two\n"), "{o:?}");

    // The log file is Docker's json-file format under the container's directory.
    if d.kind == Kind::Berthd {
        let id = d.container_id("l1");
        let log = std::fs::read_to_string(
            d.data_root
                .join("containers")
                .join(&id)
                .join(format!("{id}-json.log")),
        )
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(first["log"], "one\n");
        assert_eq!(first["stream"], "stdout");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
    }
    // A container that never started has empty logs.
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "never",
        "busybox",
        "echo",
        "x",
    ])
    .ok();
    let o = d.docker(&["logs", "never"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "", ""),
        "{o:?}"
    );
}

#[test]
fn logs_follow_a_live_container() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "nx",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.2; done",
    ]))
    .ok();
    let mut f = d
        .docker_cmd(&["logs", "-f", "--tail", "1", "nx"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = line_reader(f.stdout.take().unwrap());
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("logs -f produced no line"),
        );
    }
    // Consecutive lines, no duplicates, no gaps.
    let nums: Vec<u32> = seen
        .iter()
        .map(|l| l.trim_start_matches("line").parse().unwrap())
        .collect();
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{seen:?}");
    }
    // Stopping the container ends the follow with exit 0.
    d.docker(&["stop", "-t", "1", "nx"]).ok();
    let st = wait_timeout(&mut f, Duration::from_secs(15))
        .expect("logs -f did not end with the container");
    assert!(st.success());

    // logs -f on an exited container prints everything and returns.
    let o = d.docker(&["logs", "-f", "nx"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("line1\nline2\n"), "{o:?}");
}

fn wait_timeout(c: &mut std::process::Child, t: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + t;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        if std::time::Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exec_env_user_workdir_and_exit_codes() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "ex",
        "-e",
        "RUNVAR=r1",
        "busybox",
        "sleep",
        "1000",
    ]))
    .ok();
    let env = d.docker(&["exec", "ex", "printenv"]).ok();
    for want in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "RUNVAR=r1",
        "HOME=/root",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in {env}");
    }
    assert!(env.lines().any(|l| l.starts_with("HOSTNAME=")), "{env}");
    assert_eq!(
        d.docker(&["exec", "-e", "FOO=bar", "ex", "printenv", "FOO"])
            .ok(),
        "bar"
    );
    assert_eq!(
        d.docker(&["exec", "-e", "RUNVAR=override", "ex", "printenv", "RUNVAR"])
            .ok(),
        "override"
    );
    assert_eq!(
        d.docker(&["exec", "-u", "nobody", "ex", "id"]).ok(),
        "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"
    );
    assert_eq!(
        d.docker(&["exec", "-u", "1000:1000", "ex", "id", "-u"])
            .ok(),
        "1000"
    );
    assert_eq!(d.docker(&["exec", "-w", "/tmp", "ex", "pwd"]).ok(), "/tmp");
    assert_eq!(d.docker(&["exec", "ex", "pwd"]).ok(), "/");

    let o = d.docker(&["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (4, "out\n", "err\n"),
        "{o:?}"
    );
    // Docker 25+ answers 127 like `run`; dockerd 20.10 126 (the message comes through the
    // exec's own output stream there).
    let o = d.docker(&["exec", "ex", "nosuchcmd"]);
    assert!(
        o.code == 127 || (d.kind == Kind::Dockerd && o.code == 126),
        "{o:?}"
    );
    assert!(
        o.stdout.contains("executable file not found in $PATH")
            || o.stderr.contains("executable file not found in $PATH"),
        "{o:?}"
    );
    let o = d.docker(&["exec", "ex", "/etc/passwd"]);
    assert_eq!(o.code, 126, "{o:?}");

    // The exec'd process shares the container's namespaces and cgroup.
    let pid = d.container_pid("ex");
    let o = d
        .docker(&[
            "exec",
            "ex",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; hostname",
        ])
        .ok();
    let hostname = d.inspect("ex", "{{.Config.Hostname}}");
    assert_eq!(o, format!("sleep 1000 {hostname}"));
    assert!(pid_alive(pid));

    // exec -i with piped stdin; exec -d returns at once.
    let o = d.docker_stdin(&["exec", "-i", "ex", "cat"], b"via exec\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "via exec\n"), "{o:?}");
    let o = d.docker_stdin(&["exec", "-i", "ex", "sh", "-c", "wc -l"], b"a\nb\nc\n");
    assert_eq!(o.ok(), "3");
    d.docker(&["exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d"])
        .ok();
    eventually("detached exec ran", Duration::from_secs(10), || {
        d.docker(&["exec", "ex", "cat", "/tmp/d"]).stdout == "detached\n"
    });
    // -t: through a pty.
    let o = d.docker(&["exec", "-t", "ex", "tty"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.starts_with("/dev/pts/") && o.stdout.ends_with("\r\n"),
        "{o:?}"
    );

    // exec in a stopped container is refused.
    d.docker(&["stop", "-t", "0", "ex"]).ok();
    let o = d.docker(&["exec", "ex", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("is not running"), "{o:?}");
}

#[test]
fn attach_to_running_container() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "at",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' TERM; while :; do echo tick; sleep 0.2; done",
    ]))
    .ok();
    let mut a = d
        .docker_cmd(&["attach", "--no-stdin", "at"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_reader(a.stdout.take().unwrap());
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10))
            .expect("attach got no output"),
        "tick"
    );
    // The attached client ends with the container's exit code.
    d.docker(&["stop", "at"]).ok();
    let st = wait_timeout(&mut a, Duration::from_secs(15))
        .expect("attach did not end with the container");
    assert_eq!(st.code(), Some(3));

    // Attach with stdin to a container started with -i.
    d.docker(&run_args(&["-d", "-i", "--name", "cat", "busybox", "cat"]))
        .ok();
    let mut a = d
        .docker_cmd(&["attach", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_reader(a.stdout.take().unwrap());
    let mut stdin = a.stdin.take().unwrap();
    // The attach may not be connected yet: keep writing until the echo comes back.
    let mut got = None;
    for _ in 0..50 {
        stdin.write_all(b"hello\n").unwrap();
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            got = Some(l);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some("hello"));
    let _ = a.kill();
    let _ = a.wait();
    assert_eq!(d.status("cat"), "running");
    d.docker(&["rm", "-f", "cat"]).ok();

    // Attaching to a stopped container is refused.
    let o = d.docker(&["attach", "at"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("You cannot attach to a stopped container, start it first"),
        "{o:?}"
    );
}
