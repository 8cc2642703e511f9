//! The content store: blobs addressed by digest, written through an ingest file.
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_oci::digest::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

pub struct Content {
    root: PathBuf,
}

/// A blob being written: hashed as it goes, published by [`Ingest::commit`].
pub struct Ingest {
    file: std::fs::File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Not committed (or committed: then the path is gone already).
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Content {
    pub fn open(root: &Path) -> Result<Content, StoreError> {
        let c = Content { root: root.join("content") };
        std::fs::create_dir_all(c.root.join("blobs/sha256")).map_err(StoreError::io("creating content store"))?;
        let ingest = c.root.join("ingest");
        // Partial ingests from a crash.
        let _ = std::fs::remove_dir_all(&ingest);
        std::fs::create_dir_all(&ingest).map_err(StoreError::io("creating ingest dir"))?;
        Ok(c)
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    pub fn ingest(&self) -> Result<Ingest, StoreError> {
        let name: u64 = rand::random();
        let path = self.root.join("ingest").join(format!("{name:016x}"));
        let file = std::fs::File::create(&path).map_err(StoreError::io("creating ingest file"))?;
        Ok(Ingest { file, path, hasher: Sha256::new(), size: 0 })
    }

    /// Fsyncs and publishes the blob under its digest (checked against `expected`).
    pub fn commit(&self, mut ing: Ingest, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        ing.file.sync_all().map_err(StoreError::io("syncing blob"))?;
        let d = Digest::from_hasher(std::mem::take(&mut ing.hasher));
        if let Some(e) = expected {
            if e != &d {
                return Err(StoreError::InvalidArgument(format!("digest mismatch: expected {e}, got {d}")));
            }
        }
        std::fs::rename(&ing.path, self.path(&d)).map_err(StoreError::io("publishing blob"))?;
        Ok((d, ing.size))
    }

    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::sha256_of(data);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut ing = self.ingest()?;
        ing.write_all(data).map_err(StoreError::io("writing blob"))?;
        self.commit(ing, Some(&d))?;
        Ok(d)
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        std::fs::read(self.path(d)).map_err(StoreError::io(format!("reading blob {d}")))
    }

    pub fn delete(&self, d: &Digest) {
        let _ = std::fs::remove_file(self.path(d));
    }

    /// All blob digests.
    pub fn list(&self) -> Vec<Digest> {
        let Ok(rd) = std::fs::read_dir(self.root.join("blobs/sha256")) else { return vec![] };
        rd.flatten().filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok()).collect()
    }
}
