//! `/containers/{id}/exec` and `/exec/*`.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query as AxQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models::ExecConfig;
use serde::Deserialize;

use super::containers::dims;
use super::json_body;
use crate::backend::ExecBackend;
use crate::error::ApiResult;
use crate::query::Query;
use crate::stream::hijack;

type B = Arc<dyn ExecBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
        .with_state(b)
}

async fn create(State(b): State<B>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let cfg: ExecConfig = json_body(&body)?;
    let exec_id = b.create(&id, cfg).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": exec_id })),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StartBody {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    console_size: Option<Vec<u16>>,
}

async fn start(State(b): State<B>, Path(id): Path<String>, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| crate::error::ApiError::invalid(format!("reading body: {e}")))?;
    let sb: StartBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        json_body(&bytes)?
    };
    let console = sb
        .console_size
        .filter(|v| v.len() == 2)
        .map(|v| (v[0], v[1]));
    let req = Request::from_parts(parts, axum::body::Body::empty());
    match b.start(&id, sb.detach, console).await? {
        None => Ok(StatusCode::OK.into_response()),
        Some(session) => Ok(hijack(req, session)),
    }
}

async fn resize(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<StatusCode> {
    let (h, w) = dims(&q)?;
    b.resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

async fn inspect(State(b): State<B>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.inspect(&id).await?).into_response())
}
