//! The content store: immutable blobs addressed by digest under `content/blobs/sha256/`,
//! written through `content/ingest/` (hashed while written, fsynced, verified, renamed).
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_oci::digest::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;
use crate::fsutil::{sync_dir, tmp_name};

pub(crate) struct Content {
    root: PathBuf,
}

const WRITEBACK_EVERY: u64 = 8 << 20;

/// A blob being written: hashed as it goes; removed on drop unless published.
pub(crate) struct Ingest {
    file: std::fs::File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    /// Bytes whose writeback has been started.
    written_back: u64,
    /// Already flushed by a `syncfs` of its filesystem (see [`Content::same_fs`]).
    synced: bool,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        // Start writing back each few MiB as they come (see unpack::start_writeback).
        if self.size - self.written_back >= WRITEBACK_EVERY {
            use std::os::fd::AsRawFd;
            crate::unpack::start_writeback(
                self.file.as_raw_fd(),
                self.written_back,
                self.size - self.written_back,
            );
            self.written_back = self.size;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Unpublished (after publishing the path no longer exists).
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Ingest {
    /// Fsyncs the data and returns its digest; publishing is a cheap rename after this.
    pub(crate) fn finish(&mut self) -> Result<(Digest, u64), StoreError> {
        if !self.synced {
            self.file
                .sync_all()
                .map_err(StoreError::io("syncing blob"))?;
            self.synced = true;
        }
        Ok(self.digest())
    }

    /// The digest and size so far, without syncing.
    pub(crate) fn digest(&self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher.clone()), self.size)
    }

    /// Records that a `syncfs` of the blob's filesystem ran after the last write.
    pub(crate) fn mark_synced(&mut self) {
        self.synced = true;
    }
}

impl Content {
    /// Opens the store, removing partial ingests left by a crash.
    pub(crate) fn open(data_root: &Path) -> Result<Content, StoreError> {
        let c = Content {
            root: data_root.join("content"),
        };
        std::fs::create_dir_all(c.blobs()).map_err(StoreError::io("creating content store"))?;
        let ingest = c.root.join("ingest");
        if ingest.exists() {
            std::fs::remove_dir_all(&ingest).map_err(StoreError::io("removing partial ingests"))?;
        }
        std::fs::create_dir_all(&ingest).map_err(StoreError::io("creating ingest dir"))?;
        crate::fsutil::remove_tmp_entries(&c.blobs());
        Ok(c)
    }

    /// Whether `p` is on the filesystem of the ingest directory (one `syncfs` flushes both).
    pub(crate) fn same_fs(&self, p: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (
            std::fs::metadata(self.root.join("ingest")),
            std::fs::metadata(p),
        ) {
            (Ok(a), Ok(b)) => a.dev() == b.dev(),
            _ => false,
        }
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn path(&self, d: &Digest) -> PathBuf {
        self.blobs().join(d.hex())
    }

    pub(crate) fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub(crate) fn ingest(&self) -> Result<Ingest, StoreError> {
        let path = tmp_name(&self.root.join("ingest"));
        let file =
            std::fs::File::create_new(&path).map_err(StoreError::io("creating ingest file"))?;
        Ok(Ingest {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
            written_back: 0,
            synced: false,
        })
    }

    /// Publishes a finished ingest under its digest, checked against `expected`.
    pub(crate) fn publish(
        &self,
        mut ing: Ingest,
        expected: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        let (d, _) = ing.finish()?;
        if let Some(e) = expected {
            if e != &d {
                return Err(StoreError::DigestMismatch {
                    expected: e.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        if !self.exists(&d) {
            std::fs::rename(&ing.path, self.path(&d)).map_err(StoreError::io("publishing blob"))?;
            sync_dir(&self.blobs())?;
        }
        Ok(d)
    }

    /// Writes a small blob (configs, manifests) in one go.
    pub(crate) fn write_blob(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::sha256_of(data);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut ing = self.ingest()?;
        ing.write_all(data)
            .map_err(StoreError::io("writing blob"))?;
        self.publish(ing, Some(&d))
    }

    pub(crate) fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        std::fs::read(self.path(d)).map_err(StoreError::io(format!("reading blob {d}")))
    }

    /// Deletes a blob; returns the disk bytes it used (0 when it was not there).
    pub(crate) fn delete(&self, d: &Digest) -> u64 {
        let used = std::fs::symlink_metadata(self.path(d))
            .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
            .unwrap_or(0);
        if let Err(e) = std::fs::remove_file(self.path(d)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(blob = %d, error = %e, "removing blob");
            }
            return 0;
        }
        used
    }

    /// All blob digests.
    pub(crate) fn list(&self) -> Vec<Digest> {
        let Ok(rd) = std::fs::read_dir(self.blobs()) else {
            return vec![];
        };
        rd.flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
            .collect()
    }
}
