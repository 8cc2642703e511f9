//! Helpers shared by the store integration tests: hand-built (possibly hostile) tars.
#![allow(dead_code)]
use std::io::Cursor;

use berth_store::{ImportOptions, Store};

pub fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_700_000_000);
    // Bypass the tar crate's own path sanitising: hostile names must reach the store.
    let name = path.as_bytes();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    h
}

pub fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = header(path, *kind, data.len() as u64);
        if let Some(l) = link {
            let lb = l.as_bytes();
            h.as_old_mut().linkname[..lb.len()].copy_from_slice(lb);
            h.set_cksum();
        }
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn simple_tar(marker: &str) -> Vec<u8> {
    tar_of(&[
        ("bin/", tar::EntryType::Directory, b"", None),
        (
            "bin/hello",
            tar::EntryType::Regular,
            marker.as_bytes(),
            None,
        ),
        ("etc/", tar::EntryType::Directory, b"", None),
        (
            "etc/passwd",
            tar::EntryType::Regular,
            b"root:x:0:0:root:/root:/bin/sh\n",
            None,
        ),
    ])
}

pub fn import(
    s: &Store,
    data: &[u8],
    r: Option<&str>,
) -> Result<berth_store::Image, berth_store::StoreError> {
    s.import(
        &mut Cursor::new(data.to_vec()),
        &ImportOptions {
            reference: r.map(str::to_owned),
            ..Default::default()
        },
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, data).unwrap();
    gz.finish().unwrap()
}

/// Snapshot directories that are published layers (not temp, not `empty`).
pub fn snapshot_count(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.file_name() != "empty")
        .count()
}

pub fn blob_count(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("content/blobs/sha256"))
        .unwrap()
        .count()
}
