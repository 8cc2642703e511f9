//! Store errors, each with a kind the API maps to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid tar archive")]
    Unpack(#[source] crate::unpack::UnpackError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt metadata {what}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::InvalidArgument(_) | StoreError::Unpack(_) => ErrorKind::InvalidArgument,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Io { .. } | StoreError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Io { what, source }
    }
}
