//! Image metadata: records, tags, lookup, import, removal with derived garbage collection.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_oci::digest::Digest;
use berth_oci::image::{History, ImageConfig};
use berth_oci::reference::Reference;
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::error::StoreError;
use crate::snapshot::{chain_ids, RootfsMount, Snapshots};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<String>,
    /// Dockerfile instructions (`CMD …`, `ENV …`) applied to the config, as `import -c`.
    pub changes: Vec<String>,
    pub message: String,
    pub platform: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// Familiar `name:tag`.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// Sum of the unpacked layer sizes.
    pub size: u64,
    pub config: ImageConfig,
    pub parent: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDelete {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Repositories {
    /// Full normalised reference → image ID.
    refs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImageRecord {
    id: String,
    added: String,
}

#[derive(Default)]
struct State {
    repos: Repositories,
    /// Image ID → parsed config.
    images: BTreeMap<String, ImageConfig>,
}

pub struct Store {
    root: PathBuf,
    content: Content,
    snapshots: Snapshots,
    state: Mutex<State>,
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(StoreError::io(format!("writing {}", tmp.display())))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(StoreError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io(format!("renaming {}", tmp.display())))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn short(id: &str) -> &str {
    let h = id.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}

/// Reads through, hashing and copying every byte into a blob ingest.
struct Tee<'a, R> {
    inner: R,
    sink: &'a mut crate::content::Ingest,
    total: u64,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        self.total += n as u64;
        Ok(n)
    }
}

impl Store {
    pub fn open(data_root: &Path) -> Result<Store, StoreError> {
        let root = data_root.join("image");
        std::fs::create_dir_all(root.join("images")).map_err(StoreError::io("creating image metadata dir"))?;
        let content = Content::open(data_root)?;
        let snapshots = Snapshots::open(data_root)?;
        let mut state = State::default();
        let repo_path = root.join("repositories.json");
        if let Ok(data) = std::fs::read(&repo_path) {
            state.repos = serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt { what: repo_path.display().to_string(), source })?;
        }
        for e in std::fs::read_dir(root.join("images")).map_err(StoreError::io("reading image records"))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            let Some(hex) = name.strip_suffix(".json") else { continue };
            let Ok(d) = Digest::from_hex(hex) else { continue };
            match content.read(&d).ok().and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok()) {
                Some(cfg) => {
                    state.images.insert(d.to_string(), cfg);
                }
                None => tracing::warn!(image = %d, "image config blob missing or unreadable; skipping"),
            }
        }
        // Tags pointing at images that did not survive.
        state.repos.refs.retain(|_, id| state.images.contains_key(id));
        let store = Store { root, content, snapshots, state: Mutex::new(state) };
        Ok(store)
    }

    fn save_repos(&self, st: &State) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(&st.repos).expect("serialisable");
        write_atomic(&self.root.join("repositories.json"), &data)
    }

    fn to_image(&self, st: &State, id: &str) -> Image {
        let cfg = st.images.get(id).cloned().unwrap_or_default();
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for (r, i) in &st.repos.refs {
            if i != id {
                continue;
            }
            if let Ok(rf) = Reference::parse(r) {
                if rf.digest().is_some() {
                    repo_digests.push(rf.familiar());
                } else {
                    repo_tags.push(rf.familiar());
                }
            }
        }
        let diff_ids: Vec<Digest> = cfg.rootfs.diff_ids.iter().filter_map(|d| Digest::parse(d).ok()).collect();
        let size = chain_ids(&diff_ids).iter().map(|c| self.snapshots.size(c)).sum();
        Image { id: id.to_owned(), repo_tags, repo_digests, created: cfg.created.clone().unwrap_or_default(), size, config: cfg, parent: String::new() }
    }

    pub fn images(&self) -> Result<Vec<Image>, StoreError> {
        let st = self.state.lock().expect("store lock");
        Ok(st.images.keys().map(|id| self.to_image(&st, id)).collect())
    }

    /// Resolves a name to an image ID: full ID, reference, then unique ID prefix.
    fn resolve(&self, st: &State, name: &str) -> Result<String, StoreError> {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() == 64 {
            let id = format!("sha256:{hex}");
            if st.images.contains_key(&id) {
                return Ok(id);
            }
        }
        if let Ok(r) = Reference::parse_with_default_tag(name) {
            if let Some(id) = st.repos.refs.get(&r.to_string()) {
                return Ok(id.clone());
            }
        }
        if !hex.is_empty() && hex.len() < 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && !(name.starts_with("sha256:") && hex.is_empty()) {
            let m: Vec<&String> = st.images.keys().filter(|id| id.trim_start_matches("sha256:").starts_with(hex)).collect();
            if m.len() == 1 {
                return Ok(m[0].clone());
            }
        }
        let shown = match Reference::parse_with_default_tag(name) {
            Ok(r) if !(hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())) => r.familiar(),
            _ => name.to_owned(),
        };
        Err(StoreError::NotFound(shown))
    }

    pub fn get_image(&self, name_or_id: &str) -> Result<Image, StoreError> {
        let st = self.state.lock().expect("store lock");
        let id = self.resolve(&st, name_or_id)?;
        Ok(self.to_image(&st, &id))
    }

    pub fn tag(&self, image_id_or_name: &str, reference: &str) -> Result<(), StoreError> {
        let r = Reference::parse_with_default_tag(reference).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        if r.digest().is_some() {
            return Err(StoreError::InvalidArgument("refusing to create a tag with a digest reference".into()));
        }
        let mut st = self.state.lock().expect("store lock");
        let id = self.resolve(&st, image_id_or_name)?;
        st.repos.refs.insert(r.to_string(), id);
        self.save_repos(&st)
    }

    pub fn import(&self, reader: &mut dyn Read, opts: &ImportOptions) -> Result<Image, StoreError> {
        let reference = opts
            .reference
            .as_deref()
            .map(|r| Reference::parse_with_default_tag(r).map_err(|e| StoreError::InvalidArgument(e.to_string())))
            .transpose()?;
        let mut buffered = BufReader::with_capacity(256 * 1024, reader);
        let head = buffered.fill_buf().map_err(|e| StoreError::InvalidArgument(format!("reading the archive: {e}")))?.to_vec();
        if head.is_empty() {
            return Err(StoreError::InvalidArgument("invalid tar archive: empty input".into()));
        }
        let decompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(|e| StoreError::InvalidArgument(format!("invalid zstd stream: {e}")))?)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || head.starts_with(b"BZh") {
            return Err(StoreError::InvalidArgument("unsupported compression (xz/bzip2): use a plain, gzip or zstd tar".into()));
        } else {
            Box::new(buffered)
        };
        let tmp = self.snapshots.tmp()?;
        let mut ingest = self.content.ingest()?;
        let mut tee = Tee { inner: decompressed, sink: &mut ingest, total: 0 };
        let size = crate::unpack::unpack(&mut tee, &tmp.fs()).map_err(StoreError::Unpack)?;
        // The rest of the stream (end-of-archive padding) belongs to the layer digest too.
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| StoreError::InvalidArgument(format!("invalid tar archive: {e}")))?;
        if tee.total < 1024 && size == 0 && tee.total % 512 != 0 {
            return Err(StoreError::InvalidArgument("invalid tar archive: not a tar stream".into()));
        }
        let (diff_id, _) = self.content.commit(ingest, None)?;
        let chain = crate::snapshot::chain_id(None, &diff_id);
        self.snapshots.commit(tmp, &chain, size)?;

        let created = now();
        let msg = if opts.message.is_empty() { "Imported from -".to_owned() } else { opts.message.clone() };
        let mut cfg = ImageConfig { architecture: "amd64".into(), os: "linux".into(), created: Some(created.clone()), ..Default::default() };
        cfg.rootfs.diff_ids = vec![diff_id.to_string()];
        cfg.history = vec![History { created: Some(created.clone()), comment: Some(msg.clone()), ..Default::default() }];
        cfg.extra.insert("comment".into(), serde_json::Value::String(msg));
        crate::changes::apply(&mut cfg.config, &opts.changes)?;
        let data = serde_json::to_vec(&cfg).expect("serialisable");

        let mut st = self.state.lock().expect("store lock");
        let d = self.content.write_blob(&data)?;
        let id = d.to_string();
        let rec = ImageRecord { id: id.clone(), added: created };
        write_atomic(&self.root.join("images").join(format!("{}.json", d.hex())), &serde_json::to_vec(&rec).expect("serialisable"))?;
        st.images.insert(id.clone(), cfg);
        if let Some(r) = reference {
            st.repos.refs.insert(r.to_string(), id.clone());
            self.save_repos(&st)?;
        }
        Ok(self.to_image(&st, &id))
    }

    pub fn remove_image(&self, name_or_id: &str, force: bool, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<ImageDelete>, StoreError> {
        let mut st = self.state.lock().expect("store lock");
        let id = self.resolve(&st, name_or_id)?;
        let refs: Vec<String> = st.repos.refs.iter().filter(|(_, i)| **i == id).map(|(r, _)| r.clone()).collect();
        let by_ref = Reference::parse_with_default_tag(name_or_id).ok().map(|r| r.to_string()).filter(|r| refs.contains(r));
        let mut out = Vec::new();
        let familiar = |r: &str| Reference::parse(r).map(|x| x.familiar()).unwrap_or_else(|_| r.to_owned());
        if let Some(r) = by_ref {
            let others = refs.len() > 1;
            if !others && in_use(&id) && !force {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name_or_id}\" (must force) - container is using its referenced image {}",
                    short(&id)
                )));
            }
            st.repos.refs.remove(&r);
            out.push(ImageDelete::Untagged(familiar(&r)));
            if others || in_use(&id) {
                self.save_repos(&st)?;
                return Ok(out);
            }
        } else {
            if refs.len() > 1 && !force {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short(&id)
                )));
            }
            if in_use(&id) {
                if !force {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by a container",
                        short(&id)
                    )));
                }
                // Forced while in use: untag, keep the data the container needs.
                for r in &refs {
                    st.repos.refs.remove(r);
                    out.push(ImageDelete::Untagged(familiar(r)));
                }
                self.save_repos(&st)?;
                return Ok(out);
            }
            for r in &refs {
                st.repos.refs.remove(r);
                out.push(ImageDelete::Untagged(familiar(r)));
            }
        }
        self.save_repos(&st)?;
        let d = Digest::parse(&id).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let _ = std::fs::remove_file(self.root.join("images").join(format!("{}.json", d.hex())));
        st.images.remove(&id);
        self.content.delete(&d);
        out.push(ImageDelete::Deleted(id));
        self.gc(&st);
        Ok(out)
    }

    /// Removes every snapshot and layer blob no remaining image needs.
    fn gc(&self, st: &State) {
        let mut chains = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for (id, cfg) in &st.images {
            if let Ok(d) = Digest::parse(id) {
                blobs.insert(d);
            }
            let diff_ids: Vec<Digest> = cfg.rootfs.diff_ids.iter().filter_map(|d| Digest::parse(d).ok()).collect();
            blobs.extend(diff_ids.iter().cloned());
            chains.extend(chain_ids(&diff_ids));
        }
        for c in self.snapshots.list() {
            if !chains.contains(&c) {
                self.snapshots.remove(&c);
            }
        }
        for b in self.content.list() {
            if !blobs.contains(&b) {
                self.content.delete(&b);
            }
        }
    }

    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryItem>, StoreError> {
        let img = self.get_image(name_or_id)?;
        let diff_ids: Vec<Digest> = img.config.rootfs.diff_ids.iter().filter_map(|d| Digest::parse(d).ok()).collect();
        let chains = chain_ids(&diff_ids);
        let mut layer = 0;
        let mut items = Vec::new();
        let ts = |s: &Option<String>| s.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp()).unwrap_or(0);
        for h in &img.config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chains.get(layer).map(|c| self.snapshots.size(c)).unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: ts(&h.created),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                tags: vec![],
            });
        }
        if items.is_empty() {
            items.push(HistoryItem { id: String::new(), created: ts(&img.config.created), created_by: String::new(), size: img.size, comment: String::new(), tags: vec![] });
        }
        items.reverse();
        items[0].id = img.id.clone();
        items[0].tags = img.repo_tags.clone();
        Ok(items)
    }

    pub fn layer_dirs(&self, image_id: &str) -> Result<Vec<PathBuf>, StoreError> {
        let st = self.state.lock().expect("store lock");
        let id = self.resolve(&st, image_id)?;
        let cfg = st.images.get(&id).ok_or_else(|| StoreError::NotFound(image_id.to_owned()))?;
        let diff_ids: Vec<Digest> = cfg.rootfs.diff_ids.iter().filter_map(|d| Digest::parse(d).ok()).collect();
        let mut dirs: Vec<PathBuf> = chain_ids(&diff_ids).iter().map(|c| self.snapshots.fs(c)).collect();
        dirs.reverse();
        Ok(dirs)
    }

    pub fn prepare_rootfs(&self, image_id: &str, rw_dir: &Path) -> Result<RootfsMount, StoreError> {
        let mut lower = self.layer_dirs(image_id)?;
        if let Some(missing) = lower.iter().find(|p| !p.is_dir()) {
            return Err(StoreError::Io { what: format!("layer {} is missing", missing.display()), source: std::io::ErrorKind::NotFound.into() });
        }
        if lower.is_empty() {
            lower.push(self.snapshots.empty_dir());
        }
        let upper = rw_dir.join("upper");
        let work = rw_dir.join("work");
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(StoreError::io(format!("creating {}", d.display())))?;
        }
        Ok(RootfsMount::overlay(&lower, &upper, &work))
    }
}
