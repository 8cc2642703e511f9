//! Docker's naming, tagging, rmi and history rules; GC and recovery at open.
use berth_store::{ErrorKind, ImageDelete, ImageUser, ImportOptions, Store};

mod common;
use common::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn no_user(_: &str) -> Option<ImageUser> {
    None
}

#[test]
fn lookup_by_every_name_form() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let img = import(&s, &simple_tar("a"), Some("localhost:5000/team/app:v1")).unwrap();
    let hex = img.id.trim_start_matches("sha256:").to_owned();
    s.add_repo_digest(&img.id, &format!("localhost:5000/team/app@{DIGEST}"))
        .unwrap();
    let sha_prefix = format!("sha256:{}", &hex[..5]);
    let by_both = format!("localhost:5000/team/app:zzz@{DIGEST}");
    let by_digest = format!("localhost:5000/team/app@{DIGEST}");
    for name in [
        "localhost:5000/team/app:v1",
        img.id.as_str(),
        hex.as_str(),
        &hex[..1],
        &hex[..12],
        sha_prefix.as_str(),
        by_digest.as_str(),
        by_both.as_str(),
    ] {
        assert_eq!(s.get_image(name).unwrap().id, img.id, "{name}");
    }
    let got = s.get_image("localhost:5000/team/app:v1").unwrap();
    assert_eq!(got.repo_digests, vec![by_digest.clone()]);
    assert_eq!(got.repo_tags, vec!["localhost:5000/team/app:v1"]);

    // Docker's errors.
    let e = s.get_image("localhost:5000/team/app").unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string()),
        (
            ErrorKind::NotFound,
            "No such image: localhost:5000/team/app:latest".into()
        )
    );
    let missing = "f".repeat(64);
    assert_eq!(
        s.get_image(&missing).unwrap_err().to_string(),
        format!("No such image: sha256:{missing}")
    );
    let e = s.get_image("Busybox").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        e.to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    // An ambiguous prefix is not found.
    let other = import(&s, &simple_tar("b"), None).unwrap();
    let common_len = hex
        .chars()
        .zip(other.id[7..].chars())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(s.get_image(&hex[..common_len.max(1)]).is_err() || common_len == 0);
    // Tag beats ID prefix.
    s.tag(&other.id, &hex[..4]).unwrap();
    assert_eq!(s.get_image(&hex[..4]).unwrap().id, other.id);
}

#[test]
fn tag_moves_and_rejects_bad_names() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let a = import(&s, &simple_tar("a"), Some("app:1")).unwrap();
    let b = import(&s, &simple_tar("b"), None).unwrap();
    s.tag(&b.id, "app:1").unwrap();
    assert_eq!(s.get_image("app:1").unwrap().id, b.id);
    assert!(
        s.get_image(&a.id).unwrap().repo_tags.is_empty(),
        "old image is dangling, not deleted"
    );
    assert_eq!(
        s.tag(&a.id, &format!("x@{DIGEST}"))
            .unwrap_err()
            .to_string(),
        "refusing to create a tag with a digest reference"
    );
    assert_eq!(
        s.tag(&a.id, "sha256:1").unwrap_err().to_string(),
        "refusing to create an ambiguous tag using digest algorithm as name"
    );
    assert_eq!(
        s.tag(&a.id, "bad name").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(s.tag("nope", "x").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn rmi_follows_dockers_rules() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let img = import(&s, &simple_tar("a"), Some("busybox")).unwrap();
    let layer = img.config.rootfs.diff_ids[0].clone();
    let short = &img.id[7..19];
    let stopped = |_: &str| {
        Some(ImageUser {
            container_id: "c0ffee0123456789".into(),
            running: false,
        })
    };
    let running = |_: &str| {
        Some(ImageUser {
            container_id: "c0ffee0123456789".into(),
            running: true,
        })
    };

    // By name, only reference, used: must force, naming the container.
    let e = s.remove_image_with("busybox", false, &stopped).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!("conflict: unable to remove repository reference \"busybox\" (must force) - container c0ffee012345 is using its referenced image {short}")
    );
    // By ID, used by a running container: cannot be forced.
    let e = s.remove_image_with(&img.id, true, &running).unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (cannot be forced) - image is being used by running container c0ffee012345"));
    let e = s.remove_image_with(&img.id, false, &stopped).unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (must be forced) - image is being used by stopped container c0ffee012345"));

    // Several repositories: by ID needs force; by name untags one.
    s.tag("busybox", "other:2").unwrap();
    s.add_repo_digest("busybox", &format!("busybox@{DIGEST}"))
        .unwrap();
    let e = s
        .remove_image_with(&img.id[7..10], false, &no_user)
        .unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"));
    // Removing busybox:latest also drops busybox@digest (no busybox tag left); other:2 stays.
    let out = s.remove_image_with("busybox", false, &no_user).unwrap();
    assert_eq!(
        out,
        vec![
            ImageDelete::Untagged("busybox:latest".into()),
            ImageDelete::Untagged(format!("busybox@{DIGEST}"))
        ]
    );
    assert_eq!(s.get_image(&img.id).unwrap().repo_tags, vec!["other:2"]);

    // Forced while used: untag only, the data stays (dangling).
    let out = s.remove_image_with("other:2", true, &running).unwrap();
    assert_eq!(out, vec![ImageDelete::Untagged("other:2".into())]);
    assert!(s.get_image(&img.id).unwrap().repo_tags.is_empty());
    assert_eq!(snapshot_count(d.path()), 1);

    // The bool form still works: in use refuses without force.
    s.tag(&img.id, "again").unwrap();
    assert_eq!(
        s.remove_image("again", false, &|_| true)
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );

    // Not used, by ID with a single tag: untag + delete image + its layer.
    let out = s.remove_image_with(&img.id, false, &no_user).unwrap();
    assert_eq!(
        out,
        vec![
            ImageDelete::Untagged("again:latest".into()),
            ImageDelete::Deleted(img.id.clone()),
            ImageDelete::Deleted(layer)
        ]
    );
    assert!(s.images().unwrap().is_empty());
    assert_eq!((snapshot_count(d.path()), blob_count(d.path())), (0, 0));
    assert_eq!(
        s.remove_image_with(&img.id, false, &no_user)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn import_config_changes_platform_and_history() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let opts = ImportOptions {
        reference: Some("cfg:1".into()),
        changes: vec![
            "CMD [\"/bin/hello\"]".into(),
            "ENV A=1".into(),
            "EXPOSE 8080".into(),
            "WORKDIR /srv".into(),
        ],
        message: "my message".into(),
        platform: Some("linux/arm64".into()),
    };
    let img = s
        .import(&mut std::io::Cursor::new(simple_tar("x")), &opts)
        .unwrap();
    assert_eq!(
        img.config.config.cmd.as_deref(),
        Some(&["/bin/hello".to_owned()][..])
    );
    assert_eq!(img.config.architecture, "arm64");
    assert_eq!(img.config.extra["comment"], "my message");
    assert_eq!(img.config.rootfs.diff_ids.len(), 1);
    // The ID is the digest of the stored config bytes.
    let raw = s.config_bytes("cfg:1").unwrap();
    assert_eq!(
        berth_oci::digest::Digest::sha256_of(&raw).to_string(),
        img.id
    );
    // The layer tar is kept, addressed by its diff ID.
    let tar = std::fs::read(s.layer_tar_path(&img.config.rootfs.diff_ids[0]).unwrap()).unwrap();
    assert_eq!(tar, simple_tar("x"));

    let h = s.history("cfg:1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].id.as_str(), h[0].comment.as_str(), h[0].size),
        (img.id.as_str(), "my message", img.size)
    );
    assert_eq!(h[0].tags, vec!["cfg:1"]);
    assert!(h[0].created > 1_700_000_000);

    let bad = |o: ImportOptions| {
        s.import(&mut std::io::Cursor::new(simple_tar("y")), &o)
            .unwrap_err()
    };
    assert_eq!(
        bad(ImportOptions {
            changes: vec!["RUN x".into()],
            ..Default::default()
        })
        .to_string(),
        "run is not a valid change command"
    );
    assert_eq!(
        bad(ImportOptions {
            platform: Some("windows/amd64".into()),
            ..Default::default()
        })
        .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(ImportOptions {
            reference: Some("Bad".into()),
            ..Default::default()
        })
        .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        s.images().unwrap().len(),
        1,
        "rejected imports leave nothing"
    );
}

#[test]
fn history_walks_parents_and_skips_empty_layers() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let base = import(&s, &simple_tar("base"), Some("base")).unwrap();
    let lease = s.lease();
    let top = s
        .apply_layer(
            &lease,
            &mut std::io::Cursor::new(tar_of(&[(
                "top",
                tar::EntryType::Regular,
                b"0123456789",
                None,
            )])),
            Some(&base.config.rootfs.diff_ids[0]),
        )
        .unwrap();
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [base.config.rootfs.diff_ids[0], top.diff_id]},
        "history": [
            {"created": "2026-01-01T00:00:00Z", "comment": "Imported from -"},
            {"created": "2026-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
            {"created": "2026-01-02T03:04:05Z", "created_by": "COPY top /"}
        ]
    });
    let child = s
        .create_image(&serde_json::to_vec(&cfg).unwrap(), Some("child"), &base.id)
        .unwrap();
    drop(lease);
    assert_eq!(child.parent, base.id);
    assert_eq!(child.size, base.size + 10);
    let h = s.history("child").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(
        (h[0].id.as_str(), h[0].size, h[0].created_by.as_str()),
        (child.id.as_str(), 10, "COPY top /")
    );
    assert_eq!((h[1].id.as_str(), h[1].size), (base.id.as_str(), 0));
    assert_eq!(h[1].tags, vec!["base:latest"]);
    assert_eq!((h[2].id.as_str(), h[2].size), ("<missing>", base.size));
    assert_eq!(h[0].created, 1_767_323_045);
    // Layers: the child's top layer is unpacked on its own, topmost first.
    let dirs = s.layer_dirs("child").unwrap();
    assert_eq!(dirs.len(), 2);
    assert!(dirs[0].join("top").is_file() && dirs[1].join("bin/hello").is_file());
    // A config naming an absent layer is refused.
    let bad = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[DIGEST]}});
    assert_eq!(
        s.create_image(&serde_json::to_vec(&bad).unwrap(), None, "")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn open_collects_garbage_and_recovers() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = Store::open(d.path()).unwrap();
        import(&s, &simple_tar("keep"), Some("keep")).unwrap();
        // A layer applied but never made into an image (a crash between the two steps).
        let lease = s.lease();
        s.apply_layer(
            &lease,
            &mut std::io::Cursor::new(simple_tar("orphan")),
            None,
        )
        .unwrap();
        std::mem::forget(lease);
    }
    assert_eq!((snapshot_count(d.path()), blob_count(d.path())), (2, 3));
    std::fs::create_dir_all(d.path().join("snapshots/.tmp-dead/fs/x")).unwrap();
    std::fs::write(d.path().join("content/ingest/partial"), "x").unwrap();
    std::fs::write(d.path().join("content/blobs/sha256/.tmp-0000"), "x").unwrap();
    std::fs::write(d.path().join("image/images/.tmp-1111"), "{").unwrap();
    std::fs::write(d.path().join("image/.tmp-2222"), "{").unwrap();
    let s = Store::open(d.path()).unwrap();
    assert_eq!((snapshot_count(d.path()), blob_count(d.path())), (1, 2));
    for p in [
        "snapshots/.tmp-dead",
        "content/ingest/partial",
        "content/blobs/sha256/.tmp-0000",
        "image/images/.tmp-1111",
        "image/.tmp-2222",
    ] {
        assert!(!d.path().join(p).exists(), "{p}");
    }
    assert_eq!(s.get_image("keep").unwrap().repo_tags, vec!["keep:latest"]);
}

#[test]
fn concurrent_imports_share_one_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(d.path()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                import(&s, &simple_tar("same"), Some(&format!("t{i}"))).unwrap()
            })
        })
        .collect();
    let ids: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(snapshot_count(d.path()), 1);
    for (i, img) in ids.iter().enumerate() {
        assert!(s.layer_dirs(&format!("t{i}")).unwrap()[0]
            .join("bin/hello")
            .is_file());
        assert_eq!(
            s.get_image(&img.id).unwrap().config.rootfs.diff_ids,
            ids[0].config.rootfs.diff_ids
        );
    }
}
