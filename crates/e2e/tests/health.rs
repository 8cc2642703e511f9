//! Health checks: HEALTHCHECK from the image (`import -c`), `--health-*` flags and
//! `--no-healthcheck`; State.Health (status, streak, last 5 results with output and exit
//! code), `(healthy)` / `(unhealthy)` / `(health: starting)` in ps, `--filter health=`,
//! `health_status` and exec events, timeouts, bad values; health kept across a daemon
//! restart (berth).
use std::time::Duration;

use berth_e2e::*;

fn health(d: &Daemon, c: &str) -> serde_json::Value {
    serde_json::from_str(&d.inspect(c, "{{json .State.Health}}")).unwrap()
}

fn ps_status(d: &Daemon, c: &str) -> String {
    d.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{c}$"),
        "--format",
        "{{.Status}}",
    ])
    .ok()
}

fn image_with_healthcheck(d: &Daemon) {
    d.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "HEALTHCHECK --interval=300ms --retries=2 CMD test -e /tmp/ok",
        busybox_tar().to_str().unwrap(),
        "hc:latest",
    ])
    .ok();
}

#[test]
fn image_healthcheck_starting_unhealthy_healthy() {
    let Some(d) = setup() else { return };
    image_with_healthcheck(&d);
    assert_eq!(
        d.inspect("hc", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","test -e /tmp/ok"],"Interval":300000000,"Retries":2}"#
    );
    let since = now_secs() - 1;
    d.docker(&run_args(&["-d", "--name", "h1", "hc", "sleep", "300"]))
        .ok();
    // The first probe runs one interval after the start.
    let s = ps_status(&d, "h1");
    assert!(
        s.ends_with("(health: starting)") || s.ends_with("(unhealthy)"),
        "{s}"
    );
    eventually("unhealthy", Duration::from_secs(20), || {
        ps_status(&d, "h1").ends_with("(unhealthy)")
    });
    let h = health(&d, "h1");
    assert_eq!(h["Status"], "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log[0]["ExitCode"], 1);
    assert!(log[0]["Start"].as_str().unwrap().ends_with('Z'));
    let f = d
        .docker(&[
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}}",
        ])
        .ok();
    assert_eq!(f, "h1");

    d.docker(&["exec", "h1", "touch", "/tmp/ok"]).ok();
    eventually("healthy", Duration::from_secs(20), || {
        ps_status(&d, "h1").ends_with("(healthy)")
    });
    let h = health(&d, "h1");
    assert_eq!(
        (h["Status"].as_str(), h["FailingStreak"].as_i64()),
        (Some("healthy"), Some(0))
    );
    // Only the last 5 results are kept.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(health(&d, "h1")["Log"].as_array().unwrap().len(), 5);
    let f = d
        .docker(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"])
        .ok();
    assert_eq!(f, "h1");

    // A stopped container's health: unhealthy (as dockerd).
    d.docker(&["stop", "-t", "1", "h1"]).ok();
    assert_eq!(health(&d, "h1")["Status"], "unhealthy");

    // Events: a status change is one health_status event; probes are execs.
    let until = (now_secs() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let ev = d
        .docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until,
            "--filter",
            "container=h1",
            "--format",
            "{{.Action}}|{{index .Actor.Attributes \"exitCode\"}}",
        ])
        .ok();
    let acts: Vec<&str> = ev.lines().collect();
    let hs: Vec<&&str> = acts
        .iter()
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(
        hs,
        [&"health_status: unhealthy|", &"health_status: healthy|"],
        "{ev}"
    );
    assert!(
        acts.contains(&"exec_create: /bin/sh -c test -e /tmp/ok|"),
        "{ev}"
    );
    assert!(
        acts.contains(&"exec_start: /bin/sh -c test -e /tmp/ok|"),
        "{ev}"
    );
    assert!(acts.contains(&"exec_die|1"), "{ev}");
    assert!(acts.contains(&"exec_die|0"), "{ev}");
}

#[test]
fn flags_override_and_disable() {
    let Some(d) = setup() else { return };
    image_with_healthcheck(&d);
    // --no-healthcheck: no probes, no health.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hc",
        "sleep",
        "300",
    ]))
    .ok();
    assert_eq!(
        d.inspect("off", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    // --health-cmd replaces the image's test, keeping its interval and retries.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "out",
        "--health-cmd",
        "echo hello; echo oops >&2",
        "hc",
        "sleep",
        "300",
    ]))
    .ok();
    assert_eq!(
        d.inspect("out", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","echo hello; echo oops >&2"],"Interval":300000000,"Retries":2}"#
    );
    eventually("healthy", Duration::from_secs(20), || {
        ps_status(&d, "out").ends_with("(healthy)")
    });
    let h = health(&d, "out");
    let out = h["Log"][0]["Output"].as_str().unwrap();
    assert!(out.contains("hello\n") && out.contains("oops\n"), "{h}");
    assert_eq!(d.inspect("off", "{{json .State.Health}}"), "null");
    let s = ps_status(&d, "off");
    assert!(s.starts_with("Up") && !s.contains('('), "{s}");
    let none = d
        .docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .ok();
    assert_eq!(none, "off");

    // A probe that hangs is cut at the timeout.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "500ms",
        "--health-timeout",
        "500ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]))
    .ok();
    eventually("unhealthy by timeout", Duration::from_secs(20), || {
        ps_status(&d, "slow").ends_with("(unhealthy)")
    });
    let h = health(&d, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(
        h["Log"][0]["Output"],
        "Health check exceeded timeout (500ms)"
    );

    // A start period: failures inside it do not count.
    d.docker(&run_args(&[
        "-d",
        "--name",
        "grace",
        "--health-cmd",
        "false",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "--health-start-period",
        "30s",
        "busybox",
        "sleep",
        "300",
    ]))
    .ok();
    eventually("probes ran", Duration::from_secs(20), || {
        health(&d, "grace")["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    });
    let h = health(&d, "grace");
    assert_eq!(
        (h["Status"].as_str(), h["FailingStreak"].as_i64()),
        (Some("starting"), Some(0))
    );
    let f = d
        .docker(&[
            "ps",
            "--filter",
            "health=starting",
            "--format",
            "{{.Names}}",
        ])
        .ok();
    assert_eq!(f, "grace");
    let e = d.docker(&["ps", "--filter", "health=bogus"]).err();
    assert!(
        e.contains("Unrecognised filter value for health: bogus"),
        "{e}"
    );
}

#[test]
fn bad_health_options() {
    let Some(d) = setup() else { return };
    let o = d.docker(&run_args(&["--health-interval", "-1s", "busybox", "true"]));
    assert_eq!(o.code, 125);
    assert!(
        o.stderr.contains("--health-interval cannot be negative"),
        "{o:?}"
    );
    let o = d.docker(&run_args(&[
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "busybox",
        "true",
    ]));
    assert_eq!(o.code, 125);
    assert!(
        o.stderr
            .contains("--no-healthcheck conflicts with --health-* options"),
        "{o:?}"
    );
    let o = d.docker(&run_args(&[
        "--health-interval",
        "500us",
        "busybox",
        "true",
    ]));
    assert_eq!(o.code, 125);
    assert!(
        o.stderr
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{o:?}"
    );
    assert!(d.all_container_ids().is_empty());
    if !is_reference() {
        for args in [
            &["--health-timeout", "-2s"][..],
            &["--no-healthcheck", "--health-retries", "2"][..],
        ] {
            let mut a = vec!["run", "--network", "none"];
            a.extend_from_slice(args);
            a.extend_from_slice(&["busybox", "true"]);
            let o = d.berth(&a);
            assert_eq!(o.code, 125, "{o:?}");
            assert!(
                o.stderr.contains("cannot be negative") || o.stderr.contains("conflicts"),
                "{o:?}"
            );
        }
        // berth's CLI sends what the docker CLI sends.
        d.berth(&[
            "create",
            "--name",
            "bh",
            "--health-cmd",
            "true",
            "--health-interval",
            "2s",
            "--health-retries",
            "4",
            "busybox",
            "sleep",
            "1",
        ])
        .ok();
        assert_eq!(
            d.inspect("bh", "{{json .Config.Healthcheck}}"),
            r#"{"Test":["CMD-SHELL","true"],"Interval":2000000000,"Retries":4}"#
        );
    }
}

/// berth keeps health across a daemon crash (live restore): no flap back to "starting".
#[test]
fn health_survives_a_daemon_restart() {
    if is_reference() {
        return; // dockerd resets a restored container's health to starting.
    }
    let Some(mut d) = setup() else { return };
    d.docker(&run_args(&[
        "-d",
        "--name",
        "hs",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 300",
    ]))
    .ok();
    eventually("healthy", Duration::from_secs(20), || {
        ps_status(&d, "hs").ends_with("(healthy)")
    });
    let before = health(&d, "hs");
    d.kill9();
    d.restart();
    let after = health(&d, "hs");
    assert_eq!(after["Status"], "healthy", "{after}");
    assert_eq!(after["Log"][0], before["Log"][0]);
    // The monitor goes on.
    d.docker(&["exec", "hs", "rm", "/tmp/ok"]).ok();
    eventually(
        "unhealthy after the restart",
        Duration::from_secs(20),
        || ps_status(&d, "hs").ends_with("(unhealthy)"),
    );
}
