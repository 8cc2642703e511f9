//! `docker system df` (`GET /system/df`): images with their disk bytes and the part shared
//! with other images, containers with the size of their rw layer, in bytes used on disk (what
//! a prune frees). Volumes come from the volume service ([`super::VolumeUsage`]); there is
//! no build cache yet.
use std::collections::HashMap;

use berth_api::{ApiResult, ListOptions};
use serde_json::json;

use super::{join_err, Storage};

fn unix(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Storage {
    pub(crate) async fn disk_usage(&self, types: Vec<String>) -> ApiResult<serde_json::Value> {
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let mut out = json!({
            "LayersSize": 0,
            "Images": [],
            "Containers": [],
            "Volumes": [],
            "BuildCache": [],
        });
        let recs: Vec<crate::container::Record> =
            self.containers.all().iter().map(|c| c.snapshot()).collect();
        let mut users: HashMap<String, i64> = HashMap::new();
        for r in &recs {
            *users.entry(r.image_id.clone()).or_default() += 1;
        }
        let store = self.store.clone();
        let usage = tokio::task::spawn_blocking(move || store.usage())
            .await
            .map_err(join_err)?;
        let image_sizes: HashMap<String, u64> = usage
            .images
            .iter()
            .map(|i| (i.image.id.clone(), i.size))
            .collect();
        if want("image") {
            out["LayersSize"] = json!(usage.layers_size);
            out["Images"] = usage
                .images
                .iter()
                .map(|u| {
                    let i = &u.image;
                    json!({
                        "Id": i.id,
                        "ParentId": i.parent,
                        "RepoTags": i.repo_tags,
                        "RepoDigests": i.repo_digests,
                        "Created": unix(&i.created),
                        "Size": u.size,
                        "SharedSize": u.shared_size,
                        "VirtualSize": u.size,
                        "Labels": i.config.config.labels,
                        "Containers": users.get(&i.id).copied().unwrap_or(0),
                    })
                })
                .collect();
        }
        if want("container") {
            let list = self.containers.list_containers(&ListOptions {
                all: true,
                ..Default::default()
            })?;
            let paths = self.containers.paths.clone();
            let ids: Vec<String> = list.iter().filter_map(|c| c.id.clone()).collect();
            let sizes: HashMap<String, u64> = tokio::task::spawn_blocking(move || {
                ids.into_iter()
                    .map(|id| {
                        let s = berth_store::disk_usage(&paths.container_dir(&id).join("rw"));
                        (id, s)
                    })
                    .collect()
            })
            .await
            .map_err(join_err)?;
            let image_of: HashMap<&str, &str> = recs
                .iter()
                .map(|r| (r.id.as_str(), r.image_id.as_str()))
                .collect();
            out["Containers"] = list
                .iter()
                .map(|c| {
                    let mut v = serde_json::to_value(c).unwrap_or_default();
                    let id = c.id.clone().unwrap_or_default();
                    let rw = sizes.get(&id).copied().unwrap_or(0);
                    let img = image_of
                        .get(id.as_str())
                        .and_then(|i| image_sizes.get(*i))
                        .copied()
                        .unwrap_or(0);
                    v["SizeRw"] = json!(rw);
                    v["SizeRootFs"] = json!(rw + img);
                    v
                })
                .collect();
        }
        if want("volume") {
            if let Some(v) = self.volumes.get() {
                let v = v.clone();
                let list = tokio::task::spawn_blocking(move || v.volume_usage())
                    .await
                    .map_err(join_err)?;
                out["Volumes"] = list.into();
            }
        }
        Ok(out)
    }
}
