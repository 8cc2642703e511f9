//! `/containers/*`.
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as AxQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::StreamExt;

use super::json_body;
use crate::backend::{AttachOptions, ContainerBackend, ListOptions, LogsOptions, WaitCondition};
use crate::error::{ApiError, ApiResult};
use crate::query::{self, flag, flag_or, opt_int, opt_str, Query};
use crate::stream::{frame, hijack, MULTIPLEXED_STREAM, RAW_STREAM};

type B = Arc<dyn ContainerBackend>;

pub fn router(b: B) -> Router {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .with_state(b)
}

async fn create(
    State(b): State<B>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> ApiResult<Response> {
    super::volumes::check_mount_types(&body)?;
    let mut raw: serde_json::Value = json_body(&body)?;
    crate::restart_policy::carry_in_create_body(&mut raw)?;
    let cfg =
        serde_json::from_value(raw).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    crate::platform::check(opt_str(&q, "platform").as_deref(), &cfg)?;
    let resp = b.create(opt_str(&q, "name"), cfg).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

async fn list(State(b): State<B>, AxQuery(q): AxQuery<Query>) -> ApiResult<Response> {
    let limit = opt_int(&q, "limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let opts = ListOptions {
        all: flag(&q, "all"),
        limit,
        size: flag(&q, "size"),
        filters: query::filters(&q)?,
    };
    Ok(Json(b.list(opts).await?).into_response())
}

async fn inspect(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<Response> {
    let r = b.inspect(&id, flag(&q, "size")).await?;
    let json = serde_json::to_string(&r).map_err(|e| ApiError::internal(e.to_string()))?;
    let labels = r.config.as_ref().and_then(|c| c.labels.as_ref());
    let json = crate::restart_policy::show_in_inspect(json, labels);
    let mut resp = Response::new(Body::from(json));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn start(State(b): State<B>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<StatusCode> {
    b.stop(&id, opt_str(&q, "signal"), opt_int(&q, "t")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<StatusCode> {
    b.kill(&id, opt_str(&q, "signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<StatusCode> {
    b.restart(&id, opt_str(&q, "signal"), opt_int(&q, "t")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn wait(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<Response> {
    let cond = match q.get("condition").map(String::as_str) {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => return Err(ApiError::invalid(format!("invalid condition: \"{other}\""))),
    };
    let fut = b.wait(&id, cond).await?;
    // Headers go out at once; the body follows when the condition is met.
    let body = futures_util::stream::once(async move {
        let r = fut.await;
        let mut v = serde_json::to_vec(&r).unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(v))
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn remove(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<StatusCode> {
    if flag(&q, "link") {
        return Err(ApiError::invalid("links are not supported"));
    }
    b.remove(&id, flag(&q, "force"), flag(&q, "v")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logs(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
) -> ApiResult<Response> {
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(ApiError::invalid(format!("invalid value for tail: {n:?}"))),
        },
    };
    let opts = LogsOptions {
        follow: flag(&q, "follow"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        since: query::timestamp_nanos(&q, "since")?,
        until: query::timestamp_nanos(&q, "until")?,
        timestamps: flag(&q, "timestamps"),
        tail,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let (tty, stream) = b.logs(&id, opts).await?;
    let body = stream.map(move |c| {
        Ok::<_, std::convert::Infallible>(if tty {
            c.data
        } else {
            frame(c.stream, &c.data)
        })
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM }),
    );
    Ok(resp)
}

async fn attach(
    State(b): State<B>,
    Path(id): Path<String>,
    AxQuery(q): AxQuery<Query>,
    req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stream: flag(&q, "stream"),
        logs: flag(&q, "logs"),
        stdin: flag(&q, "stdin"),
        stdout: flag_or(&q, "stdout", false),
        stderr: flag_or(&q, "stderr", false),
    };
    let session = b.attach(&id, opts).await?;
    Ok(hijack(req, session))
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

pub(crate) fn dims(q: &Query) -> ApiResult<(u16, u16)> {
    let h = opt_int(q, "h")?.unwrap_or(0);
    let w = opt_int(q, "w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::invalid("invalid terminal size"));
    }
    Ok((h as u16, w as u16))
}
