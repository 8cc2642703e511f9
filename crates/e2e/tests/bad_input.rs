//! Bad input: unknown objects, malformed requests, invalid references, hostile tarballs,
//! name clashes and wrong-state operations. Every case checks the user-visible error and
//! that nothing was left behind (no extra containers or images, nothing outside the roots).
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_e2e::*;

#[test]
fn unknown_containers_and_images() {
    let Some(d) = setup() else { return };
    for args in [
        &["stop", "nosuch"][..],
        &["rm", "nosuch"],
        &["kill", "nosuch"],
        &["logs", "nosuch"],
        &["restart", "nosuch"],
        &["wait", "nosuch"],
        &["exec", "nosuch", "true"],
        &["attach", "nosuch"],
        &["start", "nosuch"],
    ] {
        let o = d.docker(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.starts_with("Error response from daemon: "),
            "{args:?}: {o:?}"
        );
        assert!(
            o.stderr.contains("No such container: nosuch\n"),
            "{args:?}: {o:?}"
        );
        assert_eq!(o.stdout, "", "{args:?}");
    }
    // rm -f reports the unknown name but succeeds.
    let o = d.docker(&["rm", "-f", "nosuch"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (0, "Error response from daemon: No such container: nosuch\n"),
        "{o:?}"
    );
    let o = d.docker(&["inspect", "nosuch"]);
    assert_eq!(
        (o.code, o.stdout.trim(), o.stderr.as_str()),
        (1, "[]", "Error: No such object: nosuch\n"),
        "{o:?}"
    );
    let o = d.docker(&["container", "inspect", "nosuch"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Error response from daemon: No such container: nosuch\n"),
        "{o:?}"
    );
    let o = d.docker(&["image", "inspect", "nosuch"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.starts_with("Error response from daemon: ")
            && o.stderr.contains("No such image: nosuch"),
        "{o:?}"
    );
    for args in [
        &["rmi", "nosuch"][..],
        &["history", "nosuch"],
        &["tag", "nosuch", "other"],
    ] {
        let o = d.docker(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr
                .starts_with("Error response from daemon: No such image: nosuch:latest\n"),
            "{args:?}: {o:?}"
        );
    }
    // A short ID prefix that matches nothing.
    let o = d.docker(&["rm", "0123456789ab"]);
    assert!(
        o.stderr.contains("No such container: 0123456789ab"),
        "{o:?}"
    );
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
    assert_eq!(
        d.docker(&["images", "--format", "{{.Repository}}"]).ok(),
        "busybox"
    );
}

#[test]
fn malformed_requests_on_the_socket() {
    let Some(d) = setup() else { return };
    let json = [("Content-Type", "application/json")];
    let check = |method: &str, path: &str, body: Option<&[u8]>, status: u16, contains: &str| {
        let r = d.http(method, path, &json, body).unwrap();
        // dockerd 20.10 answered undecodable JSON bodies and invalid references with 500;
        // Docker 23+ with 400.
        let old_docker_500 = d.kind == Kind::Dockerd && status == 400 && r.status == 500;
        assert!(
            r.status == status || old_docker_500,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        // (dockerd 20.10 wrote version errors as plain text.)
        let msg = match serde_json::from_slice::<serde_json::Value>(&r.body) {
            Ok(v) => v["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no message in {v}"))
                .to_owned(),
            Err(_) if d.kind == Kind::Dockerd => r.text(),
            Err(e) => panic!("{method} {path}: not JSON ({e}): {}", r.text()),
        };
        // Case-insensitively: Docker versions differ in capitalisation.
        assert!(
            msg.to_lowercase().contains(&contains.to_lowercase()),
            "{method} {path}: {msg:?} does not contain {contains:?}"
        );
    };
    check("POST", "/containers/create", Some(b"{not json"), 400, "");
    check(
        "POST",
        "/containers/create",
        Some(b"{\"Image\": 5}"),
        400,
        "",
    );
    check("POST", "/containers/create", Some(b"[1,2,3]"), 400, "");
    check(
        "POST",
        "/containers/create?name=bad%20name",
        Some(b"{\"Image\":\"busybox\"}"),
        400,
        "Invalid container name (bad name)",
    );
    check(
        "POST",
        "/containers/create",
        Some(b"{\"Image\":\"nosuch:latest\"}"),
        404,
        "No such image: nosuch:latest",
    );
    check(
        "GET",
        "/containers/nosuch/json",
        None,
        404,
        "No such container: nosuch",
    );
    check(
        "GET",
        "/v1.41/containers/nosuch/json",
        None,
        404,
        "No such container: nosuch",
    );
    check(
        "GET",
        "/images/nosuch/json",
        None,
        404,
        "No such image: nosuch",
    );
    check(
        "GET",
        "/v9.99/version",
        None,
        400,
        "client version 9.99 is too new. Maximum supported API version is",
    );
    check(
        "GET",
        "/v1.0/version",
        None,
        400,
        "client version 1.0 is too old. Minimum supported API version is",
    );
    check(
        "POST",
        "/images/busybox/tag?repo=UPPER&tag=x",
        None,
        400,
        "",
    );
    check(
        "POST",
        "/images/busybox/tag?repo=ok&tag=bad%3Atag",
        None,
        400,
        "",
    );
    check("GET", "/nosuch/endpoint", None, 404, "page not found");
    check("GET", "/containers/json?filters=%7Bnot-json", None, 400, "");

    let id = d
        .docker(&run_args(&["-d", "busybox", "sleep", "1000"]))
        .ok();
    check(
        "POST",
        &format!("/containers/{id}/kill?signal=NOSUCHSIG"),
        None,
        400,
        "Invalid signal: NOSUCHSIG",
    );
    check(
        "POST",
        &format!("/containers/{id}/exec"),
        Some(b"{\"Cmd\": []}"),
        400,
        "",
    );
    check("DELETE", &format!("/containers/{id}"), None, 409, "");
    assert_eq!(d.status(&id), "running");
    check(
        "GET",
        &format!("/containers/{id}/logs"),
        None,
        400,
        "you must choose at least one stream",
    );
    d.docker(&["rm", "-f", &id]).ok();
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
    assert_eq!(
        d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .ok(),
        "busybox:latest"
    );
    check(
        "GET",
        "/containers/json?filters=%7B%22nosuchfilter%22%3A%5B%22x%22%5D%7D",
        None,
        400,
        "invalid filter 'nosuchfilter'",
    );
}

#[test]
fn invalid_references_and_flags() {
    let Some(d) = setup() else { return };
    let images = d.all_image_ids();
    let o = d.docker(&["tag", "busybox", "UPPER"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(
            "invalid reference format: repository name (library/UPPER) must be lowercase"
        ),
        "{o:?}"
    );
    let o = d.docker(&["tag", "busybox", "a:b:c"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("invalid reference format"), "{o:?}");
    let o = d.docker(&run_args(&["--rm", "busybox:bad:tag", "true"]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("invalid reference format"), "{o:?}");
    let o = d.docker(&["import", busybox_tar().to_str().unwrap(), "Bad/Ref"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("invalid reference format"), "{o:?}");
    let o = d.docker(&run_args(&["--rm", "-m", "lots", "busybox", "true"]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(
        o.stderr
            .contains("invalid argument \"lots\" for \"-m, --memory\" flag"),
        "{o:?}"
    );
    let o = d.docker(&["kill", "-s", "NOSUCHSIG", "nosuch"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(d.all_image_ids(), images);
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

#[test]
fn wrong_state_operations() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d", "--name", "runner", "busybox", "sleep", "1000",
        ]))
        .ok();
    let pid = d.container_pid("runner");

    // Starting a running container is a no-op that succeeds.
    let o = d.docker(&["start", "runner"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    assert_eq!(d.container_pid("runner"), pid);

    // Removing it without -f: 409 and nothing changes.
    let r = d.http("DELETE", "/containers/runner", &[], None).unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    let o = d.docker(&["rm", "runner"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("You cannot remove a running container {id}. Stop the container before attempting removal or force remove"))
            || o.stderr.contains("cannot remove container \"/runner\": container is running: stop the container before removing or force remove"),
        "{o:?}"
    );
    assert_eq!(d.container_pid("runner"), pid);

    // Stopped container: kill, exec, attach are refused; stop and start are fine.
    d.docker(&["stop", "-t", "0", "runner"]).ok();
    let o = d.docker(&["kill", "runner"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("is not running"), "{o:?}");
    let o = d.docker(&["exec", "runner", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("Container {id} is not running"))
            || o.stderr.contains("is not running"),
        "{o:?}"
    );
    let r = d
        .http("POST", "/containers/runner/stop", &[], None)
        .unwrap();
    assert_eq!(r.status, 304);
    let r = d
        .http("POST", "/containers/runner/start", &[], None)
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = d
        .http("POST", "/containers/runner/start", &[], None)
        .unwrap();
    assert_eq!(r.status, 304, "{}", r.text());

    // A container whose command cannot start stays "created" (run) with the error recorded.
    let o = d.docker(&run_args(&["--name", "broken", "busybox", "nosuchcmd"]));
    assert_eq!(o.code, 127, "{o:?}");
    assert_eq!(d.status("broken"), "created");
    assert_eq!(d.exit_code("broken"), 127);
    assert!(d
        .inspect("broken", "{{.State.Error}}")
        .contains("executable file not found"));
    let o = d.docker(&["start", "broken"]);
    assert_ne!(o.code, 0, "{o:?}");
    d.docker(&["rm", "broken"]).ok();

    d.docker(&["rm", "-f", "runner"]).ok();
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

/// Imports `tar`; returns the CLI result. Checks that a failed import left no image.
fn import(d: &Daemon, tar: &[u8], reference: &str) -> Out {
    let before = d.all_image_ids();
    let path = d.root.join("hostile.tar");
    std::fs::write(&path, tar).unwrap();
    let o = d.docker(&["import", path.to_str().unwrap(), reference]);
    if o.code != 0 {
        assert_eq!(
            d.all_image_ids(),
            before,
            "failed import left an image: {o:?}"
        );
    }
    o
}

fn assert_untouched(victim: &Path, secret_content: &str) {
    let names: Vec<String> = std::fs::read_dir(victim)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["secret".to_owned()],
        "something was created in {}",
        victim.display()
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("secret")).unwrap(),
        secret_content
    );
    let md = std::fs::symlink_metadata(victim.join("secret")).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(md.nlink(), 1, "the host file got a hard link");
    assert_eq!(md.mode() & 0o7777, 0o600);
}

#[test]
fn hostile_import_tarballs() {
    let Some(d) = setup() else { return };
    // A host directory the archives try to reach.
    let victim = d.root.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), "secret\n").unwrap();
    std::fs::set_permissions(
        victim.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let v = victim.to_str().unwrap().trim_start_matches('/');
    let depth = "../".repeat(12);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "absolute",
            TarWriter::new().file(&format!("/{v}/abs"), b"x").finish(),
        ),
        (
            "dotdot",
            TarWriter::new()
                .file(&format!("{depth}{v}/dotdot"), b"x")
                .finish(),
        ),
        (
            "dotdot-dir",
            TarWriter::new()
                .dir("a/")
                .file(&format!("a/{depth}{v}/dotdot2"), b"x")
                .finish(),
        ),
        (
            "symlink-to-root",
            TarWriter::new()
                .symlink("evil", "/")
                .file(&format!("evil/{v}/through-link"), b"x")
                .finish(),
        ),
        (
            "symlink-dotdot",
            TarWriter::new()
                .symlink("up", &depth)
                .file(&format!("up/{v}/through-up"), b"x")
                .finish(),
        ),
        (
            "symlink-dir",
            TarWriter::new()
                .symlink("vdir", &format!("/{v}"))
                .file("vdir/through-dir", b"x")
                .finish(),
        ),
        (
            "symlink-overwrite",
            TarWriter::new()
                .symlink("s", &format!("/{v}/secret"))
                .file("s", b"overwritten\n")
                .finish(),
        ),
        (
            "hardlink-absolute",
            TarWriter::new()
                .hardlink("hl", &format!("/{v}/secret"))
                .finish(),
        ),
        (
            "hardlink-dotdot",
            TarWriter::new()
                .hardlink("hl2", &format!("{depth}{v}/secret"))
                .finish(),
        ),
        (
            "hardlink-via-symlink",
            TarWriter::new()
                .symlink("sl", &format!("/{v}"))
                .hardlink("hl3", "sl/secret")
                .finish(),
        ),
        (
            "garbage",
            b"this is not a tar archive at all, just bytes".repeat(40),
        ),
        ("truncated", {
            let mut t = TarWriter::new().file("big", &[7u8; 4096]).finish();
            t.truncate(700);
            t
        }),
    ];
    for (name, tar) in cases {
        let o = import(&d, &tar, &format!("hostile-{name}"));
        assert_untouched(&victim, "secret\n");
        if o.code == 0 {
            // Accepted: whatever got in stayed inside the image; the host file is unchanged
            // even when a container uses the image.
            let o = d.docker(&run_args(&[
                "--rm",
                "-v",
                &format!("{}:/bb:ro", busybox_dir(&d)),
                &format!("hostile-{name}"),
                "/bb/busybox",
                "true",
            ]));
            let _ = o;
            assert_untouched(&victim, "secret\n");
        }
    }
    // garbage and truncated archives are refused.
    let o = import(&d, b"not a tar", "hostile-garbage2");
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.starts_with("Error response from daemon: "),
        "{o:?}"
    );
    assert_eq!(d.all_container_ids(), Vec::<String>::new());
}

/// A host directory with only a static busybox, to run something inside hostile images.
fn busybox_dir(d: &Daemon) -> String {
    let dir = d.root.join("bbdir");
    if !dir.exists() {
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn name_clash_leaves_no_partial_state() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "--name",
            "taken",
            "busybox",
            "true",
        ])
        .ok();
    for _ in 0..3 {
        let o = d.docker(&run_args(&[
            "-d", "--name", "taken", "busybox", "sleep", "1000",
        ]));
        assert_eq!(o.code, 125, "{o:?}");
        assert!(o.stderr.contains("is already in use by container"), "{o:?}");
    }
    assert_eq!(d.all_container_ids(), vec![id.clone()]);
    let dirs = std::fs::read_dir(d.data_root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1);
    // Concurrent creates with one name: exactly one wins.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cmd = d.docker_cmd(&[
                "create",
                "--network",
                "none",
                "--name",
                "race",
                "busybox",
                "true",
            ]);
            std::thread::spawn(move || {
                let mut cmd = cmd;
                cmd.output().unwrap().status.success()
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&w| w)
        .count();
    assert_eq!(wins, 1);
    assert_eq!(d.all_container_ids().len(), 2);
    assert_eq!(
        d.docker(&["ps", "-a", "--format", "{{.Names}}"]).ok(),
        "race\ntaken"
    );
}
