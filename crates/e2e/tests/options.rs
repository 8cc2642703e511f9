//! Container options users reach for, end to end through the real docker CLI: the effect
//! inside the container (/proc/self/status, ulimit, df, /proc/sys, device nodes, zombies,
//! signals), on the host (cgroup files) and in `docker inspect`, plus bad inputs (clear
//! error, no container left). Runs against dockerd too (`BERTH_E2E_REFERENCE=dockerd`).
use std::time::{Duration, Instant};

use berth_e2e::*;

/// Capability names in bit order (bit N = index N).
const CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
];

const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| 1u64 << CAPS.iter().position(|c| c == n).expect("known cap"))
        .fold(0, |a, b| a | b)
}

/// A `/proc/self/status` field of a fresh container run with `flags`.
#[track_caller]
fn status_field(d: &Daemon, flags: &[&str], field: &str) -> String {
    let mut args = run_args(&["--rm"]);
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "grep", field, "/proc/self/status"]);
    let out = d.docker(&args).ok();
    out.split_whitespace().nth(1).unwrap_or("").to_owned()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).expect("hex")
}

/// The host's bounding set (what "all capabilities" can be here).
fn host_bounding() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    hex(s
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim())
}

/// A host character device outside Docker's default allow-list.
fn nondefault_device() -> &'static str {
    [
        "/dev/kmsg",
        "/dev/loop-control",
        "/dev/fuse",
        "/dev/tty1",
        "/dev/cpu_dma_latency",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a host character device outside the default set")
}

#[track_caller]
fn assert_no_containers(d: &Daemon, what: &str) {
    assert_eq!(
        d.all_container_ids(),
        Vec::<String>::new(),
        "{what}: a container was left behind"
    );
}

fn cgroup_file(d: &Daemon, controller: &str, id: &str, file: &str) -> String {
    let p = d.cgroup_dir(controller, id).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    let Some(d) = setup() else { return };
    // Without an init the exec'd `sleep` is PID 1 and never reaps the orphan: a zombie.
    // With --init, docker-init is PID 1 and reaps it.
    let zombie_cmd = "(sleep 0.2 &); exec sleep 1000";
    let plain = d
        .docker(&run_args(&["-d", "busybox", "sh", "-c", zombie_cmd]))
        .ok();
    let init = d
        .docker(&run_args(&[
            "-d", "--init", "busybox", "sh", "-c", zombie_cmd,
        ]))
        .ok();
    let zombies = |id: &str| {
        d.docker(&["exec", id, "ps", "-o", "stat,comm"])
            .ok()
            .lines()
            .filter(|l| l.trim_start().starts_with('Z'))
            .count()
    };
    eventually("a zombie without --init", Duration::from_secs(10), || {
        zombies(&plain) == 1
    });
    // The orphan ran, exited and was reaped: only the init and the main command remain.
    let procs = |id: &str| d.docker(&["exec", id, "ps", "-o", "stat,args"]).ok();
    eventually(
        "the orphan reaped under --init",
        Duration::from_secs(10),
        || {
            let p = procs(&init);
            zombies(&init) == 0 && !p.lines().any(|l| l.contains(" sleep 0.2"))
        },
    );
    let p = procs(&init);
    assert!(
        p.contains("/sbin/docker-init -- sh -c") && p.contains("sleep 1000"),
        "{p}"
    );
    assert_eq!(p.lines().count(), 4, "header, init, sleep, ps: {p}");
    assert_eq!(
        d.docker(&["exec", &init, "cat", "/proc/1/comm"]).ok(),
        "docker-init"
    );
    assert_eq!(
        d.docker(&["exec", &plain, "cat", "/proc/1/comm"]).ok(),
        "sleep"
    );
    let ls = d
        .docker(&["exec", &init, "ls", "-l", "/sbin/docker-init"])
        .ok();
    assert!(ls.starts_with("-rwx"), "{ls}");
    // The init is bind-mounted read-only.
    let w = d.docker(&["exec", &init, "sh", "-c", "echo x > /sbin/docker-init"]);
    assert!(w.err().contains("Read-only file system"), "{w:?}");
    assert_eq!(d.inspect(&init, "{{.HostConfig.Init}}"), "true");
    assert_eq!(d.inspect(&plain, "{{json .HostConfig.Init}}"), "null");
    // Path/Args stay the user's command.
    assert_eq!(
        d.inspect(&init, "{{.Path}} {{json .Args}}"),
        "sh [\"-c\",\"(sleep 0.2 &); exec sleep 1000\"]"
    );
    d.docker(&["rm", "-f", &plain, &init]).ok();

    // Signals reach the child through the init: kill -s HUP, then stop with --stop-signal.
    let script = "trap 'echo got HUP' HUP; trap 'echo got USR1; exit 4' USR1; echo ready; while :; do sleep 0.1; done";
    let id = d
        .docker(&run_args(&[
            "-d",
            "--init",
            "--stop-signal",
            "SIGUSR1",
            "busybox",
            "sh",
            "-c",
            script,
        ]))
        .ok();
    let logs = |id: &str| d.docker(&["logs", id]).stdout;
    eventually("ready", Duration::from_secs(10), || {
        logs(&id).contains("ready")
    });
    d.docker(&["kill", "-s", "HUP", &id]).ok();
    eventually("HUP forwarded", Duration::from_secs(10), || {
        logs(&id).contains("got HUP")
    });
    assert_eq!(d.status(&id), "running");
    d.docker(&["stop", &id]).ok();
    assert_eq!(d.exit_code(&id), 4, "{}", logs(&id));
    assert!(logs(&id).contains("got USR1"));
    assert_eq!(d.inspect(&id, "{{.Config.StopSignal}}"), "SIGUSR1");
    // An exec'd program is its own PID 1 child, its exit code goes through the init.
    let o = d.docker(&run_args(&[
        "--rm", "--init", "busybox", "sh", "-c", "exit 7",
    ]));
    assert_eq!(o.code, 7, "{o:?}");
    let o = d.docker(&run_args(&[
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "kill -9 $$",
    ]));
    assert_eq!(o.code, 137, "{o:?}");
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn stop_signal_and_timeout() {
    let Some(d) = setup() else { return };
    // Without --init the signal goes to PID 1 itself.
    let id = d
        .docker(&run_args(&[
            "-d",
            "--stop-signal",
            "USR2",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got USR2; exit 5' USR2; echo ready; while :; do sleep 0.1; done",
        ]))
        .ok();
    eventually("ready", Duration::from_secs(10), || {
        d.docker(&["logs", &id]).stdout.contains("ready")
    });
    d.docker(&["stop", &id]).ok();
    assert_eq!(d.exit_code(&id), 5);
    assert!(d.docker(&["logs", &id]).stdout.contains("got USR2"));
    // --stop-timeout 1: a container ignoring its stop signal is killed after 1 s, not 10.
    let id = d
        .docker(&run_args(&[
            "-d",
            "--stop-timeout",
            "1",
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ]))
        .ok();
    eventually("ready", Duration::from_secs(10), || {
        d.docker(&["logs", &id]).stdout.contains("ready")
    });
    assert_eq!(d.inspect(&id, "{{.Config.StopTimeout}}"), "1");
    let t = Instant::now();
    d.docker(&["stop", &id]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop ignored --stop-timeout"
    );
    assert_eq!(d.exit_code(&id), 137);
    // restart uses it too.
    d.docker(&["start", &id]).ok();
    eventually("ready again", Duration::from_secs(10), || {
        d.docker(&["logs", &id]).stdout.matches("ready").count() == 2
    });
    let t = Instant::now();
    d.docker(&["restart", &id]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "restart ignored --stop-timeout"
    );
    assert_eq!(d.status(&id), "running");
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn capabilities_and_security_opts() {
    let Some(d) = setup() else { return };
    let eff = |flags: &[&str]| hex(&status_field(&d, flags, "CapEff"));
    assert_eq!(eff(&[]), mask(DEFAULT_CAPS));
    let mut want: Vec<&str> = DEFAULT_CAPS.to_vec();
    want.retain(|c| *c != "CHOWN");
    want.push("NET_ADMIN");
    want.push("SYS_TIME");
    assert_eq!(
        eff(&[
            "--cap-add",
            "net_admin",
            "--cap-add",
            "CAP_SYS_TIME",
            "--cap-drop",
            "chown"
        ]),
        mask(&want)
    );
    assert_eq!(
        eff(&["--cap-drop", "ALL", "--cap-add", "kill"]),
        mask(&["KILL"])
    );
    assert_eq!(eff(&["--cap-drop", "all"]), 0);
    if !is_reference() {
        // ALL: every capability this host lets the engine hold (dockerd asks for more and
        // fails to start the container where the bounding set is smaller).
        assert_eq!(eff(&["--cap-add", "ALL"]), host_bounding());
        assert_eq!(
            eff(&["--cap-add", "ALL", "--cap-drop", "NET_RAW"]),
            host_bounding() & !mask(&["NET_RAW"])
        );
    }
    // CapAdd/CapDrop are stored normalised, as dockerd does.
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--cap-add",
            "net_admin",
            "--cap-drop",
            "CAP_chown",
            "busybox",
        ])
        .ok();
    assert_eq!(
        d.inspect(
            &id,
            "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}"
        ),
        "[\"CAP_NET_ADMIN\"] [\"CAP_CHOWN\"]"
    );
    d.docker(&["rm", &id]).ok();

    // no-new-privileges, both spellings.
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(&d, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );
    assert_eq!(
        status_field(
            &d,
            &["--security-opt", "no-new-privileges:true"],
            "NoNewPrivs"
        ),
        "1"
    );
    assert_eq!(
        status_field(
            &d,
            &["--security-opt", "no-new-privileges=false"],
            "NoNewPrivs"
        ),
        "0"
    );
    // seccomp: default, unconfined, a profile file.
    assert_eq!(status_field(&d, &[], "Seccomp:"), "2");
    assert_eq!(
        status_field(&d, &["--security-opt", "seccomp=unconfined"], "Seccomp:"),
        "0"
    );
    if !is_reference() {
        // "builtin" names the default profile (docker CLI 28; dockerd 20.10 predates it).
        assert_eq!(
            status_field(&d, &["--security-opt", "seccomp=builtin"], "Seccomp:"),
            "2"
        );
    }
    let prof = d.root.join("profile.json");
    std::fs::write(
        &prof,
        "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [ {\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\"} ]\n}\n",
    )
    .unwrap();
    let opt = format!("seccomp={}", prof.display());
    let o = d.docker(&run_args(&[
        "--name",
        "sc",
        "--security-opt",
        &opt,
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/x; grep Seccomp: /proc/self/status; touch /tmp/y && echo touched",
    ]));
    assert!(
        o.stderr
            .contains("can't create directory '/tmp/x': Operation not permitted"),
        "{o:?}"
    );
    assert!(
        o.stdout.contains("Seccomp:\t2") && o.stdout.contains("touched"),
        "{o:?}"
    );
    // The CLI sent the file's compacted content; inspect shows it.
    assert_eq!(
        d.inspect("sc", "{{json .HostConfig.SecurityOpt}}"),
        r#"["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\",\"mkdirat\"],\"action\":\"SCMP_ACT_ERRNO\"}]}"]"#
    );
    d.docker(&["rm", "sc"]).ok();

    // systempaths=unconfined: nothing masked or read-only in /proc.
    let probe =
        "wc -c < /proc/timer_list; grep -q ' /proc/sys proc ro' /proc/mounts || echo proc-sys-rw";
    let o = d.docker(&run_args(&[
        "--name",
        "sp",
        "--security-opt",
        "systempaths=unconfined",
        "busybox",
        "sh",
        "-c",
        probe,
    ]));
    let out = o.ok();
    assert!(
        !out.starts_with("0\n") && out.ends_with("proc-sys-rw"),
        "{o:?}"
    );
    assert_eq!(
        d.inspect(
            "sp",
            "{{json .HostConfig.MaskedPaths}} {{json .HostConfig.ReadonlyPaths}}"
        ),
        "[] []"
    );
    d.docker(&["rm", "sp"]).ok();
    let o = d.docker(&run_args(&["--rm", "busybox", "sh", "-c", probe]));
    assert!(
        o.stdout.starts_with("0\n") && !o.stdout.contains("proc-sys-rw"),
        "{o:?}"
    );
    // --read-only: the rootfs refuses writes, /dev/shm does not.
    let o = d.docker(&run_args(&[
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /x; echo ok > /dev/shm/f && cat /dev/shm/f",
    ]));
    assert!(
        o.stderr.contains("touch: /x: Read-only file system"),
        "{o:?}"
    );
    assert_eq!(o.stdout, "ok\n");
    let id = d
        .docker(&["create", "--network", "none", "--read-only", "busybox"])
        .ok();
    assert_eq!(d.inspect(&id, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    d.docker(&["rm", &id]).ok();
}

#[test]
fn privileged() {
    let Some(d) = setup() else { return };
    // A host device outside Docker's default set, to see that all of /dev comes in.
    let extra = nondefault_device();
    let script = format!(
        "grep -E 'CapEff|Seccomp:' /proc/self/status; ls {extra} && echo has-dev; grep -E ' /sys ' /proc/mounts; echo timer_list=$(wc -c < /proc/timer_list)"
    );
    let o = d.docker(&run_args(&[
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &script,
    ]));
    if is_reference() && o.stderr.contains("unable to apply caps") {
        // dockerd asks for every capability it knows, beyond this host's bounding set.
        eprintln!("skipped: dockerd cannot start privileged containers on this host");
        return;
    }
    assert_eq!(o.code, 0, "{o:?}");
    let cap_eff = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| hex(v.trim()))
        .unwrap();
    assert_eq!(cap_eff, host_bounding(), "{o:?}");
    assert!(o.stdout.contains("Seccomp:\t0"), "{o:?}");
    assert!(o.stdout.contains("has-dev"), "{o:?}");
    let sys = o.stdout.lines().find(|l| l.contains(" /sys ")).unwrap();
    assert!(sys.contains(" rw,"), "/sys not read-write: {sys}");
    assert!(!o.stdout.contains("timer_list=0\n"), "masked paths: {o:?}");
    // Unprivileged: no such device, masked /proc/timer_list, read-only /sys.
    let o = d.docker(&run_args(&["--rm", "busybox", "sh", "-c", &script]));
    assert!(!o.stdout.contains("has-dev"), "{o:?}");
    assert!(o.stdout.contains("timer_list=0\n"), "{o:?}");
    assert!(o.stdout.contains(" /sys sysfs ro,"), "{o:?}");
    let id = d
        .docker(&["create", "--network", "none", "--privileged", "busybox"])
        .ok();
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.Privileged}} {{json .HostConfig.MaskedPaths}} {{json .HostConfig.ReadonlyPaths}}"
        ),
        "true null null"
    );
    let id2 = d.docker(&["create", "--network", "none", "busybox"]).ok();
    let masked = d.inspect(&id2, "{{json .HostConfig.MaskedPaths}}");
    assert!(masked.contains("\"/proc/kcore\""), "{masked}");
    d.docker(&["rm", &id, &id2]).ok();
}

#[test]
fn limits_devices_and_cgroups() {
    let Some(d) = setup() else { return };
    // A device outside Docker's default cgroup allow-list, mapped read-only: writes fail.
    let ro_dev = format!("{}:/dev/rdev:r", nondefault_device());
    let o = d.docker(&run_args(&[
        "--name",
        "lim",
        "--ulimit",
        "nofile=100:200",
        "--ulimit",
        "nproc=500:1000",
        "--pids-limit",
        "50",
        "--shm-size",
        "32m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=100000",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "--device",
        &ro_dev,
        "--group-add",
        "1234",
        "--group-add",
        "wheel",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; ls -l /dev/mynull; echo x > /dev/mynull && echo wrote-null; ls /dev/rdev; echo x > /dev/rdev || echo no-write; id -G",
    ]));
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(&lines[..3], ["100", "200", "500"], "{o:?}");
    assert!(
        lines[3].starts_with("shm ") && lines[3].contains(" 32768 "),
        "{o:?}"
    );
    assert_eq!(&lines[4..6], ["1", "100000"], "{o:?}");
    assert!(
        lines[6].starts_with("crw")
            && lines[6].contains("1,   3")
            && lines[6].ends_with("/dev/mynull"),
        "{o:?}"
    );
    assert_eq!(
        &lines[7..10],
        ["wrote-null", "/dev/rdev", "no-write"],
        "{o:?}"
    );
    assert!(
        o.stderr.contains("/dev/rdev: Operation not permitted"),
        "{o:?}"
    );
    let groups: Vec<&str> = lines[10].split_whitespace().collect();
    assert!(groups.contains(&"1234") && groups.contains(&"10"), "{o:?}");
    assert_eq!(
        d.inspect(
            "lim",
            "{{json .HostConfig.Ulimits}} {{.HostConfig.PidsLimit}} {{.HostConfig.ShmSize}} {{json .HostConfig.Sysctls}} {{json .HostConfig.GroupAdd}}"
        ),
        r#"[{"Name":"nofile","Hard":200,"Soft":100},{"Name":"nproc","Hard":1000,"Soft":500}] 50 33554432 {"kernel.shmmax":"100000","net.ipv4.ip_forward":"1"} ["1234","wheel"]"#
    );
    assert_eq!(
        d.inspect("lim", "{{json .HostConfig.Devices}}"),
        format!(
            r#"[{{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}},{{"PathOnHost":"{}","PathInContainer":"/dev/rdev","CgroupPermissions":"r"}}]"#,
            nondefault_device()
        )
    );
    d.docker(&["rm", "lim"]).ok();
    // Defaults: 64 MiB /dev/shm, no pids limit, empty lists.
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--pids-limit",
            "-1",
            "busybox",
        ])
        .ok();
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.ShmSize}} {{json .HostConfig.PidsLimit}} {{json .HostConfig.Ulimits}} {{json .HostConfig.Devices}} {{json .HostConfig.OomKillDisable}}"
        ),
        "67108864 null [] [] false"
    );
    assert_eq!(d.inspect(&id, "{{.HostConfig.IpcMode}}"), "private");
    d.docker(&["rm", &id]).ok();
    let o = d.docker(&run_args(&["--rm", "busybox", "df", "-k", "/dev/shm"]));
    assert!(o.ok().contains(" 65536 "), "{o:?}");

    // Cgroup limits on the host.
    let o = d.docker(&run_args(&[
        "-d",
        "--oom-kill-disable",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--memory-reservation",
        "32m",
        "--cpuset-cpus",
        "0",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "busybox",
        "sleep",
        "1000",
    ]));
    let id = o.ok();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        assert!(cgroup_file(&d, "memory", &id, "memory.oom_control").contains("oom_kill_disable 1"));
        assert_eq!(
            cgroup_file(&d, "memory", &id, "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(
            cgroup_file(&d, "memory", &id, "memory.limit_in_bytes"),
            "67108864"
        );
        if d.cgroup_dir("memory", &id)
            .join("memory.memsw.limit_in_bytes")
            .exists()
        {
            assert_eq!(
                cgroup_file(&d, "memory", &id, "memory.memsw.limit_in_bytes"),
                "134217728"
            );
        }
        assert_eq!(cgroup_file(&d, "cpuset", &id, "cpuset.cpus"), "0");
        assert_eq!(cgroup_file(&d, "cpu", &id, "cpu.shares"), "512");
        assert_eq!(cgroup_file(&d, "pids", &id, "pids.max"), "50");
        let devs = cgroup_file(&d, "devices", &id, "devices.list");
        assert!(devs.lines().any(|l| l == "c 1:3 rwm"), "{devs}");
    }
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.OomKillDisable}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CpuShares}}"
        ),
        "true 134217728 33554432 0 512"
    );
    d.docker(&["rm", "-f", &id]).ok();
    // The daemon warns about --oom-kill-disable without a memory limit.
    let o = d.docker(&[
        "create",
        "--network",
        "none",
        "--oom-kill-disable",
        "busybox",
    ]);
    assert!(
        o.stderr.contains("WARNING: OOM killer is disabled"),
        "{o:?}"
    );
    d.docker(&["rm", o.stdout.trim()]).ok();
}

#[test]
fn labels_env_files_and_log_drivers() {
    let Some(d) = setup() else { return };
    let labels = d.root.join("labels");
    std::fs::write(&labels, "a=1\n# comment\n\nb=two words\nc=from-file\n").unwrap();
    let env = d.root.join("env");
    std::fs::write(&env, "# c\nFOO=bar baz\nEMPTY=\n").unwrap();
    let (lf, ef) = (labels.to_str().unwrap(), env.to_str().unwrap());
    let o = d.docker(&run_args(&[
        "--name",
        "lab",
        "--label-file",
        lf,
        "--label",
        "c=3",
        "-l",
        "d",
        "--env-file",
        ef,
        "busybox",
        "sh",
        "-c",
        "echo \"[$FOO] [${EMPTY-unset}]\"",
    ]));
    assert_eq!(o.ok(), "[bar baz] []");
    assert_eq!(
        d.inspect("lab", "{{json .Config.Labels}}"),
        r#"{"a":"1","b":"two words","c":"3","d":""}"#
    );
    d.docker(&["rm", "lab"]).ok();

    // none: nothing to read.
    let id = d
        .docker(&run_args(&[
            "-d",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "hi",
        ]))
        .ok();
    d.docker(&["wait", &id]).ok();
    let o = d.docker(&["logs", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.stderr,
        "Error response from daemon: configured logging driver does not support reading\n"
    );
    assert_eq!(
        d.inspect(&id, "{{.HostConfig.LogConfig.Type}} [{{.LogPath}}]"),
        "none []"
    );
    // local: docker logs reads it (both streams), no LogPath exposed.
    let id = d
        .docker(&run_args(&[
            "-d",
            "--log-driver",
            "local",
            "--log-opt",
            "max-size=1m",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ]))
        .ok();
    d.docker(&["wait", &id]).ok();
    let o = d.docker(&["logs", &id]);
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("out\n", "err\n"),
        "{o:?}"
    );
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}} [{{.LogPath}}]"
        ),
        r#"local {"max-size":"1m"} []"#
    );
    // Attached run with local works as with json-file.
    let o = d.docker(&run_args(&[
        "--rm",
        "--log-driver",
        "local",
        "busybox",
        "echo",
        "attached",
    ]));
    assert_eq!(o.ok(), "attached");
    let o = d.docker(&run_args(&[
        "--log-driver",
        "local",
        "--log-opt",
        "foo=1",
        "busybox",
    ]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr
            .contains("unknown log opt 'foo' for log driver local"),
        "{o:?}"
    );
    d.docker(&["rm", "-f", &id]).ok();
    let left: Vec<String> = d
        .all_container_ids()
        .into_iter()
        .filter(|c| d.inspect(c, "{{.HostConfig.LogConfig.Type}}") != "none")
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn platform() {
    let Some(d) = setup() else { return };
    let o = d.docker(&run_args(&[
        "--rm",
        "--platform",
        "linux/amd64",
        "busybox",
        "echo",
        "ok",
    ]));
    assert_eq!(o.ok(), "ok");
    let o = d.docker(&run_args(&[
        "--rm",
        "--pull",
        "never",
        "--platform",
        "linux/arm64",
        "busybox",
        "true",
    ]));
    assert_eq!(o.code, 125, "{o:?}");
    if !is_reference() {
        assert!(
            o.stderr
                .contains("does not match the specified platform: wanted linux/arm64"),
            "{o:?}"
        );
    }
    assert_no_containers(&d, "--platform linux/arm64");
}

/// Bad options: the docker CLI's own checks (which never reach the daemon) and the daemon's
/// (the same specs sent straight to the API); each leaves no container.
#[test]
fn bad_inputs() {
    let Some(d) = setup() else { return };
    let cli_cases: &[(&[&str], &str)] = &[
        (&["--env-file", "/nosuch"], "open /nosuch: no such file or directory"),
        (&["--label-file", "/nosuch"], "open /nosuch: no such file or directory"),
        (
            &["--ulimit", "nofile"],
            "invalid argument \"nofile\" for \"--ulimit\" flag: invalid ulimit argument: nofile",
        ),
        (
            &["--ulimit", "foo=1"],
            "invalid argument \"foo=1\" for \"--ulimit\" flag: invalid ulimit type: foo",
        ),
        (
            &["--ulimit", "nofile=x"],
            "invalid argument \"nofile=x\" for \"--ulimit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
        (
            &["--ulimit", "nofile=10:5"],
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        ),
        (
            &["--sysctl", "kernel.pid_max=1"],
            "sysctl 'kernel.pid_max=1' is not allowed",
        ),
        (&["--device", "/dev/null:/dev/x:bad"], "bad mode specified: bad"),
        (&["--security-opt", "bogus"], "Invalid --security-opt: \"bogus\""),
        (
            &["--security-opt", "seccomp=/nosuch.json"],
            "opening seccomp profile (/nosuch.json) failed",
        ),
        (
            &["--cap-add", "BOGUS"],
            "Error response from daemon: invalid CapAdd: unknown capability: \"CAP_BOGUS\"",
        ),
        (
            &["--cap-drop", "foo"],
            "Error response from daemon: invalid CapDrop: unknown capability: \"CAP_FOO\"",
        ),
        (
            &["--security-opt", "foo=bar"],
            "Error response from daemon: invalid --security-opt 2: \"foo=bar\"",
        ),
        (
            &["--security-opt", "no-new-privileges=maybe"],
            "invalid --security-opt 2: \"no-new-privileges=maybe\"",
        ),
        (
            &["--cpuset-cpus", "99"],
            "Requested CPUs are not available - requested 99, available: ",
        ),
        (
            &["--cpuset-cpus", "x"],
            "Invalid value x for cpuset cpus: invalid format: x",
        ),
        (
            &["--memory-reservation", "1k"],
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            &["-m", "10m", "--memory-reservation", "20m"],
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (&["--stop-signal", "FOO"], "Invalid signal: FOO"),
        (
            &["--storage-opt", "size=1G"],
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ),
        (&["--userns", "foo"], "--userns: invalid USER mode"),
        (
            &["--memory-swap", "100m"],
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (&["--shm-size", "-1"], "invalid size: '-1'"),
        (
            &["--cpu-period", "10"],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (&["--cpu-quota", "10"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        (
            &["--oom-score-adj", "2000"],
            "Invalid value 2000, range for oom score adj is [-1000, 1000]",
        ),
        (
            &["--memory-swappiness", "200"],
            "invalid value: 200. Valid memory swappiness range is 0-100",
        ),
        (
            &["--cpuset-mems", "99"],
            "Requested memory nodes are not available - requested 99, available: ",
        ),
        (
            &["--device-cgroup-rule", "x 1:3 rwm"],
            "invalid device cgroup format 'x 1:3 rwm'",
        ),
    ];
    for (flags, want) in cli_cases {
        let mut args = run_args(&[]);
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let o = d.docker(&args);
        assert_eq!(o.code, 125, "{flags:?}: {o:?}");
        assert!(o.stderr.contains(want), "{flags:?}: {o:?}");
        assert_no_containers(&d, &format!("{flags:?}"));
    }
    // No GPU driver: dockerd fails at start, berthd at create; --rm leaves nothing either way.
    let o = d.docker(&run_args(&["--rm", "--gpus", "all", "busybox", "true"]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr
            .contains("could not select device driver \"\" with capabilities: [[gpu]]"),
        "{o:?}"
    );
    assert_no_containers(&d, "--gpus all");
    // A missing device: dockerd fails at start, berthd at create; --rm leaves nothing either way.
    let o = d.docker(&run_args(&[
        "--rm",
        "--device",
        "/dev/nosuch",
        "busybox",
        "true",
    ]));
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(
            "error gathering device information while adding custom device \"/dev/nosuch\""
        ),
        "{o:?}"
    );
    assert_no_containers(&d, "--device /dev/nosuch");
    if !is_reference() {
        let o = d.docker(&["create", "--device", "/dev/nosuch", "busybox"]);
        assert_eq!(o.code, 1, "{o:?}");
        assert_no_containers(&d, "create --device /dev/nosuch");
    }

    // The same mistakes straight through the API (what the CLI would have caught).
    let create = |host_config: &str| {
        let body = format!(
            r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"NetworkMode":"none",{host_config}}}}}"#
        );
        let r = d
            .http(
                "POST",
                "/containers/create",
                &[("Content-Type", "application/json")],
                Some(body.as_bytes()),
            )
            .unwrap();
        (
            r.status,
            r.json()["message"].as_str().unwrap_or("").to_owned(),
        )
    };
    if !is_reference() {
        for (hc, want) in [
            (
                r#""Ulimits":[{"Name":"bogus","Soft":1,"Hard":1}]"#,
                "invalid ulimit type: bogus",
            ),
            (
                r#""Ulimits":[{"Name":"nofile","Soft":10,"Hard":5}]"#,
                "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
            ),
            (
                r#""Sysctls":{"kernel.pid_max":"1"}"#,
                "sysctl 'kernel.pid_max' is not allowed",
            ),
            (
                r#""Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x","CgroupPermissions":"rwx"}]"#,
                "bad mode specified: rwx",
            ),
            (
                r#""Devices":[{"PathOnHost":"/etc/hostname","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]"#,
                "not a device node",
            ),
            (
                r#""SecurityOpt":["seccomp={"]"#,
                "Decoding seccomp profile failed",
            ),
            (r#""ShmSize":-1"#, "SHM size can not be less than 0"),
        ] {
            let (status, msg) = create(hc);
            assert_eq!(status, 400, "{hc}: {msg}");
            assert!(msg.contains(want), "{hc}: {msg}");
        }
        assert_no_containers(&d, "API");
    }

    // The berth CLI checks the same flags with docker's words.
    for (flags, want) in &cli_cases[..10] {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let o = d.berth(&args);
        if is_reference() {
            break;
        }
        assert_eq!(o.code, 125, "{flags:?}: {o:?}");
        assert!(o.stderr.contains(want), "berth {flags:?}: {o:?}");
    }
    assert_no_containers(&d, "berth CLI");
}

/// `berth run` with the same options behaves as `docker run`.
#[test]
fn berth_cli_options() {
    let Some(d) = setup() else { return };
    if is_reference() {
        return;
    }
    let labels = d.root.join("labels");
    std::fs::write(&labels, "a=1\n").unwrap();
    let prof = d.root.join("p.json");
    std::fs::write(
        &prof,
        r#"{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir","mkdirat"], "action": "SCMP_ACT_ERRNO"}] }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", prof.display());
    let o = d.berth(&[
        "run",
        "--name",
        "b1",
        "--network",
        "none",
        "--init",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "kill",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        &opt,
        "--ulimit",
        "nofile=100:200",
        "--shm-size",
        "16m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--device",
        "/dev/null:/dev/mynull",
        "--group-add",
        "1234",
        "--label-file",
        labels.to_str().unwrap(),
        "--label",
        "b=2",
        "--oom-kill-disable",
        "-m",
        "64m",
        "--memory-reservation",
        "32m",
        "--cpuset-cpus",
        "0",
        "--platform",
        "linux/amd64",
        "busybox",
        "sh",
        "-c",
        "grep -E 'CapEff|NoNewPrivs' /proc/self/status; ulimit -n; df -k /dev/shm | tail -1; cat /proc/sys/net/ipv4/ip_forward; ls /dev/mynull; id -G; cat /proc/1/comm; mkdir /tmp/x",
    ]);
    assert_eq!(o.code, 1, "{o:?}");
    let want = format!("CapEff:\t{:016x}\nNoNewPrivs:\t1\n100\n", mask(&["KILL"]));
    assert!(o.stdout.starts_with(&want), "{o:?}");
    assert!(o.stdout.contains(" 16384 "), "{o:?}");
    assert!(
        o.stdout
            .contains("\n1\n/dev/mynull\n0 10 1234\ndocker-init\n"),
        "{o:?}"
    );
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    assert_eq!(
        d.inspect(
            "b1",
            "{{json .Config.Labels}} {{.HostConfig.Init}} {{.HostConfig.MemoryReservation}}"
        ),
        r#"{"a":"1","b":"2"} true 33554432"#
    );
    d.docker(&["rm", "b1"]).ok();
}

/// Removes a `--cgroup-parent` directory from every hierarchy (after the daemon removed the
/// container's own cgroup below it).
struct ParentCgroup(String);

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        // The harness looks for leftovers under its own parent only: a failed run may
        // leave this test's container processes here.
        let rel = self.0.trim_start_matches('/');
        let dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(rel))
            .chain(std::iter::once(
                std::path::Path::new("/sys/fs/cgroup").join(rel),
            ))
            .filter(|p| p.is_dir())
            .collect();
        for dir in &dirs {
            for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let procs =
                    std::fs::read_to_string(sub.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) on a process of this test's own container cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        for dir in &dirs {
            for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn cpu_memory_tuning_cgroup_parent_and_cidfile() {
    let Some(d) = setup() else { return };
    let parent = format!("/berth-e2e-{}", std::process::id());
    let _cleanup = ParentCgroup(parent.clone());
    // A device that is harmless to open, outside the default allow-list.
    let (maj, min) = ["/dev/loop-control", "/dev/fuse", "/dev/cpu_dma_latency"]
        .into_iter()
        .find_map(|p| {
            use std::os::unix::fs::MetadataExt;
            let rdev = std::fs::metadata(p).ok()?.rdev();
            Some((
                (rdev >> 8) & 0xfff,
                (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
            ))
        })
        .expect("an openable host device");
    let rule = format!("c {maj}:{min} r");
    let open_node = format!("mknod /tmp/k c {maj} {min} && : < /tmp/k && echo opened");
    let cid = d.root.join("cid");
    let cidp = cid.to_str().unwrap();
    let o = d.docker(&run_args(&[
        "-d",
        "--cidfile",
        cidp,
        "--cgroup-parent",
        &parent,
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--oom-score-adj",
        "100",
        "--memory-swappiness",
        "10",
        "--cpuset-mems",
        "0",
        "--device-cgroup-rule",
        &rule,
        "--domainname",
        "example.com",
        "busybox",
        "sleep",
        "1000",
    ]));
    let id = o.ok();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let ex = |cmd: &str| d.docker(&["exec", &id, "sh", "-c", cmd]);
    assert_eq!(ex("cat /proc/1/oom_score_adj").ok(), "100");
    assert_eq!(ex("cat /proc/sys/kernel/domainname").ok(), "example.com");
    // The rule lets the container open the node.
    assert_eq!(ex(&open_node).ok(), "opened");
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.OomScoreAdj}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.CpusetMems}} {{json .HostConfig.DeviceCgroupRules}} {{.Config.Domainname}} {{.HostConfig.CgroupParent}}"
        ),
        format!("50000 25000 100 10 0 [\"{rule}\"] example.com {parent}")
    );
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v1 {
        let f = |ctrl: &str, file: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{parent}/{id}/{file}"))
                .unwrap_or_else(|e| panic!("{ctrl}/{file}: {e}"))
                .trim()
                .to_owned()
        };
        assert_eq!(f("cpu", "cpu.cfs_period_us"), "50000");
        assert_eq!(f("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(f("memory", "memory.swappiness"), "10");
        assert_eq!(f("cpuset", "cpuset.mems"), "0");
        assert!(f("devices", "devices.list").lines().any(|l| l == rule));
    }
    // Without the rule, opening it is refused by the device cgroup.
    let o = d.docker(&run_args(&["--rm", "busybox", "sh", "-c", &open_node]));
    assert!(o.err().contains("Operation not permitted"), "{o:?}");
    // An existing --cidfile is refused before anything is created.
    let o = d.docker(&run_args(&["--cidfile", cidp, "busybox", "true"]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr.contains(&format!(
            "container ID file found, make sure the other container isn't running or delete {cidp}"
        )),
        "{o:?}"
    );
    if !is_reference() {
        let o = d.berth(&[
            "run",
            "--network",
            "none",
            "--cidfile",
            cidp,
            "busybox",
            "true",
        ]);
        assert_eq!(o.code, 125, "{o:?}");
        assert!(o.stderr.contains("container ID file found"), "{o:?}");
        // berth writes the file too, and removes it when the create fails.
        let c2 = d.root.join("cid2");
        let o = d.berth(&[
            "create",
            "--network",
            "none",
            "--cidfile",
            c2.to_str().unwrap(),
            "--cpu-quota",
            "10",
            "busybox",
        ]);
        assert_eq!(o.code, 125, "{o:?}");
        assert!(!c2.exists(), "cidfile left after a failed create");
        let o = d.berth(&[
            "create",
            "--network",
            "none",
            "--cidfile",
            c2.to_str().unwrap(),
            "busybox",
        ]);
        assert_eq!(std::fs::read_to_string(&c2).unwrap(), o.ok());
        d.docker(&["rm", o.stdout.trim()]).ok();
    }
    assert_eq!(d.all_container_ids(), vec![id.clone()]);
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn pid_ipc_uts_modes() {
    let Some(d) = setup() else { return };
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    let o = d.docker(&run_args(&[
        "--rm",
        "--pid",
        "host",
        "busybox",
        "cat",
        "/proc/1/comm",
    ]));
    assert_eq!(o.ok(), host_init.trim());
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let o = d.docker(&run_args(&["--rm", "--uts", "host", "busybox", "hostname"]));
    assert_eq!(o.ok(), host_name.trim());
    let o = d.docker(&run_args(&[
        "--rm",
        "--uts",
        "host",
        "--hostname",
        "x",
        "busybox",
        "true",
    ]));
    assert!(
        o.err()
            .contains("conflicting options: hostname and the UTS mode"),
        "{o:?}"
    );
    // --ipc host: the host's /dev/shm.
    let probe = format!("/dev/shm/berth-e2e-{}", std::process::id());
    std::fs::write(&probe, "host-shm").unwrap();
    let o = d.docker(&run_args(&[
        "--rm", "--ipc", "host", "busybox", "cat", &probe,
    ]));
    let _ = std::fs::remove_file(&probe);
    assert_eq!(o.ok(), "host-shm");
    let o = d.docker(&run_args(&[
        "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm",
    ]));
    assert!(o.err().contains("No such file or directory"), "{o:?}");

    // A shareable donor: others join its IPC namespace and see its /dev/shm; --pid
    // container: sees its processes.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "echo shared > /dev/shm/x; exec sleep 1000",
    ]))
    .ok();
    d.docker(&run_args(&[
        "-d", "--name", "private", "busybox", "sleep", "1000",
    ]))
    .ok();
    eventually("donor ready", Duration::from_secs(10), || {
        d.docker(&["exec", "donor", "cat", "/dev/shm/x"]).stdout == "shared\n"
    });
    let o = d.docker(&run_args(&[
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        "cat /dev/shm/x; df -k /dev/shm | tail -1; readlink /proc/self/ns/ipc",
    ]));
    let out = o.ok();
    assert!(out.starts_with("shared\n"), "{o:?}");
    assert!(out.contains(" 8192 "), "{o:?}");
    let donor_ipc = d
        .docker(&["exec", "donor", "readlink", "/proc/self/ns/ipc"])
        .ok();
    assert!(
        out.ends_with(&donor_ipc),
        "the donor's IPC namespace: {o:?} vs {donor_ipc}"
    );
    let o = d.docker(&run_args(&[
        "--rm",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]));
    assert_ne!(o.ok(), donor_ipc);
    let o = d.docker(&run_args(&[
        "--rm",
        "--pid",
        "container:donor",
        "busybox",
        "ps",
        "-o",
        "args",
    ]));
    assert!(o.ok().contains("sleep 1000"), "{o:?}");
    let o = d.docker(&run_args(&[
        "--rm",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]));
    assert!(o.err().contains("non-shareable IPC"), "{o:?}");
    assert_eq!(
        d.inspect(
            "donor",
            "{{.HostConfig.IpcMode}}|{{.HostConfig.PidMode}}|{{.HostConfig.UTSMode}}"
        ),
        "shareable||"
    );
    d.docker(&["stop", "-t", "0", "donor"]).ok();
    let o = d.docker(&run_args(&[
        "--rm",
        "--pid",
        "container:donor",
        "busybox",
        "true",
    ]));
    assert!(o.err().contains("is not running"), "{o:?}");
    let o = d.docker(&run_args(&[
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "true",
    ]));
    assert!(o.err().contains("is not running"), "{o:?}");
    d.docker(&["rm", "-f", "donor", "private"]).ok();
    let o = d.docker(&run_args(&["--rm", "--ipc", "bogus", "busybox", "true"]));
    assert!(o.err().contains("Invalid IPC mode: bogus"), "{o:?}");
    for (flag, want) in [
        ("--pid", "--pid: invalid PID mode"),
        ("--uts", "--uts: invalid UTS mode"),
    ] {
        let o = d.docker(&run_args(&["--rm", flag, "bogus", "busybox", "true"]));
        assert_eq!(o.code, 125, "{o:?}");
        assert!(o.stderr.contains(want), "{o:?}");
        if !is_reference() {
            let o = d.berth(&[
                "run",
                "--rm",
                "--network",
                "none",
                flag,
                "bogus",
                "busybox",
                "true",
            ]);
            assert_eq!(o.code, 125, "{o:?}");
            assert!(o.stderr.contains(want), "{o:?}");
        }
    }
    // --cgroupns private: the container sees its own cgroup as the root.
    let o = d.docker(&run_args(&[
        "--rm",
        "--cgroupns",
        "private",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]));
    let out = o.ok();
    assert!(out.lines().all(|l| l.ends_with(":/")), "{out}");
    let o = d.docker(&run_args(&["--rm", "busybox", "cat", "/proc/self/cgroup"]));
    assert!(
        o.ok()
            .lines()
            .any(|l| l.contains(":pids:/") && !l.ends_with(":/")),
        "{o:?}"
    );
    let o = d.docker(&run_args(&[
        "--rm",
        "--cgroupns",
        "bogus",
        "busybox",
        "true",
    ]));
    assert!(o.err().contains("--cgroupns: invalid CGROUP mode"), "{o:?}");
    let o = d.docker(&run_args(&["--rm", "--runtime", "foo", "busybox", "true"]));
    assert!(o.err().contains("Unknown runtime specified foo"), "{o:?}");
    if !is_reference() {
        // API 1.43+ (dockerd 20.10 predates it).
        let id = d
            .docker(&[
                "create",
                "--network",
                "none",
                "--annotation",
                "org.example.a=b",
                "busybox",
            ])
            .ok();
        assert_eq!(
            d.inspect(&id, "{{json .HostConfig.Annotations}}"),
            r#"{"org.example.a":"b"}"#
        );
        d.docker(&["start", &id]).ok();
        d.docker(&["rm", "-f", &id]).ok();
    }
    assert_no_containers(&d, "namespace modes");
}

#[test]
fn block_io_throttling() {
    let Some(d) = setup() else { return };
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some((dev, rdev)) = [
        "/dev/loop0",
        "/dev/sda",
        "/dev/vda",
        "/dev/nvme0n1",
        "/dev/xvda",
    ]
    .into_iter()
    .find_map(|p| {
        let m = std::fs::metadata(p).ok()?;
        m.file_type().is_block_device().then(|| (p, m.rdev()))
    }) else {
        eprintln!("skipped: no block device on this host");
        return;
    };
    let (maj, min) = (
        (rdev >> 8) & 0xfff,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    );
    let rbps = format!("{dev}:1mb");
    let wiops = format!("{dev}:100");
    let id = d
        .docker(&run_args(&[
            "-d",
            "--device-read-bps",
            &rbps,
            "--device-write-iops",
            &wiops,
            "busybox",
            "sleep",
            "1000",
        ]))
        .ok();
    assert_eq!(
        d.inspect(
            &id,
            "{{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}} {{json .HostConfig.BlkioDeviceWriteBps}}"
        ),
        format!(r#"[{{"Path":"{dev}","Rate":1048576}}] [{{"Path":"{dev}","Rate":100}}] []"#)
    );
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let f = |file: &str| cgroup_file(&d, "blkio", &id, file);
        assert_eq!(
            f("blkio.throttle.read_bps_device"),
            format!("{maj}:{min} 1048576")
        );
        assert_eq!(
            f("blkio.throttle.write_iops_device"),
            format!("{maj}:{min} 100")
        );
    }
    d.docker(&["rm", "-f", &id]).ok();
    // Without weight support, dockerd's warning and the weight dropped; otherwise stored.
    let o = d.docker(&[
        "create",
        "--network",
        "none",
        "--blkio-weight",
        "300",
        "busybox",
    ]);
    let id = o.ok();
    let w = d.inspect(&id, "{{.HostConfig.BlkioWeight}}");
    if o.stderr
        .contains("WARNING: Your kernel does not support Block I/O weight")
    {
        assert_eq!(w, "0");
    } else {
        assert_eq!(w, "300");
    }
    d.docker(&["rm", &id]).ok();

    let bad = [
        (
            "--device-read-bps",
            dev.to_string(),
            format!("bad format: {dev}"),
        ),
        (
            "--device-read-bps",
            format!("{dev}:x"),
            "The correct format is <device-path>:<number>[<unit>]".to_string(),
        ),
        (
            "--device-read-iops",
            format!("{dev}:1.5"),
            "The correct format is <device-path>:<number>. Number must be a positive integer"
                .to_string(),
        ),
        (
            "--device-write-bps",
            "rel:1mb".to_string(),
            "bad format for device path: rel:1mb".to_string(),
        ),
        (
            "--blkio-weight-device",
            format!("{dev}:5"),
            format!("invalid weight for device: {dev}:5"),
        ),
    ];
    for (flag, val, want) in &bad {
        let o = d.docker(&run_args(&["--rm", flag, val, "busybox", "true"]));
        assert_eq!(o.code, 125, "{flag} {val}: {o:?}");
        assert!(o.stderr.contains(want.as_str()), "{flag} {val}: {o:?}");
        if !is_reference() {
            let o = d.berth(&[
                "run",
                "--rm",
                "--network",
                "none",
                flag,
                val,
                "busybox",
                "true",
            ]);
            assert_eq!(o.code, 125, "berth {flag} {val}: {o:?}");
            assert!(
                o.stderr.contains(want.as_str()),
                "berth {flag} {val}: {o:?}"
            );
        }
    }
    let o = d.docker(&run_args(&[
        "--rm",
        "--device-read-bps",
        "/dev/nosuch:1mb",
        "busybox",
        "true",
    ]));
    assert!(
        o.err()
            .contains("stat /dev/nosuch: no such file or directory"),
        "{o:?}"
    );
    assert_no_containers(&d, "blkio");
}
