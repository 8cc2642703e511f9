//! `docker commit` through the real docker CLI (and `berth commit`): the rw layer becomes a
//! layer on top of the image's (files added, changed and deleted, as whiteouts), `-c`
//! changes, author, message, pause, tags, events, errors; and on disk: one new snapshot
//! and layer blob, nothing left behind by a failed commit.
use std::collections::BTreeSet;
use std::path::Path;

use berth_e2e::*;

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn commit_rw_layer_with_changes() {
    let Some(d) = setup() else { return };
    let base = d.inspect("busybox", "{{.Id}}");
    d.docker(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hello > /hello; rm /bin/ls; mkdir -p /data/sub; echo 1 > /data/sub/f; ln -s /hello /link; ln /hello /hard",
    ])
    .ok();
    let since = chrono_now();
    let out = d.docker(&[
        "commit",
        "-c",
        "ENV FOO=bar",
        "-c",
        "CMD [\"cat\", \"/hello\"]",
        "-c",
        "EXPOSE 8080",
        "-c",
        "LABEL team=infra",
        "-c",
        "WORKDIR /data",
        "--author",
        "Jane <jane@example.com>",
        "-m",
        "first commit",
        "c1",
        "myimg:v1",
    ]);
    let id = out.ok();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.inspect("myimg:v1", "{{.Id}}"), id);

    // The new image runs with the changes and the container's files.
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "myimg:v1"])
            .ok(),
        "hello"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "myimg:v1",
        "sh",
        "-c",
        "echo $FOO; pwd; cat /data/sub/f; readlink /link; cat /hard; ls /bin/ls || echo gone",
    ]);
    assert_eq!(o.ok(), "bar\n/data\n1\n/hello\nhello\ngone");

    // Inspect: Docker's fields.
    assert_eq!(
        d.inspect("myimg:v1", "{{.Author}}|{{.Comment}}|{{.Parent}}"),
        format!("Jane <jane@example.com>|first commit|{base}")
    );
    assert_eq!(
        d.inspect(
            "myimg:v1",
            "{{json .Config.ExposedPorts}} {{.Config.Labels.team}} {{.Config.WorkingDir}} {{json .Config.Cmd}}"
        ),
        r#"{"8080/tcp":{}} infra /data ["cat","/hello"]"#
    );
    assert!(d
        .inspect("myimg:v1", "{{json .Config.Env}}")
        .contains("FOO=bar"));
    let layers: Vec<String> =
        serde_json::from_str(&d.inspect("myimg:v1", "{{json .RootFS.Layers}}")).unwrap();
    let base_layers: Vec<String> =
        serde_json::from_str(&d.inspect("busybox", "{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);
    let tagged_at = d.inspect("myimg:v1", "{{.Metadata.LastTagTime}}");
    assert!(
        tagged_at.starts_with("20") && !tagged_at.starts_with("0001"),
        "{tagged_at}"
    );
    assert!(!d.inspect("myimg:v1", "{{.GraphDriver.Name}}").is_empty());
    let hist = d
        .docker(&["history", "--format", "{{.Comment}}", "myimg:v1"])
        .ok();
    assert_eq!(hist.lines().next(), Some("first commit"));

    // The commit event names the container; the image got a tag event.
    let ev = d
        .docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &chrono_now(),
            "--format",
            "{{.Type}} {{.Action}}",
        ])
        .ok();
    assert!(ev.contains("container commit"), "{ev}");
    assert!(ev.contains("image tag"), "{ev}");

    if d.kind == Kind::Berthd {
        // On disk: the layer tar is a blob named by its diff ID and it has a whiteout for
        // /bin/ls.
        let top = layers.last().unwrap();
        let blob = d
            .data_root
            .join("content/blobs/sha256")
            .join(&top["sha256:".len()..]);
        let out = std::process::Command::new("tar")
            .arg("tf")
            .arg(&blob)
            .output()
            .unwrap();
        let names = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(names.lines().any(|l| l == "bin/.wh.ls"), "{names}");
        assert!(names.lines().any(|l| l == "hello"), "{names}");
        let sha = std::process::Command::new("sha256sum")
            .arg(&blob)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&sha.stdout).starts_with(&top["sha256:".len()..]));
    }

    // The berth CLI: the same verb and output shape; untagged without a reference.
    if d.kind == Kind::Berthd {
        let id2 = d.berth(&["commit", "-m", "again", "c1"]).ok();
        assert!(id2.starts_with("sha256:"), "{id2}");
        assert_eq!(d.inspect(&id2, "{{.Comment}} {{len .RepoTags}}"), "again 0");
    }
}

fn chrono_now() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    )
}

#[test]
fn commit_running_container_pauses_and_resumes() {
    let Some(d) = setup() else { return };
    d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo up > /state; while true; do sleep 1; done",
    ])
    .ok();
    eventually("state file", std::time::Duration::from_secs(10), || {
        d.docker(&["exec", "live", "cat", "/state"]).stdout.trim() == "up"
    });
    let id = d.docker(&["commit", "live", "snap:1"]).ok();
    assert!(id.starts_with("sha256:"));
    assert_eq!(d.status("live"), "running");
    let id2 = d
        .docker(&["commit", "--pause=false", "live", "snap:2"])
        .ok();
    assert!(id2.starts_with("sha256:"));
    assert_eq!(d.status("live"), "running");
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "snap:2",
            "cat",
            "/state"
        ])
        .ok(),
        "up"
    );
    // The committed command is the container's.
    assert!(d
        .inspect("snap:1", "{{json .Config.Cmd}}")
        .contains("while true"));
    d.docker(&["rm", "-f", "live"]).ok();
}

#[test]
fn commit_without_changes_adds_no_layer() {
    let Some(d) = setup() else { return };
    let c = d.docker(&["create", "busybox"]).ok();
    let id = d.docker(&["commit", &c, "same:1"]).ok();
    assert_ne!(id, d.inspect("busybox", "{{.Id}}"));
    assert_eq!(
        d.inspect("same:1", "{{json .RootFS.Layers}}"),
        d.inspect("busybox", "{{json .RootFS.Layers}}")
    );
}

#[test]
fn commit_errors_leave_nothing() {
    let Some(d) = setup() else { return };
    let o = d.docker(&["commit", "nosuch", "x:1"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such container: nosuch"),
        "{}",
        o.stderr
    );
    d.docker(&["create", "--name", "cc", "busybox"]).ok();
    let snaps = entries(&d.data_root.join("snapshots"));
    let blobs = entries(&d.data_root.join("content/blobs/sha256"));
    let images = d.all_image_ids();

    let o = d.docker(&["commit", "-c", "FROB x", "cc", "x:1"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("frob is not a valid change command"),
        "{}",
        o.stderr
    );
    let o = d.docker(&["commit", "cc", "Bad:Ref"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.to_lowercase().contains("invalid reference format"),
        "{}",
        o.stderr
    );
    assert_eq!(d.all_image_ids(), images);
    if d.kind == Kind::Berthd {
        assert_eq!(entries(&d.data_root.join("snapshots")), snaps);
        assert_eq!(entries(&d.data_root.join("content/blobs/sha256")), blobs);
        let o = d.berth(&["commit", "nosuch"]);
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("No such container: nosuch"),
            "{}",
            o.stderr
        );
    }
}
