//! The [`Store`]: image metadata (records and the tag map), lookups by every name form
//! Docker accepts, and the rootfs mount of an image.
//!
//! Metadata lives in `image/`: `images/<id hex>.json` (one record per image) and
//! `repositories.json` (full normalised reference → image ID). Both are replaced atomically
//! (temp + fsync + rename + dir fsync). The image config itself is the blob named by the ID.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_oci::digest::Digest;
use berth_oci::image::ImageConfig;
use berth_oci::reference::{is_full_hex_id, Reference};
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::error::StoreError;
use crate::fsutil::{remove_tmp_entries, write_atomic};
use crate::mount::RootfsMount;
use crate::snapshot::{chain_ids, Snapshots};

/// An image as the API shows it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// Familiar `name:tag`, sorted.
    pub repo_tags: Vec<String>,
    /// Familiar `name@sha256:…`, sorted.
    pub repo_digests: Vec<String>,
    /// RFC 3339, from the config.
    pub created: String,
    /// Sum of the unpacked layer sizes (Docker's `Size`).
    pub size: u64,
    pub config: ImageConfig,
    /// Parent image ID (`sha256:…`) or empty.
    pub parent: String,
    /// When a tag last pointed here (RFC 3339), empty if never tagged locally.
    pub last_tag_time: String,
}

/// The persisted tag map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Repositories {
    /// Full normalised reference → image ID.
    pub(crate) refs: BTreeMap<String, String>,
}

/// The persisted per-image record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub(crate) id: String,
    /// When the image entered this store (RFC 3339).
    pub(crate) added: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) parent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) last_tag_time: String,
}

pub(crate) struct ImageEntry {
    pub(crate) config: ImageConfig,
    pub(crate) record: ImageRecord,
}

impl ImageEntry {
    pub(crate) fn diff_ids(&self) -> Vec<Digest> {
        self.config
            .rootfs
            .diff_ids
            .iter()
            .filter_map(|d| Digest::parse(d).ok())
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// Full normalised reference → image ID.
    pub(crate) refs: BTreeMap<Reference, Digest>,
    pub(crate) images: BTreeMap<Digest, ImageEntry>,
    /// Snapshot sizes by chain ID.
    pub(crate) sizes: HashMap<Digest, u64>,
    /// Content protected from GC while an import or pull is under way, by lease.
    pub(crate) leases: BTreeMap<u64, Leased>,
    /// Layers kept for containers, by holder (persisted under `image/holds/`).
    pub(crate) holds: BTreeMap<String, crate::holds::Hold>,
}

#[derive(Default)]
pub(crate) struct Leased {
    pub(crate) chains: BTreeSet<Digest>,
    pub(crate) blobs: BTreeSet<Digest>,
}

impl State {
    pub(crate) fn refs_of(&self, id: &Digest) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(r, _)| r.clone())
            .collect()
    }
}

/// Keeps layers added through it safe from garbage collection until dropped; take one
/// before [`Store::apply_layer`] and drop it after [`Store::create_image`].
pub struct Lease<'a> {
    pub(crate) store: &'a Store,
    pub(crate) id: u64,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.store.lock().leases.remove(&self.id);
    }
}

/// The image store: content, snapshots and metadata under one data root. `Send + Sync`;
/// every method blocks on I/O (call it from a blocking thread).
pub struct Store {
    pub(crate) meta: PathBuf,
    pub(crate) content: Content,
    pub(crate) snapshots: Snapshots,
    pub(crate) state: Mutex<State>,
    /// Disk usage of layers by chain ID (immutable, so measured once; `usage.rs`).
    pub(crate) du_cache: Mutex<HashMap<Digest, u64>>,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Store {
    /// Opens (creating) the store under `data_root`: `content/`, `snapshots/`, `image/`.
    /// Recovery: partial ingests, half-unpacked and half-deleted snapshots and temporary
    /// metadata files are removed, then everything no image needs is collected.
    pub fn open(data_root: &Path) -> Result<Store, StoreError> {
        let meta = data_root.join("image");
        std::fs::create_dir_all(meta.join("images"))
            .map_err(StoreError::io("creating image metadata dir"))?;
        remove_tmp_entries(&meta);
        remove_tmp_entries(&meta.join("images"));
        let content = Content::open(data_root)?;
        let snapshots = Snapshots::open(data_root)?;
        let mut state = State::default();

        for e in std::fs::read_dir(meta.join("images"))
            .map_err(StoreError::io("reading image records"))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(d) = name
                .strip_suffix(".json")
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                continue;
            };
            let record: ImageRecord =
                match std::fs::read(e.path()).map(|b| serde_json::from_slice(&b)) {
                    Ok(Ok(r)) => r,
                    _ => {
                        tracing::warn!(image = %d, "unreadable image record; skipping");
                        continue;
                    }
                };
            match content
                .read(&d)
                .ok()
                .and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok())
            {
                Some(config) => {
                    state.images.insert(d, ImageEntry { config, record });
                }
                None => {
                    tracing::warn!(image = %d, "image config blob missing or unreadable; skipping")
                }
            }
        }
        let repo_path = meta.join("repositories.json");
        match std::fs::read(&repo_path) {
            Ok(data) => {
                let repos: Repositories =
                    serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt {
                        path: repo_path.clone(),
                        source,
                    })?;
                for (r, id) in repos.refs {
                    match (Reference::parse(&r), Digest::parse(&id)) {
                        (Ok(r), Ok(id)) if state.images.contains_key(&id) => {
                            state.refs.insert(r, id);
                        }
                        _ => {
                            tracing::warn!(reference = %r, image = %id, "dropping a tag of a missing image")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io {
                    what: format!("reading {}", repo_path.display()),
                    source: e,
                })
            }
        }
        for c in snapshots.list() {
            state.sizes.insert(c.clone(), snapshots.size(&c));
        }
        let store = Store {
            meta,
            content,
            snapshots,
            state: Mutex::new(state),
            du_cache: Mutex::new(HashMap::new()),
        };
        store.load_holds()?;
        let trash = {
            let mut st = store.lock();
            store.collect_garbage(&mut st).1
        };
        crate::remove::empty_trash(trash);
        Ok(store)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the on-disk state torn (every write
        // is atomic), and the in-memory state is only changed after the disk: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn save_repos(&self, st: &State) -> Result<(), StoreError> {
        let repos = Repositories {
            refs: st
                .refs
                .iter()
                .map(|(r, id)| (r.to_string(), id.to_string()))
                .collect(),
        };
        let data = serde_json::to_vec_pretty(&repos).expect("a map of strings serialises");
        write_atomic(&self.meta.join("repositories.json"), &data)
    }

    pub(crate) fn record_path(&self, id: &Digest) -> PathBuf {
        self.meta.join("images").join(format!("{}.json", id.hex()))
    }

    /// Protects layers added through the lease from GC until it is dropped.
    pub fn lease(&self) -> Lease<'_> {
        let id = rand::random();
        self.lock().leases.insert(id, Leased::default());
        Lease { store: self, id }
    }

    pub(crate) fn to_image(&self, st: &State, id: &Digest) -> Image {
        let entry = &st.images[id];
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for r in st.refs_of(id) {
            if r.digest().is_some() {
                repo_digests.push(r.familiar());
            } else {
                repo_tags.push(r.familiar());
            }
        }
        repo_tags.sort();
        repo_digests.sort();
        let size = chain_ids(&entry.diff_ids())
            .iter()
            .map(|c| st.sizes.get(c).copied().unwrap_or(0))
            .sum();
        Image {
            id: id.to_string(),
            repo_tags,
            repo_digests,
            created: entry.config.created.clone().unwrap_or_default(),
            size,
            config: entry.config.clone(),
            parent: entry.record.parent.clone(),
            last_tag_time: entry.record.last_tag_time.clone(),
        }
    }

    /// Resolves a name the way Docker's `GetImage` does: a full ID (`sha256:<hex>` or bare
    /// 64 hex) only as an ID; otherwise a reference (`:latest` implied; with a digest, by
    /// digest) and then a unique ID prefix (`abc`, `sha256:abc`).
    pub(crate) fn resolve(&self, st: &State, name: &str) -> Result<Digest, StoreError> {
        let full = if is_full_hex_id(name) {
            Digest::from_hex(name).ok()
        } else {
            Digest::parse(name).ok()
        };
        if let Some(d) = full {
            return if st.images.contains_key(&d) {
                Ok(d)
            } else {
                Err(StoreError::NotFound {
                    reference: d.to_string(),
                })
            };
        }
        let r = Reference::parse(name)?;
        if let Some(id) = st.refs.get(&r.canonical_lookup()) {
            return Ok(id.clone());
        }
        if let Some(id) = search_prefix(st, name) {
            return Ok(id);
        }
        Err(StoreError::NotFound {
            reference: r.with_default_tag().familiar(),
        })
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<Image>, StoreError> {
        let st = self.lock();
        let mut out: Vec<Image> = st.images.keys().map(|id| self.to_image(&st, id)).collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Looks an image up by any name form Docker accepts: `busybox`, `busybox:1`,
    /// `docker.io/library/busybox:latest`, `name@sha256:…`, `sha256:<id>`, bare 64-hex ID,
    /// or a unique ID prefix.
    pub fn get_image(&self, name_or_id: &str) -> Result<Image, StoreError> {
        let st = self.lock();
        let id = self.resolve(&st, name_or_id)?;
        Ok(self.to_image(&st, &id))
    }

    /// Points `reference` (`:latest` implied) at the image, moving it if it pointed
    /// elsewhere (the old image stays, possibly dangling).
    pub fn tag(&self, image_id_or_name: &str, reference: &str) -> Result<(), StoreError> {
        let r = crate::layers::parse_tag_reference(reference)?;
        let mut st = self.lock();
        let id = self.resolve(&st, image_id_or_name)?;
        let old = st.refs.insert(r.clone(), id.clone());
        if let Err(e) = self.save_repos(&st) {
            match old {
                Some(o) => st.refs.insert(r, o),
                None => st.refs.remove(&r),
            };
            return Err(e);
        }
        self.mark_tagged(&mut st, &id);
        Ok(())
    }

    /// Records the tag time of an image (`Metadata.LastTagTime`); best effort.
    pub(crate) fn mark_tagged(&self, st: &mut State, id: &Digest) {
        let path = self.record_path(id);
        if let Some(e) = st.images.get_mut(id) {
            e.record.last_tag_time =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let data = serde_json::to_vec(&e.record).expect("a record serialises");
            if let Err(err) = write_atomic(&path, &data) {
                tracing::warn!(image = %id, error = %err, "recording the tag time");
            }
        }
    }

    /// Records `name@sha256:…` (a manifest digest, after a pull or push) for the image; it
    /// shows in `RepoDigests` and resolves in lookups.
    pub fn add_repo_digest(
        &self,
        image_id_or_name: &str,
        reference: &str,
    ) -> Result<(), StoreError> {
        let r = Reference::parse(reference)?;
        if r.digest().is_none() {
            return Err(StoreError::MissingDigest {
                reference: reference.to_owned(),
            });
        }
        let r = r.canonical_lookup();
        let mut st = self.lock();
        let id = self.resolve(&st, image_id_or_name)?;
        st.refs.insert(r, id);
        self.save_repos(&st)
    }

    /// The image's layer directories, topmost first (overlay `lowerdir` order).
    pub fn layer_dirs(&self, image_id: &str) -> Result<Vec<PathBuf>, StoreError> {
        let st = self.lock();
        let id = self.resolve(&st, image_id)?;
        let mut dirs: Vec<PathBuf> = chain_ids(&st.images[&id].diff_ids())
            .iter()
            .map(|c| self.snapshots.fs(c))
            .collect();
        dirs.reverse();
        Ok(dirs)
    }

    /// Creates `rw_dir/upper` and `rw_dir/work` and returns the overlay mount of the image
    /// under them; the caller mounts it where it likes. An image without layers gets an
    /// empty lower dir.
    pub fn prepare_rootfs(&self, image_id: &str, rw_dir: &Path) -> Result<RootfsMount, StoreError> {
        let lower = self.layer_dirs(image_id)?;
        self.overlay_over(lower, rw_dir)
    }

    pub(crate) fn overlay_over(
        &self,
        mut lower: Vec<PathBuf>,
        rw_dir: &Path,
    ) -> Result<RootfsMount, StoreError> {
        if let Some(missing) = lower.iter().find(|p| !p.is_dir()) {
            let chain_id = missing
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| format!("sha256:{}", n.to_string_lossy()));
            return Err(StoreError::MissingLayer {
                chain_id: chain_id.unwrap_or_default(),
            });
        }
        if lower.is_empty() {
            lower.push(self.snapshots.empty_dir());
        }
        let upper = rw_dir.join("upper");
        let work = rw_dir.join("work");
        for d in [&upper, &work] {
            std::fs::create_dir_all(d)
                .map_err(StoreError::io(format!("creating {}", d.display())))?;
        }
        Ok(RootfsMount::overlay(&lower, &upper, &work))
    }

    /// The image config exactly as stored (its sha256 is the image ID).
    pub fn config_bytes(&self, name_or_id: &str) -> Result<Vec<u8>, StoreError> {
        let id = {
            let st = self.lock();
            self.resolve(&st, name_or_id)?
        };
        self.content.read(&id)
    }

    /// The uncompressed layer tar whose sha256 is `diff_id`, for `save` and `push`.
    pub fn layer_tar_path(&self, diff_id: &str) -> Result<PathBuf, StoreError> {
        let d = Digest::parse(diff_id).map_err(|_| StoreError::NotFound {
            reference: diff_id.to_owned(),
        })?;
        let p = self.content.path(&d);
        if !p.is_file() {
            return Err(StoreError::MissingLayer {
                chain_id: diff_id.to_owned(),
            });
        }
        Ok(p)
    }
}

/// Docker's digest-set lookup: a unique image whose hex ID starts with `term` (or with
/// `term` minus a `sha256:` prefix).
fn search_prefix(st: &State, term: &str) -> Option<Digest> {
    let hex = match term.split_once(':') {
        Some(("sha256", h)) => h,
        Some(_) => return None,
        None => term,
    };
    if hex.is_empty()
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut found = st.images.keys().filter(|id| id.hex().starts_with(hex));
    let first = found.next()?;
    found.next().is_none().then(|| first.clone())
}
