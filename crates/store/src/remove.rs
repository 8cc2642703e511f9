//! `docker rmi`: Docker's untag/delete rules, and garbage collection derived from the
//! remaining images (no stored reference counts, so nothing can drift after a crash).
//!
//! Rules (moby `ImageDelete`):
//! - By reference: if it is the image's only reference, a container uses the image and not
//!   `force` → conflict. The reference is untagged (and, when no tag of that repository is
//!   left, the repository's digest references too). If references remain, done; else the
//!   image is deleted unless a container uses it (then it stays, dangling).
//! - By ID (or ID prefix): with one reference (or one repository's tag + digests) they are
//!   untagged first, after the container checks. Then: a running container is a hard
//!   conflict (never forced); remaining references ("referenced in multiple repositories")
//!   and a stopped container are soft conflicts, forced by `force`.
//! - Forced while a stopped container uses it, the image is deleted as in Docker; the
//!   container's hold (`holds.rs`) keeps the layers under its rootfs until it is removed.
//! - Deleting an image removes its record and config, then every snapshot and layer blob no
//!   remaining image (or lease) needs; the removed layers are reported like Docker does.
use std::collections::BTreeSet;
use std::path::PathBuf;

use berth_oci::digest::Digest;
use berth_oci::reference::Reference;

use crate::error::StoreError;
use crate::snapshot::chain_ids;
use crate::store::{State, Store};

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDelete {
    Untagged(String),
    Deleted(String),
}

/// A container using an image, for conflict checks and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container_id: String,
    pub running: bool,
}

fn truncate_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Docker's `isSingleReference`: one tag, or one repository's tag plus its digests.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = BTreeSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

/// Docker's `isImageIDPrefix`.
fn is_id_prefix(id: &Digest, term: &str) -> bool {
    id.to_string().starts_with(term) || id.hex().starts_with(term)
}

/// Deletes renamed-aside snapshots; call without the store lock.
pub(crate) fn empty_trash(trash: Vec<PathBuf>) {
    for t in trash {
        if let Err(e) = std::fs::remove_dir_all(&t) {
            tracing::warn!(path = %t.display(), error = %e, "removing a deleted snapshot");
        }
    }
}

struct Conflict {
    hard: bool,
    used: bool,
    reason: String,
}

impl Store {
    /// `docker rmi` with a yes/no container check. Prefer [`Store::remove_image_with`], whose
    /// messages name the container.
    pub fn remove_image(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDelete>, StoreError> {
        self.remove_image_with(name_or_id, force, &|id| {
            in_use(id).then(|| ImageUser {
                container_id: String::new(),
                running: false,
            })
        })
    }

    /// `docker rmi`: `using(image_id)` names a container using the image, if any (called
    /// without the store lock held).
    pub fn remove_image_with(
        &self,
        name_or_id: &str,
        force: bool,
        using: &dyn Fn(&str) -> Option<ImageUser>,
    ) -> Result<Vec<ImageDelete>, StoreError> {
        self.remove_image_measured(name_or_id, force, using, false)
            .map(|(r, _)| r)
    }

    /// [`Store::remove_image_with`]; with `measure`, also the disk bytes freed (snapshots,
    /// blobs and the image record), for prune.
    pub fn remove_image_measured(
        &self,
        name_or_id: &str,
        force: bool,
        using: &dyn Fn(&str) -> Option<ImageUser>,
        measure: bool,
    ) -> Result<(Vec<ImageDelete>, u64), StoreError> {
        // Ask about containers without holding the lock, then check nothing moved.
        let mut attempts = 0;
        let (mut st, id, user) = loop {
            let id = {
                let st = self.lock();
                self.resolve(&st, name_or_id)?
            };
            let user = using(&id.to_string());
            let st = self.lock();
            let again = self.resolve(&st, name_or_id)?;
            attempts += 1;
            if again == id || attempts >= 3 {
                break (st, again, user);
            }
        };
        let mut records = Vec::new();
        let mut refs = st.refs_of(&id);
        let mut quiet = false;
        if !is_id_prefix(&id, name_or_id) {
            if !force && is_single_reference(&refs) {
                if let Some(u) = &user {
                    return Err(StoreError::ReferenceInUse {
                        reference: name_or_id.to_owned(),
                        container: truncate_id(&u.container_id),
                        image: id.short().to_owned(),
                    });
                }
            }
            let parsed = Reference::parse(name_or_id)?.with_default_tag();
            let parsed = if parsed.digest().is_some() {
                parsed.canonical_lookup()
            } else {
                parsed
            };
            st.refs.remove(&parsed);
            records.push(ImageDelete::Untagged(parsed.familiar()));
            refs = st.refs_of(&id);
            if parsed.digest().is_none()
                && !refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == parsed.name())
            {
                for r in refs
                    .iter()
                    .filter(|r| r.digest().is_some() && r.name() == parsed.name())
                {
                    st.refs.remove(r);
                    records.push(ImageDelete::Untagged(r.familiar()));
                }
                refs = st.refs_of(&id);
            }
            self.save_repos(&st)?;
            if !refs.is_empty() {
                return Ok((records, 0));
            }
            quiet = true;
        } else if is_single_reference(&refs) {
            if let Some(c) = conflict(&user, force, false, &[]) {
                return Err(StoreError::DeleteConflict {
                    image: id.short().to_owned(),
                    hard: c.hard,
                    reason: c.reason,
                });
            }
            for r in &refs {
                st.refs.remove(r);
                records.push(ImageDelete::Untagged(r.familiar()));
            }
            self.save_repos(&st)?;
            refs.clear();
        }

        if let Some(c) = conflict(&user, force, true, &refs) {
            if quiet && (!refs.is_empty() || c.used) {
                return Ok((records, 0));
            }
            return Err(StoreError::DeleteConflict {
                image: id.short().to_owned(),
                hard: c.hard,
                reason: c.reason,
            });
        }
        for r in &refs {
            st.refs.remove(r);
            records.push(ImageDelete::Untagged(r.familiar()));
        }
        if !refs.is_empty() {
            self.save_repos(&st)?;
        }

        let record_bytes = if measure {
            crate::usage::disk_usage(&self.record_path(&id))
        } else {
            0
        };
        crate::fsutil::remove_durable(&self.record_path(&id))?;
        let entry = st.images.remove(&id).expect("resolved under this lock");
        records.push(ImageDelete::Deleted(id.to_string()));
        let (removed, trash, blob_bytes) = self.collect_garbage(&mut st);
        drop(st);
        let mut chains = chain_ids(&entry.diff_ids());
        chains.reverse();
        for c in chains.into_iter().filter(|c| removed.contains(c)) {
            records.push(ImageDelete::Deleted(c.to_string()));
        }
        let mut freed = record_bytes + blob_bytes;
        if measure {
            freed += trash
                .iter()
                .map(|t| crate::usage::disk_usage(t))
                .sum::<u64>();
        }
        empty_trash(trash);
        Ok((records, freed))
    }

    /// Removes every snapshot and blob that no image and no lease needs. Snapshots are
    /// renamed aside (returned, for deletion outside the lock).
    /// Also returns the disk bytes of the deleted blobs.
    pub(crate) fn collect_garbage(&self, st: &mut State) -> (BTreeSet<Digest>, Vec<PathBuf>, u64) {
        let mut chains = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for (id, entry) in &st.images {
            blobs.insert(id.clone());
            let diff_ids = entry.diff_ids();
            chains.extend(chain_ids(&diff_ids));
            blobs.extend(diff_ids);
        }
        for l in st.leases.values() {
            chains.extend(l.chains.iter().cloned());
            blobs.extend(l.blobs.iter().cloned());
        }
        for h in st.holds.values() {
            chains.extend(chain_ids(&h.diff_ids));
            blobs.extend(h.diff_ids.iter().cloned());
            blobs.insert(h.image.clone());
        }
        let mut removed = BTreeSet::new();
        let mut trash = Vec::new();
        for c in self.snapshots.list() {
            if !chains.contains(&c) {
                trash.extend(self.snapshots.remove(&c));
                st.sizes.remove(&c);
                removed.insert(c);
            }
        }
        let mut blob_bytes = 0;
        for b in self.content.list() {
            if !blobs.contains(&b) {
                blob_bytes += self.content.delete(&b);
            }
        }
        (removed, trash, blob_bytes)
    }
}

/// moby's `checkImageDeleteConflict`: hard = running container; soft = remaining
/// references (only when `check_refs`) and stopped containers, skipped when forced.
fn conflict(
    user: &Option<ImageUser>,
    force: bool,
    check_refs: bool,
    refs: &[Reference],
) -> Option<Conflict> {
    let cid = |u: &ImageUser| {
        if u.container_id.is_empty() {
            String::new()
        } else {
            format!(" {}", truncate_id(&u.container_id))
        }
    };
    if let Some(u) = user.as_ref().filter(|u| u.running) {
        return Some(Conflict {
            hard: true,
            used: true,
            reason: format!("image is being used by running container{}", cid(u)),
        });
    }
    if force {
        return None;
    }
    if check_refs && !refs.is_empty() {
        return Some(Conflict {
            hard: false,
            used: false,
            reason: "image is referenced in multiple repositories".into(),
        });
    }
    user.as_ref().map(|u| Conflict {
        hard: false,
        used: true,
        reason: format!("image is being used by stopped container{}", cid(u)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_reference_rules() {
        let r = |s: &str| Reference::parse_with_default_tag(s).unwrap();
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&[r("a")]));
        assert!(!is_single_reference(&[r("a"), r("b")]));
        assert!(is_single_reference(&[r("a"), r(&format!("a@{d}"))]));
        assert!(!is_single_reference(&[r("a"), r(&format!("b@{d}"))]));
        let id = Digest::parse(d).unwrap();
        assert!(is_id_prefix(&id, "e3b0"));
        assert!(is_id_prefix(&id, "sha256:e3b"));
        assert!(!is_id_prefix(&id, "busybox"));
    }
}
