//! `GET /containers/{id}/changes` and `GET /containers/{id}/export`.
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::backend::FilesystemBackend;
use crate::error::ApiResult;

type B = Arc<dyn FilesystemBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .with_state(b)
}

async fn changes(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.changes(&id).await?).into_response())
}

async fn export(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    let stream = b.export(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}
