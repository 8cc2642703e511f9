//! Disk usage (`docker system df`) and image prune, in bytes actually used on disk: what
//! `du` counts (allocated blocks, each inode once), so reported sizes match what a prune
//! frees. A layer's usage is its unpacked snapshot plus its stored tar blob.
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_oci::digest::Digest;

use crate::remove::{ImageDelete, ImageUser};
use crate::snapshot::chain_ids;
use crate::store::{Image, Store};

/// `du -s` of `path` in bytes: allocated blocks of every inode under it (hard links once),
/// never following symlinks.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    du(path, &mut seen)
}

fn du(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !seen.insert((m.dev(), m.ino())) {
        return 0;
    }
    let mut total = m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                total += du(&e.path(), seen);
            }
        }
    }
    total
}

/// One image in [`Usage`].
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: Image,
    /// Disk bytes of its layers and config.
    pub size: u64,
    /// The part of `size` in layers other images share.
    pub shared_size: u64,
}

/// What `system df` reports for images.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Disk bytes of every layer and image config in the store, each once.
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
}

impl Store {
    fn layer_usage(&self, chain: &Digest, diff: &Digest) -> u64 {
        if let Some(u) = self.usage_cache().get(chain) {
            return *u;
        }
        let u = disk_usage(&self.snapshots.dir(chain)) + disk_usage(&self.content.path(diff));
        self.usage_cache().insert(chain.clone(), u);
        u
    }

    fn usage_cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Digest, u64>> {
        self.du_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Disk usage of the images (layers are immutable: measured once, then cached).
    pub fn usage(&self) -> Usage {
        let images = self.images().unwrap_or_default();
        let layers: Vec<(Image, Vec<(Digest, Digest)>)> = images
            .into_iter()
            .map(|i| {
                let diffs: Vec<Digest> = i
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .filter_map(|d| Digest::parse(d).ok())
                    .collect();
                let pairs = chain_ids(&diffs).into_iter().zip(diffs).collect();
                (i, pairs)
            })
            .collect();
        let mut users: BTreeMap<Digest, usize> = BTreeMap::new();
        for (_, ls) in &layers {
            let mine: HashSet<&Digest> = ls.iter().map(|(c, _)| c).collect();
            for c in mine {
                *users.entry(c.clone()).or_default() += 1;
            }
        }
        let mut out = Usage::default();
        let mut counted = HashSet::new();
        for (img, ls) in layers {
            let cfg = Digest::parse(&img.id)
                .map(|d| disk_usage(&self.content.path(&d)))
                .unwrap_or(0);
            let mut size = cfg;
            let mut shared = 0;
            out.layers_size += cfg;
            for (c, d) in &ls {
                let u = self.layer_usage(c, d);
                size += u;
                if users.get(c).copied().unwrap_or(0) > 1 {
                    shared += u;
                }
                if counted.insert(c.clone()) {
                    out.layers_size += u;
                }
            }
            out.images.push(ImageUsage {
                image: img,
                size,
                shared_size: shared,
            });
        }
        out
    }

    /// `docker image prune`: deletes the images `candidate` accepts that no container uses
    /// (`using`); with `all` tagged ones too (their tags are removed first), else only
    /// dangling ones. Returns Docker's delete records and the disk bytes freed.
    pub fn prune_images(
        &self,
        all: bool,
        candidate: &dyn Fn(&Image) -> bool,
        using: &dyn Fn(&str) -> Option<ImageUser>,
    ) -> (Vec<ImageDelete>, u64) {
        let images = self.images().unwrap_or_default();
        let parents: HashSet<String> = images.iter().map(|i| i.parent.clone()).collect();
        let mut records = Vec::new();
        let mut freed = 0;
        for img in images {
            let dangling = img.repo_tags.is_empty();
            if !all && (!dangling || parents.contains(&img.id)) {
                continue;
            }
            if !candidate(&img) || using(&img.id).is_some() {
                continue;
            }
            // Untag every name, then delete by ID (moby's prune with `-a`).
            let names: Vec<String> = img
                .repo_tags
                .iter()
                .chain(img.repo_digests.iter())
                .cloned()
                .collect();
            let mut ok = true;
            for n in names {
                match self.remove_image_measured(&n, false, using, true) {
                    Ok((r, f)) => {
                        freed += f;
                        records.extend(r);
                    }
                    Err(e) => {
                        tracing::warn!(image = %img.id, error = %e, "prune: untagging");
                        ok = false;
                    }
                }
            }
            if !ok || self.get_image(&img.id).is_err() {
                continue;
            }
            match self.remove_image_measured(&img.id, false, using, true) {
                Ok((r, f)) => {
                    freed += f;
                    records.extend(r);
                }
                Err(e) => tracing::warn!(image = %img.id, error = %e, "prune: deleting"),
            }
        }
        (records, freed)
    }
}
