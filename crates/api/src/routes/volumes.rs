//! `/volumes`: create, list, inspect, remove, prune.
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;

use crate::backend::{VolumeBackend, VolumeCreateOptions};
use crate::error::{ApiError, ApiResult};
use crate::query;
use crate::version::RequestVersion;

type B = Arc<dyn VolumeBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
        .with_state(b)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<HashMap<String, String>>,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

async fn create(State(b): State<B>, body: Bytes) -> ApiResult<Response> {
    // An empty body creates an anonymous-named volume, as dockerd.
    let req: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        super::json_body(&body)?
    };
    let v = b
        .create(VolumeCreateOptions {
            name: req.name.unwrap_or_default(),
            driver: req.driver.unwrap_or_default(),
            driver_opts: req.driver_opts.unwrap_or_default(),
            labels: req.labels.unwrap_or_default(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list(State(b): State<B>, Query(q): Query<query::Query>) -> ApiResult<Response> {
    let vols = b.list(query::filters(&q)?).await?;
    Ok(Json(serde_json::json!({ "Volumes": vols, "Warnings": [] })).into_response())
}

async fn inspect(State(b): State<B>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.inspect(&name).await?).into_response())
}

async fn remove(
    State(b): State<B>,
    Path(name): Path<String>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    b.remove(&name, query::flag(&q, "force")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// API ≥ 1.42 prunes only anonymous volumes unless the `all` filter is set; older versions
/// prune every unused volume (Docker 20.10's behaviour).
async fn prune(
    State(b): State<B>,
    Extension(version): Extension<RequestVersion>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let mut filters = query::filters(&q)?;
    let all = match filters.remove("all") {
        None => false,
        Some(v) => match v.first().map(String::as_str) {
            Some("1" | "true" | "True" | "TRUE") => true,
            Some("0" | "false" | "False" | "FALSE") | None => false,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "invalid filter 'all={other}': invalid value for 'all'"
                )))
            }
        },
    };
    let named = all || !version.at_least("1.42");
    let (deleted, space) = b.prune(filters, named).await?;
    Ok(
        Json(serde_json::json!({ "VolumesDeleted": deleted, "SpaceReclaimed": space }))
            .into_response(),
    )
}

/// `HostConfig.Mounts[].Type` values the typed body cannot hold get dockerd's message
/// (instead of a JSON decoding error).
pub fn check_mount_types(body: &[u8]) -> Result<(), ApiError> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(()); // the typed parse reports it
    };
    for m in v["HostConfig"]["Mounts"].as_array().into_iter().flatten() {
        if let Some(t) = m["Type"].as_str() {
            if !matches!(
                t,
                "bind" | "volume" | "tmpfs" | "image" | "npipe" | "cluster"
            ) {
                return Err(ApiError::invalid(format!(
                    "invalid mount config for type \"{t}\": mount type unknown"
                )));
            }
        }
    }
    Ok(())
}
