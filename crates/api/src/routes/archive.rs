//! `HEAD/GET/PUT /containers/{id}/archive` (`docker cp`), with Docker's
//! `X-Docker-Container-Path-Stat` header (base64 of the JSON `ContainerPathStat`).
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};

use crate::backend::{ArchiveBackend, ExtractOptions, PathStat};
use crate::error::{ApiError, ApiResult};
use crate::query;

type B = Arc<dyn ArchiveBackend>;

pub const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub fn router(b: B) -> Router {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .with_state(b)
}

fn path_param(q: &query::Query) -> Result<String, ApiError> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::invalid("bad parameter: path cannot be empty"))
}

/// The header value: base64 (standard alphabet) of the stat's JSON.
pub fn stat_header(stat: &PathStat) -> HeaderValue {
    let json = serde_json::to_vec(stat).unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&b64).expect("base64 is a valid header value")
}

async fn head_archive(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let stat = b.stat(&id, &path_param(&q)?).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(STAT_HEADER, stat_header(&stat));
    Ok(r)
}

async fn get_archive(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let (stat, stream) = b.get(&id, &path_param(&q)?).await?;
    let mut r = Body::from_stream(stream).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    r.headers_mut().insert(STAT_HEADER, stat_header(&stat));
    Ok(r)
}

async fn put_archive(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
    req: Request,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: query::flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: query::flag(&q, "copyUIDGID"),
    };
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .boxed();
    b.put(&id, &path, opts, body).await?;
    Ok(StatusCode::OK.into_response())
}
