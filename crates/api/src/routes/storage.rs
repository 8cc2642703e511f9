//! `POST /commit`, `GET /images/get`, `POST /images/load`, `POST /images/prune`,
//! `POST /containers/prune`, `GET /system/df`. (`GET /images/{name}/get` is dispatched by the
//! image router's wildcard to the same backend.)
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query as AxQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;

use crate::backend::BoxStream;
use crate::error::{ApiError, ApiResult};
use crate::query::{self, flag_or, Query};
use crate::storage::{CommitOptions, StorageBackend};

type B = Arc<dyn StorageBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/commit", post(commit))
        .route("/images/get", get(save))
        .route("/images/load", post(load))
        .route("/images/prune", post(prune_images))
        .route("/containers/prune", post(prune_containers))
        .route("/system/df", get(df))
        .route("/build/prune", post(prune_build_cache))
        .with_state(b)
}

/// `POST /build/prune` (`docker system prune` and `docker builder prune` call it). berth has
/// no builder yet, hence no build cache: nothing is deleted and nothing reclaimed. The
/// filters are still checked, so a malformed request is refused as dockerd does.
async fn prune_build_cache(AxQuery(q): AxQuery<Query>) -> ApiResult<Response> {
    query::filters(&q)?;
    Ok(Json(serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0})).into_response())
}

fn pairs_get(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, v)| key == k && !v.is_empty())
        .map(|(_, v)| v.clone())
}

fn pairs_flag(pairs: &[(String, String)], k: &str, default: bool) -> bool {
    match pairs.iter().find(|(key, _)| key == k) {
        None => default,
        Some((_, v)) => matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
    }
}

async fn commit(
    State(b): State<B>,
    AxQuery(pairs): AxQuery<Vec<(String, String)>>,
    body: Bytes,
) -> ApiResult<Response> {
    let container =
        pairs_get(&pairs, "container").ok_or_else(|| ApiError::invalid("container is required"))?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
        (!v.is_null()).then_some(v)
    };
    let opts = CommitOptions {
        container,
        repo: pairs_get(&pairs, "repo"),
        tag: pairs_get(&pairs, "tag"),
        comment: pairs_get(&pairs, "comment").unwrap_or_default(),
        author: pairs_get(&pairs, "author").unwrap_or_default(),
        pause: pairs_flag(&pairs, "pause", true),
        changes: pairs
            .iter()
            .filter(|(k, _)| k == "changes")
            .flat_map(|(_, v)| v.split('\n').map(str::to_owned).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        config,
    };
    let id = b.commit(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

/// A tar stream response.
pub(crate) fn tar_response(stream: BoxStream<std::io::Result<Bytes>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn save(
    State(b): State<B>,
    AxQuery(pairs): AxQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let names: Vec<String> = pairs
        .into_iter()
        .filter(|(k, v)| k == "names" && !v.is_empty())
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::invalid("no image names given"));
    }
    Ok(tar_response(b.save(names).await?))
}

async fn load(State(b): State<B>, AxQuery(q): AxQuery<Query>, req: Request) -> ApiResult<Response> {
    let quiet = flag_or(&q, "quiet", false);
    let body = req
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let stream = b.load(body, quiet).await?;
    let body = stream.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn prune_images(State(b): State<B>, AxQuery(q): AxQuery<Query>) -> ApiResult<Response> {
    Ok(Json(b.prune_images(query::filters(&q)?).await?).into_response())
}

async fn prune_containers(State(b): State<B>, AxQuery(q): AxQuery<Query>) -> ApiResult<Response> {
    Ok(Json(b.prune_containers(query::filters(&q)?).await?).into_response())
}

async fn df(
    State(b): State<B>,
    AxQuery(pairs): AxQuery<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let types = pairs
        .into_iter()
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v)
        .collect();
    Ok(Json(b.df(types).await?).into_response())
}
