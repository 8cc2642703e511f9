//! berth-oci: image references (`name:tag@digest`, docker.io normalisation), digests,
//! manifests / indexes / media types and the image config types shared by store, registry,
//! builder and API.
pub mod digest;
pub mod image;
pub mod manifest;
pub mod reference;
