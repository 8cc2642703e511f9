//! Live restore: containers outlive a SIGKILLed daemon; a restarted daemon on the same
//! roots finds them (same PIDs), and exec, logs -f, stop and wait keep working; output
//! written while the daemon was down is in the log. (dockerd needs `--live-restore`.)
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use berth_e2e::*;

fn setup_live() -> Option<Daemon> {
    if skip_unless_root() {
        return None;
    }
    let d = Daemon::start_with(Options { live_restore: true });
    d.busybox_image();
    Some(d)
}

#[test]
fn containers_survive_a_daemon_crash() {
    let Some(mut d) = setup_live() else { return };
    let counter = "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done";
    let a = d
        .docker(&run_args(&[
            "-d", "--name", "ctr-a", "-m", "64m", "busybox", "sh", "-c", counter,
        ]))
        .ok();
    let b = d
        .docker(&run_args(&[
            "-d", "--name", "ctr-b", "busybox", "sleep", "1000",
        ]))
        .ok();
    let quick = d
        .docker(&run_args(&[
            "-d",
            "--name",
            "ctr-quick",
            "busybox",
            "sh",
            "-c",
            "sleep 2; exit 3",
        ]))
        .ok();
    let pid_a = d.container_pid(&a);
    let pid_b = d.container_pid(&b);
    eventually("first ticks", Duration::from_secs(10), || {
        d.docker(&["logs", "ctr-a"]).stdout.lines().count() >= 2
    });
    let before_lines = d.docker(&["logs", "ctr-a"]).stdout.lines().count();

    d.kill9();
    // The daemon is gone; the containers are not.
    assert!(d.docker(&["ps"]).code != 0);
    std::thread::sleep(Duration::from_secs(3));
    assert!(pid_alive(pid_a) && pid_alive(pid_b));
    d.restart();

    assert_eq!(d.container_pid("ctr-a"), pid_a);
    assert_eq!(d.container_pid("ctr-b"), pid_b);
    assert_eq!(d.status("ctr-a"), "running");
    assert_eq!(
        d.docker(&["ps", "--format", "{{.Names}}"]).ok(),
        "ctr-b\nctr-a"
    );
    // The short container exited while the daemon was down: its exit code was kept.
    d.wait_status(&quick, "exited", Duration::from_secs(15));
    assert_eq!(d.exit_code(&quick), 3);
    assert_eq!(d.docker(&["wait", &quick]).ok(), "3");

    // Output written while berthd was down is in the log, without gaps.
    let logs = d.docker(&["logs", "ctr-a"]).ok();
    let nums: Vec<u32> = logs
        .lines()
        .map(|l| l.trim_start_matches("tick").parse().unwrap())
        .collect();
    assert!(
        nums.len() >= before_lines + 10,
        "only {} lines after 3s down (had {before_lines})",
        nums.len()
    );
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u32 + 1, "log has a gap or a duplicate: {logs}");
    }

    // exec, logs -f, stop, rm all work on restored containers.
    assert_eq!(
        d.docker(&["exec", "ctr-b", "echo", "exec-after-restart"])
            .ok(),
        "exec-after-restart"
    );
    assert_eq!(
        d.docker(&[
            "exec",
            "ctr-a",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ])
        .ok(),
        "67108864"
    );
    let mut f = d
        .docker_cmd(&["logs", "-f", "--tail", "0", "ctr-a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(f.stdout.take().unwrap()).lines();
    let next = lines.next().unwrap().unwrap();
    assert!(next.starts_with("tick"), "{next}");
    assert_eq!(d.docker(&["stop", "-t", "1", "ctr-a"]).ok(), "ctr-a");
    assert!(f.wait().unwrap().success());
    assert_eq!(d.status("ctr-a"), "exited");
    assert!(!pid_alive(pid_a));

    // A second crash and restart: still consistent. (dockerd 20.10 cannot be restarted a
    // second time on its managed containerd after SIGKILL: "timeout waiting for containerd".)
    if d.kind == Kind::Berthd {
        d.kill9();
        d.restart();
    }
    assert_eq!(d.container_pid("ctr-b"), pid_b);
    assert_eq!(d.status("ctr-a"), "exited");
    assert_eq!(
        d.docker(&["rm", "-f", "ctr-a", "ctr-b", "ctr-quick"]).ok(),
        "ctr-a\nctr-b\nctr-quick"
    );
    eventually("ctr-b gone", Duration::from_secs(5), || !pid_alive(pid_b));
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

#[test]
fn graceful_daemon_restart_keeps_containers() {
    let Some(mut d) = setup_live() else { return };
    let id = d
        .docker(&run_args(&[
            "-d", "--name", "keep", "busybox", "sleep", "1000",
        ]))
        .ok();
    let pid = d.container_pid(&id);
    d.stop();
    assert!(
        pid_alive(pid),
        "SIGTERM to the daemon must not stop containers"
    );
    d.restart();
    assert_eq!(d.container_pid("keep"), pid);
    // wait follows a restored container to its end.
    let w = d
        .docker_cmd(&["wait", "keep"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.docker(&["kill", "keep"]).ok();
    let out = w.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n");
    d.docker(&["rm", "keep"]).ok();
}

/// `create` saves a container's layer hold and its record side by side, so a crash may keep
/// the record and lose the hold. The restarted daemon takes the hold again: the container
/// starts, and its layers outlive `rmi -f` of its image.
#[test]
fn lost_layer_hold_is_taken_again() {
    let Some(mut d) = setup_live() else { return };
    let id = d
        .docker(&[
            "create",
            "--name",
            "unheld",
            "busybox",
            "ls",
            "/bin/busybox",
        ])
        .ok();
    d.kill9();
    let hold = d.data_root.join("image/holds").join(format!("{id}.json"));
    std::fs::remove_file(&hold).expect("the hold exists");
    d.restart();
    assert!(hold.exists(), "the hold is taken again");
    d.docker(&["rmi", "-f", "busybox"]).ok();
    let out = d.docker(&["start", "-a", "unheld"]).ok();
    assert!(
        out.contains("/bin/busybox"),
        "the container ran on its held layers: {out}"
    );
    d.docker(&["rm", "unheld"]).ok();
    assert!(!hold.exists(), "removal drops the hold");
}

/// A new container's record and hold are created in place, so a crash before `create`
/// answered may leave them empty: the restarted daemon takes that for a create that never
/// happened and deletes what it left, while other containers stay.
#[test]
fn empty_record_of_an_unfinished_create_is_dropped() {
    let Some(mut d) = setup_live() else { return };
    let kept = d
        .docker(&["create", "--name", "kept", "busybox", "true"])
        .ok();
    let torn = d
        .docker(&["create", "--name", "torn", "busybox", "true"])
        .ok();
    d.kill9();
    let dir = d.data_root.join("containers").join(&torn);
    let hold = d.data_root.join("image/holds").join(format!("{torn}.json"));
    std::fs::write(dir.join("config.v2.json"), b"").unwrap();
    std::fs::write(&hold, b"").unwrap();
    d.restart();
    assert!(
        !dir.exists(),
        "the unfinished create's directory is deleted"
    );
    assert!(!hold.exists(), "its empty hold is deleted");
    assert_eq!(d.all_container_ids(), vec![kept.clone()]);
    let o = d.docker(&["create", "--name", "torn", "busybox", "true"]);
    assert_eq!(o.code, 0, "the name is free again: {o:?}");
    d.docker(&["rm", "kept", "torn"]).ok();
}
