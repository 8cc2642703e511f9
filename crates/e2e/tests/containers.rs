//! Container lifecycle through the real docker CLI: run/create/start/stop/kill/restart/
//! wait/rm/ps/inspect, as a user sees them (stdout, stderr, exit codes) and as the host
//! sees them (processes, cgroups, mounts, files).
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_e2e::*;

fn run(d: &Daemon, args: &[&str]) -> Out {
    d.docker(&run_args(args))
}

#[test]
fn run_foreground_output_and_exit_codes() {
    let Some(d) = setup() else { return };
    let o = run(&d, &["--rm", "busybox", "echo", "hello"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "hello\n", ""),
        "{o:?}"
    );

    let o = run(
        &d,
        &[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.code, 3, "{o:?}");
    assert_eq!(o.stdout, "out\n");
    assert_eq!(o.stderr, "err\n");

    // Command not found: 127; not executable: 126; both say why on stderr.
    let o = run(&d, &["--rm", "busybox", "nosuchcmd"]);
    assert_eq!(o.code, 127, "{o:?}");
    assert!(
        o.stderr.contains("executable file not found in $PATH"),
        "{o:?}"
    );
    assert!(o.stderr.contains("nosuchcmd"), "{o:?}");
    let o = run(&d, &["--rm", "busybox", "/etc/passwd"]);
    assert_eq!(o.code, 126, "{o:?}");
    assert!(o.stderr.contains("permission denied"), "{o:?}");

    // Errors before the container runs: 125.
    let o = run(&d, &["--rm", "--name", "bad name!", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("Invalid container name"), "{o:?}");
    let o = run(&d, &["--rm", "--no-such-flag", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("unknown flag: --no-such-flag"), "{o:?}");

    // --rm leaves nothing, even for failed starts.
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

#[test]
fn run_env_workdir_user_entrypoint() {
    let Some(d) = setup() else { return };
    assert_eq!(
        run(
            &d,
            &[
                "--rm",
                "-e",
                "env_name=test1234",
                "busybox",
                "printenv",
                "env_name"
            ]
        )
        .ok(),
        "test1234"
    );
    // -e NAME takes the value from the CLI's environment; unset names are dropped.
    let o = d
        .docker_cmd(&run_args(&[
            "--rm",
            "-e",
            "FROM_CLI",
            "-e",
            "NOT_SET_ANYWHERE",
            "busybox",
            "sh",
            "-c",
            "echo $FROM_CLI; printenv NOT_SET_ANYWHERE; echo rc=$?",
        ]))
        .env("FROM_CLI", "cli-value")
        .env_remove("NOT_SET_ANYWHERE")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "cli-value\nrc=1\n");

    // Docker's default environment.
    let env = run(&d, &["--rm", "busybox", "printenv"]).ok();
    assert!(
        env.lines()
            .any(|l| l == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{env}"
    );
    assert!(env.lines().any(|l| l == "HOME=/root"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("HOSTNAME=")), "{env}");

    assert_eq!(
        run(&d, &["--rm", "-w", "/tmp", "busybox", "pwd"]).ok(),
        "/tmp"
    );
    // A missing working directory is created.
    assert_eq!(
        run(
            &d,
            &[
                "--rm",
                "-w",
                "/new/work/dir",
                "busybox",
                "sh",
                "-c",
                "pwd; test -d /new/work/dir && echo isdir"
            ]
        )
        .ok(),
        "/new/work/dir\nisdir"
    );

    assert_eq!(
        run(&d, &["--rm", "busybox", "id"]).ok(),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)"
    );
    assert_eq!(
        run(&d, &["--rm", "-u", "nobody", "busybox", "id"]).ok(),
        "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"
    );
    assert_eq!(
        run(&d, &["--rm", "-u", "nobody", "busybox", "printenv", "HOME"]).ok(),
        "/home"
    );
    assert_eq!(
        run(&d, &["--rm", "-u", "1000:1000", "busybox", "id"]).ok(),
        "uid=1000 gid=1000 groups=1000"
    );
    assert_eq!(
        run(&d, &["--rm", "-u", "1000", "busybox", "id"]).ok(),
        "uid=1000 gid=0(root) groups=0(root)"
    );
    let o = run(&d, &["--rm", "-u", "nosuchuser", "busybox", "id"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr
            .contains("unable to find user nosuchuser: no matching entries in passwd file"),
        "{o:?}"
    );

    assert_eq!(
        run(
            &d,
            &["--rm", "--entrypoint", "echo", "busybox", "hi", "there"]
        )
        .ok(),
        "hi there"
    );
    // The image's CMD ["sh"] is what runs without a command.
    let o = d.docker_stdin(
        &run_args(&["--rm", "-i", "busybox"]),
        b"echo from-default-cmd\n",
    );
    assert_eq!(o.ok(), "from-default-cmd");
}

#[test]
fn run_hostname() {
    let Some(d) = setup() else { return };
    assert_eq!(
        run(&d, &["--rm", "--hostname", "myhost", "busybox", "hostname"]).ok(),
        "myhost"
    );
    assert_eq!(
        run(
            &d,
            &["--rm", "-h", "myhost", "busybox", "cat", "/etc/hostname"]
        )
        .ok(),
        "myhost"
    );
    assert_eq!(
        run(
            &d,
            &["--rm", "-h", "myhost", "busybox", "printenv", "HOSTNAME"]
        )
        .ok(),
        "myhost"
    );
    // Default hostname: the short container ID.
    let out = run(&d, &["--name", "hn", "busybox", "hostname"]).ok();
    let id = d.container_id("hn");
    assert_eq!(out, id[..12]);
    assert_eq!(d.inspect("hn", "{{.Config.Hostname}}"), id[..12]);
}

#[test]
fn run_resource_limits_visible_in_cgroups() {
    let Some(d) = setup() else { return };
    let id = run(
        &d,
        &[
            "-d",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "busybox",
            "sleep",
            "1000",
        ],
    )
    .ok();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(d.status(&id), "running");
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"
        ),
        "67108864 500000000 50"
    );

    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let read = |controller: &str, file: &str| {
        let p = d.cgroup_dir(controller, &id).join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_owned()
    };
    if v2 {
        assert_eq!(read("memory", "memory.max"), "67108864");
        assert_eq!(read("cpu", "cpu.max"), "50000 100000");
        assert_eq!(read("pids", "pids.max"), "50");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids", "pids.max"), "50");
        // The container's process is in that cgroup.
        let pid = d.container_pid(&id);
        let procs = read("memory", "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "pid {pid} not in {procs}"
        );
        // In every v1 controller, and so is a process exec'd into it. (libcgroups moves the
        // single-threaded intermediate process as its only thread: vendor/README.md.)
        let in_every_controller = |cgroups: &str| {
            let v1: Vec<&str> = cgroups
                .lines()
                .filter_map(|l| {
                    let mut it = l.splitn(3, ':');
                    let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                    (!ctrls.is_empty() && !ctrls.starts_with("name=")).then_some(path)
                })
                .collect();
            assert!(v1.len() >= 4, "{cgroups}");
            assert!(v1.iter().all(|p| p.ends_with(&id)), "{cgroups}");
        };
        in_every_controller(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
        in_every_controller(&d.docker(&["exec", &id, "cat", "/proc/self/cgroup"]).ok());
        // And sees its own limit.
        assert_eq!(
            d.docker(&[
                "exec",
                &id,
                "cat",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes"
            ])
            .ok(),
            "67108864"
        );
    }
    d.docker(&["rm", "-f", &id]).ok();
    let dir = d.cgroup_dir("memory", &id);
    eventually("cgroup removed", Duration::from_secs(10), || !dir.exists());

    // Out-of-range limits are refused before anything is created.
    let o = run(&d, &["--rm", "-m", "1k", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr.contains("Minimum memory limit allowed is 6MB"),
        "{o:?}"
    );
    let o = run(&d, &["--rm", "--cpus", "1000", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr
            .to_lowercase()
            .contains("range of cpus is from 0.01 to"),
        "{o:?}"
    );
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

/// Standby shims start at a low CPU priority (crates/runtime/src/client.rs); the shim that
/// serves a container, and so the container, run at the normal one. Several runs in a row,
/// so that all but the first are served by standby shims.
#[test]
fn containers_run_at_normal_priority() {
    let Some(d) = setup() else { return };
    for i in 0..3 {
        // Field 19 of /proc/self/stat is the nice value.
        let o = run(
            &d,
            &[
                "--rm",
                "busybox",
                "sh",
                "-c",
                "cut -d' ' -f19 /proc/self/stat",
            ],
        );
        assert_eq!(o.ok(), "0", "run {i}");
    }
    let id = run(&d, &["-d", "busybox", "sleep", "100"]).ok();
    let shim: u32 = std::fs::read_to_string(d.exec_root.join("c").join(&id).join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).expect("shim stat");
    let after_comm = stat.rsplit_once(") ").expect("stat").1;
    // Fields after comm start at field 3; nice is field 19.
    assert_eq!(
        after_comm.split(' ').nth(16),
        Some("0"),
        "shim nice: {stat}"
    );
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn run_bind_mounts() {
    let Some(d) = setup() else { return };
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/data:ro", host.display());

    assert_eq!(
        run(&d, &["--rm", "-v", &rw, "busybox", "cat", "/data/f"]).ok(),
        "from-host"
    );
    run(
        &d,
        &[
            "--rm",
            "-v",
            &rw,
            "busybox",
            "sh",
            "-c",
            "echo from-container > /data/new",
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("new")).unwrap(),
        "from-container\n"
    );

    let o = run(
        &d,
        &[
            "--rm",
            "-v",
            &ro,
            "busybox",
            "sh",
            "-c",
            "echo x > /data/ro-write",
        ],
    );
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!host.join("ro-write").exists());
    assert_eq!(
        run(&d, &["--rm", "-v", &ro, "busybox", "cat", "/data/f"]).ok(),
        "from-host"
    );

    // A missing host directory is created.
    let missing = d.root.join("created-by-run");
    run(
        &d,
        &[
            "--rm",
            "-v",
            &format!("{}:/m", missing.display()),
            "busybox",
            "true",
        ],
    )
    .ok();
    assert!(missing.is_dir());

    // Mounts show up in inspect.
    let id = run(&d, &["-d", "-v", &ro, "busybox", "sleep", "1000"]).ok();
    assert_eq!(
        d.inspect(
            &id,
            "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}"
        ),
        format!("bind {} /data false", host.display())
    );
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn run_rm_leaves_nothing_on_the_host() {
    let Some(d) = setup() else { return };
    let mounts_before = d.mounts_under_roots();
    let o = run(
        &d,
        &[
            "--rm", "--name", "gone", "-m", "32m", "busybox", "sh", "-c", "echo bye",
        ],
    );
    assert_eq!(o.ok(), "bye");
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
    let o = d.docker(&["inspect", "gone"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(d.mounts_under_roots(), mounts_before);
    // Its files are deleted in the background once the record is gone.
    eventually(
        "no container directory left",
        Duration::from_secs(10),
        || {
            std::fs::read_dir(d.data_root.join("containers"))
                .map(|r| r.count())
                .unwrap_or(0)
                == 0
        },
    );

    // A detached --rm container goes away by itself when it exits.
    let id = run(&d, &["-d", "--rm", "busybox", "sh", "-c", "sleep 0.5"]).ok();
    eventually("--rm container removed", Duration::from_secs(20), || {
        d.docker(&["inspect", &id]).code != 0
    });
    eventually("cgroup removed", Duration::from_secs(10), || {
        !d.cgroup_dir("memory", &id).exists()
    });
    assert_eq!(d.mounts_under_roots(), mounts_before);
}

#[test]
fn run_interactive_stdin_and_tty() {
    let Some(d) = setup() else { return };
    let o = d.docker_stdin(&run_args(&["--rm", "-i", "busybox", "cat"]), b"hi\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "hi\n"), "{o:?}");
    let big: Vec<u8> = (0..200_000).map(|i| b'a' + (i % 26) as u8).collect();
    let o = d.docker_stdin(&run_args(&["--rm", "-i", "busybox", "wc", "-c"]), &big);
    assert_eq!(o.ok(), "200000");
    let o = d.docker_stdin(
        &run_args(&[
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "read x; echo got:$x; exit 4",
        ]),
        b"line\n",
    );
    assert_eq!((o.code, o.stdout.as_str()), (4, "got:line\n"), "{o:?}");
    // Without -i the container's stdin is closed.
    let o = d.docker_stdin(&run_args(&["--rm", "busybox", "cat"]), b"ignored\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o:?}");

    // -t without -i works with a non-terminal stdin; output goes through a pty (\r\n).
    let o = run(&d, &["--rm", "-t", "busybox", "sh", "-c", "tty; echo x"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "/dev/pts/0\r\nx\r\n"),
        "{o:?}"
    );
    // -i -t needs a terminal on the CLI side.
    let o = run(&d, &["--rm", "-i", "-t", "busybox", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("the input device is not a TTY"), "{o:?}");
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

#[test]
fn names_clash_and_random_names() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--name",
            "dup",
            "busybox",
            "true",
        ])
        .ok();
    let o = d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "dup",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("Conflict. The container name \"/dup\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")),
        "{o:?}"
    );
    let o = run(&d, &["--name", "dup", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o:?}");
    assert_eq!(d.all_container_ids(), vec![id.clone()]);
    assert_eq!(d.inspect("dup", "{{.Name}}"), "/dup");
    // Name and ID prefix both resolve.
    assert_eq!(d.inspect(&id[..8], "{{.Name}}"), "/dup");

    // Random names look like adjective_surname.
    for _ in 0..5 {
        let id = d
            .docker(&["create", "--network", "none", "busybox", "true"])
            .ok();
        let name = d.inspect(&id, "{{.Name}}");
        let name = name
            .strip_prefix('/')
            .unwrap_or_else(|| panic!("no leading slash: {name}"));
        let (a, b) = name
            .split_once('_')
            .unwrap_or_else(|| panic!("bad random name {name}"));
        assert!(
            !a.is_empty() && a.chars().all(|c| c.is_ascii_lowercase()),
            "{name}"
        );
        assert!(
            !b.is_empty() && b.chars().all(|c| c.is_ascii_lowercase()),
            "{name}"
        );
    }
    // After removal the name is free again.
    d.docker(&["rm", "dup"]).ok();
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "dup",
        "busybox",
        "true",
    ])
    .ok();
}

#[test]
fn create_then_start_attached() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--name",
            "c1",
            "busybox",
            "echo",
            "hello",
        ])
        .ok();
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(d.status("c1"), "created");
    assert_eq!(d.container_pid("c1"), 0);
    let o = d.docker(&["start", "-a", "c1"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "hello\n"), "{o:?}");
    assert_eq!(d.status("c1"), "exited");
    assert_eq!(d.exit_code("c1"), 0);
    // Starting again runs the same command again.
    assert_eq!(d.docker(&["start", "-a", "c1"]).stdout, "hello\n");

    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "c5",
        "busybox",
        "sh",
        "-c",
        "echo five; exit 5",
    ])
    .ok();
    let o = d.docker(&["start", "-a", "c5"]);
    assert_eq!((o.code, o.stdout.as_str()), (5, "five\n"), "{o:?}");
    assert_eq!(d.exit_code("c5"), 5);
    // start without -a prints the name and returns at once.
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "c6",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    assert_eq!(d.docker(&["start", "c6"]).ok(), "c6");
    assert_eq!(d.status("c6"), "running");
    d.docker(&["rm", "-f", "c6"]).ok();
}

#[test]
fn stop_with_sigterm_and_after_timeout() {
    let Some(d) = setup() else { return };
    // A process that exits on SIGTERM.
    let id = run(
        &d,
        &[
            "-d",
            "--name",
            "polite",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 143' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    )
    .ok();
    eventually("ready", Duration::from_secs(10), || {
        d.docker(&["logs", "polite"]).stdout.contains("ready")
    });
    let pid = d.container_pid(&id);
    assert!(pid_alive(pid));
    assert_eq!(d.docker(&["stop", "polite"]).ok(), "polite");
    assert_eq!(d.status("polite"), "exited");
    assert_eq!(d.exit_code("polite"), 143);
    assert_eq!(d.container_pid("polite"), 0);
    assert!(d.docker(&["logs", "polite"]).stdout.contains("got TERM"));
    eventually("process gone", Duration::from_secs(5), || !pid_alive(pid));

    // A process that ignores SIGTERM is killed after the timeout: 137.
    run(
        &d,
        &[
            "-d",
            "--name",
            "stubborn",
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; echo ready; sleep 1000",
        ],
    )
    .ok();
    eventually("ready", Duration::from_secs(10), || {
        d.docker(&["logs", "stubborn"]).stdout.contains("ready")
    });
    let t = Instant::now();
    assert_eq!(d.docker(&["stop", "-t", "1", "stubborn"]).ok(), "stubborn");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "stop returned before the timeout"
    );
    assert_eq!(d.status("stubborn"), "exited");
    assert_eq!(d.exit_code("stubborn"), 137);
    assert_eq!(
        d.inspect("stubborn", "{{.State.OOMKilled}} {{.State.Running}}"),
        "false false"
    );

    // Stopping a stopped container is fine.
    let o = d.docker(&["stop", "stubborn"]);
    assert_eq!((o.code, o.stdout.trim()), (0, "stubborn"), "{o:?}");
}

#[test]
fn kill_with_signals() {
    let Some(d) = setup() else { return };
    run(
        &d,
        &[
            "-d",
            "--name",
            "kk",
            "busybox",
            "sh",
            "-c",
            "trap 'echo usr1' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    )
    .ok();
    eventually("ready", Duration::from_secs(10), || {
        d.docker(&["logs", "kk"]).stdout.contains("ready")
    });
    assert_eq!(d.docker(&["kill", "-s", "USR1", "kk"]).ok(), "kk");
    eventually("usr1 handled", Duration::from_secs(10), || {
        d.docker(&["logs", "kk"]).stdout.contains("usr1")
    });
    assert_eq!(d.status("kk"), "running");
    assert_eq!(d.docker(&["kill", "--signal", "SIGUSR1", "kk"]).ok(), "kk");
    assert_eq!(d.docker(&["kill", "kk"]).ok(), "kk");
    d.wait_status("kk", "exited", Duration::from_secs(10));
    assert_eq!(d.exit_code("kk"), 137);

    // Killing a stopped container is an error.
    let o = d.docker(&["kill", "kk"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.to_lowercase().contains("is not running"), "{o:?}");

    // Signals by number.
    let id = run(&d, &["-d", "busybox", "sleep", "1000"]).ok();
    d.docker(&["kill", "-s", "9", &id]).ok();
    d.wait_status(&id, "exited", Duration::from_secs(10));
    assert_eq!(d.exit_code(&id), 137);
}

#[test]
fn restart_and_wait() {
    let Some(d) = setup() else { return };
    run(&d, &["-d", "--name", "rr", "busybox", "sleep", "1000"]).ok();
    let pid1 = d.container_pid("rr");
    let started1 = d.inspect("rr", "{{.State.StartedAt}}");
    assert_eq!(d.docker(&["restart", "-t", "1", "rr"]).ok(), "rr");
    assert_eq!(d.status("rr"), "running");
    let pid2 = d.container_pid("rr");
    assert_ne!(pid1, pid2);
    assert!(pid_alive(pid2));
    assert!(!pid_alive(pid1));
    assert_ne!(d.inspect("rr", "{{.State.StartedAt}}"), started1);
    // restart also starts a stopped container.
    d.docker(&["kill", "rr"]).ok();
    d.wait_status("rr", "exited", Duration::from_secs(10));
    d.docker(&["restart", "rr"]).ok();
    assert_eq!(d.status("rr"), "running");
    d.docker(&["rm", "-f", "rr"]).ok();

    run(
        &d,
        &[
            "-d",
            "--name",
            "ww",
            "busybox",
            "sh",
            "-c",
            "sleep 1; exit 7",
        ],
    )
    .ok();
    let o = d.docker(&["wait", "ww"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "7\n"), "{o:?}");
    // Waiting on an exited container returns its code at once.
    assert_eq!(d.docker(&["wait", "ww"]).ok(), "7");
    run(&d, &["--name", "w0w", "busybox", "true"]).ok();
    assert_eq!(d.docker(&["wait", "ww", "w0w"]).ok(), "7\n0");
}

#[test]
fn rm_and_force_rm() {
    let Some(d) = setup() else { return };
    let id = run(
        &d,
        &[
            "-d", "--name", "busy", "-m", "32m", "busybox", "sleep", "1000",
        ],
    )
    .ok();
    let pid = d.container_pid(&id);
    let o = d.docker(&["rm", "busy"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("You cannot remove a running container")
            || o.stderr.contains(
                "container is running: stop the container before removing or force remove"
            ),
        "{o:?}"
    );
    assert_eq!(d.status("busy"), "running");
    assert!(pid_alive(pid));

    assert_eq!(d.docker(&["rm", "-f", "busy"]).ok(), "busy");
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
    eventually("process gone", Duration::from_secs(5), || !pid_alive(pid));
    eventually("cgroup gone", Duration::from_secs(10), || {
        !d.cgroup_dir("memory", &id).exists()
    });
    assert!(!d.data_root.join("containers").join(&id).exists());

    // rm of several: the good ones go, the bad one is reported, exit 1.
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "aa",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "bb",
        "busybox",
        "true",
    ])
    .ok();
    let o = d.docker(&["rm", "aa", "nosuch", "bb"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stdout, "aa\nbb\n");
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

#[test]
fn ps_filters_and_format() {
    let Some(d) = setup() else { return };
    let web = run(
        &d,
        &[
            "-d",
            "--name",
            "web1",
            "-l",
            "tier=front",
            "busybox",
            "sleep",
            "1000",
        ],
    )
    .ok();
    let done = run(
        &d,
        &[
            "--name",
            "done1",
            "-l",
            "tier=back",
            "busybox",
            "echo",
            "hi",
        ],
    )
    .ok();
    let _ = done;
    let done_id = d.container_id("done1");
    let created = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--name",
            "new1",
            "busybox",
            "true",
        ])
        .ok();

    // ps shows running ones only; -a all, newest first.
    assert_eq!(d.docker(&["ps", "-q", "--no-trunc"]).ok(), web);
    assert_eq!(d.docker(&["ps", "-q"]).ok(), web[..12]);
    assert_eq!(
        d.docker(&["ps", "-a", "-q", "--no-trunc"]).ok(),
        format!("{created}\n{done_id}\n{web}")
    );
    assert_eq!(
        d.docker(&["ps", "-a", "--format", "{{.Names}}"]).ok(),
        "new1\ndone1\nweb1"
    );
    assert_eq!(
        d.docker(&["ps", "-a", "-q", "--no-trunc", "--filter", "name=web"])
            .ok(),
        web
    );
    assert_eq!(
        d.docker(&["ps", "-a", "-q", "--no-trunc", "--filter", "status=exited"])
            .ok(),
        done_id
    );
    assert_eq!(
        d.docker(&["ps", "-a", "-q", "--no-trunc", "--filter", "status=created"])
            .ok(),
        created
    );
    assert_eq!(
        d.docker(&["ps", "-a", "-q", "--no-trunc", "--filter", "status=running"])
            .ok(),
        web
    );
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            "label=tier=back"
        ])
        .ok(),
        done_id
    );
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            "label=tier",
            "--format",
            "{{.Names}}"
        ])
        .ok(),
        "done1\nweb1"
    );
    assert_eq!(
        d.docker(&["ps", "-a", "--filter", "exited=0", "--format", "{{.Names}}"])
            .ok(),
        "done1"
    );
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("id={}", &web[..10]),
            "--format",
            "{{.Names}}"
        ])
        .ok(),
        "web1"
    );

    assert_eq!(
        d.docker(&[
            "ps",
            "--format",
            "{{.Names}}|{{.Image}}|{{.Command}}|{{.Labels}}"
        ])
        .ok(),
        "web1|busybox|\"sleep 1000\"|tier=front"
    );
    assert_eq!(
        d.docker(&["ps", "--format", "{{.Label \"tier\"}}"]).ok(),
        "front"
    );
    let st = d.docker(&["ps", "--format", "{{.Status}}"]).ok();
    assert!(st.starts_with("Up "), "{st}");
    let st = d
        .docker(&[
            "ps",
            "-a",
            "--filter",
            "name=done1",
            "--format",
            "{{.Status}}",
        ])
        .ok();
    assert!(st.starts_with("Exited (0) "), "{st}");
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            "name=new1",
            "--format",
            "{{.Status}}"
        ])
        .ok(),
        "Created"
    );
    let table = d.docker(&["ps"]).ok();
    let header = table.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let json = d.docker(&["ps", "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["Names"], "web1");
    assert_eq!(v["State"], "running");
    assert_eq!(
        d.docker(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"])
            .ok(),
        "new1"
    );
    assert_eq!(
        d.docker(&["ps", "-l", "--format", "{{.Names}}"]).ok(),
        "new1"
    );
    d.docker(&["rm", "-f", &web]).ok();
}

#[test]
fn inspect_fields() {
    let Some(d) = setup() else { return };
    let before = chrono_like_now();
    let id = run(
        &d,
        &[
            "-d", "--name", "insp", "-e", "FOO=bar", "-m", "64m", "-l", "a=b", "busybox", "sleep",
            "1000",
        ],
    )
    .ok();
    assert_eq!(d.inspect("insp", "{{.Id}}"), id);
    assert_eq!(d.inspect("insp", "{{.Name}}"), "/insp");
    assert_eq!(d.inspect("insp", "{{.State.Status}} {{.State.Running}} {{.State.Paused}} {{.State.Restarting}} {{.State.Dead}}"), "running true false false false");
    assert_eq!(
        d.inspect("insp", "{{.Path}} {{json .Args}}"),
        "sleep [\"1000\"]"
    );
    assert_eq!(
        d.inspect("insp", "{{json .Config.Cmd}} {{json .Config.Entrypoint}}"),
        "[\"sleep\",\"1000\"] null"
    );
    assert_eq!(d.inspect("insp", "{{.Config.Image}}"), "busybox");
    let image_id = d.inspect("busybox", "{{.Id}}");
    assert_eq!(d.inspect("insp", "{{.Image}}"), image_id);
    assert!(
        image_id.starts_with("sha256:") && image_id.len() == 71,
        "{image_id}"
    );
    assert_eq!(d.inspect("insp", "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(d.inspect("insp", "{{.Config.Labels.a}}"), "b");
    assert_eq!(d.inspect("insp", "{{.HostConfig.NetworkMode}}"), "none");
    let env = d.inspect("insp", "{{json .Config.Env}}");
    let env: Vec<String> = serde_json::from_str(&env).unwrap();
    // The image (imported) has no Env; Docker adds the default PATH at run time only.
    assert_eq!(env, vec!["FOO=bar".to_owned()]);

    // State.Pid is a real host process running the command.
    let pid = d.container_pid("insp");
    assert!(pid > 1 && pid_alive(pid));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00");
    // In its own namespaces.
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(theirs, ours, "{ns} namespace shared with the host");
    }

    // Timestamps: RFC 3339 with nanoseconds, UTC, not before the test began.
    let created = d.inspect("insp", "{{.Created}}");
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert!(created[..19] >= before[..19], "{created} < {before}");
    let started = d.inspect("insp", "{{.State.StartedAt}}");
    assert!(started >= created, "{started} < {created}");
    assert_eq!(
        d.inspect("insp", "{{.State.FinishedAt}}"),
        "0001-01-01T00:00:00Z"
    );

    // The array form is valid JSON with one element; several objects in order.
    let all = d.docker(&["inspect", "insp"]).ok();
    let v: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Config"]["Env"].as_array().unwrap().len(), env.len());
    let o = d.docker(&["inspect", "-f", "{{.Id}}", "insp", "busybox"]);
    assert_eq!(o.ok(), format!("{id}\n{image_id}"));

    d.docker(&["stop", "-t", "0", "insp"]).ok();
    assert_eq!(
        d.inspect(
            "insp",
            "{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}"
        ),
        "exited 0 137"
    );
    let finished = d.inspect("insp", "{{.State.FinishedAt}}");
    assert!(finished >= started, "{finished} < {started}");
}

/// Now as `YYYY-MM-DDTHH:MM:SS` (UTC), from `date`, to compare with inspect timestamps.
fn chrono_like_now() -> String {
    let o = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn seeds_first_containers() {
    // The first containers of the study notes, as written there.
    let Some(d) = setup() else { return };
    assert_eq!(run(&d, &["--rm", "busybox", "echo", "hello"]).ok(), "hello");
    assert_eq!(
        run(
            &d,
            &["-e", "env_name=test1234", "busybox", "printenv", "env_name"]
        )
        .ok(),
        "test1234"
    );
    run(
        &d,
        &[
            "-d",
            "--name",
            "nx",
            "busybox",
            "sh",
            "-c",
            "while true; do echo hi; sleep 1; done",
        ],
    )
    .ok();
    eventually("two log lines", Duration::from_secs(10), || {
        d.docker(&["logs", "nx"]).stdout.lines().count() >= 2
    });
    assert!(d.docker(&["logs", "nx"]).stdout.lines().all(|l| l == "hi"));
    let env = d.docker(&["exec", "nx", "printenv"]).ok();
    assert!(env.contains("PATH=") && env.contains("HOSTNAME="), "{env}");
    let ps = d.docker(&["ps", "-a"]).ok();
    assert!(ps.contains("nx") && ps.contains("Up "), "{ps}");

    // logs -f follows until the container stops.
    let mut f = d
        .docker_cmd(&["logs", "-f", "nx"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(f.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "hi");
    assert_eq!(d.docker(&["stop", "nx"]).ok(), "nx");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().all(|l| l == "hi"));
    assert!(f.wait().unwrap().success());
    assert_eq!(d.docker(&["rm", "nx"]).ok(), "nx");
    assert_eq!(d.all_container_ids().len(), 1);
}
