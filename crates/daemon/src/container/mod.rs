//! The container service: records, lookup, persistence and the lifecycle verbs (one file
//! per verb group). Implements the API's `ContainerBackend`.
mod archive;
mod attach;
pub(crate) mod control;
mod create;
mod fs;
mod health;
mod lifecycle;
mod logs;
mod netmode;
mod options;
mod restart;
mod start;
mod stats;
mod top;
mod update;
mod view;
mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use berth_api::models::{ContainerConfig, HostConfig};
use berth_api::ApiError;
use berth_runtime::client::ShimClient;
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use crate::fsutil::write_atomic;
use crate::paths::Paths;

pub use archive::{remove_stale_copy_dirs, ArchiveApi};
pub use create::{hex_encode as hex_id, host_hostname, process_env, store_err};
pub use start::process_failure_code;
pub use stats::StatsApi;
pub use volumes::VolumeApi;

/// Lifecycle state, with the guards of each verb (youki `state.rs` style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> Self {
        Self {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: ZERO_TIME.to_owned(),
            finished_at: ZERO_TIME.to_owned(),
        }
    }
}

/// Go's zero time as Docker prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Everything persisted about a container (`config.v2.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    /// Image config merged with the create request.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    pub restart_count: i64,
    /// Stopped by a user (`stop`/`kill`), as opposed to exiting by itself.
    #[serde(default)]
    pub manually_stopped: bool,
    /// `State.Health` (kept across daemon restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::HealthState>,
    /// Binds, volumes and tmpfs mounts resolved at create (`Mounts` in inspect).
    #[serde(default)]
    pub mount_points: Vec<crate::volumes::mounts::MountPoint>,
}

/// The last exit, broadcast to waiters.
#[derive(Debug, Clone, Default)]
pub struct ExitEvent {
    /// Incremented on every exit.
    pub seq: u64,
    pub code: i64,
    pub error: Option<String>,
    pub removed: bool,
}

pub(crate) struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tx: oneshot::Sender<UnixStream>,
}

/// One container: the persisted record behind a short-held lock, an async lock that
/// serialises lifecycle verbs, and the exit broadcast.
pub struct Ctr {
    pub id: String,
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) rec: Mutex<Record>,
    pub(crate) exits: watch::Sender<ExitEvent>,
    pub(crate) pending: Mutex<Vec<PendingAttach>>,
    /// Restart-policy backoff and cancellation (not persisted, as Docker's restart manager).
    pub(crate) restart: Mutex<restart::Manager>,
    /// The running health monitor, if any.
    pub(crate) health: Mutex<Option<health::Monitor>>,
    /// From an exit until the shim has deleted the container (cgroups, runtime state): a
    /// start or a removal waits for it.
    pub(crate) shim_cleanup: Pending,
    /// From an exit until the detached rootfs overlay is torn down (which syncs its upper
    /// filesystem): a start waits for it, as the new overlay shares the upper directory.
    pub(crate) rootfs_teardown: Pending,
}

/// A count of background jobs on a container's resources; [`Pending::settled`] waits until
/// none is left.
#[derive(Default)]
pub(crate) struct Pending(Arc<watch::Sender<u32>>);

/// One job of a [`Pending`], counted until dropped.
pub(crate) struct PendingJob(Arc<watch::Sender<u32>>);

impl Pending {
    pub(crate) fn begin(&self) -> PendingJob {
        self.0.send_modify(|n| *n += 1);
        PendingJob(self.0.clone())
    }
    pub(crate) async fn settled(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Drop for PendingJob {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Ctr {
    fn new(rec: Record) -> Arc<Self> {
        let (exits, _) = watch::channel(ExitEvent {
            code: rec.state.exit_code,
            ..Default::default()
        });
        Arc::new(Self {
            id: rec.id.clone(),
            op: tokio::sync::Mutex::new(()),
            rec: Mutex::new(rec),
            exits,
            pending: Mutex::new(Vec::new()),
            restart: Mutex::new(restart::Manager::default()),
            health: Mutex::new(None),
            shim_cleanup: Pending::default(),
            rootfs_teardown: Pending::default(),
        })
    }
    pub fn snapshot(&self) -> Record {
        self.rec.lock().expect("record lock").clone()
    }
    pub fn status(&self) -> Status {
        self.rec.lock().expect("record lock").state.status
    }
}

/// A container record as stored (`config.v2.json`).
pub(crate) fn encode_record(rec: &Record) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(rec)
        .map_err(|e| ApiError::internal(format!("encoding container state: {e}")))
}

/// Creates a new container's record durably and in place
/// ([`berth_store::create_new_durable`]: an empty record is an unfinished create to
/// `load_all`); one already there is replaced atomically.
pub(crate) fn create_record(paths: &Paths, id: &str, data: &[u8]) -> Result<(), ApiError> {
    let path = paths.container_dir(id).join("config.v2.json");
    match berth_store::create_new_durable(&path, data) {
        Ok(true) => Ok(()),
        Ok(false) => write_record(paths, id, data, true),
        Err(e) => Err(ApiError::internal(format!("saving container state: {e}"))),
    }
}

/// Writes an encoded record atomically; `durable` waits for the disk.
pub(crate) fn write_record(
    paths: &Paths,
    id: &str,
    data: &[u8],
    durable: bool,
) -> Result<(), ApiError> {
    write_atomic(
        &paths.container_dir(id).join("config.v2.json"),
        data,
        durable,
    )
    .map_err(|e| ApiError::internal(format!("saving container state: {e}")))
}

pub struct Containers {
    pub(crate) paths: Arc<Paths>,
    pub(crate) store: Arc<berth_store::Store>,
    pub(crate) events: Arc<crate::events::Events>,
    pub(crate) volumes: Arc<crate::volumes::Volumes>,
    pub(crate) net: Arc<crate::network::Networks>,
    map: RwLock<HashMap<String, Arc<Ctr>>>,
}

impl Containers {
    pub fn new(
        paths: Arc<Paths>,
        store: Arc<berth_store::Store>,
        events: Arc<crate::events::Events>,
        volumes: Arc<crate::volumes::Volumes>,
        net: Arc<crate::network::Networks>,
    ) -> Arc<Self> {
        Arc::new(Self {
            paths,
            store,
            events,
            volumes,
            net,
            map: RwLock::new(HashMap::new()),
        })
    }

    pub fn all(&self) -> Vec<Arc<Ctr>> {
        self.map
            .read()
            .expect("map lock")
            .values()
            .cloned()
            .collect()
    }

    /// Finds by full ID, then exact name, then unique ID prefix (Docker's order).
    pub fn get(&self, key: &str) -> Result<Arc<Ctr>, ApiError> {
        let map = self.map.read().expect("map lock");
        if key.is_empty() {
            return Err(ApiError::not_found("No such container: "));
        }
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map
            .values()
            .find(|c| c.rec.lock().expect("record lock").name == name)
        {
            return Ok(c.clone());
        }
        let matches: Vec<_> = map.values().filter(|c| c.id.starts_with(key)).collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(ApiError::not_found(format!("No such container: {key}"))),
            _ => Err(ApiError::invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    pub fn name_owner(&self, name: &str) -> Option<String> {
        self.map
            .read()
            .expect("map lock")
            .values()
            .find(|c| c.rec.lock().expect("record lock").name == name)
            .map(|c| c.id.clone())
    }

    /// Inserts a new container unless another one holds its name (checked under the same
    /// write lock, so of racing creates with one name exactly one wins); `Err` is the
    /// owner's ID.
    pub(crate) fn insert_named(&self, rec: Record) -> Result<Arc<Ctr>, String> {
        let mut map = self.map.write().expect("map lock");
        if let Some(owner) = map
            .values()
            .find(|c| c.rec.lock().expect("record lock").name == rec.name)
        {
            return Err(owner.id.clone());
        }
        let c = Ctr::new(rec);
        map.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    pub(crate) fn insert(&self, rec: Record) -> Arc<Ctr> {
        let c = Ctr::new(rec);
        self.map
            .write()
            .expect("map lock")
            .insert(c.id.clone(), c.clone());
        c
    }

    pub(crate) fn forget(&self, id: &str) {
        self.map.write().expect("map lock").remove(id);
    }

    /// Whether any container uses image `image_id`.
    /// A container using the image, a running one first (Docker names it in rmi's conflict).
    pub fn image_user(&self, image_id: &str) -> Option<berth_store::ImageUser> {
        let map = self.map.read().expect("map lock");
        let mut found: Option<berth_store::ImageUser> = None;
        for c in map.values() {
            let r = c.rec.lock().expect("record lock");
            if r.image_id != image_id {
                continue;
            }
            let running = r.state.status.is_running();
            if found.as_ref().is_none_or(|f| running && !f.running) {
                found = Some(berth_store::ImageUser {
                    container_id: r.id.clone(),
                    running,
                });
            }
        }
        found
    }

    /// Publishes a container event with Docker's attributes (`name`, `image`, the labels)
    /// plus `extra` (`exitCode`, `signal`, ...).
    pub(crate) fn emit(&self, c: &Ctr, action: &str, extra: &[(&str, String)]) {
        let mut attrs = std::collections::BTreeMap::new();
        {
            let r = c.rec.lock().expect("record lock");
            if let Some(l) = &r.config.labels {
                attrs.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            attrs.insert("image".to_owned(), r.image.clone());
            attrs.insert("name".to_owned(), r.name.clone());
        }
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events.publish("container", action, &c.id, attrs);
    }

    pub(crate) fn shim(&self, id: &str) -> ShimClient {
        ShimClient::new(&self.paths.bundle(id))
    }

    /// Persists the record (temp file + rename).
    pub(crate) fn persist(&self, rec: &Record, durable: bool) -> Result<(), ApiError> {
        write_record(&self.paths, &rec.id, &encode_record(rec)?, durable)
    }

    /// Updates the record under its lock and persists it.
    pub(crate) fn update<R>(&self, c: &Ctr, f: impl FnOnce(&mut Record) -> R) -> R {
        let mut rec = c.rec.lock().expect("record lock");
        let r = f(&mut rec);
        if let Err(e) = self.persist(&rec, false) {
            tracing::error!(id = %c.id, error = %e, "persisting container state");
        }
        r
    }

    /// Loads every persisted container (at start-up).
    pub fn load_all(&self) -> Vec<Arc<Ctr>> {
        let dir = self.paths.data_root.join("containers");
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return out;
        };
        for e in rd.flatten() {
            let p = e.path().join("config.v2.json");
            // Empty: created in place by a create that a crash cut short (`create_record`).
            let unfinished = std::fs::metadata(&p).map_or(true, |m| m.len() == 0);
            if unfinished && e.path().is_dir() {
                // A create or removal cut short by a crash (the record is written last and
                // removed first): nothing refers to it.
                tracing::info!(path = %e.path().display(), "removing an unfinished container directory");
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            }
            match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|d| serde_json::from_slice::<Record>(&d).map_err(|e| e.to_string()))
            {
                Ok(rec) => out.push(self.insert(rec)),
                Err(err) => {
                    tracing::warn!(path = %p.display(), %err, "skipping unreadable container state")
                }
            }
        }
        out
    }
}

/// RFC 3339 with nanoseconds, UTC, as Docker prints times.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
