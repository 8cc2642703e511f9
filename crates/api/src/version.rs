//! API version negotiation: the `/v1.xx` path prefix and the headers every answer carries.
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Highest API version berth speaks (Docker 27.x level).
pub const API_VERSION: &str = "1.47";
/// Lowest API version accepted.
pub const MIN_API_VERSION: &str = "1.24";
/// berth's own version, reported as the server version.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The API version a request asked for (from its `/vX.Y` prefix), or [`API_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestVersion(pub u32, pub u32);

impl RequestVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn at_least(self, s: &str) -> bool {
        Self::parse(s).is_some_and(|v| self >= v)
    }
}

/// Strips `/vX.Y`, refuses versions outside [MIN, MAX], records the version as a request
/// extension and adds Docker's headers to the response.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut version = RequestVersion::parse(API_VERSION).expect("valid constant");
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if let Some(v) = RequestVersion::parse(ver) {
            let max = RequestVersion::parse(API_VERSION).expect("valid constant");
            let min = RequestVersion::parse(MIN_API_VERSION).expect("valid constant");
            if v > max {
                return with_headers(
                    ApiError::invalid(format!(
                        "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
                    ))
                    .into_response(),
                );
            }
            if v < min {
                return with_headers(
                    ApiError::invalid(format!(
                        "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    ))
                    .into_response(),
                );
            }
            version = v;
            let new_pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_owned(),
            };
            if let Ok(uri) = new_pq.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    if let Ok(v) = HeaderValue::from_str(&format!("berth/{SERVER_VERSION}")) {
        h.insert("Server", v);
    }
    resp
}
