//! `docker import` (`POST /images/create?fromSrc=-`): one tar (plain, gzip or zstd) becomes a
//! single-layer image with the config Docker writes for imports.
use std::io::Read;

use berth_oci::image::{Config, History, ImageConfig};
use berth_oci::manifest::Platform;

use crate::error::StoreError;
use crate::layers::parse_tag_reference;
use crate::store::{now_rfc3339, Image, Store};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the image with (`:latest` implied).
    pub reference: Option<String>,
    /// Dockerfile instructions (`CMD …`, `ENV …`) applied to the config, as `import -c`.
    pub changes: Vec<String>,
    /// The history comment; default `Imported from -`.
    pub message: String,
    /// `os[/arch[/variant]]`; default the host's.
    pub platform: Option<String>,
}

impl Store {
    /// Imports a root filesystem tar as a new image. Everything is validated before the
    /// stream is read; a bad stream leaves no snapshot, blob or image behind.
    pub fn import(&self, reader: &mut dyn Read, opts: &ImportOptions) -> Result<Image, StoreError> {
        let reference = opts
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(parse_tag_reference)
            .transpose()?;
        let platform = match opts.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Platform::parse(p).map_err(StoreError::Platform)?,
            None => Platform::host(),
        };
        if platform.os != "linux" {
            return Err(StoreError::UnsupportedOs { os: platform.os });
        }
        let mut config = Config::default();
        crate::changes::apply(&mut config, &opts.changes)?;

        let lease = self.lease();
        let layer = self.apply_layer(&lease, reader, None)?;

        // What Docker's ImportImage writes: V1 fields, one history entry, the comment twice.
        let created = now_rfc3339();
        let msg = if opts.message.is_empty() {
            "Imported from -".to_owned()
        } else {
            opts.message.clone()
        };
        let mut cfg = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            created: Some(created.clone()),
            config,
            ..Default::default()
        };
        cfg.rootfs.diff_ids = vec![layer.diff_id.clone()];
        cfg.history = vec![History {
            created: Some(created),
            comment: Some(msg.clone()),
            ..Default::default()
        }];
        cfg.extra
            .insert("comment".into(), serde_json::Value::String(msg));
        if let Some(v) = &platform.variant {
            cfg.extra
                .insert("variant".into(), serde_json::Value::String(v.clone()));
        }
        let data = serde_json::to_vec(&cfg).expect("an image config serialises");
        let r = reference.map(|r| r.to_string());
        let image = self.create_image(&data, r.as_deref(), "")?;
        drop(lease);
        Ok(image)
    }
}
