//! Store errors. Each has a [`ErrorKind`] that the API maps to an HTTP status in one place;
//! messages are Docker's where Docker has one.
use std::path::PathBuf;

use berth_oci::reference::ReferenceError;

use crate::unpack::UnpackError;

/// What kind of failure, for status mapping (containerd `errdefs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `reference` is shown the way Docker shows it (`foo:latest`, `sha256:…`).
    #[error("No such image: {reference}")]
    NotFound { reference: String },
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error("refusing to create a tag with a digest reference")]
    DigestTag,
    #[error("reference {reference} has no digest")]
    MissingDigest { reference: String },
    #[error("refusing to create an ambiguous tag using digest algorithm as name")]
    AmbiguousTag,
    #[error("{instruction} is not a valid change command")]
    InvalidChange { instruction: String },
    #[error("invalid change {change:?}: {reason}")]
    MalformedChange {
        change: String,
        reason: &'static str,
    },
    #[error("invalid platform")]
    Platform(#[source] berth_oci::manifest::PlatformError),
    #[error("operating system is not supported: {os}")]
    UnsupportedOs { os: String },
    #[error("unsupported compression {format}: use a plain, gzip or zstd tar")]
    UnsupportedCompression { format: &'static str },
    #[error("invalid tar archive")]
    InvalidArchive(#[source] UnpackError),
    #[error("invalid tar archive: empty input")]
    EmptyArchive,
    /// A `docker load` archive that is not a valid docker-archive (or OCI layout).
    #[error("invalid image archive: {0}")]
    BadImageArchive(String),
    #[error("invalid image config")]
    InvalidConfig(#[source] serde_json::Error),
    #[error("layer {chain_id} of the image is not in the store")]
    MissingLayer { chain_id: String },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}")]
    ReferenceInUse {
        reference: String,
        container: String,
        image: String,
    },
    /// `hard` conflicts (a running container) cannot be forced.
    #[error("conflict: unable to delete {image} ({}) - {reason}", if *.hard { "cannot be forced" } else { "must be forced" })]
    DeleteConflict {
        image: String,
        hard: bool,
        reason: String,
    },
    #[error("invalid holder name {0:?}")]
    InvalidHolder(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt metadata {}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        use StoreError::*;
        match self {
            NotFound { .. } => ErrorKind::NotFound,
            InvalidReference(_)
            | DigestTag
            | MissingDigest { .. }
            | AmbiguousTag
            | InvalidChange { .. }
            | MalformedChange { .. }
            | Platform(_)
            | UnsupportedOs { .. }
            | UnsupportedCompression { .. }
            | EmptyArchive
            | BadImageArchive(_)
            | InvalidConfig(_)
            | MissingLayer { .. }
            | DigestMismatch { .. }
            | InvalidHolder(_) => ErrorKind::InvalidArgument,
            InvalidArchive(e) if e.is_host_error() => ErrorKind::Internal,
            InvalidArchive(_) => ErrorKind::InvalidArgument,
            ReferenceInUse { .. } | DeleteConflict { .. } => ErrorKind::Conflict,
            Io { .. } | Corrupt { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Io { what, source }
    }
}
