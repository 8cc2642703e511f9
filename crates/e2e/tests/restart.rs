//! Restart policies: on-failure[:N] counts and gives up, always restarts until stopped by
//! hand, a manual start resets RestartCount, `restarting` in inspect and ps, daemon restart
//! starts always/unless-stopped containers as Docker does, `update --restart` on a running
//! container, bad policies refused; berth's `on-unhealthy`.
use std::time::Duration;

use berth_e2e::*;

/// `HostConfig.RestartPolicy` (compared as JSON: the CLI's key order differs by daemon).
fn policy(d: &Daemon, c: &str) -> serde_json::Value {
    serde_json::from_str(&d.inspect(c, "{{json .HostConfig.RestartPolicy}}")).unwrap()
}

fn restart_count(d: &Daemon, c: &str) -> i64 {
    d.inspect(c, "{{.RestartCount}}").parse().unwrap()
}

/// Actions of container `name` between `since` and now.
fn actions(d: &Daemon, name: &str, since: u64) -> Vec<String> {
    let until = (now_secs() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    d.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until,
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ])
    .ok()
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn on_failure_retries_then_gives_up() {
    let Some(d) = setup() else { return };
    let since = now_secs() - 1;
    d.docker(&run_args(&[
        "-d",
        "--name",
        "of",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]))
    .ok();
    eventually("two restarts", Duration::from_secs(30), || {
        restart_count(&d, "of") == 2 && d.status("of") == "exited"
    });
    // And no third one.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        d.inspect(
            "of",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"
        ),
        "2 exited 3"
    );
    assert_eq!(
        policy(&d, "of"),
        serde_json::json!({"MaximumRetryCount": 2, "Name": "on-failure"})
    );
    let acts = actions(&d, "of", since);
    assert_eq!(acts.iter().filter(|a| *a == "start").count(), 3, "{acts:?}");
    assert_eq!(acts.iter().filter(|a| *a == "die").count(), 3, "{acts:?}");

    // A manual start resets the count: two more restarts.
    d.docker(&["start", "of"]).ok();
    eventually("two more restarts", Duration::from_secs(30), || {
        d.inspect("of", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });

    // A zero exit is not a failure.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]))
    .ok();
    d.wait_status("ok", "exited", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(restart_count(&d, "ok"), 0);
}

#[test]
fn always_restarts_until_stopped_by_hand() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d",
            "--name",
            "al",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.3; exit 5",
        ]))
        .ok();
    // Backoff grows (100 ms, 200 ms, 400 ms, ...): a restarting window shows in inspect
    // and ps.
    let mut saw_ps = String::new();
    eventually("restarting", Duration::from_secs(30), || {
        let st = d.inspect(
            "al",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}",
        );
        if st == "restarting true true" {
            saw_ps = d
                .docker(&[
                    "ps",
                    "--filter",
                    "status=restarting",
                    "--format",
                    "{{.Names}} {{.Status}}",
                ])
                .ok();
        }
        saw_ps.starts_with("al Restarting (5)")
    });
    assert!(saw_ps.ends_with("ago"), "{saw_ps}");
    eventually("several restarts", Duration::from_secs(30), || {
        restart_count(&d, "al") >= 3
    });
    // A stop by hand ends it, also while a restart is pending.
    d.docker(&["stop", "al"]).ok();
    assert_eq!(d.status("al"), "exited");
    let n = restart_count(&d, "al");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.status("al"), "exited");
    assert_eq!(restart_count(&d, "al"), n);
    // Nothing of it stays on the host (dockerd keeps a mount of its own data root).
    if !is_reference() {
        assert!(
            d.mounts_under_roots().is_empty(),
            "{:?}",
            d.mounts_under_roots()
        );
    }
    // rm -f of a restarting container.
    d.docker(&["start", "al"]).ok();
    eventually("restarting again", Duration::from_secs(30), || {
        restart_count(&d, "al") >= 1
    });
    d.docker(&["rm", "-f", "al"]).ok();
    assert!(d.docker(&["inspect", &id]).code != 0);
}

#[test]
fn daemon_restart_starts_always_and_unless_stopped() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start();
    d.busybox_image();
    let run = |name: &str, policy: &str| {
        d.docker(&run_args(&[
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "300",
        ]))
        .ok()
    };
    run("al-up", "always");
    run("al-down", "always");
    run("us-up", "unless-stopped");
    run("us-down", "unless-stopped");
    run("no-down", "no");
    d.docker(&["stop", "-t", "1", "al-down", "us-down", "no-down"])
        .ok();
    for c in ["al-down", "us-down", "no-down"] {
        assert_eq!(d.status(c), "exited");
    }
    d.stop();
    d.restart();
    for c in ["al-up", "al-down", "us-up"] {
        d.wait_status(c, "running", Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_secs(2));
    // A manual stop holds `always` back only until the daemon restarts; `unless-stopped`
    // stays stopped.
    assert_eq!(d.status("us-down"), "exited");
    assert_eq!(d.status("no-down"), "exited");
    let ps = d.docker(&["ps", "--format", "{{.Names}}"]).ok();
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort();
    assert_eq!(names, ["al-down", "al-up", "us-up"]);
}

#[test]
fn update_restart_policy_of_a_running_container() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "up",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 1",
    ]))
    .ok();
    assert_eq!(
        d.docker(&["update", "--restart", "on-failure:1", "up"])
            .ok(),
        "up"
    );
    assert_eq!(
        policy(&d, "up"),
        serde_json::json!({"MaximumRetryCount":1,"Name":"on-failure"})
    );
    eventually("one restart", Duration::from_secs(30), || {
        d.inspect("up", "{{.RestartCount}} {{.State.Status}}") == "1 exited"
    });
    // Auto-remove containers keep their policy.
    d.docker(&run_args(&[
        "-d", "--rm", "--name", "rmme", "busybox", "sleep", "300",
    ]))
    .ok();
    let e = d.docker(&["update", "--restart", "always", "rmme"]).err();
    assert!(
        e.contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{e}"
    );
    let e = d.docker(&["update", "--restart", "bogus", "up"]).err();
    assert!(e.contains("invalid restart policy 'bogus'"), "{e}");
}

#[test]
fn bad_policies_are_refused() {
    let Some(d) = setup() else { return };
    let o = d.docker(&run_args(&["--restart", "always:3", "busybox", "true"]));
    assert_eq!(o.code, 125);
    assert!(
        o.stderr
            .contains("maximum retry count cannot be used with restart policy 'always'"),
        "{o:?}"
    );
    let o = d.docker(&run_args(&["--restart", "bogus", "busybox", "true"]));
    assert_eq!(o.code, 125);
    assert!(o.stderr.contains("invalid restart policy 'bogus'"), "{o:?}");
    let o = d.docker(&run_args(&[
        "--rm",
        "--restart",
        "always",
        "busybox",
        "true",
    ]));
    assert_eq!(o.code, 125);
    assert!(
        o.stderr
            .contains("conflicting options: cannot specify both --restart and --rm"),
        "{o:?}"
    );
    // Nothing was created.
    assert!(d.all_container_ids().is_empty());
    // berth's CLI says the same.
    if !is_reference() {
        let o = d.berth(&[
            "run",
            "--network",
            "none",
            "--restart",
            "always:3",
            "busybox",
            "true",
        ]);
        assert_eq!(o.code, 125);
        assert!(
            o.stderr
                .contains("maximum retry count cannot be used with restart policy 'always'"),
            "{o:?}"
        );
    }
}

/// berth's `on-unhealthy`: restarts a container whose health check turns it unhealthy.
#[test]
fn on_unhealthy_restarts_an_unhealthy_container() {
    if is_reference() {
        return; // Not a Docker policy.
    }
    let Some(d) = setup() else { return };
    // Healthy for a moment (the file exists), then unhealthy (it goes away); every
    // restart starts from the image again, so it recovers and fails again.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "ou",
        "--restart",
        "on-unhealthy",
        "--stop-timeout",
        "1",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 300",
    ]))
    .ok();
    assert_eq!(
        policy(&d, "ou"),
        serde_json::json!({"MaximumRetryCount":0,"Name":"on-unhealthy"})
    );
    eventually(
        "a restart for unhealthiness",
        Duration::from_secs(30),
        || restart_count(&d, "ou") >= 1,
    );
    d.wait_status("ou", "running", Duration::from_secs(10));
    // A manual stop ends it.
    d.docker(&["stop", "-t", "1", "ou"]).ok();
    let n = restart_count(&d, "ou");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.status("ou"), "exited");
    assert_eq!(restart_count(&d, "ou"), n);

    // Through berth's CLI, with a maximum, and `update` to and from it.
    d.berth(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ou2",
        "--restart",
        "on-unhealthy:2",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        policy(&d, "ou2"),
        serde_json::json!({"MaximumRetryCount":2,"Name":"on-unhealthy"})
    );
    d.berth(&["update", "--restart", "always", "ou2"]).ok();
    assert_eq!(
        policy(&d, "ou2"),
        serde_json::json!({"MaximumRetryCount":0,"Name":"always"})
    );
    d.docker(&["update", "--restart", "on-unhealthy", "ou2"])
        .ok();
    assert_eq!(
        d.inspect("ou2", "{{.HostConfig.RestartPolicy.Name}}"),
        "on-unhealthy"
    );
}

/// berth keeps restart state across a daemon crash: `RestartCount`, and a restart that was
/// pending (the container `restarting`) when berthd died happens once it is back.
#[test]
fn restart_state_survives_a_daemon_crash() {
    if is_reference() {
        return; // dockerd without live restore stops its containers when it goes down.
    }
    let Some(mut d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "cr",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ]))
    .ok();
    // After a few quick failures the backoff reaches seconds: catch it restarting.
    eventually("restarting with a count", Duration::from_secs(60), || {
        restart_count(&d, "cr") >= 4 && d.status("cr") == "restarting"
    });
    let n = restart_count(&d, "cr");
    d.kill9();
    d.restart();
    // The pending restart keeps the count (a fresh start would reset it to 0).
    for _ in 0..10 {
        let now = restart_count(&d, "cr");
        assert!(now >= n, "{now} < {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eventually("restarted after the crash", Duration::from_secs(30), || {
        restart_count(&d, "cr") > n
    });
    d.docker(&["stop", "cr"]).ok();
    assert_eq!(d.status("cr"), "exited");
}
