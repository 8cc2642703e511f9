//! `docker commit`: a container's rw layer (the overlay upper directory) becomes a new layer
//! on top of the layers the container holds, and a child image of the container's image.
//!
//! The diff tar is generated on one thread and read by the layer import on the other through
//! a pipe: hashed into its diff ID, kept as a blob and unpacked as it streams, never held in
//! memory whole.
use std::io::Write;
use std::path::Path;

use berth_oci::image::{Config, History, ImageConfig};

use crate::error::StoreError;
use crate::layers::parse_tag_reference;
use crate::snapshot::chain_ids;
use crate::store::{now_rfc3339, Image, Store};

/// sha256 of an empty tar (1024 zero bytes): a commit without changes adds no layer.
pub const EMPTY_TAR_DIGEST: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]` (`:latest` implied); `None` leaves the image untagged.
    pub reference: Option<String>,
    pub author: String,
    pub comment: String,
    /// The new image's config (the container's config with the changes applied).
    pub config: Config,
    pub container_id: String,
    /// The container's config as Docker records it (`container_config`).
    pub container_config: serde_json::Value,
    /// The history entry's `created_by` (Docker: the container's command).
    pub created_by: String,
}

impl Store {
    /// Commits the rw layer in `upper` of the container `holder` (whose hold names its
    /// image and layers). A failure leaves no image, tag, layer or blob behind.
    pub fn commit(
        &self,
        holder: &str,
        upper: &Path,
        opts: &CommitOptions,
    ) -> Result<Image, StoreError> {
        let reference = opts
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(parse_tag_reference)
            .transpose()?;
        let (image_id, diff_ids, parent_exists) = {
            let st = self.lock();
            let h = st.holds.get(holder).ok_or_else(|| StoreError::NotFound {
                reference: format!("layers of {holder}"),
            })?;
            (
                h.image.clone(),
                h.diff_ids.clone(),
                st.images.contains_key(&h.image),
            )
        };
        let parent_cfg: ImageConfig = serde_json::from_slice(&self.content.read(&image_id)?)
            .map_err(StoreError::InvalidConfig)?;
        let parent_chain = chain_ids(&diff_ids).last().map(|c| c.to_string());

        let lease = self.lease();
        let res = self.commit_leased(&lease, upper, parent_chain.as_deref(), |layer_diff| {
            let created = now_rfc3339();
            let empty = layer_diff == EMPTY_TAR_DIGEST;
            let mut cfg = ImageConfig {
                architecture: parent_cfg.architecture.clone(),
                os: parent_cfg.os.clone(),
                created: Some(created.clone()),
                author: (!opts.author.is_empty()).then(|| opts.author.clone()),
                config: opts.config.clone(),
                rootfs: parent_cfg.rootfs.clone(),
                history: parent_cfg.history.clone(),
                extra: serde_json::Map::new(),
            };
            cfg.rootfs.diff_ids = diff_ids.iter().map(|d| d.to_string()).collect();
            if !empty {
                cfg.rootfs.diff_ids.push(layer_diff.to_owned());
            }
            cfg.history.push(History {
                created: Some(created),
                created_by: Some(opts.created_by.clone()),
                author: (!opts.author.is_empty()).then(|| opts.author.clone()),
                comment: (!opts.comment.is_empty()).then(|| opts.comment.clone()),
                empty_layer: empty,
            });
            if !opts.comment.is_empty() {
                cfg.extra
                    .insert("comment".into(), serde_json::json!(opts.comment));
            }
            cfg.extra
                .insert("container".into(), serde_json::json!(opts.container_id));
            cfg.extra
                .insert("container_config".into(), opts.container_config.clone());
            if let Some(v) = parent_cfg.extra.get("variant") {
                cfg.extra.insert("variant".into(), v.clone());
            }
            serde_json::to_vec(&cfg).expect("an image config serialises")
        });
        let res = res.and_then(|config| {
            let r = reference.as_ref().map(|r| r.to_string());
            let parent = if parent_exists {
                image_id.to_string()
            } else {
                String::new()
            };
            self.create_image(&config, r.as_deref(), &parent)
        });
        drop(lease);
        // An empty layer (or a failure) leaves a leased snapshot nothing needs.
        self.gc();
        res
    }

    fn commit_leased(
        &self,
        lease: &crate::store::Lease<'_>,
        upper: &Path,
        parent_chain: Option<&str>,
        config: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let (rx, tx) = nix::unistd::pipe().map_err(|e| StoreError::Io {
            what: "creating a pipe".into(),
            source: e.into(),
        })?;
        // SAFETY: a valid pipe fd; a bigger pipe means fewer context switches.
        unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&tx),
                libc::F_SETPIPE_SZ,
                1 << 20,
            )
        };
        let upper = upper.to_owned();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::from(tx));
            crate::difftar::write_diff_tar(&upper, &mut w)?;
            w.flush()
        });
        let mut reader = std::fs::File::from(rx);
        let t = std::time::Instant::now();
        let layer = self.apply_layer(lease, &mut reader, parent_chain);
        tracing::debug!(
            elapsed_ms = t.elapsed().as_millis() as u64,
            "commit: layer stored"
        );
        drop(reader);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("diff writer panicked")));
        if let Err(e) = written {
            return Err(StoreError::Io {
                what: format!("reading the container's rw layer: {e}"),
                source: e,
            });
        }
        let layer = layer?;
        Ok(config(&layer.diff_id))
    }

    /// Removes every snapshot and blob that no image, lease or hold needs.
    pub fn gc(&self) {
        let trash = {
            let mut st = self.lock();
            self.collect_garbage(&mut st).1
        };
        crate::remove::empty_trash(trash);
    }
}
