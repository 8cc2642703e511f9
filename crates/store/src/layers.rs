//! Adding layers and images: the primitives under `import`, and later `load`, `pull` and
//! `build`.
//!
//! A layer stream is read once: decompressed (sniffed), hashed into its diff ID, kept as an
//! uncompressed tar blob (content-addressed by the diff ID, so it is reproducible for
//! `save`/`push`) and unpacked into a temporary snapshot that is published under its chain
//! ID. Publishing and registering happen under the store lock, so garbage collection never
//! sees a half-registered image; a [`Lease`] protects layers between the two steps.
use std::io::{Read, Write};

use berth_oci::digest::Digest;
use berth_oci::image::ImageConfig;
use berth_oci::reference::Reference;

use crate::content::Ingest;
use crate::error::StoreError;
use crate::snapshot::{chain_id, chain_ids};
use crate::store::{now_rfc3339, Image, ImageEntry, ImageRecord, Lease, Store};
use crate::unpack::UnpackError;

/// A layer in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Identity of the layer stacked on its parents.
    pub chain_id: String,
    /// Unpacked size in bytes.
    pub size: u64,
}

/// A layer read and unpacked but not yet published.
pub(crate) struct Staged {
    tmp: crate::snapshot::TmpSnapshot,
    ingest: Ingest,
    pub(crate) diff_id: Digest,
    size: u64,
    /// One `syncfs` of the snapshot's filesystem flushes the blob too.
    blob_on_snapshot_fs: bool,
}

/// Bytes per chunk handed to the blob writer, and chunks in flight.
const TEE_CHUNK: usize = 256 << 10;
const TEE_DEPTH: usize = 8;

/// Reads through, handing every byte (in chunks) to the thread that writes the blob.
struct Tee<R> {
    inner: R,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl<R> Tee<R> {
    fn send_buffered(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(TEE_CHUNK));
        // The writer only hangs up after a write error, which the caller reports.
        self.tx
            .send(chunk)
            .map_err(|_| std::io::Error::other("the blob writer stopped"))
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() >= TEE_CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }
}

impl Store {
    /// Adds one layer (plain, gzip or zstd tar) on top of the layer `parent` (a chain ID,
    /// `None` for a base layer). A corrupt or truncated archive leaves nothing behind.
    pub fn apply_layer(
        &self,
        lease: &Lease<'_>,
        reader: &mut dyn Read,
        parent: Option<&str>,
    ) -> Result<Layer, StoreError> {
        let parent = parent
            .map(|p| {
                Digest::parse(p).map_err(|_| StoreError::MissingLayer {
                    chain_id: p.to_owned(),
                })
            })
            .transpose()?;
        if let Some(p) = &parent {
            if !self.snapshots.exists(p) {
                return Err(StoreError::MissingLayer {
                    chain_id: p.to_string(),
                });
            }
        }
        let staged = self.stage_layer(reader)?;
        self.publish_staged(lease, staged, parent.as_ref())
    }

    /// Reads one layer stream (plain, gzip or zstd tar) into a temporary snapshot and an
    /// unpublished blob, hashing it into its diff ID; nothing is visible until
    /// [`Store::publish_staged`], and dropping the result removes everything.
    pub(crate) fn stage_layer(&self, reader: &mut dyn Read) -> Result<Staged, StoreError> {
        let mut s = self.stage_layer_unsynced(reader)?;
        let t = std::time::Instant::now();
        Self::sync_staged([&mut s])?;
        tracing::debug!(
            size = s.size,
            sync_ms = t.elapsed().as_millis() as u64,
            "layer staged"
        );
        Ok(s)
    }

    /// Flushes staged layers to disk: one `syncfs` per filesystem (the snapshots and, on
    /// the same filesystem, their blobs), fsync of blobs elsewhere. Before publishing.
    pub(crate) fn sync_staged<'a>(
        staged: impl IntoIterator<Item = &'a mut Staged>,
    ) -> Result<(), StoreError> {
        let mut staged: Vec<&mut Staged> = staged.into_iter().collect();
        let mut synced: Vec<u64> = Vec::new();
        for s in staged.iter_mut() {
            use std::os::unix::fs::MetadataExt;
            let dev = std::fs::metadata(s.tmp.fs()).map(|m| m.dev()).ok();
            if dev.is_none_or(|d| !synced.contains(&d)) {
                s.tmp.sync_fs()?;
                synced.extend(dev);
            }
            if !s.blob_on_snapshot_fs {
                s.ingest.finish()?;
            }
        }
        for s in staged.iter_mut() {
            s.ingest.mark_synced();
        }
        Ok(())
    }

    /// [`Store::stage_layer`] without the flush: for loading several layers, flushed
    /// together by [`Store::sync_staged`] (the kernel writes the first ones back while
    /// later ones unpack).
    pub(crate) fn stage_layer_unsynced(&self, reader: &mut dyn Read) -> Result<Staged, StoreError> {
        let mut input = crate::compress::decompressed(reader)?;
        let tmp = self.snapshots.tmp()?;
        let mut ingest = self.content.ingest()?;
        let fs = tmp.fs();
        // Two threads: this one unpacks the files, a second hashes and writes the blob.
        let (unpacked, written) = std::thread::scope(|sc| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(TEE_DEPTH);
            let sink = &mut ingest;
            let writer = sc.spawn(move || -> std::io::Result<()> {
                for chunk in rx {
                    sink.write_all(&chunk)?;
                }
                Ok(())
            });
            let mut tee = Tee {
                inner: &mut input,
                tx,
                buf: Vec::with_capacity(TEE_CHUNK),
            };
            let unpacked = (|| {
                let size = crate::unpack::unpack(&mut tee, &fs)?;
                // The rest of the stream (end-of-archive blocks, padding) is part of the
                // diff ID, and a truncated compressed stream only shows here.
                std::io::copy(&mut tee, &mut std::io::sink()).map_err(UnpackError::Read)?;
                tee.send_buffered().map_err(UnpackError::Read)?;
                Ok::<u64, UnpackError>(size)
            })();
            drop(tee);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the blob writer panicked")));
            (unpacked, written)
        });
        // A failed blob write (a full disk) is the host's error, whatever it did to the read.
        written.map_err(StoreError::io("writing a layer blob"))?;
        let size = unpacked.map_err(StoreError::InvalidArchive)?;
        drop(input);
        let (diff_id, _) = ingest.digest();
        tmp.record_size(size)?;
        // One `syncfs` of the snapshot's filesystem flushes a blob on it too.
        let blob_on_snapshot_fs = self.content.same_fs(&tmp.fs());
        Ok(Staged {
            tmp,
            ingest,
            diff_id,
            size,
            blob_on_snapshot_fs,
        })
    }

    /// Publishes a staged layer on top of `parent` (a chain ID), under `lease`.
    pub(crate) fn publish_staged(
        &self,
        lease: &Lease<'_>,
        staged: Staged,
        parent: Option<&Digest>,
    ) -> Result<Layer, StoreError> {
        let Staged {
            tmp,
            ingest,
            diff_id,
            size,
            ..
        } = staged;
        let chain = chain_id(parent, &diff_id);
        let mut st = self.lock();
        self.content.publish(ingest, Some(&diff_id))?;
        self.snapshots.publish(tmp, &chain)?;
        let size = *st.sizes.entry(chain.clone()).or_insert(size);
        let leased = st.leases.entry(lease.id).or_default();
        leased.chains.insert(chain.clone());
        leased.blobs.insert(diff_id.clone());
        Ok(Layer {
            diff_id: diff_id.to_string(),
            chain_id: chain.to_string(),
            size,
        })
    }

    /// Registers an image from its config JSON, stored byte for byte (the image ID is its
    /// sha256). Every layer in `rootfs.diff_ids` must be in the store. `reference` (with
    /// `:latest` implied) is pointed at it; `parent` is an image ID or empty.
    pub fn create_image(
        &self,
        config: &[u8],
        reference: Option<&str>,
        parent: &str,
    ) -> Result<Image, StoreError> {
        let cfg: ImageConfig = serde_json::from_slice(config).map_err(StoreError::InvalidConfig)?;
        let reference = reference.map(parse_tag_reference).transpose()?;
        let mut diff_ids = Vec::new();
        for d in &cfg.rootfs.diff_ids {
            diff_ids.push(Digest::parse(d).map_err(|_| StoreError::MissingLayer {
                chain_id: d.clone(),
            })?);
        }
        let mut st = self.lock();
        if let Some(c) = chain_ids(&diff_ids)
            .into_iter()
            .find(|c| !self.snapshots.exists(c))
        {
            return Err(StoreError::MissingLayer {
                chain_id: c.to_string(),
            });
        }
        let parent = if parent.is_empty() {
            String::new()
        } else {
            self.resolve(&st, parent)?.to_string()
        };
        let id = self.content.write_blob(config)?;
        if !st.images.contains_key(&id) {
            let record = ImageRecord {
                id: id.to_string(),
                added: now_rfc3339(),
                parent,
                last_tag_time: String::new(),
            };
            let data = serde_json::to_vec(&record).expect("a record serialises");
            crate::fsutil::write_atomic(&self.record_path(&id), &data)?;
            st.images.insert(
                id.clone(),
                ImageEntry {
                    config: cfg,
                    record,
                },
            );
        }
        if let Some(r) = reference {
            st.refs.insert(r, id.clone());
            self.save_repos(&st)?;
            self.mark_tagged(&mut st, &id);
        }
        Ok(self.to_image(&st, &id))
    }
}

/// A reference to tag with: no digest, `:latest` implied.
pub(crate) fn parse_tag_reference(s: &str) -> Result<Reference, StoreError> {
    let r = Reference::parse(s)?;
    if r.digest().is_some() {
        return Err(StoreError::DigestTag);
    }
    if r.familiar_name() == "sha256" {
        return Err(StoreError::AmbiguousTag);
    }
    Ok(r.with_default_tag())
}
