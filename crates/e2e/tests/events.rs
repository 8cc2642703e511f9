//! `docker events`: history replay with --since/--until, filters, --format templates, the
//! JSON shape (Type/Action/Actor/scope/time/timeNano and the legacy status/id/from), live
//! streaming, and the container lifecycle actions.
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use berth_e2e::*;

#[test]
fn lifecycle_events_replayed_with_since_until() {
    let Some(d) = setup() else { return };
    let since = now_secs() - 1;
    let id = d
        .docker(&[
            "run", "-d", "--name", "ev1", "--label", "team=a", "busybox", "sh", "-c", "exit 3",
        ])
        .ok();
    d.wait_status(&id, "exited", Duration::from_secs(20));
    let id2 = d
        .docker(&["run", "-d", "--name", "ev2", "busybox", "sleep", "300"])
        .ok();
    d.docker(&["kill", "-s", "USR1", "ev2"]).ok();
    d.docker(&["stop", "-t", "1", "ev2"]).ok();
    d.docker(&["rm", "ev1", "ev2"]).ok();
    let until = now_secs() + 1;
    std::thread::sleep(Duration::from_millis(1100));
    let s = since.to_string();
    let u = until.to_string();

    // Actions of ev1 in order, with the exit code on die.
    let o = d.docker(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "container=ev1",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let lines: Vec<_> = o.ok().lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(
        lines,
        [
            "container create ev1",
            "container start ev1",
            "container die ev1 3",
            "container destroy ev1",
        ],
        "{o:?}"
    );

    // ev2: kill with the signal number, then stop's kill 15 and 9, die, stop, destroy.
    let o = d.docker(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        &format!("container={id2}"),
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"signal\"}}",
    ]);
    let got = o.ok();
    let acts: Vec<_> = got.lines().map(str::trim).collect();
    assert_eq!(
        acts,
        [
            "create", "start", "kill 10", "kill 15",
            // sleep as PID 1 ignores SIGTERM: stop escalates after -t 1.
            "kill 9", "die", "stop", "destroy",
        ],
        "{got}"
    );

    // The berth CLI prints the same events: its default line and its templates.
    for fmt in [None, Some("{{.Type}} {{.Action}} {{.Actor.ID}}")] {
        let mut args = vec![
            "events",
            "--since",
            &s,
            "--until",
            &u,
            "--filter",
            "container=ev1",
        ];
        if let Some(f) = fmt {
            args.extend(["--format", f]);
        }
        let want = d.docker(&args).ok();
        assert!(want.lines().count() >= 4, "{want}");
        assert_eq!(d.berth(&args).ok(), want);
    }

    // Filters: event, label, type.
    let o = d.docker(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert_eq!(o.ok(), "ev1\nev2");
    let o = d.docker(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "label=team=a",
        "--filter",
        "event=create",
        "--format",
        "{{.Actor.ID}}",
    ]);
    assert_eq!(o.ok(), id);
    let o = d.docker(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "type=network",
    ]);
    // Only the default bridge's connect/disconnect of these containers (none where the
    // daemon has no default bridge, as the reference dockerd here).
    let got = o.ok();
    assert!(
        got.lines()
            .all(|l| l.contains(" network connect ") || l.contains(" network disconnect ")),
        "{got}"
    );

    // The JSON shape, legacy fields included.
    let r = d
        .http(
            "GET",
            &format!("/events?since={s}&until={u}&filters=%7B%22event%22%3A%5B%22create%22%5D%7D"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["Type"], "container");
    assert_eq!(first["Action"], "create");
    assert_eq!(first["status"], "create");
    assert_eq!(first["id"], id);
    assert_eq!(first["from"], "busybox");
    assert_eq!(first["scope"], "local");
    assert_eq!(first["Actor"]["Attributes"]["image"], "busybox");
    assert_eq!(first["Actor"]["Attributes"]["team"], "a");
    let t = first["time"].as_i64().unwrap();
    let tn = first["timeNano"].as_i64().unwrap();
    assert_eq!(t, tn / 1_000_000_000);
    assert!(t as u64 >= since && t as u64 <= until);

    // Bad input.
    let r = d.http("GET", "/events?since=yesterday", &[], None).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d
        .http("GET", &format!("/events?since={u}&until={s}"), &[], None)
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn live_stream_and_exec_events() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&["run", "-d", "--name", "live", "busybox", "sleep", "300"])
        .ok();
    let mut child = d
        .docker_cmd(&[
            "events",
            "--filter",
            "container=live",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    // Give the subscription a moment to be in place.
    std::thread::sleep(Duration::from_millis(500));
    d.docker(&["exec", "live", "true"]).ok();
    d.docker(&["rm", "-f", &id]).ok();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !got.iter().any(|l: &String| l == "destroy") && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_secs(1)) {
            got.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(got.iter().any(|l| l == "exec_create: true"), "{got:?}");
    assert!(got.iter().any(|l| l == "exec_start: true"), "{got:?}");
    assert!(got.iter().any(|l| l == "kill"), "{got:?}");
    assert!(got.iter().any(|l| l == "die"), "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("destroy"), "{got:?}");
}
