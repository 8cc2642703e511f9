//! `docker save` / `docker load` in the docker-archive format through the real docker CLI
//! (and the berth CLI): round trips by tag, repository and ID, stdin/stdout and files,
//! quiet output, events; interop with Debian's dockerd in both directions (each daemon on
//! its own socket and roots); hostile archives (corrupt manifest, names and links out of
//! the archive, wrong diff IDs, truncation, layers with `..`/absolute/symlinked entries)
//! fail cleanly or stay inside, and leave no image, tag, snapshot or blob behind.
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_e2e::*;

fn sha256_hex(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn lines_set(s: &str) -> BTreeSet<String> {
    s.lines().map(str::to_owned).collect()
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What a failed load must not change: images, tags, snapshots, blobs, ingests.
fn store_state(d: &Daemon) -> (String, Vec<BTreeSet<String>>) {
    let tags = d
        .docker(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ])
        .ok();
    let dirs = if d.kind == Kind::Berthd {
        [
            "snapshots",
            "content/blobs/sha256",
            "content/ingest",
            "image/images",
        ]
        .iter()
        .map(|p| entries(&d.data_root.join(p)))
        .collect()
    } else {
        vec![]
    };
    (tags, dirs)
}

fn commit_test_image(d: &Daemon, name: &str) -> String {
    let c = format!("mk-{}", name.replace([':', '/'], "-"));
    d.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo saved > /saved; rm /bin/ls; mkdir /dir; echo f > /dir/f",
    ])
    .ok();
    let id = d.docker(&["commit", &c, name]).ok();
    d.docker(&["rm", &c]).ok();
    id
}

#[test]
fn save_and_load_round_trip() {
    let Some(d) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let id = commit_test_image(&d, "myimg:v1");
    let bb = d.inspect("busybox", "{{.Id}}");
    let file = tmp.path().join("imgs.tar");
    let f = file.to_str().unwrap();
    let since = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let o = d.docker(&["save", "-o", f, "myimg:v1", "busybox"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "");
    let list = Command::new("tar").arg("tf").arg(&file).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(names.lines().any(|l| l == "manifest.json"), "{names}");
    assert!(
        names.lines().any(|l| l == format!("{}.json", &id[7..])),
        "{names}"
    );

    d.docker(&["rmi", "myimg:v1", "busybox"]).ok();
    assert_eq!(d.docker(&["images", "-q"]).ok(), "");
    let o = d.docker(&["load", "-i", f]);
    assert_eq!(
        lines_set(&o.ok()),
        lines_set("Loaded image: myimg:v1\nLoaded image: busybox:latest")
    );
    assert_eq!(d.inspect("myimg:v1", "{{.Id}}"), id);
    assert_eq!(d.inspect("busybox", "{{.Id}}"), bb);
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "myimg:v1",
            "sh",
            "-c",
            "cat /saved /dir/f; ls /bin/ls 2>/dev/null || echo no-ls"
        ])
        .ok(),
        "saved\nf\nno-ls"
    );

    // Loading again: same answer, nothing duplicated.
    let o = d.docker(&["load", "-q", "-i", f]);
    assert_eq!(
        lines_set(&o.ok()),
        lines_set("Loaded image: myimg:v1\nLoaded image: busybox:latest")
    );
    assert_eq!(d.docker(&["images", "-q"]).ok().lines().count(), 2);

    // By ID: no tags in the archive, `Loaded image ID:`; through stdout and stdin.
    let out = d.docker_cmd(&["save", &id]).output().unwrap();
    assert!(out.status.success());
    d.docker(&["rmi", "myimg:v1"]).ok();
    let o = d.docker_stdin(&["load"], &out.stdout);
    assert_eq!(o.ok(), format!("Loaded image ID: {id}"));
    assert_eq!(d.inspect(&id, "{{len .RepoTags}}"), "0");

    // A bare repository name saves every tag of it.
    d.docker(&["tag", "busybox", "busybox:other"]).ok();
    let out = d.docker_cmd(&["save", "busybox"]).output().unwrap();
    assert!(out.status.success());
    d.docker(&["rmi", "busybox:other"]).ok();
    let o = d.docker_stdin(&["load"], &out.stdout);
    assert_eq!(
        lines_set(&o.ok()),
        lines_set("Loaded image: busybox:latest\nLoaded image: busybox:other")
    );

    // A moved tag is reported as dockerd reports it.
    d.docker(&["tag", &id, "busybox:other"]).ok();
    let o = d.docker_stdin(&["load"], &out.stdout);
    let text = o.ok();
    assert!(
        text.contains(&format!(
            "The image busybox:other already exists, renaming the old one with ID {id} to empty string"
        )),
        "{text}"
    );
    assert_eq!(d.inspect("busybox:other", "{{.Id}}"), bb);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ev = d
        .docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &format!("{now}"),
            "--filter",
            "type=image",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    let actions = lines_set(&ev);
    for a in ["save", "load", "tag", "untag", "delete"] {
        assert!(actions.contains(a), "{a} missing in {ev}");
    }

    // Errors: an unknown name fails before anything is written.
    let bad = tmp.path().join("bad.tar");
    let o = d.docker(&["save", "-o", bad.to_str().unwrap(), "busybox", "nosuch:1"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!o.stderr.trim().is_empty());
    assert!(!bad.exists());
    if d.kind == Kind::Berthd {
        assert!(o.stderr.contains("No such image: nosuch:1"), "{}", o.stderr);
    }

    if d.kind == Kind::Berthd {
        // The berth CLI: the same verbs and output.
        d.docker(&["tag", &id, "myimg:v1"]).ok();
        let bf = tmp.path().join("b.tar");
        d.berth(&["save", "-o", bf.to_str().unwrap(), "myimg:v1"])
            .ok();
        d.docker(&["rmi", "myimg:v1"]).ok();
        let o = d.berth(&["load", "-i", bf.to_str().unwrap()]);
        assert_eq!(o.ok(), "Loaded image: myimg:v1");
        let o = d.berth(&["image", "load", "-q", "-i", bf.to_str().unwrap()]);
        assert_eq!(o.ok(), "Loaded image: myimg:v1");
        let o = d.berth(&["save", "-o", bad.to_str().unwrap(), "nosuch:1"]);
        assert_eq!(o.code, 1);
        assert!(!bad.exists());
    }
}

#[test]
fn interop_with_dockerd_both_ways() {
    if skip_unless_root() || is_reference() || !Path::new(DOCKERD).exists() {
        return;
    }
    let b = Daemon::start_kind(Kind::Berthd, Options::default());
    let r = Daemon::start_kind(Kind::Dockerd, Options::default());
    b.busybox_image();
    let tmp = tempfile::tempdir().unwrap();

    // berthd → dockerd: an image with a committed layer (whiteouts included).
    let id = commit_test_image(&b, "fromberth:1");
    let f1 = tmp.path().join("b.tar");
    b.docker(&["save", "-o", f1.to_str().unwrap(), "fromberth:1"])
        .ok();
    let o = r.docker(&["load", "-i", f1.to_str().unwrap()]);
    assert_eq!(o.ok(), "Loaded image: fromberth:1");
    assert_eq!(r.inspect("fromberth:1", "{{.Id}}"), id);
    assert_eq!(
        r.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "fromberth:1",
            "sh",
            "-c",
            "cat /saved /dir/f; ls /bin/ls 2>/dev/null || echo no-ls"
        ])
        .ok(),
        "saved\nf\nno-ls"
    );
    assert_eq!(
        r.inspect("fromberth:1", "{{json .RootFS.Layers}}"),
        b.inspect("fromberth:1", "{{json .RootFS.Layers}}")
    );

    // dockerd → berthd: dockerd's own commit (its whiteouts and opaque dirs), saved by
    // dockerd's `save`, with a second tag and an image dockerd shares layers with.
    r.docker(&[
        "run",
        "--name",
        "rc",
        "--network",
        "none",
        "fromberth:1",
        "sh",
        "-c",
        "echo docker > /fromdocker; rm /saved; rm -rf /dir; mkdir /dir; echo g > /dir/g",
    ])
    .ok();
    let did = r
        .docker(&["commit", "-c", "ENV WHO=dockerd", "rc", "fromdocker:1"])
        .ok();
    r.docker(&["tag", "fromdocker:1", "fromdocker:2"]).ok();
    let f2 = tmp.path().join("d.tar");
    r.docker(&[
        "save",
        "-o",
        f2.to_str().unwrap(),
        "fromdocker:1",
        "fromdocker:2",
        "fromberth:1",
    ])
    .ok();
    b.docker(&["rmi", "fromberth:1"]).ok();
    let o = b.docker(&["load", "-i", f2.to_str().unwrap()]);
    assert_eq!(
        lines_set(&o.ok()),
        lines_set(
            "Loaded image: fromdocker:1\nLoaded image: fromdocker:2\nLoaded image: fromberth:1"
        )
    );
    assert_eq!(b.inspect("fromdocker:1", "{{.Id}}"), did);
    assert_eq!(b.inspect("fromberth:1", "{{.Id}}"), id);
    assert_eq!(
        b.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "fromdocker:2",
            "sh",
            "-c",
            "cat /fromdocker; ls /dir; cat /saved 2>/dev/null || echo no-saved; echo $WHO"
        ])
        .ok(),
        "docker\ng\nno-saved\ndockerd"
    );
    // berth's docker CLI view of the loaded image equals dockerd's.
    for f in [
        "{{json .RootFS.Layers}}",
        "{{json .Config.Env}}",
        "{{.Os}}/{{.Architecture}}",
    ] {
        assert_eq!(b.inspect("fromdocker:1", f), r.inspect("fromdocker:1", f));
    }
}

fn image_archive(config: &[u8], layer: &[u8]) -> Vec<u8> {
    let cfg_name = format!("{}.json", sha256_hex(config));
    let manifest =
        format!(r#"[{{"Config":"{cfg_name}","RepoTags":["evil:1"],"Layers":["l1/layer.tar"]}}]"#);
    TarWriter::new()
        .file(&cfg_name, config)
        .dir("l1/")
        .file("l1/layer.tar", layer)
        .file("manifest.json", manifest.as_bytes())
        .finish()
}

fn config_for(layer: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        sha256_hex(layer)
    )
    .into_bytes()
}

#[test]
fn hostile_archives_fail_cleanly() {
    let Some(d) = setup() else { return };
    let before = store_state(&d);
    let layer = TarWriter::new().file("ok", b"fine").finish();
    let good_cfg = config_for(&layer);
    let cfg_name = format!("{}.json", sha256_hex(&good_cfg));

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // A corrupt manifest.json.
    cases.push((
        "corrupt manifest",
        TarWriter::new()
            .file(&cfg_name, &good_cfg)
            .file("l1/layer.tar", &layer)
            .file("manifest.json", b"[{\"Config\": 12, ")
            .finish(),
    ));
    // No manifest at all.
    cases.push((
        "no manifest",
        TarWriter::new().file("l1/layer.tar", &layer).finish(),
    ));
    // The config named outside the archive.
    cases.push((
        "config outside",
        TarWriter::new()
            .file("l1/layer.tar", &layer)
            .file(
                "manifest.json",
                br#"[{"Config":"../../../../etc/passwd","RepoTags":["evil:1"],"Layers":["l1/layer.tar"]}]"#,
            )
            .finish(),
    ));
    // An entry climbing out of the archive (dockerd ignores it, berthd refuses the
    // archive; either way nothing is written outside).
    let dotdot = (
        "dotdot entry",
        TarWriter::new()
            .file("../../../../tmp/berth-evil-entry", b"x")
            .file(&cfg_name, &good_cfg)
            .file("l1/layer.tar", &layer)
            .file(
                "manifest.json",
                format!(
                    r#"[{{"Config":"{cfg_name}","RepoTags":["evil:1"],"Layers":["l1/layer.tar"]}}]"#
                )
                .as_bytes(),
            )
            .finish(),
    );
    if d.kind == Kind::Berthd {
        cases.push(dotdot);
    } else {
        let o = d.docker_stdin(&["load"], &dotdot.1);
        assert!(!Path::new("/tmp/berth-evil-entry").exists(), "{o:?}");
        if o.code == 0 {
            d.docker(&["rmi", "evil:1"]).ok();
        }
    }
    // The layer a symlink to a host file.
    cases.push((
        "layer symlink out",
        TarWriter::new()
            .file(&cfg_name, &good_cfg)
            .dir("l1/")
            .symlink("l1/layer.tar", "/etc/passwd")
            .file(
                "manifest.json",
                format!(
                    r#"[{{"Config":"{cfg_name}","RepoTags":["evil:1"],"Layers":["l1/layer.tar"]}}]"#
                )
                .as_bytes(),
            )
            .finish(),
    ));
    // A layer whose content is not what the config says.
    let other = TarWriter::new().file("other", b"nope").finish();
    cases.push(("diff id mismatch", image_archive(&good_cfg, &other)));
    // A layer that is not a tar.
    let junk = vec![0x42u8; 4096];
    cases.push(("junk layer", image_archive(&config_for(&junk), &junk)));
    // Truncated in the middle of the layer.
    let big_layer = TarWriter::new().file("big", &vec![7u8; 300_000]).finish();
    let mut cut = image_archive(&config_for(&big_layer), &big_layer);
    cut.truncate(cut.len() / 2);
    cases.push(("truncated", cut));

    for (what, archive) in cases {
        let o = d.docker_stdin(&["load"], &archive);
        assert_ne!(o.code, 0, "{what}: {o:?}");
        assert!(!o.stderr.trim().is_empty(), "{what}: no error text");
        assert_eq!(store_state(&d), before, "{what}: state changed");
        if d.kind == Kind::Berthd {
            let o = d
                .berth_cmd(&["load"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map(|mut c| {
                    let mut w = c.stdin.take().unwrap();
                    let data = archive.clone();
                    std::thread::spawn(move || {
                        let _ = w.write_all(&data);
                    });
                    c.wait_with_output().unwrap()
                })
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "berth load, {what}");
            assert_eq!(store_state(&d), before, "berth {what}: state changed");
        }
    }
    assert!(!Path::new("/tmp/berth-evil-entry").exists());

    // A layer that tries to write outside its root (`..`, absolute names, a symlink to
    // `/` followed by a file under it): everything lands inside the image or the load is
    // refused; the host is untouched either way.
    let marker = format!("berth-escape-{}", std::process::id());
    let evil = TarWriter::new()
        .file(&format!("../../../../../tmp/{marker}-1"), b"1")
        .file(&format!("/tmp/{marker}-2"), b"2")
        .symlink("up", "/")
        .file(&format!("up/tmp/{marker}-3"), b"3")
        .finish();
    let o = d.docker_stdin(&["load"], &image_archive(&config_for(&evil), &evil));
    for i in 1..=3 {
        assert!(
            !Path::new(&format!("/tmp/{marker}-{i}")).exists(),
            "escaped: {o:?}"
        );
    }
    if o.code == 0 {
        assert_eq!(o.stdout.trim(), "Loaded image: evil:1");
        // The image has no shell: look at its files through `export`.
        let c = d.docker(&["create", "evil:1"]).ok();
        let out = d.docker_cmd(&["export", &c]).output().unwrap();
        let mut tf = Command::new("tar")
            .args(["tf", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        tf.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let inside = String::from_utf8_lossy(&tf.wait_with_output().unwrap().stdout).into_owned();
        assert!(inside.contains(&format!("{marker}-1")), "{inside}");
    } else {
        assert_eq!(store_state(&d), before);
    }
    // The same hostile tar through `import`.
    let o = d.docker_stdin(&["import", "-", "evilimport:1"], &evil);
    for i in 1..=3 {
        assert!(!Path::new(&format!("/tmp/{marker}-{i}")).exists(), "{o:?}");
    }
}
