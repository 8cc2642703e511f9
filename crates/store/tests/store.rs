//! Store behaviour: import, lookup, tags, removal rules, GC, hostile archives, recovery.
use std::path::Path;

use berth_store::{ImageDelete, Store};

mod common;
use common::*;

#[test]
fn import_lookup_tag_history() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let img = import(&s, &simple_tar("a"), Some("busybox")).unwrap();
    assert!(img.id.starts_with("sha256:") && img.id.len() == 71);
    assert_eq!(img.repo_tags, vec!["busybox:latest"]);
    assert!(img.size > 0);
    let hex = img.id.trim_start_matches("sha256:");
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        img.id.as_str(),
        hex,
        &hex[..12],
        &hex[..3],
    ] {
        assert_eq!(s.get_image(name).unwrap().id, img.id, "{name}");
    }
    assert_eq!(
        s.get_image("nope").unwrap_err().to_string(),
        "No such image: nope:latest"
    );
    s.tag("busybox", "mine:1").unwrap();
    assert_eq!(s.get_image("mine:1").unwrap().repo_tags.len(), 2);
    assert!(s.tag("busybox", "UPPER").is_err());
    let h = s.history("busybox").unwrap();
    assert_eq!(h[0].id, img.id);
    assert_eq!(h[0].comment, "Imported from -");
    // Reopen: everything persisted.
    drop(s);
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.get_image("mine:1").unwrap().id, img.id);
}

#[test]
fn gzip_import_and_rootfs_mount() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &simple_tar("gz")).unwrap();
    let img = import(&s, &gz.finish().unwrap(), Some("gz:1")).unwrap();
    let rw = d.path().join("rw");
    let m = s.prepare_rootfs(&img.id, &rw).unwrap();
    let target = d.path().join("merged");
    std::fs::create_dir_all(&target).unwrap();
    m.mount(&target).unwrap();
    let content = std::fs::read_to_string(target.join("bin/hello"));
    std::fs::write(target.join("new"), "x").unwrap();
    berth_store::unmount(&target).unwrap();
    assert_eq!(content.unwrap(), "gz");
    assert!(rw.join("upper/new").exists());
}

#[test]
fn removal_rules_and_shared_layers() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let a = import(&s, &simple_tar("same"), Some("a")).unwrap();
    let b = import(&s, &simple_tar("same"), Some("b")).unwrap();
    // Same layer, different created time → different images sharing one snapshot.
    assert_ne!(a.id, b.id);
    let snaps = |p: &Path| {
        std::fs::read_dir(p.join("snapshots"))
            .unwrap()
            .flatten()
            .filter(|e| {
                !e.file_name().to_string_lossy().starts_with('.') && e.file_name() != "empty"
            })
            .count()
    };
    assert_eq!(snaps(d.path()), 1);
    s.tag("a", "a2").unwrap();
    // By ID with two tags: must force.
    assert!(s.remove_image(&a.id, false, &|_| false).is_err());
    // By name with another tag left: untag only.
    assert_eq!(
        s.remove_image("a2", false, &|_| false).unwrap(),
        vec![ImageDelete::Untagged("a2:latest".into())]
    );
    // In use by a stopped container: refused; forced, deleted as in Docker while the
    // container's hold keeps the layers under its rootfs.
    assert_eq!(s.hold("c1", "a").unwrap().to_string(), a.id);
    assert!(s.remove_image("a", false, &|_| true).is_err());
    assert_eq!(
        s.remove_image("a", true, &|_| true).unwrap(),
        vec![
            ImageDelete::Untagged("a:latest".into()),
            ImageDelete::Deleted(a.id.clone())
        ]
    );
    assert!(s.get_image(&a.id).is_err());
    assert_eq!(snaps(d.path()), 1, "layer shared with b is kept");
    s.remove_image("b", false, &|_| false).unwrap();
    assert_eq!(snaps(d.path()), 1, "layer held by c1 is kept");
    let rw = d.path().join("c1-rw");
    s.prepare_held_rootfs("c1", &rw).unwrap();
    assert_eq!(s.held_layer_dirs("c1").unwrap().len(), 1);
    // The hold survives a restart of the store.
    drop(s);
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.holders(), vec!["c1".to_owned()]);
    assert_eq!(snaps(d.path()), 1);
    s.release("c1").unwrap();
    assert_eq!(snaps(d.path()), 0);
    assert!(s.hold("../x", "b").is_err());
    assert!(s.images().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(d.path().join("content/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

/// Every hostile archive: nothing outside the store's root is created or changed.
#[test]
fn hostile_archives_stay_inside() {
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::write(&victim, "original").unwrap();
    let root = host.path().join("root");
    let s = Store::open(&root).unwrap();
    let v = victim.display().to_string();
    let up = format!("../../../../../../../../..{}", v);
    let cases: Vec<Vec<u8>> = vec![
        tar_of(&[(v.as_str(), tar::EntryType::Regular, b"pwned", None)]),
        tar_of(&[(up.as_str(), tar::EntryType::Regular, b"pwned", None)]),
        tar_of(&[
            ("link", tar::EntryType::Symlink, b"", Some("/")),
            (
                format!("link{v}").as_str(),
                tar::EntryType::Regular,
                b"pwned",
                None,
            ),
        ]),
        tar_of(&[
            (
                "dots",
                tar::EntryType::Symlink,
                b"",
                Some("../../../../../../.."),
            ),
            (
                format!("dots{v}").as_str(),
                tar::EntryType::Regular,
                b"pwned",
                None,
            ),
        ]),
        tar_of(&[
            ("f", tar::EntryType::Symlink, b"", Some(v.as_str())),
            ("f", tar::EntryType::Regular, b"pwned", None),
        ]),
        tar_of(&[("hl", tar::EntryType::Link, b"", Some(v.as_str()))]),
        tar_of(&[("hl2", tar::EntryType::Link, b"", Some(up.as_str()))]),
        tar_of(&[
            ("a", tar::EntryType::Symlink, b"", Some("b")),
            (
                "b",
                tar::EntryType::Symlink,
                b"",
                Some(host.path().to_str().unwrap()),
            ),
            ("a/victim", tar::EntryType::Regular, b"pwned", None),
        ]),
    ];
    for (i, t) in cases.iter().enumerate() {
        let _ = import(&s, t, Some(&format!("case:{i}")));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "original",
            "case {i}"
        );
        let listing: Vec<_> = std::fs::read_dir(host.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(listing.len(), 2, "case {i}: {listing:?}");
    }
    // Case 0: the absolute path landed inside the layer.
    let img = s.get_image("case:0").unwrap();
    let top = &s.layer_dirs(&img.id).unwrap()[0];
    assert_eq!(
        std::fs::read_to_string(top.join(v.trim_start_matches('/'))).unwrap(),
        "pwned"
    );
}

#[test]
fn corrupt_input_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &simple_tar("x")).unwrap();
    let mut data = gz.finish().unwrap();
    data.truncate(data.len() / 2);
    for bad in [
        data,
        vec![],
        b"this is not a tar archive at all, just some words".repeat(20),
    ] {
        let e = import(&s, &bad, Some("bad")).unwrap_err();
        assert_eq!(e.kind(), berth_store::ErrorKind::InvalidArgument, "{e}");
    }
    assert!(s.images().unwrap().is_empty());
    assert!(s.get_image("bad").is_err());
    let leftovers: Vec<_> = std::fs::read_dir(d.path().join("snapshots"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "empty")
        .collect();
    assert!(leftovers.is_empty());
    assert_eq!(
        std::fs::read_dir(d.path().join("content/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(d.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn recovery_removes_partial_state() {
    let d = tempfile::tempdir().unwrap();
    drop(Store::open(d.path()).unwrap());
    std::fs::create_dir_all(d.path().join("snapshots/.tmp-dead/fs")).unwrap();
    std::fs::write(d.path().join("content/ingest/partial"), "x").unwrap();
    std::fs::write(d.path().join("image/images/zz.json.tmp"), "{").unwrap();
    let _s = Store::open(d.path()).unwrap();
    assert!(!d.path().join("snapshots/.tmp-dead").exists());
    assert!(!d.path().join("content/ingest/partial").exists());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let t = tar_of(&[
        ("dir/", tar::EntryType::Directory, b"", None),
        ("dir/.wh..wh..opq", tar::EntryType::Regular, b"", None),
        (".wh.gone", tar::EntryType::Regular, b"", None),
    ]);
    let img = import(&s, &t, None).unwrap();
    let top = &s.layer_dirs(&img.id).unwrap()[0];
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::symlink_metadata(top.join("gone")).unwrap();
    assert!(md.file_type().is_char_device());
}
