//! `/images/*`. Image names may contain slashes (`127.0.0.1:5000/a/b:tag`), so the
//! per-image routes are a wildcard dispatched on their last segment.
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as AxQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;

use crate::backend::{ImageBackend, ImportOptions};
use crate::error::{ApiError, ApiResult};
use crate::query::{self, flag, opt_str, Query};

type B = Arc<dyn ImageBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route(
            "/images/{*rest}",
            get(get_image).post(post_image).delete(remove),
        )
        .with_state(b)
}

async fn list(State(b): State<B>, AxQuery(q): AxQuery<Query>) -> ApiResult<Response> {
    Ok(Json(b.list(flag(&q, "all"), query::filters(&q)?).await?).into_response())
}

fn json_lines(values: Vec<serde_json::Value>) -> Response {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn create(
    State(b): State<B>,
    AxQuery(pairs): AxQuery<Vec<(String, String)>>,
    req: Request,
) -> ApiResult<Response> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if let Some(src) = get("fromSrc") {
        if src != "-" {
            return Err(ApiError::new(
                crate::error::ErrorKind::NotImplemented,
                "importing from a URL is not supported: use fromSrc=- with the tar as body",
            ));
        }
        let opts = ImportOptions {
            repo: get("repo"),
            tag: get("tag"),
            message: get("message").unwrap_or_default(),
            changes: pairs
                .iter()
                .filter(|(k, _)| k == "changes")
                .map(|(_, v)| v.clone())
                .collect(),
            platform: get("platform"),
        };
        let body = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed();
        let id = b.import(body, opts).await?;
        return Ok(json_lines(vec![serde_json::json!({ "status": id })]));
    }
    if let Some(image) = get("fromImage") {
        let stream = b.pull(&image, get("tag").as_deref()).await?;
        let body = stream.map(|v| {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            Ok::<_, std::convert::Infallible>(Bytes::from(line))
        });
        let mut r = Response::new(Body::from_stream(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    Err(ApiError::invalid("either fromSrc or fromImage must be set"))
}

/// Splits `name/suffix` into (name, suffix) for the known per-image suffixes.
fn split<'a>(rest: &'a str, suffixes: &[&str]) -> Option<(&'a str, &'a str)> {
    let (name, suffix) = rest.rsplit_once('/')?;
    suffixes.contains(&suffix).then_some((name, suffix))
}

async fn get_image(State(b): State<B>, Path(rest): Path<String>) -> ApiResult<Response> {
    match split(&rest, &["json", "history", "get"]) {
        Some((name, "json")) => Ok(Json(b.inspect(name).await?).into_response()),
        Some((name, "get")) => Ok(super::storage::tar_response(b.save(name).await?)),
        Some((name, "history")) => Ok(Json(b.history(name).await?).into_response()),
        _ => Err(ApiError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

async fn post_image(
    State(b): State<B>,
    Path(rest): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<Response> {
    match split(&rest, &["tag", "push"]) {
        Some((name, "tag")) => {
            let repo = opt_str(&q, "repo")
                .ok_or_else(|| ApiError::invalid("repository name is required"))?;
            b.tag(
                name,
                &repo,
                q.get("tag").map(String::as_str).filter(|t| !t.is_empty()),
            )
            .await?;
            Ok(StatusCode::CREATED.into_response())
        }
        Some((_, "push")) => Err(ApiError::new(
            crate::error::ErrorKind::NotImplemented,
            "pushing images is not supported yet",
        )),
        _ => Err(ApiError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

async fn remove(
    State(b): State<B>,
    Path(rest): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<Response> {
    Ok(Json(
        b.remove(&rest, flag(&q, "force"), flag(&q, "noprune"))
            .await?,
    )
    .into_response())
}
