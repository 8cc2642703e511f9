//! berth-oci: image references (`name:tag@digest`, docker.io normalisation), digests and
//! the image config types shared by store, registry, builder and API.
pub mod digest;
pub mod image;
pub mod reference;
