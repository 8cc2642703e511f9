//! berth-store: content store, layer snapshots, image metadata, tar import, and the overlay
//! mount of an image's rootfs.
//!
//! Layout under the data root:
//! - `content/blobs/sha256/<hex>`: immutable blobs (image configs, uncompressed layer tars),
//!   written through `content/ingest/` (hashed, fsynced, verified, renamed).
//! - `snapshots/<chain-id hex>/fs`: one unpacked layer per chain ID, shared by every image
//!   that has it; `size` beside it. Unpacked under `snapshots/.tmp-*`, renamed when whole.
//! - `image/images/<id hex>.json`: one record per image; `image/repositories.json`: tags.
//! - `image/holds/<holder>.json`: layers a container keeps, even after its image is deleted.
//!
//! Reference counts are derived, not stored: after an image is deleted, every snapshot and
//! blob no remaining image needs is removed; [`Store::open`] removes partial ingests, unpacks
//! and temporary files, then collects garbage, so a crash at any instant leaves nothing torn.
//!
//! Glossary: *diff ID* = sha256 of a layer's uncompressed tar; *chain ID* = identity of a
//! layer on top of its parents (`sha256("<parent chain> <diff>")`); *image ID* = sha256 of
//! the config JSON.
//!
//! ```no_run
//! # fn main() -> Result<(), berth_store::StoreError> {
//! use berth_store::{ImportOptions, Store};
//! let store = Store::open(std::path::Path::new("/var/lib/berth"))?;
//! let mut tar = std::fs::File::open("rootfs.tar").unwrap();
//! let opts = ImportOptions { reference: Some("busybox".into()), ..Default::default() };
//! let img = store.import(&mut tar, &opts)?;
//! let m = store.prepare_rootfs(&img.id, std::path::Path::new("/var/lib/berth/containers/x/rw"))?;
//! m.mount(std::path::Path::new("/run/berth/x/rootfs")).unwrap();
//! # Ok(()) }
//! ```
mod archive;
mod changes;
mod commit;
mod compress;
mod content;
mod difftar;
mod error;
mod fsutil;
mod history;
mod holds;
mod import;
mod layers;
mod mount;
mod remove;
pub mod safepath;
mod snapshot;
mod store;
pub mod unpack;
mod usage;

pub use archive::{LoadMessage, SavePlan};
pub use changes::apply as apply_changes;
pub use commit::{CommitOptions, EMPTY_TAR_DIGEST};
pub use error::{ErrorKind, StoreError};
pub use fsutil::create_new_durable;
pub use history::HistoryItem;
pub use import::ImportOptions;
pub use layers::Layer;
pub use mount::{unmount, RootfsMount};
pub use remove::{ImageDelete, ImageUser};
pub use snapshot::{chain_id, chain_ids};
pub use store::{Image, Lease, Store};
pub use usage::{disk_usage, ImageUsage, Usage};
