//! Layer snapshots: one unpacked directory per chain ID, and the overlay mount that stacks
//! them under a container's rw layer.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_oci::digest::Digest;

use crate::error::StoreError;

pub struct Snapshots {
    root: PathBuf,
}

/// A snapshot being unpacked; removed on drop unless committed.
pub struct TmpSnapshot {
    pub dir: PathBuf,
    committed: bool,
}

impl TmpSnapshot {
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for TmpSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The chain ID of a layer: its diff ID for a base layer, else sha256("<parent> <diff>").
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Chain IDs for a list of diff IDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last(), d);
        out.push(c);
    }
    out
}

impl Snapshots {
    pub fn open(root: &Path) -> Result<Snapshots, StoreError> {
        let s = Snapshots { root: root.join("snapshots") };
        std::fs::create_dir_all(&s.root).map_err(StoreError::io("creating snapshots dir"))?;
        // Half-unpacked layers from a crash.
        if let Ok(rd) = std::fs::read_dir(&s.root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(s.root.join("empty")).map_err(StoreError::io("creating empty layer"))?;
        Ok(s)
    }

    pub fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    pub fn fs(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("fs")
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.fs(chain).is_dir()
    }

    pub fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    pub fn tmp(&self) -> Result<TmpSnapshot, StoreError> {
        let n: u64 = rand::random();
        let dir = self.root.join(format!(".tmp-{n:016x}"));
        std::fs::create_dir_all(dir.join("fs")).map_err(StoreError::io("creating snapshot"))?;
        Ok(TmpSnapshot { dir, committed: false })
    }

    /// Publishes `tmp` as `chain` (or drops it if another import got there first).
    pub fn commit(&self, mut tmp: TmpSnapshot, chain: &Digest, size: u64) -> Result<(), StoreError> {
        if self.exists(chain) {
            return Ok(());
        }
        std::fs::write(tmp.dir.join("size"), size.to_string()).map_err(StoreError::io("writing snapshot size"))?;
        std::fs::rename(&tmp.dir, self.dir(chain)).map_err(StoreError::io("publishing snapshot"))?;
        tmp.committed = true;
        Ok(())
    }

    pub fn size(&self, chain: &Digest) -> u64 {
        std::fs::read_to_string(self.dir(chain).join("size")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    pub fn list(&self) -> Vec<Digest> {
        let Ok(rd) = std::fs::read_dir(&self.root) else { return vec![] };
        rd.flatten().filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok()).collect()
    }

    /// Removes a snapshot: renamed aside first so a crash never leaves a half-deleted one
    /// under its real name.
    pub fn remove(&self, chain: &Digest) {
        let n: u64 = rand::random();
        let aside = self.root.join(format!(".tmp-{n:016x}"));
        if std::fs::rename(self.dir(chain), &aside).is_ok() {
            let _ = std::fs::remove_dir_all(aside);
        }
    }
}

/// An overlay mount, as a snapshotter returns it: the caller mounts it where it likes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

impl RootfsMount {
    pub fn overlay(lower: &[PathBuf], upper: &Path, work: &Path) -> RootfsMount {
        let lower = lower.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
        RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={lower}"), format!("upperdir={}", upper.display()), format!("workdir={}", work.display())],
        }
    }

    pub fn mount(&self, target: &Path) -> std::io::Result<()> {
        let src = CString::new(self.source.as_str())?;
        let fstype = CString::new(self.fstype.as_str())?;
        let tgt = CString::new(target.as_os_str().as_bytes())?;
        let data = CString::new(self.options.join(","))?;
        // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
        let r = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast()) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Unmounts `target` (lazily, so a busy mount cannot wedge the caller); Ok if not mounted.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    let tgt = CString::new(target.as_os_str().as_bytes())?;
    loop {
        // SAFETY: valid NUL-terminated path.
        let r = unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
                _ => Err(e),
            };
        }
        // Stacked mounts: keep going until nothing is mounted there.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }
}
