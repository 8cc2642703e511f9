//! `POST /containers/{id}/pause|unpause|rename`.
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::backend::ControlBackend;
use crate::error::{ApiError, ApiResult};
use crate::query;

type B = Arc<dyn ControlBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/top", axum::routing::get(top))
        .with_state(b)
}

async fn pause(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    b.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unpause(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    b.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rename(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("Neither old nor new names may be empty"))?;
    b.rename(&id, name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn top(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let args = q.get("ps_args").map(|s| s.to_string());
    Ok(axum::Json(b.top(&id, args).await?).into_response())
}
