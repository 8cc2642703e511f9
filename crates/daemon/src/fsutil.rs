//! Small filesystem helpers: atomic writes; safe access inside a container root comes
//! from berth-store's `safepath` (openat2 `RESOLVE_IN_ROOT`).
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` atomically (temp file + rename; `durable` adds fsync of the file
/// and its directory). A crash leaves either the old or the new content, never a torn file.
pub fn write_atomic(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub use berth_store::safepath::{mkdir_all_in_root, read_in_root};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"1", true).unwrap();
        write_atomic(&p, b"2", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
    }
}
