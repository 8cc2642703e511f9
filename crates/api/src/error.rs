//! The one place where error kinds become HTTP statuses (containerd `errdefs` style).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong, independent of transport. Services return these; the API maps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404: no such container / image / exec.
    NotFound,
    /// 409: name in use, wrong state, image in use.
    Conflict,
    /// 400: malformed body, bad parameter, bad reference.
    InvalidArgument,
    /// 304: the operation was a no-op (start a running container, stop a stopped one).
    NotModified,
    /// 501: a feature berth does not have.
    NotImplemented,
    /// 403: refused by policy (a read-only rootfs or volume).
    Forbidden,
    /// 500.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as the Docker API reports it: `{"message": "..."}` with a status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "")
    }
    /// An internal error from any error chain, printing the whole chain once.
    pub fn from_chain(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut msg = err.to_string();
        let mut src = err.source();
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        Self::internal(msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status.is_server_error() {
            tracing::warn!(message = %self.message, "request failed");
        }
        (
            status,
            axum::Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
