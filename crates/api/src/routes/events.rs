//! `GET /events`: newline-delimited JSON messages, streamed until `until` or disconnect.
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;

use crate::backend::EventsBackend;
use crate::error::ApiResult;
use crate::query;

pub fn router(b: Arc<dyn EventsBackend>) -> Router {
    Router::new().route("/events", get(events)).with_state(b)
}

async fn events(
    State(b): State<Arc<dyn EventsBackend>>,
    Query(q): Query<query::Query>,
) -> ApiResult<Response> {
    let since = query::timestamp_nanos(&q, "since")?;
    let until = query::timestamp_nanos(&q, "until")?;
    let filters = query::filters(&q)?;
    let stream = b.events(since, until, filters).await?;
    let body = stream.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
