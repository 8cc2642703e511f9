//! `docker save` / `docker load`: the docker-archive format.
//!
//! Save writes what dockerd 20.10 writes: per layer `<v1 id>/{VERSION,json,layer.tar}` (a
//! layer already written under another ID is a symlink `../<id>/layer.tar`), the config as
//! `<config hex>.json`, then `manifest.json` and `repositories`. Layer tars are the stored
//! blobs, streamed from disk; nothing is assembled in memory.
//!
//! Load reads the archive once, as it streams: every layer-looking entry is unpacked into a
//! temporary snapshot and hashed while it arrives (its parent is not known until
//! `manifest.json`, usually last; the unpacked files do not depend on it); small files
//! (JSON) are kept in memory, bounded. Then the manifest is checked (configs parse, every
//! layer exists and its diff ID matches the config), layers are published under a lease and
//! the images created, and only then are tags moved. Any failure leaves no image, tag,
//! snapshot or blob.
//!
//! The archive is hostile: entry names are cleaned, and names with `..` or leading `/` are
//! refused; symlinks and hard links in the archive are resolved inside it (never on disk)
//! and refused when they point out of it.
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use berth_oci::digest::Digest;
use berth_oci::image::ImageConfig;
use berth_oci::reference::Reference;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::layers::{parse_tag_reference, Staged};
use crate::snapshot::chain_ids;
use crate::store::Store;

/// The largest non-layer file kept in memory, and all of them together.
const MAX_SMALL: u64 = 16 << 20;
const MAX_SMALL_TOTAL: u64 = 128 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// What `save` will write: each image with the tags to record for it.
#[derive(Debug, Clone, Default)]
pub struct SavePlan {
    images: Vec<(Digest, Vec<Reference>)>,
}

impl SavePlan {
    /// The image IDs, in archive order.
    pub fn image_ids(&self) -> Vec<String> {
        self.images.iter().map(|(d, _)| d.to_string()).collect()
    }
}

/// One line of `docker load` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMessage {
    /// `Loaded image: <tag>`; `replaced` is the image the tag pointed at before.
    Tagged {
        tag: String,
        id: String,
        replaced: Option<String>,
    },
    /// `Loaded image ID: <id>` (an image saved without tags).
    Untagged { id: String },
}

impl Store {
    /// Resolves the names of `docker save` like moby's `parseNames`: an ID saves the image
    /// without tags, `name:tag` that tag, a bare repository name every tag of it.
    pub fn save_plan(&self, names: &[String]) -> Result<SavePlan, StoreError> {
        let st = self.lock();
        let mut plan = SavePlan::default();
        let add = |plan: &mut SavePlan, id: Digest, r: Option<Reference>| {
            let slot = match plan.images.iter().position(|(d, _)| *d == id) {
                Some(i) => i,
                None => {
                    plan.images.push((id, vec![]));
                    plan.images.len() - 1
                }
            };
            if let Some(r) = r {
                if r.digest().is_none() && !plan.images[slot].1.contains(&r) {
                    plan.images[slot].1.push(r);
                }
            }
        };
        for name in names {
            let by_id = berth_oci::reference::is_full_hex_id(name)
                || name.starts_with("sha256:")
                || Reference::parse(name).is_err();
            if by_id {
                let id = self.resolve(&st, name)?;
                add(&mut plan, id, None);
                continue;
            }
            let r = Reference::parse(name)?;
            if r.tag().is_none() && r.digest().is_none() {
                let repo = r.name();
                let tagged: Vec<(Reference, Digest)> = st
                    .refs
                    .iter()
                    .filter(|(k, _)| k.name() == repo && k.digest().is_none())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if tagged.is_empty() {
                    let id = self.resolve(&st, name)?;
                    add(&mut plan, id, None);
                }
                for (k, v) in tagged {
                    add(&mut plan, v, Some(k));
                }
                continue;
            }
            let id = self.resolve(&st, name)?;
            let keep = if r.digest().is_some() {
                None
            } else {
                Some(r.with_default_tag())
            };
            add(&mut plan, id, keep);
        }
        Ok(plan)
    }

    /// Writes the docker-archive of `plan` to `w`, streaming the layer tars from disk.
    pub fn save(&self, plan: &SavePlan, w: &mut dyn Write) -> Result<(), StoreError> {
        // Keep everything the archive needs while it streams, even if an image is deleted.
        let lease = self.lease();
        let mut configs = Vec::new();
        {
            let mut st = self.lock();
            let mut chains = Vec::new();
            let mut blobs = Vec::new();
            for (id, _) in &plan.images {
                let entry = st.images.get(id).ok_or_else(|| StoreError::NotFound {
                    reference: id.to_string(),
                })?;
                let diffs = entry.diff_ids();
                chains.extend(chain_ids(&diffs));
                blobs.extend(diffs);
                blobs.push(id.clone());
            }
            let l = st.leases.entry(lease.id).or_default();
            l.chains.extend(chains);
            l.blobs.extend(blobs);
        }
        for (id, _) in &plan.images {
            configs.push(self.content.read(id)?);
        }
        let io = |e: std::io::Error| StoreError::Io {
            what: "writing the image archive".into(),
            source: e,
        };
        let mut b = tar::Builder::new(w);
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written: HashMap<Digest, String> = HashMap::new();
        let mut dirs_done: std::collections::HashSet<String> = Default::default();
        for ((id, refs), raw) in plan.images.iter().zip(&configs) {
            let cfg: ImageConfig =
                serde_json::from_slice(raw).map_err(StoreError::InvalidConfig)?;
            let mtime = cfg
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp().max(0) as u64)
                .unwrap_or(0);
            let diffs: Vec<Digest> = cfg
                .rootfs
                .diff_ids
                .iter()
                .filter_map(|d| Digest::parse(d).ok())
                .collect();
            let chains = chain_ids(&diffs);
            let mut layers = Vec::new();
            let mut parent_v1 = String::new();
            for (i, (diff, chain)) in diffs.iter().zip(&chains).enumerate() {
                let v1 = Digest::sha256_of(format!("{chain} {parent_v1}").as_bytes())
                    .hex()
                    .to_owned();
                let layer_path = format!("{v1}/layer.tar");
                if dirs_done.insert(v1.clone()) {
                    dir_entry(&mut b, &format!("{v1}/"), mtime).map_err(io)?;
                    file_entry(&mut b, &format!("{v1}/VERSION"), b"1.0", mtime).map_err(io)?;
                    let mut j = serde_json::json!({
                        "id": v1,
                        "created": "0001-01-01T00:00:00Z",
                        "container_config": {"Hostname": "", "Domainname": "", "User": "",
                            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
                            "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
                            "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
                            "Entrypoint": null, "OnBuild": null, "Labels": null},
                    });
                    if !parent_v1.is_empty() {
                        j["parent"] = serde_json::json!(parent_v1);
                    }
                    if i + 1 == diffs.len() {
                        // The top layer's v1 JSON carries the image config, as Docker's.
                        if let Ok(serde_json::Value::Object(mut m)) =
                            serde_json::from_slice::<serde_json::Value>(raw)
                        {
                            m.remove("rootfs");
                            m.remove("history");
                            m.insert("id".into(), serde_json::json!(v1));
                            if !parent_v1.is_empty() {
                                m.insert("parent".into(), serde_json::json!(parent_v1));
                            }
                            j = serde_json::Value::Object(m);
                        }
                    }
                    let data = serde_json::to_vec(&j).expect("json serialises");
                    file_entry(&mut b, &format!("{v1}/json"), &data, mtime).map_err(io)?;
                    match written.get(diff) {
                        Some(first) => {
                            let mut h = tar::Header::new_gnu();
                            h.set_entry_type(tar::EntryType::Symlink);
                            h.set_mode(0o777);
                            h.set_mtime(mtime);
                            h.set_size(0);
                            b.append_link(&mut h, &layer_path, format!("../{first}"))
                                .map_err(io)?;
                        }
                        None => {
                            let path = self.content.path(diff);
                            let f = std::fs::File::open(&path).map_err(|e| StoreError::Io {
                                what: format!("opening layer {diff}"),
                                source: e,
                            })?;
                            let len = f.metadata().map_err(io)?.len();
                            let mut h = tar::Header::new_gnu();
                            h.set_entry_type(tar::EntryType::Regular);
                            h.set_mode(0o644);
                            h.set_mtime(mtime);
                            h.set_size(len);
                            let data = std::io::BufReader::with_capacity(1 << 20, f.take(len));
                            b.append_data(&mut h, &layer_path, data).map_err(io)?;
                            written.insert(diff.clone(), layer_path.clone());
                        }
                    }
                }
                layers.push(layer_path);
                parent_v1 = v1;
            }
            file_entry(&mut b, &format!("{}.json", id.hex()), raw, mtime).map_err(io)?;
            let tags: Vec<String> = refs.iter().map(|r| r.familiar()).collect();
            for r in refs {
                if let Some(t) = r.tag() {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(t.to_owned(), parent_v1.clone());
                }
            }
            manifest.push(ManifestItem {
                config: format!("{}.json", id.hex()),
                repo_tags: (!tags.is_empty()).then_some(tags),
                layers,
            });
        }
        let m = serde_json::to_vec(&manifest).expect("manifest serialises");
        file_entry(&mut b, "manifest.json", &m, 0).map_err(io)?;
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories).expect("repositories serialise");
            file_entry(&mut b, "repositories", &r, 0).map_err(io)?;
        }
        b.into_inner().map_err(io)?.flush().map_err(io)?;
        drop(lease);
        Ok(())
    }

    /// Loads a docker-archive (plain or compressed). `progress` is told each layer as it is
    /// read (`Loading layer <short id>`).
    pub fn load(
        &self,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<Vec<LoadMessage>, StoreError> {
        let bad = |m: String| StoreError::BadImageArchive(m);
        let mut input = crate::compress::decompressed(reader)?;
        let mut ar = tar::Archive::new(&mut input);
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let mut small_total = 0u64;
        let mut staged: HashMap<String, Staged> = HashMap::new();
        let mut aliases: HashMap<String, String> = HashMap::new();
        let entries = ar
            .entries()
            .map_err(|e| bad(format!("reading the archive: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| bad(format!("reading the archive: {e}")))?;
            let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let name = archive_name(&raw)
                .ok_or_else(|| bad(format!("entry {raw:?} points outside the archive")))?;
            let kind = e.header().entry_type();
            match kind {
                tar::EntryType::Directory => {}
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    let resolved = if kind == tar::EntryType::Link {
                        archive_name(&target)
                    } else {
                        let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        if target.starts_with('/') {
                            None
                        } else {
                            archive_name(&format!("{dir}/{target}"))
                        }
                    };
                    let resolved = resolved.ok_or_else(|| {
                        bad(format!(
                            "link {raw:?} -> {target:?} points outside the archive"
                        ))
                    })?;
                    aliases.insert(name, resolved);
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.size();
                    let mut head = Vec::with_capacity(512);
                    (&mut e)
                        .take(512)
                        .read_to_end(&mut head)
                        .map_err(|err| bad(format!("reading {name}: {err}")))?;
                    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
                    let json_like = matches!(first, Some(b'{') | Some(b'['));
                    let meta_name = name == "repositories"
                        || name == "oci-layout"
                        || name.ends_with("/VERSION")
                        || name.ends_with(".json")
                        || name.ends_with("/json");
                    if json_like || meta_name || size == 0 {
                        if size > MAX_SMALL || small_total + size > MAX_SMALL_TOTAL {
                            return Err(bad(format!("{name} is too large ({size} bytes)")));
                        }
                        let mut data = head;
                        e.read_to_end(&mut data)
                            .map_err(|err| bad(format!("reading {name}: {err}")))?;
                        small_total += data.len() as u64;
                        small.insert(name, data);
                    } else {
                        progress(&name, size);
                        let mut r = std::io::Cursor::new(head).chain(&mut e);
                        let s = self.stage_layer_unsynced(&mut r).map_err(|err| match err {
                            StoreError::InvalidArchive(u) if !u.is_host_error() => {
                                bad(format!("layer {name}: {}", error_chain(&u)))
                            }
                            other => other,
                        })?;
                        staged.insert(name, s);
                    }
                }
                _ => {} // devices, fifos: not part of the format
            }
        }
        drop(input);

        let resolve = |p: &str| -> Option<String> {
            let mut p = archive_name(p)?;
            for _ in 0..16 {
                match aliases.get(&p) {
                    Some(t) => p = t.clone(),
                    None => return Some(p),
                }
            }
            None
        };
        let manifest_raw = small
            .get("manifest.json")
            .ok_or_else(|| bad("manifest.json not found".into()))?;
        let manifest: Vec<ManifestItem> =
            serde_json::from_slice(manifest_raw).map_err(|e| bad(format!("manifest.json: {e}")))?;
        if manifest.is_empty() {
            return Err(bad("manifest.json lists no images".into()));
        }

        // Check everything before anything becomes visible.
        struct Plan {
            config: Vec<u8>,
            layers: Vec<String>,
            diff_ids: Vec<Digest>,
            tags: Vec<Reference>,
        }
        let mut plans = Vec::new();
        for (n, item) in manifest.iter().enumerate() {
            let cpath = resolve(&item.config)
                .ok_or_else(|| bad(format!("config {:?} points outside", item.config)))?;
            let config = small
                .get(&cpath)
                .ok_or_else(|| bad(format!("config {} not found in the archive", item.config)))?
                .clone();
            let cfg: ImageConfig = serde_json::from_slice(&config)
                .map_err(|e| bad(format!("config {}: {e}", item.config)))?;
            if cfg.os != "linux" && !cfg.os.is_empty() {
                return Err(StoreError::UnsupportedOs { os: cfg.os });
            }
            let mut diff_ids = Vec::new();
            for d in &cfg.rootfs.diff_ids {
                diff_ids.push(
                    Digest::parse(d).map_err(|_| {
                        bad(format!("config {}: invalid diff ID {d:?}", item.config))
                    })?,
                );
            }
            if diff_ids.len() != item.layers.len() {
                return Err(bad(format!(
                    "image {n}: the config has {} layers, the manifest {}",
                    diff_ids.len(),
                    item.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (i, l) in item.layers.iter().enumerate() {
                let p = resolve(l).ok_or_else(|| bad(format!("layer {l:?} points outside")))?;
                let got = match (staged.get(&p), small.get(&p)) {
                    (Some(s), _) => s.diff_id.clone(),
                    (None, Some(bytes)) => {
                        // A tiny layer (an empty tar): stage it from memory.
                        let s = self.stage_layer(&mut &bytes[..]).map_err(|err| match err {
                            StoreError::InvalidArchive(u) if !u.is_host_error() => {
                                bad(format!("layer {l}: {}", error_chain(&u)))
                            }
                            StoreError::EmptyArchive => bad(format!("layer {l} is empty")),
                            other => other,
                        })?;
                        let d = s.diff_id.clone();
                        staged.insert(p.clone(), s);
                        d
                    }
                    (None, None) => {
                        return Err(bad(format!("layer {l} not found in the archive")));
                    }
                };
                if got != diff_ids[i] {
                    return Err(bad(format!(
                        "invalid diffID for layer {i}: expected {:?}, got {:?}",
                        diff_ids[i].to_string(),
                        got.to_string()
                    )));
                }
                layers.push(p);
            }
            let mut tags = Vec::new();
            for t in item.repo_tags.iter().flatten() {
                tags.push(parse_tag_reference(t)?);
            }
            plans.push(Plan {
                config,
                layers,
                diff_ids,
                tags,
            });
        }

        // Every layer read and checked: flush them all at once before any is published.
        Self::sync_staged(staged.values_mut())?;
        let lease = self.lease();
        let res = (|| -> Result<Vec<LoadMessage>, StoreError> {
            let mut created = Vec::new();
            for p in &plans {
                let chains = chain_ids(&p.diff_ids);
                for (i, path) in p.layers.iter().enumerate() {
                    let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                    if self.snapshots.exists(&chains[i]) {
                        let mut st = self.lock();
                        let l = st.leases.entry(lease.id).or_default();
                        l.chains.insert(chains[i].clone());
                        l.blobs.insert(p.diff_ids[i].clone());
                        continue;
                    }
                    match staged.remove(path) {
                        Some(s) => {
                            self.publish_staged(&lease, s, parent)?;
                        }
                        None => {
                            // The same layer under another parent: unpack its blob again.
                            let mut f = std::fs::File::open(self.content.path(&p.diff_ids[i]))
                                .map_err(StoreError::io("reopening a loaded layer"))?;
                            let s = self.stage_layer(&mut f)?;
                            self.publish_staged(&lease, s, parent)?;
                        }
                    }
                }
                let img = self.create_image(&p.config, None, "")?;
                created.push(img.id);
            }
            // Tags last, in one write.
            let mut out = Vec::new();
            let mut st = self.lock();
            let mut undo = Vec::new();
            for (p, id) in plans.iter().zip(&created) {
                let id_d = Digest::parse(id).expect("an image ID");
                if p.tags.is_empty() {
                    out.push(LoadMessage::Untagged { id: id.clone() });
                }
                for t in &p.tags {
                    let old = st.refs.insert(t.clone(), id_d.clone());
                    undo.push((t.clone(), old.clone()));
                    out.push(LoadMessage::Tagged {
                        tag: t.familiar(),
                        id: id.clone(),
                        replaced: old.filter(|o| o != &id_d).map(|o| o.to_string()),
                    });
                }
            }
            if let Err(e) = self.save_repos(&st) {
                for (t, old) in undo.into_iter().rev() {
                    match old {
                        Some(o) => st.refs.insert(t, o),
                        None => st.refs.remove(&t),
                    };
                }
                return Err(e);
            }
            for id in &created {
                let d = Digest::parse(id).expect("an image ID");
                if plans
                    .iter()
                    .zip(&created)
                    .any(|(p, c)| c == id && !p.tags.is_empty())
                {
                    self.mark_tagged(&mut st, &d);
                }
            }
            Ok(out)
        })();
        drop(staged);
        drop(lease);
        if res.is_err() {
            self.gc();
        }
        res
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// An entry name inside the archive, cleaned; `None` when it is absolute or climbs out.
fn archive_name(raw: &str) -> Option<String> {
    if raw.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn dir_entry<W: Write>(b: &mut tar::Builder<W>, path: &str, mtime: u64) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_mtime(mtime);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty())
}

fn file_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data)
}

#[cfg(test)]
mod tests {
    use super::archive_name;

    #[test]
    fn names_stay_inside() {
        assert_eq!(archive_name("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(archive_name("a/../b").as_deref(), Some("b"));
        assert_eq!(archive_name("../x"), None);
        assert_eq!(archive_name("a/../../x"), None);
        assert_eq!(archive_name("/etc/passwd"), None);
    }
}
