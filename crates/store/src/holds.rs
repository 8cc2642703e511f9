//! Holds: a container's claim on the layers under its rootfs. An image can be deleted
//! (`rmi -f`) while a stopped container still uses it, as in Docker; the hold keeps the
//! image's snapshots, layer blobs and config until the container is removed.
//!
//! One file per holder, `image/holds/<holder>.json`, written atomically before the holder
//! uses the layers; garbage collection counts holds like images.
use std::path::PathBuf;

use berth_oci::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::fsutil::{create_durable, remove_durable, write_atomic};
use crate::mount::RootfsMount;
use crate::snapshot::chain_ids;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hold {
    pub(crate) image: Digest,
    pub(crate) diff_ids: Vec<Digest>,
}

/// Holder names become file names: keep them to what IDs and names are made of.
fn valid_holder(holder: &str) -> bool {
    !holder.is_empty()
        && holder.len() <= 128
        && !holder.starts_with('.')
        && holder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Store {
    pub(crate) fn holds_dir(&self) -> PathBuf {
        self.meta.join("holds")
    }

    fn hold_path(&self, holder: &str) -> PathBuf {
        self.holds_dir().join(format!("{holder}.json"))
    }

    /// Reads the hold records at open; unreadable ones are dropped with a warning.
    pub(crate) fn load_holds(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(self.holds_dir()).map_err(StoreError::io("creating holds dir"))?;
        let mut st = self.lock();
        for e in std::fs::read_dir(self.holds_dir())
            .map_err(StoreError::io("reading holds"))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(holder) = name.strip_suffix(".json").filter(|h| valid_holder(h)) else {
                let _ = std::fs::remove_file(e.path());
                continue;
            };
            match std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Hold>(&b).ok())
            {
                Some(h) => {
                    st.holds.insert(holder.to_owned(), h);
                }
                // Empty: a create cut short before its hold was durable (`create_durable`).
                None if e.metadata().is_ok_and(|m| m.len() == 0) => {
                    let _ = std::fs::remove_file(e.path());
                }
                None => tracing::warn!(holder, "unreadable layer hold; ignoring it"),
            }
        }
        Ok(())
    }

    /// Makes `holder` keep the layers of `image` (a name or ID) until [`Store::release`].
    /// Returns the image ID. Taking a hold again replaces it.
    pub fn hold(&self, holder: &str, image: &str) -> Result<Digest, StoreError> {
        if !valid_holder(holder) {
            return Err(StoreError::InvalidHolder(holder.to_owned()));
        }
        let mut st = self.lock();
        let id = self.resolve(&st, image)?;
        let hold = Hold {
            image: id.clone(),
            diff_ids: st.images[&id].diff_ids(),
        };
        let data = serde_json::to_vec(&hold).expect("a hold serialises");
        let path = self.hold_path(holder);
        // A new holder's hold is created in place (one wait for the disk, not two); a crash
        // before that returns may leave it empty, which `load_holds` drops.
        if st.holds.contains_key(holder) || !create_durable(&path, &data)? {
            write_atomic(&path, &data)?;
        }
        st.holds.insert(holder.to_owned(), hold);
        Ok(id)
    }

    /// Drops the hold of `holder` (no error when there is none) and collects what nothing
    /// else needs.
    pub fn release(&self, holder: &str) -> Result<(), StoreError> {
        if !valid_holder(holder) {
            return Ok(());
        }
        let trash = {
            let mut st = self.lock();
            let path = self.hold_path(holder);
            match st.holds.remove(holder) {
                // The layers go with the hold: its removal is made durable before them.
                Some(h) if !st.images.contains_key(&h.image) => {
                    remove_durable(&path)?;
                    self.collect_garbage(&mut st).1
                }
                // While the image exists it keeps every layer the hold kept: nothing to
                // collect (the common case, on the `rm` path). No wait for the disk either: a
                // hold that a crash brings back without its holder is released at start-up
                // (`holders`), one whose holder comes back too is right.
                _ => {
                    match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(StoreError::Io {
                                what: format!("removing {}", path.display()),
                                source: e,
                            })
                        }
                        _ => {}
                    }
                    return Ok(());
                }
            }
        };
        crate::remove::empty_trash(trash);
        Ok(())
    }

    /// Holders with a hold (sorted), for reconciliation with the holders that still exist.
    pub fn holders(&self) -> Vec<String> {
        self.lock().holds.keys().cloned().collect()
    }

    /// The layer directories under `holder`'s rootfs, topmost first.
    pub fn held_layer_dirs(&self, holder: &str) -> Result<Vec<PathBuf>, StoreError> {
        let st = self.lock();
        let hold = st.holds.get(holder).ok_or_else(|| StoreError::NotFound {
            reference: format!("layers of {holder}"),
        })?;
        let mut dirs: Vec<PathBuf> = chain_ids(&hold.diff_ids)
            .iter()
            .map(|c| self.snapshots.fs(c))
            .collect();
        dirs.reverse();
        Ok(dirs)
    }

    /// [`Store::prepare_rootfs`] over the layers `holder` holds, which outlive the image.
    pub fn prepare_held_rootfs(
        &self,
        holder: &str,
        rw_dir: &std::path::Path,
    ) -> Result<RootfsMount, StoreError> {
        let lower = self.held_layer_dirs(holder)?;
        self.overlay_over(lower, rw_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_holder;

    #[test]
    fn holder_names() {
        assert!(valid_holder("0123abcdef"));
        assert!(valid_holder("build-1.x_y"));
        for bad in ["", "..", ".hidden", "a/b", "../x", "a b"] {
            assert!(!valid_holder(bad), "{bad}");
        }
    }
}
