//! The storage service: `commit`, `save`/`load`, image and container prune and `system df`
//! (the API's `StorageBackend`), one file per verb group. Images and layers live in
//! berth-store; this module adds the container side, events and Docker's wire shapes.
mod archive;
mod commit;
mod df;
mod prune;

use std::sync::Arc;

use berth_api::{ApiError, ApiResult, BoxStream, Filters, StorageBackend};
use bytes::Bytes;

use crate::container::Containers;
use crate::events::Events;

pub use archive::save_stream;
pub(crate) use prune::delete_events;

pub struct Storage {
    pub(crate) store: Arc<berth_store::Store>,
    pub(crate) containers: Arc<Containers>,
    pub(crate) events: Arc<Events>,
    /// Where `system df` gets its volumes (set by the composition root, once).
    pub(crate) volumes: std::sync::OnceLock<Arc<dyn VolumeUsage>>,
}

/// The volume service's part of `system df`: Docker's `Volume` JSON objects, each with
/// `UsageData: {Size, RefCount}` (bytes on disk, containers using it).
pub trait VolumeUsage: Send + Sync {
    fn volume_usage(&self) -> Vec<serde_json::Value>;
}

impl Storage {
    pub fn new(store: Arc<berth_store::Store>, containers: Arc<Containers>) -> Arc<Self> {
        let events = containers.events.clone();
        Arc::new(Self {
            store,
            containers,
            events,
            volumes: std::sync::OnceLock::new(),
        })
    }

    /// Lets `system df` list volumes (call once at start-up).
    #[allow(dead_code)]
    pub fn set_volume_usage(&self, v: Arc<dyn VolumeUsage>) {
        let _ = self.volumes.set(v);
    }

    /// An image event with Docker's `name` attribute.
    pub(crate) fn image_event(&self, action: &str, id: &str, name: &str) {
        self.events.publish(
            "image",
            action,
            id,
            [("name".to_owned(), name.to_owned())].into(),
        );
    }
}

/// A stream over an mpsc receiver.
pub(crate) fn stream_from<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> BoxStream<T> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (v, rx))
    }))
}

pub(crate) fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(e.to_string())
}

#[async_trait::async_trait]
impl StorageBackend for Storage {
    async fn commit(&self, opts: berth_api::storage::CommitOptions) -> ApiResult<String> {
        self.commit_container(opts).await
    }
    async fn save(&self, names: Vec<String>) -> ApiResult<BoxStream<std::io::Result<Bytes>>> {
        save_stream(&self.store, &self.events, names).await
    }
    async fn load(
        &self,
        body: BoxStream<std::io::Result<Bytes>>,
        quiet: bool,
    ) -> ApiResult<BoxStream<serde_json::Value>> {
        self.load_images(body, quiet).await
    }
    async fn prune_images(&self, filters: Filters) -> ApiResult<serde_json::Value> {
        self.prune_images_filtered(filters).await
    }
    async fn prune_containers(&self, filters: Filters) -> ApiResult<serde_json::Value> {
        self.prune_containers_filtered(filters).await
    }
    async fn df(&self, types: Vec<String>) -> ApiResult<serde_json::Value> {
        self.disk_usage(types).await
    }
}
