//! The storage verbs beyond the image list: `commit`, `save`/`load`, prune and `system df`
//! (one narrow trait, one router in `routes/storage.rs`).
use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::{BoxStream, Filters};
use crate::error::ApiResult;

/// `POST /commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// The request body (`ContainerConfig` JSON), applied over the container's config.
    pub config: Option<serde_json::Value>,
}

#[async_trait]
pub trait StorageBackend: Send + Sync {
    /// Returns the new image ID.
    async fn commit(&self, opts: CommitOptions) -> ApiResult<String>;
    /// The docker-archive of the named images (errors before the stream starts).
    async fn save(&self, names: Vec<String>) -> ApiResult<BoxStream<std::io::Result<Bytes>>>;
    /// Loads a docker-archive; the JSON message stream `docker load` prints (an error is the
    /// last message, as Docker's).
    async fn load(
        &self,
        body: BoxStream<std::io::Result<Bytes>>,
        quiet: bool,
    ) -> ApiResult<BoxStream<serde_json::Value>>;
    /// `ImagesPruneResponse` JSON.
    async fn prune_images(&self, filters: Filters) -> ApiResult<serde_json::Value>;
    /// `ContainersPruneResponse` JSON.
    async fn prune_containers(&self, filters: Filters) -> ApiResult<serde_json::Value>;
    /// `SystemDataUsageResponse` JSON; `types` empty = everything.
    async fn df(&self, types: Vec<String>) -> ApiResult<serde_json::Value>;
}
