//! `/networks`: list, inspect, create, remove, prune, connect, disconnect.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkPruneResponse,
};

use super::json_body;
use crate::backend::NetworkBackend;
use crate::error::ApiResult;
use crate::query;

type B = Arc<dyn NetworkBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
        .with_state(b)
}

async fn list(State(b): State<B>, Query(q): Query<query::Query>) -> ApiResult<Response> {
    let f = query::filters(&q)?;
    Ok(Json(b.list(f).await?).into_response())
}

async fn inspect(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.inspect(&id).await?).into_response())
}

async fn create(State(b): State<B>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body)?;
    Ok((StatusCode::CREATED, Json(b.create(req).await?)).into_response())
}

async fn remove(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    b.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(b): State<B>, Query(q): Query<query::Query>) -> ApiResult<Response> {
    let f = query::filters(&q)?;
    let deleted = b.prune(f).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(deleted),
    })
    .into_response())
}

async fn connect(State(b): State<B>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkConnectRequest = json_body(&body)?;
    b.connect(&id, req).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(b): State<B>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: NetworkDisconnectRequest = json_body(&body)?;
    b.disconnect(&id, req).await?;
    Ok(StatusCode::OK.into_response())
}
