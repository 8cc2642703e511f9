//! Layer snapshots: one unpacked directory per chain ID (`snapshots/<chain hex>/fs`, its
//! size in `snapshots/<chain hex>/size`), shared by every image that has the layer.
//! Unpacked under a `.tmp-*` name and renamed when whole; removed by renaming aside first,
//! so a crash never leaves a half-written or half-deleted snapshot under its real name.
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_oci::digest::Digest;

use crate::error::StoreError;
use crate::fsutil::{remove_tmp_entries, sync_dir, tmp_name};

pub(crate) struct Snapshots {
    root: PathBuf,
}

/// A snapshot being unpacked; removed on drop unless published.
pub(crate) struct TmpSnapshot {
    dir: PathBuf,
    published: bool,
}

impl TmpSnapshot {
    /// Where the layer is unpacked.
    pub(crate) fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }

    /// Records the size without flushing anything: the caller flushes several staged
    /// snapshots with one [`TmpSnapshot::sync_fs`] before publishing any of them.
    pub(crate) fn record_size(&self, size: u64) -> Result<(), StoreError> {
        std::fs::write(self.dir.join("size"), size.to_string())
            .map_err(StoreError::io("writing the snapshot size"))
    }

    /// Flushes the whole filesystem the snapshot is on (`syncfs`).
    pub(crate) fn sync_fs(&self) -> Result<(), StoreError> {
        let d = std::fs::File::open(&self.dir).map_err(StoreError::io("opening snapshot"))?;
        // SAFETY: a valid fd for the duration of the call.
        if unsafe { libc::syncfs(d.as_raw_fd()) } < 0 {
            return Err(StoreError::Io {
                what: "syncing snapshot".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

impl Drop for TmpSnapshot {
    fn drop(&mut self) {
        if !self.published {
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
    /// Opens the snapshot directory, removing half-unpacked and half-deleted snapshots.
    pub(crate) fn open(data_root: &Path) -> Result<Snapshots, StoreError> {
        let s = Snapshots {
            root: data_root.join("snapshots"),
        };
        std::fs::create_dir_all(&s.root).map_err(StoreError::io("creating snapshots dir"))?;
        remove_tmp_entries(&s.root);
        // A snapshot without its size file was never published whole (older layouts).
        for c in s.list() {
            if !s.dir(&c).join("size").is_file() || !s.fs(&c).is_dir() {
                tracing::warn!(chain_id = %c, "removing incomplete snapshot");
                if let Some(trash) = s.remove(&c) {
                    let _ = std::fs::remove_dir_all(trash);
                }
            }
        }
        std::fs::create_dir_all(s.empty_dir()).map_err(StoreError::io("creating empty layer"))?;
        Ok(s)
    }

    pub(crate) fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    pub(crate) fn fs(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("fs")
    }

    pub(crate) fn exists(&self, chain: &Digest) -> bool {
        self.fs(chain).is_dir()
    }

    /// The lower dir of an image without layers.
    pub(crate) fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    pub(crate) fn tmp(&self) -> Result<TmpSnapshot, StoreError> {
        let dir = tmp_name(&self.root);
        std::fs::create_dir_all(dir.join("fs")).map_err(StoreError::io("creating snapshot"))?;
        Ok(TmpSnapshot {
            dir,
            published: false,
        })
    }

    /// Publishes a sealed `tmp` as `chain` (or drops it if that snapshot exists already).
    pub(crate) fn publish(&self, mut tmp: TmpSnapshot, chain: &Digest) -> Result<(), StoreError> {
        if self.exists(chain) {
            return Ok(());
        }
        std::fs::rename(&tmp.dir, self.dir(chain))
            .map_err(StoreError::io("publishing snapshot"))?;
        tmp.published = true;
        sync_dir(&self.root)
    }

    pub(crate) fn size(&self, chain: &Digest) -> u64 {
        std::fs::read_to_string(self.dir(chain).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn list(&self) -> Vec<Digest> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return vec![];
        };
        rd.flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
            .collect()
    }

    /// Takes a snapshot out of the store by renaming it aside (atomic); returns the trash
    /// path for the caller to delete, outside any lock. Recovery deletes trash left behind.
    pub(crate) fn remove(&self, chain: &Digest) -> Option<PathBuf> {
        let aside = tmp_name(&self.root);
        match std::fs::rename(self.dir(chain), &aside) {
            Ok(()) => Some(aside),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(chain_id = %chain, error = %e, "removing snapshot");
                }
                None
            }
        }
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
