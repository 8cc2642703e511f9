//! `GET /containers/{id}/stats` and `POST /containers/{id}/update`.
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;

use super::json_body;
use crate::backend::StatsBackend;
use crate::error::{ApiError, ApiResult};
use crate::query;

type B = Arc<dyn StatsBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
        .with_state(b)
}

/// Go's `strconv.ParseBool` for `stream` / `one-shot` (default as given).
fn bool_param(q: &query::Query, key: &str, default: bool) -> ApiResult<bool> {
    match q.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "strconv.ParseBool: parsing \"{v}\": invalid syntax"
        ))),
    }
}

async fn stats(
    State(b): State<B>,
    Path(id): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let stream = bool_param(&q, "stream", true)?;
    let one_shot = bool_param(&q, "one-shot", false)?;
    if stream && one_shot {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let samples = b.stats(&id, stream, one_shot).await?;
    let body = samples.map(|mut line| {
        line.push('\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn update(State(b): State<B>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let mut raw: serde_json::Value = json_body(&body)?;
    // The restart policy travels apart: berth's own names do not fit Docker's enum.
    let restart = raw
        .as_object_mut()
        .and_then(|o| o.remove("RestartPolicy"))
        .filter(|p| !p.is_null())
        .map(|p| {
            (
                p.get("Name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_owned(),
                p.get("MaximumRetryCount")
                    .and_then(|m| m.as_i64())
                    .unwrap_or(0),
            )
        });
    let cfg =
        serde_json::from_value(raw).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    Ok(Json(b.update(&id, cfg, restart).await?).into_response())
}
