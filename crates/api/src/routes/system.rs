//! `/_ping`, `/version`, `/info`.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::backend::SystemBackend;
use crate::error::ApiResult;

pub fn router(b: Arc<dyn SystemBackend>) -> Router {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .with_state(b)
}

async fn ping(State(b): State<Arc<dyn SystemBackend>>) -> Response {
    b.pinged();
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn version(State(b): State<Arc<dyn SystemBackend>>) -> ApiResult<Response> {
    Ok(Json(b.version().await?).into_response())
}

async fn info(State(b): State<Arc<dyn SystemBackend>>) -> ApiResult<Response> {
    Ok(Json(b.info().await?).into_response())
}
