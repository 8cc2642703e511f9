//! Layer unpacking through the store: metadata fidelity, whiteouts seen through a real
//! overlay mount, many-layer mounts, hostile archives, broken streams.
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use berth_store::{unmount, ErrorKind, Store};

mod common;
use common::*;

fn apply(
    s: &Store,
    lease: &berth_store::Lease<'_>,
    data: Vec<u8>,
    parent: Option<&str>,
) -> berth_store::Layer {
    s.apply_layer(lease, &mut std::io::Cursor::new(data), parent)
        .unwrap()
}

/// Builds a config for layers (bottom first) and registers it.
fn image_of(s: &Store, layers: &[&berth_store::Layer], name: &str) -> berth_store::Image {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let cfg = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":diff_ids}});
    s.create_image(&serde_json::to_vec(&cfg).unwrap(), Some(name), "")
        .unwrap()
}

#[test]
fn keeps_metadata() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header("sbin/su", tar::EntryType::Regular, 3);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_234_567_890);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).unwrap();
    let mut h = header("dev/null", tar::EntryType::Char, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let mut h = header("run/fifo", tar::EntryType::Fifo, 0);
    h.set_mode(0o640);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let mut h = header("bin/sh", tar::EntryType::Symlink, 0);
    h.set_link_name("busybox").unwrap();
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let mut h = header("bin/su2", tar::EntryType::Link, 0);
    h.set_link_name("sbin/su").unwrap();
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let mut h = header("data/", tar::EntryType::Directory, 0);
    h.set_mode(0o1777);
    h.set_mtime(1_000_000_000);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    // A PAX xattr and a nanosecond mtime.
    b.append_pax_extensions([
        ("SCHILY.xattr.user.note", &b"hi"[..]),
        ("mtime", &b"1700000000.25"[..]),
    ])
    .unwrap();
    let h = header("data/x", tar::EntryType::Regular, 1);
    b.append(&h, &b"x"[..]).unwrap();
    let img = import(&s, &b.into_inner().unwrap(), Some("meta")).unwrap();
    let root = &s.layer_dirs("meta").unwrap()[0];

    let su = std::fs::symlink_metadata(root.join("sbin/su")).unwrap();
    assert_eq!(
        (su.mode() & 0o7777, su.uid(), su.gid(), su.mtime()),
        (0o4755, 1000, 1001, 1_234_567_890)
    );
    assert_eq!(su.nlink(), 2, "hardlink shares the inode");
    let null = std::fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o777),
        (libc::makedev(1, 3), 0o666)
    );
    let fifo = std::fs::symlink_metadata(root.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    let data = std::fs::metadata(root.join("data")).unwrap();
    assert_eq!(
        (data.mode() & 0o7777, data.mtime()),
        (0o1777, 1_000_000_000)
    );
    let x = std::fs::metadata(root.join("data/x")).unwrap();
    assert_eq!((x.mtime(), x.mtime_nsec()), (1_700_000_000, 250_000_000));
    let mut buf = [0u8; 8];
    let p = std::ffi::CString::new(root.join("data/x").to_str().unwrap()).unwrap();
    // SAFETY: valid path, name and buffer.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.note".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(&buf[..n as usize], b"hi");
    // Size: file data (hardlink once) and symlink targets.
    assert_eq!(img.size, 3 + "busybox".len() as u64 + 1);
}

#[test]
fn whiteouts_hide_lower_files_through_overlay() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let lease = s.lease();
    let base = apply(
        &s,
        &lease,
        tar_of(&[
            ("etc/", tar::EntryType::Directory, b"", None),
            ("etc/gone", tar::EntryType::Regular, b"x", None),
            ("etc/kept", tar::EntryType::Regular, b"k", None),
            ("opq/", tar::EntryType::Directory, b"", None),
            ("opq/old", tar::EntryType::Regular, b"o", None),
        ]),
        None,
    );
    let top = apply(
        &s,
        &lease,
        tar_of(&[
            ("etc/.wh.gone", tar::EntryType::Regular, b"", None),
            ("opq/", tar::EntryType::Directory, b"", None),
            ("opq/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            ("opq/new", tar::EntryType::Regular, b"n", None),
            (".wh..wh.plnk/", tar::EntryType::Directory, b"", None),
        ]),
        Some(&base.chain_id),
    );
    let img = image_of(&s, &[&base, &top], "wh");
    drop(lease);
    let m = s.prepare_rootfs(&img.id, &d.path().join("rw")).unwrap();
    let target = d.path().join("merged");
    std::fs::create_dir_all(&target).unwrap();
    m.mount(&target).unwrap();
    let seen = (
        target.join("etc/gone").exists(),
        target.join("etc/kept").exists(),
        target.join("opq/old").exists(),
        target.join("opq/new").exists(),
        target.join(".wh..wh.plnk").exists(),
    );
    unmount(&target).unwrap();
    assert_eq!(seen, (false, true, false, true, false));
}

#[test]
fn many_layers_mount() {
    // A long data root makes the overlay options overflow one page: the fsopen path.
    let d = tempfile::tempdir().unwrap();
    let root = d
        .path()
        .join("a-rather-long-data-root-directory-name-to-make-paths-longer/berth");
    let s = Store::open(&root).unwrap();
    let lease = s.lease();
    let mut layers = Vec::new();
    for i in 0..60 {
        let name = format!("layer{i}");
        let data = tar_of(&[
            (
                name.as_str(),
                tar::EntryType::Regular,
                name.as_bytes(),
                None,
            ),
            ("shared", tar::EntryType::Regular, name.as_bytes(), None),
        ]);
        let parent = layers
            .last()
            .map(|l: &berth_store::Layer| l.chain_id.clone());
        layers.push(apply(&s, &lease, data, parent.as_deref()));
    }
    let refs: Vec<_> = layers.iter().collect();
    let img = image_of(&s, &refs, "many");
    drop(lease);
    let m = s.prepare_rootfs(&img.id, &root.join("rw")).unwrap();
    assert!(m.options.join(",").len() > 4096);
    let target = root.join("merged");
    std::fs::create_dir_all(&target).unwrap();
    m.mount(&target).unwrap();
    let first = std::fs::read_to_string(target.join("layer0"));
    let shared = std::fs::read_to_string(target.join("shared"));
    unmount(&target).unwrap();
    assert_eq!(first.unwrap(), "layer0");
    assert_eq!(shared.unwrap(), "layer59", "the top layer wins");
}

#[test]
fn empty_image_mounts_an_empty_lower() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let img = image_of(&s, &[], "scratch");
    let m = s.prepare_rootfs(&img.id, &d.path().join("rw")).unwrap();
    let target = d.path().join("merged");
    std::fs::create_dir_all(&target).unwrap();
    m.mount(&target).unwrap();
    std::fs::write(target.join("f"), "x").unwrap();
    unmount(&target).unwrap();
    assert!(d.path().join("rw/upper/f").is_file());
}

#[test]
fn zstd_and_plain_imports() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let plain = import(&s, &simple_tar("z"), Some("plain")).unwrap();
    let z = import(
        &s,
        &zstd::encode_all(&simple_tar("z")[..], 3).unwrap(),
        Some("zst"),
    )
    .unwrap();
    let g = import(&s, &gzip(&simple_tar("z")), Some("gz")).unwrap();
    // Same uncompressed tar → same diff ID → one snapshot.
    assert_eq!(plain.config.rootfs.diff_ids, z.config.rootfs.diff_ids);
    assert_eq!(plain.config.rootfs.diff_ids, g.config.rootfs.diff_ids);
    assert_eq!(snapshot_count(d.path()), 1);
}

/// Nothing left: no image, snapshot, blob or ingest.
fn assert_clean(root: &std::path::Path, s: &Store) {
    assert!(s.images().unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "empty")
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(blob_count(root), 0);
    assert_eq!(
        std::fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn broken_streams_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let big = tar_of(&[
        ("f", tar::EntryType::Regular, &[7u8; 10_000], None),
        ("g", tar::EntryType::Regular, b"g", None),
    ]);
    let mut bad_ck = big.clone();
    bad_ck[100] ^= 0xff; // inside the first header
    let gz = gzip(&big);
    let mut gz_corrupt = gz.clone();
    let mid = gz_corrupt.len() / 2;
    gz_corrupt[mid] ^= 0xff;
    let zs = zstd::encode_all(&big[..], 3).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain truncated mid-file", big[..3000].to_vec()),
        ("plain truncated mid-header", big[..10_500 + 100].to_vec()),
        ("bad header checksum", bad_ck),
        ("gzip truncated", gz[..gz.len() / 2].to_vec()),
        ("gzip missing trailer", gz[..gz.len() - 4].to_vec()),
        ("gzip corrupt", gz_corrupt),
        ("zstd truncated", zs[..zs.len() - 3].to_vec()),
        ("empty", vec![]),
        ("garbage", b"not a tar archive, just words ".repeat(40)),
        ("xz", vec![0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0]),
    ];
    for (what, data) in cases {
        let e = import(&s, &data, Some("bad")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        assert_clean(d.path(), &s);
    }
}

/// Every hostile archive: nothing outside the store's root is created or changed, and the
/// host's /etc/passwd is not linked or written.
#[test]
fn hostile_archives() {
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::write(&victim, "original").unwrap();
    let root = host.path().join("root");
    let s = Store::open(&root).unwrap();
    let passwd_before = std::fs::symlink_metadata("/etc/passwd").unwrap();
    let v = victim.display().to_string();
    let h = host.path().display().to_string();
    let up = format!("../../../../../../../../..{v}");
    let cases: Vec<Vec<u8>> = vec![
        // Symlink to / then a directory entry and a file through it.
        tar_of(&[
            ("l", tar::EntryType::Symlink, b"", Some("/")),
            (&format!("l{h}/"), tar::EntryType::Directory, b"", None),
            (&format!("l{v}"), tar::EntryType::Regular, b"pwned", None),
        ]),
        // Hardlinks to host files, absolute and relative.
        tar_of(&[("pw", tar::EntryType::Link, b"", Some("/etc/passwd"))]),
        tar_of(&[
            ("etc/", tar::EntryType::Directory, b"", None),
            ("etc/passwd", tar::EntryType::Regular, b"in-root", None),
            (
                "pw",
                tar::EntryType::Link,
                b"",
                Some("../../../../etc/passwd"),
            ),
            ("pw", tar::EntryType::Regular, b"overwrite", None),
        ]),
        // Symlink chain out of the root, then writes through it.
        tar_of(&[
            ("a", tar::EntryType::Symlink, b"", Some("b")),
            ("b", tar::EntryType::Symlink, b"", Some("c/../../..")),
            ("c", tar::EntryType::Symlink, b"", Some("/")),
            ("a/victim", tar::EntryType::Regular, b"pwned", None),
            ("a/new", tar::EntryType::Regular, b"pwned", None),
        ]),
        // Symlink then a hardlink through it.
        tar_of(&[
            ("s", tar::EntryType::Symlink, b"", Some(&h)),
            ("hl", tar::EntryType::Link, b"", Some("s/victim")),
        ]),
        // A whiteout and an opaque marker through a symlink to the host.
        tar_of(&[
            ("w", tar::EntryType::Symlink, b"", Some(&h)),
            ("w/.wh.victim", tar::EntryType::Regular, b"", None),
            ("w/.wh..wh..opq", tar::EntryType::Regular, b"", None),
        ]),
        // Replacing a symlink to the victim with a file, a dir, a device.
        tar_of(&[
            ("f", tar::EntryType::Symlink, b"", Some(&v)),
            ("f", tar::EntryType::Regular, b"pwned", None),
        ]),
        tar_of(&[
            ("f", tar::EntryType::Symlink, b"", Some(&h)),
            ("f/", tar::EntryType::Directory, b"", None),
            ("f/victim", tar::EntryType::Regular, b"pwned", None),
        ]),
        tar_of(&[
            ("f", tar::EntryType::Symlink, b"", Some(&v)),
            ("f", tar::EntryType::Fifo, b"", None),
        ]),
        // Absolute and dot-dot names.
        tar_of(&[(v.as_str(), tar::EntryType::Regular, b"pwned", None)]),
        tar_of(&[(up.as_str(), tar::EntryType::Regular, b"pwned", None)]),
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
        let after = std::fs::symlink_metadata("/etc/passwd").unwrap();
        assert_eq!(
            (after.nlink(), after.mtime(), after.ino()),
            (
                passwd_before.nlink(),
                passwd_before.mtime(),
                passwd_before.ino()
            ),
            "case {i}"
        );
    }
    // The relative hardlink resolved inside the root.
    let top = &s.layer_dirs("case:2").unwrap()[0];
    assert_eq!(
        std::fs::read_to_string(top.join("pw")).unwrap(),
        "overwrite"
    );
    assert_eq!(
        std::fs::read_to_string(top.join("etc/passwd")).unwrap(),
        "in-root"
    );
    // The chain of links stayed inside: a/new landed in the layer's root.
    let top = &s.layer_dirs("case:3").unwrap()[0];
    assert_eq!(std::fs::read_to_string(top.join("new")).unwrap(), "pwned");
    // The absolute path landed inside the layer.
    let top = &s.layer_dirs("case:9").unwrap()[0];
    assert_eq!(
        std::fs::read_to_string(top.join(v.trim_start_matches('/'))).unwrap(),
        "pwned"
    );
}
