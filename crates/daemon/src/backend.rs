//! Wires the container service to the API's `ContainerBackend`.
use std::sync::Arc;

use berth_api::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerSummary,
    ContainerWaitResponse,
};
use berth_api::{
    ApiResult, AttachOptions, BoxFuture, BoxStream, ContainerBackend, ListOptions, LogChunk,
    LogsOptions, Session, WaitCondition,
};

use crate::container::Containers;

/// The API face of [`Containers`].
pub struct ContainerApi(pub Arc<Containers>);

#[async_trait::async_trait]
impl ContainerBackend for ContainerApi {
    async fn create(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> ApiResult<ContainerCreateResponse> {
        self.0.create_container(name, body).await
    }
    async fn list(&self, opts: ListOptions) -> ApiResult<Vec<ContainerSummary>> {
        self.0.list_containers(&opts)
    }
    async fn inspect(&self, id: &str, _size: bool) -> ApiResult<ContainerInspectResponse> {
        self.0.inspect_container(id)
    }
    async fn start(&self, id: &str) -> ApiResult<()> {
        self.0.start_container(id).await
    }
    async fn stop(&self, id: &str, signal: Option<String>, timeout: Option<i64>) -> ApiResult<()> {
        self.0.stop_container(id, signal, timeout).await
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        self.0.kill_container(id, signal).await
    }
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<()> {
        self.0.restart_container(id, signal, timeout).await
    }
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> ApiResult<BoxFuture<ContainerWaitResponse>> {
        self.0.wait_container(id, condition).await
    }
    async fn remove(&self, id: &str, force: bool, volumes: bool) -> ApiResult<()> {
        self.0
            .remove_container_and_volumes(id, force, volumes)
            .await
    }
    async fn logs(&self, id: &str, opts: LogsOptions) -> ApiResult<(bool, BoxStream<LogChunk>)> {
        self.0.container_logs(id, opts).await
    }
    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<Session> {
        self.0.attach_container(id, opts).await
    }
    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        self.0.resize_container(id, height, width).await
    }
}

/// The API face of the container filesystem operations.
pub struct FilesystemApi(pub Arc<Containers>);

#[async_trait::async_trait]
impl berth_api::FilesystemBackend for FilesystemApi {
    async fn changes(&self, id: &str) -> ApiResult<Vec<berth_api::models::FilesystemChange>> {
        self.0.container_changes(id).await
    }
    async fn export(&self, id: &str) -> ApiResult<BoxStream<std::io::Result<bytes::Bytes>>> {
        self.0.export_container(id).await
    }
}

/// The API face of the container control verbs.
pub struct ControlApi(pub Arc<Containers>);

#[async_trait::async_trait]
impl berth_api::ControlBackend for ControlApi {
    async fn pause(&self, id: &str) -> ApiResult<()> {
        self.0.pause_container(id).await
    }
    async fn unpause(&self, id: &str) -> ApiResult<()> {
        self.0.unpause_container(id).await
    }
    async fn rename(&self, id: &str, name: &str) -> ApiResult<()> {
        self.0.rename_container(id, name).await
    }
    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> ApiResult<berth_api::models::ContainerTopResponse> {
        self.0.top_container(id, ps_args).await
    }
}
