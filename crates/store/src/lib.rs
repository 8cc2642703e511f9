//! berth-store: content store, layer snapshots, image metadata, tar import.
//!
//! Layout under the data root:
//! - `content/blobs/sha256/<hex>`: immutable blobs (image configs, uncompressed layer tars),
//!   written through `content/ingest/` (fsync, digest check, rename).
//! - `snapshots/<chain-id hex>/fs`: one unpacked layer per chain ID, shared by every image
//!   that has it; `size` beside it. Unpacked in `snapshots/.tmp-*` and renamed when whole.
//! - `image/images/<id hex>.json`: one record per image; `image/repositories.json`: tags.
//!
//! Reference counts are derived, not stored: after an image is deleted, every snapshot and
//! layer blob no remaining image needs is removed. Crash recovery at [`Store::open`] removes
//! partial ingests and unpacks.
//!
//! ```ignore
//! let store = Store::open(&data_root)?;
//! let img = store.import(&mut reader, &ImportOptions { reference: Some("busybox".into()), ..Default::default() })?;
//! let m = store.prepare_rootfs(&img.id, &rw_dir)?;
//! m.mount(&target)?;
//! ```
mod changes;
mod content;
mod error;
mod images;
pub mod safepath;
mod snapshot;
pub mod unpack;

pub use error::{ErrorKind, StoreError};
pub use images::{HistoryItem, Image, ImageDelete, ImportOptions, Store};
pub use snapshot::{unmount, RootfsMount};
