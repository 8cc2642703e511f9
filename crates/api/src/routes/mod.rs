//! One router per resource.
pub mod archive;
pub mod containers;
pub mod control;
pub mod events;
pub mod exec;
pub mod filesystem;
pub mod images;
pub mod networks;
pub mod stats;
pub mod storage;
pub mod system;
pub mod volumes;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!("page not found: {}", uri.path())).into_response()
}

/// Parses a JSON request body with Docker-style errors (400 + message).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("invalid JSON: request body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
}
