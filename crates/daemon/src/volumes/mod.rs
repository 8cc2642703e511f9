//! The volume service: named and anonymous volumes of the `local` driver.
//!
//! Storage (as dockerd): `<data-root>/volumes/<name>/_data` holds the data and
//! `<data-root>/volumes/<name>/volume.json` the metadata (driver, labels, options, creation
//! time, anonymous or not). `_data` is made first and the metadata is written last with
//! fsync + rename, so a create cut short leaves an empty directory without metadata, which
//! start-up removes; a removal renames the directory to `.rm-<name>` first, so a removal cut
//! short never leaves a half-deleted volume that still lists.
//!
//! Driver options (Docker's local driver): `type`, `device`, `o` mount a filesystem (tmpfs,
//! a bind of a host directory, a block device) on `_data` while a container uses it.
//! Which containers use a volume is derived from the container records (never counted).
pub mod local;
pub mod mounts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::models::Volume;
use berth_api::{ApiError, Filters, VolumeCreateOptions};
use serde::{Deserialize, Serialize};

use crate::events::Events;
use crate::fsutil::write_atomic;

/// The label Docker (API ≥ 1.44) puts on anonymous volumes.
pub const ANON_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's metadata (`volume.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolRec {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default)]
    pub anonymous: bool,
}

pub struct Volumes {
    root: PathBuf,
    events: Arc<Events>,
    map: Mutex<BTreeMap<String, VolRec>>,
    /// Serialises create / remove / mount decisions.
    pub(crate) op: Mutex<()>,
    /// Volumes named by container creates still in flight (not yet in a record): in use.
    pending: Mutex<BTreeMap<String, usize>>,
}

/// Holds volumes as in use until a create has recorded its container (or failed).
pub struct PendingUse {
    vols: Arc<Volumes>,
    names: Vec<String>,
}

impl Drop for PendingUse {
    fn drop(&mut self) {
        let mut p = self.vols.pending.lock().expect("pending lock");
        for n in &self.names {
            if let Some(c) = p.get_mut(n) {
                *c -= 1;
                if *c == 0 {
                    p.remove(n);
                }
            }
        }
    }
}

/// Docker's rule for local volume names.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{what}: {e}"))
}

impl Volumes {
    /// Opens `<data-root>/volumes`, finishing interrupted creates and removals.
    pub fn open(data_root: &Path, events: Arc<Events>) -> std::io::Result<Arc<Self>> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)?;
        let mut map = BTreeMap::new();
        for e in std::fs::read_dir(&root)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            if name.starts_with(".rm-") {
                let _ = local::unmount_all_under(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            if !dir.is_dir() || !valid_name(&name) {
                continue;
            }
            match std::fs::read(dir.join("volume.json"))
                .ok()
                .and_then(|d| serde_json::from_slice::<VolRec>(&d).ok())
            {
                Some(v) => {
                    map.insert(name, v);
                }
                None => {
                    let data = dir.join("_data");
                    let empty = std::fs::read_dir(&data)
                        .map(|mut r| r.next().is_none())
                        .unwrap_or(true);
                    if empty {
                        // A create cut short: nothing refers to it.
                        tracing::info!(%name, "removing an unfinished volume");
                        let _ = std::fs::remove_dir_all(&dir);
                    } else {
                        // Data without metadata (copied in by hand): adopt it.
                        let v = VolRec {
                            name: name.clone(),
                            driver: "local".into(),
                            labels: BTreeMap::new(),
                            options: BTreeMap::new(),
                            created_at: crate::container::now_rfc3339(),
                            anonymous: false,
                        };
                        let _ = write_atomic(
                            &dir.join("volume.json"),
                            &serde_json::to_vec(&v).unwrap_or_default(),
                            true,
                        );
                        map.insert(name, v);
                    }
                }
            }
        }
        Ok(Arc::new(Self {
            root,
            events,
            map: Mutex::new(map),
            op: Mutex::new(()),
            pending: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Marks `names` in use (call under `op`, with the volumes resolved).
    pub fn hold_pending(self: &Arc<Self>, names: Vec<String>) -> PendingUse {
        let mut p = self.pending.lock().expect("pending lock");
        for n in &names {
            *p.entry(n.clone()).or_default() += 1;
        }
        PendingUse {
            vols: self.clone(),
            names,
        }
    }

    /// Whether a create in flight names the volume.
    pub fn is_pending(&self, name: &str) -> bool {
        self.pending
            .lock()
            .expect("pending lock")
            .contains_key(name)
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Option<VolRec> {
        self.map.lock().expect("volumes lock").get(name).cloned()
    }

    pub fn all(&self) -> Vec<VolRec> {
        self.map
            .lock()
            .expect("volumes lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn not_found(name: &str) -> ApiError {
        ApiError::not_found(format!("get {name}: no such volume"))
    }

    /// Creates a volume, or returns the existing one of that name (as dockerd).
    pub fn create(&self, opts: VolumeCreateOptions, anonymous: bool) -> Result<VolRec, ApiError> {
        let _op = self.op.lock().expect("volumes op lock");
        self.create_locked(opts, anonymous)
    }

    pub(crate) fn create_locked(
        &self,
        opts: VolumeCreateOptions,
        anonymous: bool,
    ) -> Result<VolRec, ApiError> {
        let driver = if opts.driver.is_empty() {
            "local".to_owned()
        } else {
            opts.driver.clone()
        };
        // A nameless `volume create` gets a random name but is not anonymous (only the
        // volumes made for a container are, as dockerd labels them).
        let name = if opts.name.is_empty() {
            crate::container::hex_id(&rand::random::<[u8; 32]>())
        } else {
            opts.name.clone()
        };
        if !valid_name(&name) {
            return Err(ApiError::invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        if driver != "local" {
            return Err(ApiError::not_found(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        if let Some(v) = self.get(&name) {
            // dockerd logs `create` for a get-or-create of an existing volume too.
            self.emit("create", &name, &[]);
            return Ok(v);
        }
        local::validate_options(&opts.driver_opts)
            .map_err(|m| ApiError::invalid(format!("create {name}: {m}")))?;
        let mut labels: BTreeMap<String, String> = opts.labels.into_iter().collect();
        if anonymous {
            labels.entry(ANON_LABEL.to_owned()).or_default();
        }
        let v = VolRec {
            name: name.clone(),
            driver,
            labels,
            options: opts.driver_opts.into_iter().collect(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            anonymous,
        };
        let dir = self.root.join(&name);
        let res = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("_data"))?;
            write_atomic(
                &dir.join("volume.json"),
                &serde_json::to_vec(&v).map_err(std::io::Error::other)?,
                true,
            )
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io_err(&format!("create {name}"), e));
        }
        self.map
            .lock()
            .expect("volumes lock")
            .insert(name.clone(), v.clone());
        self.emit("create", &name, &[]);
        Ok(v)
    }

    /// Removes a volume nobody uses (the caller checked). Unmounts driver mounts first and
    /// never deletes through a mount.
    pub(crate) fn remove_locked(&self, name: &str) -> Result<(), ApiError> {
        if self.get(name).is_none() {
            return Err(Self::not_found(name));
        }
        let dir = self.root.join(name);
        local::unmount_all_under(&dir).map_err(|e| io_err(&format!("remove {name}"), e))?;
        if local::has_mounts_under(&dir) {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is still mounted"
            )));
        }
        let gone = self.root.join(format!(".rm-{name}"));
        std::fs::rename(&dir, &gone).map_err(|e| io_err(&format!("remove {name}"), e))?;
        self.map.lock().expect("volumes lock").remove(name);
        if let Err(e) = std::fs::remove_dir_all(&gone) {
            tracing::warn!(%name, error = %e, "deleting a removed volume's data");
        }
        self.emit("destroy", name, &[]);
        Ok(())
    }

    pub(crate) fn emit(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_owned(), "local".to_owned());
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events.publish("volume", action, name, attrs);
    }

    /// The API shape of a volume.
    pub fn to_api(&self, v: &VolRec) -> Volume {
        let j = serde_json::json!({
            "Name": v.name,
            "Driver": v.driver,
            "Mountpoint": self.data_dir(&v.name),
            "CreatedAt": v.created_at,
            "Labels": v.labels,
            "Scope": "local",
            "Options": v.options,
        });
        serde_json::from_value(j).expect("a valid Volume")
    }

    /// Bytes used under `_data` (not following links, not crossing into mounts).
    pub fn size(&self, name: &str) -> u64 {
        fn walk(p: &Path, dev: u64) -> u64 {
            use std::os::unix::fs::MetadataExt;
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            let mut n = 0;
            for e in rd.flatten() {
                let Ok(m) = e.path().symlink_metadata() else {
                    continue;
                };
                if m.dev() != dev {
                    continue;
                }
                if m.is_dir() {
                    n += walk(&e.path(), dev);
                } else {
                    n += m.blocks() * 512;
                }
            }
            n
        }
        use std::os::unix::fs::MetadataExt;
        let d = self.data_dir(name);
        match d.metadata() {
            Ok(m) => walk(&d, m.dev()),
            Err(_) => 0,
        }
    }
}

/// Docker's volume list filters: `name` (substring), `driver`, `label` (`k` or `k=v`),
/// `dangling` (`true`/`false`, unused by any container).
pub fn matches(
    v: &VolRec,
    filters: &Filters,
    in_use: &dyn Fn(&str) -> bool,
) -> Result<bool, ApiError> {
    for (key, vals) in filters {
        let ok = match key.as_str() {
            "name" => vals.iter().any(|n| v.name.contains(n.as_str())),
            "driver" => vals.contains(&v.driver),
            "label" => vals.iter().all(|l| match l.split_once('=') {
                Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
                None => v.labels.contains_key(l.as_str()),
            }),
            "label!" => vals.iter().all(|l| match l.split_once('=') {
                Some((k, val)) => v.labels.get(k).is_none_or(|x| x != val),
                None => !v.labels.contains_key(l.as_str()),
            }),
            "dangling" => {
                let mut want = None;
                for d in vals {
                    want = Some(match d.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(ApiError::invalid(format!(
                                "invalid filter 'dangling={other}'"
                            )))
                        }
                    });
                }
                want.is_none_or(|w| w != in_use(&v.name))
            }
            other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
