//! berth-api: the Docker Engine API over HTTP/1.1 (axum), on a unix socket.
//!
//! Owns the wire: routes, query parsing, version negotiation, error → status mapping,
//! stream framing and connection hijacking for attach/exec. Everything behind it is reached
//! through the narrow traits of [`backend`].
pub mod backend;
pub mod error;
mod linger;
pub mod platform;
mod query;
pub mod restart_policy;
mod routes;
pub mod storage;
pub mod stream;
pub mod version;

use std::sync::Arc;

use axum::Router;
pub use bollard_stubs::models;

pub use crate::backend::*;
pub use crate::error::{ApiError, ApiResult, ErrorKind};
pub use crate::storage::StorageBackend;

/// The services the API routes to.
#[derive(Clone)]
pub struct Backends {
    pub system: Arc<dyn SystemBackend>,
    pub containers: Arc<dyn ContainerBackend>,
    pub exec: Arc<dyn ExecBackend>,
    pub images: Arc<dyn ImageBackend>,
    pub filesystem: Arc<dyn FilesystemBackend>,
    pub events: Arc<dyn EventsBackend>,
    pub control: Arc<dyn ControlBackend>,
    pub storage: Arc<dyn StorageBackend>,
    pub stats: Arc<dyn StatsBackend>,
    pub volumes: Arc<dyn VolumeBackend>,
    pub archive: Arc<dyn ArchiveBackend>,
    pub networks: Arc<dyn NetworkBackend>,
}

/// The full Docker Engine API router: `/vX.Y/...` and unversioned paths alike.
pub fn router(backends: Backends) -> Router {
    let inner = Router::new()
        .merge(routes::system::router(backends.system.clone()))
        .merge(routes::containers::router(backends.containers.clone()))
        .merge(routes::exec::router(backends.exec.clone()))
        .merge(routes::images::router(backends.images.clone()))
        .merge(routes::filesystem::router(backends.filesystem.clone()))
        .merge(routes::events::router(backends.events.clone()))
        .merge(routes::control::router(backends.control.clone()))
        .merge(routes::storage::router(backends.storage.clone()))
        .merge(routes::stats::router(backends.stats.clone()))
        .merge(routes::volumes::router(backends.volumes.clone()))
        .merge(routes::archive::router(backends.archive.clone()))
        .merge(routes::networks::router(backends.networks.clone()))
        .fallback(routes::not_found);
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(version::negotiate))
}

/// Serves `router` on `listener` until `shutdown` resolves, with connection upgrades (hijack)
/// and lingering close (`linger`).
pub async fn serve(
    listener: tokio::net::UnixListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(linger::Listener(listener), router)
        .with_graceful_shutdown(shutdown)
        .await
}
