//! The image service: the API's `ImageBackend` over berth-store.
use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{
    DriverData, HistoryResponseItem, ImageConfig, ImageDeleteResponseItem, ImageInspect,
    ImageInspectRootFs, ImageSummary,
};
use berth_api::{ApiError, BoxStream, ErrorKind, Filters, ImageBackend, ImportOptions};
use berth_store::{Image, ImageDelete, Store};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::container::{store_err, Containers};

pub struct Images {
    store: Arc<Store>,
    containers: Arc<Containers>,
}

impl Images {
    pub fn new(store: Arc<Store>, containers: Arc<Containers>) -> Arc<Self> {
        Arc::new(Self { store, containers })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, berth_store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(store_err)
    }
}

fn unix(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn container_config(img: &Image) -> ImageConfig {
    let c = &img.config.config;
    ImageConfig {
        user: Some(c.user.clone().unwrap_or_default()),
        env: Some(c.env.clone()),
        cmd: c.cmd.clone(),
        entrypoint: c.entrypoint.clone(),
        working_dir: Some(c.working_dir.clone().unwrap_or_default()),
        labels: Some(
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        exposed_ports: (!c.exposed_ports.is_empty()).then(|| {
            c.exposed_ports
                .keys()
                .map(|k| (k.clone(), HashMap::new()))
                .collect()
        }),
        volumes: (!c.volumes.is_empty()).then(|| {
            c.volumes
                .keys()
                .map(|k| (k.clone(), HashMap::new()))
                .collect()
        }),
        stop_signal: c.stop_signal.clone(),
        healthcheck: c
            .healthcheck
            .clone()
            .and_then(|h| serde_json::from_value(h).ok()),
        hostname: c
            .extra
            .get("Hostname")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        domainname: c
            .extra
            .get("Domainname")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        image: c
            .extra
            .get("Image")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        args_escaped: c.args_escaped.then_some(true),
        on_build: Some(c.on_build.clone()),
        shell: c.shell.clone(),
        ..Default::default()
    }
}

fn label_match(img: &Image, v: &str) -> bool {
    let labels = &img.config.config.labels;
    match v.split_once('=') {
        Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
        None => labels.contains_key(v),
    }
}

#[async_trait::async_trait]
impl ImageBackend for Images {
    async fn list(&self, all: bool, filters: Filters) -> Result<Vec<ImageSummary>, ApiError> {
        let _ = all;
        let mut images = self.blocking(|s| s.images()).await?;
        for (k, vals) in &filters {
            match k.as_str() {
                "dangling" => {
                    let want = vals.iter().any(|v| v == "true" || v == "1");
                    images.retain(|i| i.repo_tags.is_empty() == want);
                }
                "label" => images.retain(|i| vals.iter().all(|v| label_match(i, v))),
                "reference" => {
                    // Docker keeps only the matching names of each image, and drops images
                    // left with none.
                    let keep = |r: &String| vals.iter().any(|v| familiar_match(v, r));
                    for i in images.iter_mut() {
                        i.repo_tags.retain(keep);
                        i.repo_digests.retain(keep);
                    }
                    images.retain(|i| !i.repo_tags.is_empty() || !i.repo_digests.is_empty());
                }
                "before" | "since" => {
                    let refimg = self
                        .get_one(vals.first().map(String::as_str).unwrap_or(""))
                        .await?;
                    // Nanosecond times: images made within one second still order.
                    let nanos = |ts: &str| {
                        chrono::DateTime::parse_from_rfc3339(ts)
                            .ok()
                            .and_then(|t| t.timestamp_nanos_opt())
                            .unwrap_or(0)
                    };
                    let t = nanos(&refimg.created);
                    images.retain(|i| {
                        if k == "before" {
                            nanos(&i.created) < t
                        } else {
                            nanos(&i.created) > t
                        }
                    });
                }
                other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
            }
        }
        images.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(images
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id.clone(),
                parent_id: i.parent.clone(),
                repo_tags: i.repo_tags.clone(),
                repo_digests: i.repo_digests.clone(),
                created: unix(&i.created),
                size: i.size as i64,
                shared_size: -1,
                labels: i
                    .config
                    .config
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                containers: -1,
                ..Default::default()
            })
            .collect())
    }

    async fn inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        let img = self.get_one(name).await?;
        let id = img.id.clone();
        let layers = self
            .blocking(move |s| s.layer_dirs(&id))
            .await
            .unwrap_or_default();
        let mut gd = HashMap::new();
        if let Some((top, rest)) = layers.split_first() {
            gd.insert("UpperDir".to_owned(), top.display().to_string());
            if !rest.is_empty() {
                gd.insert(
                    "LowerDir".to_owned(),
                    rest.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
        }
        // Docker's `Comment` is the config's `comment` (commit -m, import's message).
        let extra_str = |k: &str| {
            img.config
                .extra
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let comment = extra_str("comment").unwrap_or_default();
        Ok(ImageInspect {
            id: Some(img.id.clone()),
            repo_tags: Some(img.repo_tags.clone()),
            repo_digests: Some(img.repo_digests.clone()),
            parent: Some(img.parent.clone()),
            comment: Some(comment),
            created: Some(img.created.clone()),
            docker_version: Some(extra_str("docker_version").unwrap_or_default()),
            variant: extra_str("variant"),
            metadata: Some(berth_api::models::ImageInspectMetadata {
                last_tag_time: Some(if img.last_tag_time.is_empty() {
                    "0001-01-01T00:00:00Z".to_owned()
                } else {
                    img.last_tag_time.clone()
                }),
            }),
            author: Some(img.config.author.clone().unwrap_or_default()),
            config: Some(container_config(&img)),
            architecture: Some(img.config.architecture.clone()),
            os: Some(img.config.os.clone()),
            size: Some(img.size as i64),
            graph_driver: Some(DriverData {
                name: "overlayfs".into(),
                data: gd,
            }),
            root_fs: Some(ImageInspectRootFs {
                typ: img.config.rootfs.kind.clone(),
                layers: Some(img.config.rootfs.diff_ids.clone()),
            }),
            ..Default::default()
        })
    }

    async fn import(
        &self,
        body: BoxStream<std::io::Result<Bytes>>,
        opts: ImportOptions,
    ) -> Result<String, ApiError> {
        let reference = match (&opts.repo, &opts.tag) {
            (Some(r), Some(t)) => Some(format!("{r}:{t}")),
            (Some(r), None) => Some(r.clone()),
            _ => None,
        };
        if let Some(r) = &reference {
            berth_oci::reference::Reference::parse(r)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
            if p != "linux" && p != "linux/amd64" && p != "amd64" {
                return Err(ApiError::invalid(format!("image operating system / platform \"{p}\" is not supported: berth runs linux/amd64")));
            }
        }
        let store_opts = berth_store::ImportOptions {
            reference,
            changes: opts.changes,
            message: opts.message,
            platform: opts.platform,
        };
        let reader =
            tokio_util::io::StreamReader::new(body.map(|r| r.map_err(std::io::Error::other)));
        let store = self.store.clone();
        let img = tokio::task::spawn_blocking(move || {
            let mut sync = tokio_util::io::SyncIoBridge::new(reader);
            store.import(&mut sync, &store_opts)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(store_err)?;
        self.event("import", &img.id, &img.id);
        Ok(img.id)
    }

    async fn pull(
        &self,
        image: &str,
        tag: Option<&str>,
    ) -> Result<BoxStream<serde_json::Value>, ApiError> {
        let name = match tag {
            Some(t) => format!("{image}:{t}"),
            None => image.to_owned(),
        };
        let r = berth_oci::reference::Reference::parse_with_default_tag(&name)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            format!("pull access for {} is not available: berth cannot pull from registries yet (import a rootfs with `docker import`)", r.familiar()),
        ))
    }

    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        let target = match tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_owned(),
        };
        let reference = berth_oci::reference::Reference::parse(&target)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        if reference.digest().is_some() {
            return Err(ApiError::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        let name = name.to_owned();
        let shown = reference.with_default_tag().familiar();
        let id = self
            .blocking(move |s| {
                let img = s.get_image(&name)?;
                s.tag(&img.id, &target)?;
                Ok(img.id)
            })
            .await?;
        self.event("tag", &id, &shown);
        Ok(())
    }

    async fn remove(
        &self,
        name: &str,
        force: bool,
        _noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        let containers = self.containers.clone();
        let name = name.to_owned();
        let (out, before) = self
            .blocking(move |s| {
                let before: std::collections::HashSet<String> =
                    s.images()?.into_iter().map(|i| i.id).collect();
                let out = s.remove_image_with(&name, force, &|id| containers.image_user(id))?;
                Ok((out, before))
            })
            .await?;
        crate::storage::delete_events(&self.containers.events, &out, &before);
        Ok(out
            .into_iter()
            .map(|d| match d {
                ImageDelete::Untagged(t) => ImageDeleteResponseItem {
                    untagged: Some(t),
                    deleted: None,
                },
                ImageDelete::Deleted(id) => ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(id),
                },
            })
            .collect())
    }

    async fn save(&self, name: &str) -> Result<BoxStream<std::io::Result<Bytes>>, ApiError> {
        crate::storage::save_stream(&self.store, &self.containers.events, vec![name.to_owned()])
            .await
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryResponseItem>, ApiError> {
        let name = name.to_owned();
        let items = self.blocking(move |s| s.history(&name)).await?;
        Ok(items
            .into_iter()
            .map(|h| HistoryResponseItem {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                tags: h.tags,
                size: h.size as i64,
                comment: h.comment,
            })
            .collect())
    }
}

impl Images {
    fn event(&self, action: &str, id: &str, name: &str) {
        self.containers.events.publish(
            "image",
            action,
            id,
            [("name".to_owned(), name.to_owned())].into(),
        );
    }

    async fn get_one(&self, name: &str) -> Result<Image, ApiError> {
        let n = name.to_owned();
        self.blocking(move |s| s.get_image(&n)).await
    }

    pub fn count(&self) -> usize {
        self.store.images().map(|v| v.len()).unwrap_or(0)
    }
}

/// Docker's `reference.FamiliarMatch`: the pattern against `name:tag`, then against the
/// bare name (without tag or digest).
fn familiar_match(pattern: &str, reference: &str) -> bool {
    if path_match(pattern, reference) {
        return true;
    }
    let name = match reference.split_once('@') {
        Some((n, _)) => n,
        None => match reference.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => n,
            _ => reference,
        },
    };
    path_match(pattern, name)
}

/// Go's `path.Match` for `*` and `?`: neither crosses a `/`.
fn path_match(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(&p[1..], &t[i..])),
            Some('?') => t.first().is_some_and(|&c| c != '/') && go(&p[1..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns() {
        assert!(familiar_match("busy*", "busybox:latest"));
        assert!(familiar_match("*box", "busybox:latest"));
        assert!(!familiar_match("bus*x", "busyboy:latest"));
        assert!(familiar_match("myrepo/bb", "myrepo/bb:v1"));
        assert!(!familiar_match("myrepo/bb", "busybox:latest"));
        assert!(!familiar_match("*", "myrepo/bb:v1"));
        assert!(familiar_match("*/*", "myrepo/bb:v1"));
        assert!(familiar_match("localhost:5000/bb", "localhost:5000/bb:v1"));
    }
}
