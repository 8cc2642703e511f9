//! Narrow backend traits, one per router (moby's `stateBackend`, `execBackend`, ...).
//!
//! The daemon implements them on its services; nothing here knows about HTTP, so a second
//! front end (CRI) can drive the same services.
use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerSummary,
    ContainerWaitResponse, ExecConfig, ExecInspectResponse, HistoryResponseItem,
    ImageDeleteResponseItem, ImageInspect, ImageSummary, SystemInfo, SystemVersion,
};
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::ApiResult;

/// `filters` query parameter, decoded: key → values.
pub type Filters = HashMap<String, Vec<String>>;

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;
pub type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A bidirectional byte stream to a process: output in Docker's framing (raw with a TTY,
/// multiplexed otherwise), input is the process' stdin; a write shutdown is stdin EOF.
pub trait ProcessStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ProcessStream for T {}

/// An attach or exec session handed to the router for hijacking.
pub struct Session {
    pub tty: bool,
    /// Whether client input should be forwarded (stdin requested and open).
    pub stdin: bool,
    /// Resolves to the process stream once the process exists (attach to a created container
    /// resolves at start). An error is told to the client on the stream itself, as Docker
    /// does once the connection is hijacked (an empty message just closes it).
    pub stream: BoxFuture<Result<Box<dyn ProcessStream>, String>>,
}

#[async_trait]
pub trait SystemBackend: Send + Sync {
    /// `/_ping`: clients send it first (docker CLI, berth CLI, compose), ahead of what they
    /// came for; a backend may start preparing here. Answered regardless.
    fn pinged(&self) {}
    async fn info(&self) -> ApiResult<SystemInfo>;
    async fn version(&self) -> ApiResult<SystemVersion>;
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix time in nanoseconds; entries before are skipped (0 = no bound).
    pub since: i64,
    /// Unix time in nanoseconds; entries after are skipped (0 = no bound).
    pub until: i64,
    pub timestamps: bool,
    /// Number of lines from the end (None = all).
    pub tail: Option<usize>,
}

/// One chunk of log output.
#[derive(Debug, Clone)]
pub struct LogChunk {
    /// 1 = stdout, 2 = stderr.
    pub stream: u8,
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[async_trait]
pub trait ContainerBackend: Send + Sync {
    async fn create(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> ApiResult<ContainerCreateResponse>;
    async fn list(&self, opts: ListOptions) -> ApiResult<Vec<ContainerSummary>>;
    async fn inspect(&self, id: &str, size: bool) -> ApiResult<ContainerInspectResponse>;
    /// Errors with `NotModified` when already running.
    async fn start(&self, id: &str) -> ApiResult<()>;
    /// Errors with `NotModified` when not running.
    async fn stop(&self, id: &str, signal: Option<String>, timeout: Option<i64>) -> ApiResult<()>;
    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()>;
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<()>;
    /// Validates at once; the returned future resolves when the condition is met.
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> ApiResult<BoxFuture<ContainerWaitResponse>>;
    async fn remove(&self, id: &str, force: bool, volumes: bool) -> ApiResult<()>;
    /// Returns whether the container has a TTY, and the log stream.
    async fn logs(&self, id: &str, opts: LogsOptions) -> ApiResult<(bool, BoxStream<LogChunk>)>;
    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<Session>;
    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()>;
}

#[async_trait]
pub trait ExecBackend: Send + Sync {
    /// Returns the exec ID.
    async fn create(&self, container: &str, config: ExecConfig) -> ApiResult<String>;
    /// `detach` runs it without a stream (returns `None`).
    async fn start(
        &self,
        exec_id: &str,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> ApiResult<Option<Session>>;
    async fn inspect(&self, exec_id: &str) -> ApiResult<ExecInspectResponse>;
    async fn resize(&self, exec_id: &str, height: u16, width: u16) -> ApiResult<()>;
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub message: String,
    pub changes: Vec<String>,
    pub platform: Option<String>,
}

#[async_trait]
pub trait ImageBackend: Send + Sync {
    async fn list(&self, all: bool, filters: Filters) -> ApiResult<Vec<ImageSummary>>;
    async fn inspect(&self, name: &str) -> ApiResult<ImageInspect>;
    /// Imports a rootfs tar from `body`; returns the new image ID.
    async fn import(
        &self,
        body: BoxStream<std::io::Result<Bytes>>,
        opts: ImportOptions,
    ) -> ApiResult<String>;
    /// Pulls an image (registry access); a progress stream of JSON messages.
    async fn pull(&self, image: &str, tag: Option<&str>)
        -> ApiResult<BoxStream<serde_json::Value>>;
    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()>;
    async fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> ApiResult<Vec<ImageDeleteResponseItem>>;
    async fn history(&self, name: &str) -> ApiResult<Vec<HistoryResponseItem>>;
    /// `GET /images/{name}/get`: the docker-archive of one image.
    async fn save(&self, name: &str) -> ApiResult<BoxStream<std::io::Result<Bytes>>> {
        Err(crate::error::ApiError::new(
            crate::error::ErrorKind::NotImplemented,
            format!("saving {name} is not supported"),
        ))
    }
}

/// A container's filesystem (`docker diff`, `docker export`).
#[async_trait]
pub trait FilesystemBackend: Send + Sync {
    async fn changes(&self, id: &str) -> ApiResult<Vec<bollard_stubs::models::FilesystemChange>>;
    /// The whole filesystem as a tar stream.
    async fn export(&self, id: &str) -> ApiResult<BoxStream<std::io::Result<bytes::Bytes>>>;
}

/// `GET /events`: the daemon's event bus.
#[async_trait]
pub trait EventsBackend: Send + Sync {
    /// Past events with `since <= time <= until` (unix nanoseconds, 0 = unbounded), then
    /// live ones until `until`; each item is Docker's `events.Message` JSON.
    async fn events(
        &self,
        since: i64,
        until: i64,
        filters: Filters,
    ) -> ApiResult<BoxStream<serde_json::Value>>;
}

/// Container control verbs beyond the lifecycle: pause, unpause, rename.
#[async_trait]
pub trait ControlBackend: Send + Sync {
    async fn pause(&self, id: &str) -> ApiResult<()>;
    async fn unpause(&self, id: &str) -> ApiResult<()>;
    async fn rename(&self, id: &str, name: &str) -> ApiResult<()>;
    /// `ps` of the container's processes (`ps_args` as moby: default `-ef`).
    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> ApiResult<bollard_stubs::models::ContainerTopResponse>;
}

/// `docker stats` and `docker update`.
#[async_trait]
pub trait StatsBackend: Send + Sync {
    /// Docker's stats JSON (`types.StatsJSON`, encoded in its field order): one sample, or
    /// (`stream`) one now and one every second. `one_shot` (single sample only) skips
    /// `precpu_stats`.
    async fn stats(&self, id: &str, stream: bool, one_shot: bool) -> ApiResult<BoxStream<String>>;
    /// `restart` is `RestartPolicy` as (name, maximum retry count), kept out of `body` so
    /// berth's own policy names need not fit Docker's enum.
    async fn update(
        &self,
        id: &str,
        body: bollard_stubs::models::ContainerUpdateBody,
        restart: Option<(String, i64)>,
    ) -> ApiResult<bollard_stubs::models::ContainerUpdateResponse>;
}

/// Options of `POST /volumes/create` (Docker's `VolumeCreateOptions`).
#[derive(Debug, Clone, Default)]
pub struct VolumeCreateOptions {
    pub name: String,
    pub driver: String,
    pub driver_opts: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// Volumes: `/volumes` (`docker volume ...`).
#[async_trait]
pub trait VolumeBackend: Send + Sync {
    async fn create(&self, opts: VolumeCreateOptions) -> ApiResult<bollard_stubs::models::Volume>;
    async fn list(&self, filters: Filters) -> ApiResult<Vec<bollard_stubs::models::Volume>>;
    async fn inspect(&self, name: &str) -> ApiResult<bollard_stubs::models::Volume>;
    async fn remove(&self, name: &str, force: bool) -> ApiResult<()>;
    /// Removes unused volumes; `named` also takes named ones (API < 1.42 or `all=true`).
    /// Returns the names removed and the bytes reclaimed.
    async fn prune(&self, filters: Filters, named: bool) -> ApiResult<(Vec<String>, u64)>;
}

/// `X-Docker-Container-Path-Stat`: what a path in a container is (Docker's
/// `ContainerPathStat`; `mode` is a Go `os.FileMode`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// `docker cp`: `HEAD/GET/PUT /containers/{id}/archive`.
#[async_trait]
pub trait ArchiveBackend: Send + Sync {
    async fn stat(&self, id: &str, path: &str) -> ApiResult<PathStat>;
    /// The stat of `path` and a tar stream of it.
    async fn get(
        &self,
        id: &str,
        path: &str,
    ) -> ApiResult<(PathStat, BoxStream<std::io::Result<Bytes>>)>;
    /// Extracts the tar in `body` (possibly compressed) into directory `path`.
    async fn put(
        &self,
        id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BoxStream<std::io::Result<Bytes>>,
    ) -> ApiResult<()>;
}

/// `/networks`: the network service.
#[async_trait]
pub trait NetworkBackend: Send + Sync {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<bollard_stubs::models::Network>>;
    async fn inspect(&self, id: &str) -> ApiResult<bollard_stubs::models::Network>;
    async fn create(
        &self,
        req: bollard_stubs::models::NetworkCreateRequest,
    ) -> ApiResult<bollard_stubs::models::NetworkCreateResponse>;
    async fn remove(&self, id: &str) -> ApiResult<()>;
    /// Returns the names of the removed networks.
    async fn prune(&self, filters: Filters) -> ApiResult<Vec<String>>;
    async fn connect(
        &self,
        id: &str,
        req: bollard_stubs::models::NetworkConnectRequest,
    ) -> ApiResult<()>;
    async fn disconnect(
        &self,
        id: &str,
        req: bollard_stubs::models::NetworkDisconnectRequest,
    ) -> ApiResult<()>;
}
