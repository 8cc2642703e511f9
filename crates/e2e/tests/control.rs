//! Container control: pause/unpause (the freezer cgroup on the host), rename, and the
//! wrong-state and bad-name errors.
use std::time::Duration;

use berth_e2e::*;

fn freezer_state(d: &Daemon, id: &str) -> String {
    let dir = d.cgroup_dir("freezer", id);
    if dir.join("cgroup.freeze").exists() {
        std::fs::read_to_string(dir.join("cgroup.freeze"))
            .unwrap()
            .trim()
            .to_owned()
    } else {
        std::fs::read_to_string(dir.join("freezer.state"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

#[test]
fn pause_unpause() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&["run", "-d", "--name", "p1", "busybox", "sleep", "300"])
        .ok();
    assert_eq!(d.docker(&["pause", "p1"]).ok(), "p1");
    assert_eq!(d.status(&id), "paused");
    assert_eq!(
        d.inspect(&id, "{{.State.Paused}} {{.State.Running}}"),
        "true true"
    );
    assert!(["FROZEN", "1"].contains(&freezer_state(&d, &id).as_str()));
    let ps = d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.starts_with("p1 Up") && ps.ends_with("(Paused)"), "{ps}");
    let e = d.docker(&["pause", "p1"]).err();
    assert!(
        e.contains(&format!("Container {id} is already paused")),
        "{e}"
    );
    let e = d.docker(&["exec", "p1", "true"]).err();
    assert!(e.contains("is paused"), "{e}");
    assert_eq!(d.docker(&["unpause", "p1"]).ok(), "p1");
    assert_eq!(d.status(&id), "running");
    assert!(["THAWED", "0"].contains(&freezer_state(&d, &id).as_str()));
    let e = d.docker(&["unpause", "p1"]).err();
    assert!(e.contains(&format!("Container {id} is not paused")), "{e}");
    d.docker(&["exec", "p1", "true"]).ok();

    // A paused container can be stopped and force-removed; nothing stays behind.
    d.docker(&["pause", "p1"]).ok();
    d.docker(&["stop", "-t", "1", "p1"]).ok();
    assert_eq!(d.status(&id), "exited");
    let e = d.docker(&["pause", "p1"]).err();
    assert!(e.contains(&format!("Container {id} is not running")), "{e}");
    d.docker(&["start", "p1"]).ok();
    d.docker(&["pause", "p1"]).ok();
    d.docker(&["rm", "-f", "p1"]).ok();
    eventually("cgroup removed", Duration::from_secs(10), || {
        !d.cgroup_dir("freezer", &id).exists()
    });
    assert!(
        d.mounts_under_roots().is_empty(),
        "{:?}",
        d.mounts_under_roots()
    );
    let e = d.docker(&["pause", "p1"]).err();
    assert!(e.contains("No such container: p1"), "{e}");
}

#[test]
fn rename() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&["create", "--name", "r1", "busybox", "true"])
        .ok();
    d.docker(&["create", "--name", "r2", "busybox", "true"])
        .ok();
    d.docker(&["rename", "r1", "renamed"]).ok();
    assert_eq!(d.inspect(&id, "{{.Name}}"), "/renamed");
    assert_eq!(d.container_id("renamed"), id);
    let e = d.docker(&["rename", "renamed", "r2"]).err();
    assert!(
        e.contains("The container name \"/r2\" is already in use"),
        "{e}"
    );
    let e = d.docker(&["rename", "renamed", "renamed"]).err();
    assert!(e.contains("same name as its current name"), "{e}");
    let e = d.docker(&["rename", "renamed", "bad/name"]).err();
    assert!(e.contains("Invalid container name (bad/name)"), "{e}");
    let e = d.docker(&["rename", "nosuch", "x1"]).err();
    assert!(e.contains("No such container: nosuch"), "{e}");
    // The old name is free again.
    d.docker(&["create", "--name", "r1", "busybox", "true"])
        .ok();
    let ev = d
        .docker(&[
            "events",
            "--since",
            "0",
            "--until",
            &format!(
                "{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 1
            ),
            "--filter",
            "event=rename",
            "--format",
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
        ])
        .ok();
    assert_eq!(ev, "renamed /r1");
    // The berth CLI drives the same endpoint, with docker's errors.
    assert_eq!(d.berth(&["rename", "renamed", "again"]).ok(), "");
    assert_eq!(d.inspect(&id, "{{.Name}}"), "/again");
    let e = d.berth(&["rename", "again", "r2"]).err();
    assert!(e.contains("is already in use"), "{e}");
    assert_eq!(d.berth(&["pause", "nosuch"]).code, 1);
}

#[test]
fn top_lists_the_container_processes() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d",
            "--name",
            "tp",
            "busybox",
            "sh",
            "-c",
            "sleep 1001 & sleep 1002",
        ]))
        .ok();
    eventually("both sleeps", std::time::Duration::from_secs(10), || {
        d.docker(&["top", "tp"]).ok().matches("sleep 100").count() == 2
    });
    let out = d.docker(&["top", "tp"]).ok();
    let header = out.lines().next().unwrap();
    for t in ["UID", "PID", "PPID", "CMD"] {
        assert!(header.split_whitespace().any(|h| h == t), "{header}");
    }
    let rows: Vec<&str> = out.lines().skip(1).collect();
    // (sh execs its last command: init is `sleep 1002`.)
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows.iter().any(|r| r.ends_with("sleep 1001"))
            && rows.iter().any(|r| r.ends_with("sleep 1002")),
        "{out}"
    );
    // The PIDs are host PIDs, the container's init among them.
    let pid = d.container_pid(&id).to_string();
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().nth(1) == Some(pid.as_str())),
        "{out}"
    );
    // ps options pass through; the berth CLI prints the same table.
    let o = d.docker(&["top", "tp", "-o", "pid,comm"]).ok();
    assert_eq!(
        o.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(d.berth(&["top", "tp", "-o", "pid,comm"]).ok(), o);
    // Bad ps options and stopped containers are errors.
    let bad = d.docker(&["top", "tp", "--no-such-ps-flag"]);
    assert_ne!(bad.code, 0);
    d.docker(&["kill", "tp"]).ok();
    let o = d.docker(&["top", "tp"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is not running"), "{o:?}");
}
