//! Crash-safe file primitives: temp file + fsync + rename + directory fsync, and durable
//! creation in place for new files.
use std::io::Write;
use std::path::Path;

use crate::error::StoreError;

/// Prefix of every temporary name in the store; start-up recovery removes them.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A fresh temporary name in `dir`.
pub(crate) fn tmp_name(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()))
}

/// Fsyncs a directory, making renames and creations in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(format!("syncing {}", dir.display())))
}

/// Replaces `path` with `data` atomically: a reader sees the old or the new content, never a
/// torn file, even across a crash.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().expect("a file in a directory");
    let tmp = tmp_name(dir);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Io {
            what: format!("writing {}", path.display()),
            source: e,
        });
    }
    sync_dir(dir)
}

/// Creates `path`, which must not exist, with `data`, durably: written in place and fsynced
/// (one journal commit covers the new entry and the data), then the directory. Cheaper than
/// a temp file and a rename by a commit; a crash before it returns may leave the file empty,
/// which readers must take for "never created". `Ok(false)`: the file exists, nothing
/// written. (berthd creates container records with it too.)
pub fn create_new_durable(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    if let Err(e) = f.write_all(data).and_then(|_| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

/// [`create_new_durable`] with the store's error.
pub(crate) fn create_durable(path: &Path, data: &[u8]) -> Result<bool, StoreError> {
    create_new_durable(path, data).map_err(StoreError::io(format!("writing {}", path.display())))
}

/// Removes the file, fsyncing the directory; Ok if it was not there.
pub(crate) fn remove_durable(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().expect("a file in a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io {
            what: format!("removing {}", path.display()),
            source: e,
        }),
    }
}

/// Removes every `.tmp-*` entry (files or trees) in `dir`: leftovers of a crash.
pub(crate) fn remove_tmp_entries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let p = e.path();
            tracing::info!(path = %p.display(), "removing leftover of an interrupted operation");
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
}
