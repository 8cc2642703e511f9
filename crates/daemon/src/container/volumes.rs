//! The container side of volumes: resolving a create's mounts, who uses a volume, releasing
//! volumes at exit, `rm -v`; and the API face of the volume service (it needs to know which
//! containers use each volume).
use std::sync::Arc;

use berth_api::models::Volume;
use berth_api::{ApiError, ApiResult, Filters, VolumeBackend, VolumeCreateOptions};

use super::{Containers, Ctr, Record};
use crate::volumes::mounts::{MountPoint, MountRequest};
use crate::volumes::{self, Volumes};

impl Containers {
    /// Resolves the mounts of a container being created (creating its volumes).
    pub(crate) fn resolve_mounts(
        &self,
        rec: &Record,
    ) -> Result<(Vec<MountPoint>, Vec<String>, crate::volumes::PendingUse), ApiError> {
        let hc = &rec.host_config;
        let mut from = Vec::new();
        for spec in hc.volumes_from.clone().unwrap_or_default() {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n.to_owned(), m.to_owned()),
                Some((_, m)) => return Err(ApiError::invalid(format!("invalid mode: {m}"))),
                None => (spec.clone(), String::new()),
            };
            // 400, not 404: a 404 on create makes the CLI try to pull the image.
            let c = self.get(&name).map_err(|e| ApiError::invalid(e.message))?;
            from.push((c.snapshot().mount_points, mode));
        }
        let mut anonymous: Vec<String> = rec
            .config
            .volumes
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect();
        anonymous.sort();
        let tmpfs = hc.tmpfs.clone().unwrap_or_default();
        self.volumes.resolve(MountRequest {
            binds: hc.binds.as_deref().unwrap_or(&[]),
            mounts: hc.mounts.as_deref().unwrap_or(&[]),
            anonymous,
            volumes_from: from,
            tmpfs: &tmpfs,
        })
    }

    /// Records written before mounts were resolved at create kept only `HostConfig.Binds`
    /// (host binds): give them their mount points once, at start-up.
    pub fn migrate_mount_points(&self) {
        for c in self.all() {
            let rec = c.snapshot();
            let binds = rec.host_config.binds.clone().unwrap_or_default();
            if !rec.mount_points.is_empty() || binds.is_empty() {
                continue;
            }
            let mps: Vec<MountPoint> = binds
                .iter()
                .filter_map(|b| crate::volumes::mounts::parse_bind(b).ok())
                .filter(|b| b.is_bind())
                .map(|b| MountPoint {
                    typ: "bind".into(),
                    source: b.source,
                    destination: b.destination,
                    mode: b.mode,
                    rw: b.rw,
                    propagation: b.propagation,
                    create_source: true,
                    ..Default::default()
                })
                .collect();
            self.update(&c, |r| r.mount_points = mps);
        }
    }

    /// Removes volumes a failed create made.
    pub(crate) fn discard_volumes(&self, names: &[String]) {
        let _op = self.volumes.op.lock().expect("volumes op lock");
        for n in names {
            if self.volume_users(n).is_empty() && !self.volumes.is_pending(n) {
                let _ = self.volumes.remove_locked(n);
            }
        }
    }

    /// IDs of the containers (any state) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all()
            .into_iter()
            .filter(|c| {
                c.rec
                    .lock()
                    .expect("record lock")
                    .mount_points
                    .iter()
                    .any(|m| m.typ == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// At exit (or a failed start): `volume unmount` events, and the driver mounts of
    /// volumes no other running container uses are unmounted.
    pub(crate) fn release_volumes(&self, c: &Ctr) {
        let mps = c.snapshot().mount_points;
        for m in mps.iter().filter(|m| m.typ == "volume") {
            let Some(v) = self.volumes.get(&m.name) else {
                continue;
            };
            if volumes::local::needs_mount(&v.options) {
                let _op = self.volumes.op.lock().expect("volumes op lock");
                let others = self.all().into_iter().any(|o| {
                    o.id != c.id
                        && o.status().is_running()
                        && o.rec
                            .lock()
                            .expect("record lock")
                            .mount_points
                            .iter()
                            .any(|x| x.typ == "volume" && x.name == m.name)
                });
                if !others {
                    let data = self.volumes.data_dir(&m.name);
                    if let Err(e) = volumes::local::unmount_all_under(&data) {
                        tracing::warn!(volume = %m.name, error = %e, "unmounting a volume");
                    }
                }
            }
            self.volumes
                .emit("unmount", &m.name, &[("container", c.id.clone())]);
        }
    }

    /// `rm [-v]`: removes the container, then (with `volumes`) its anonymous volumes that no
    /// other container uses. Named volumes always stay (as Docker).
    pub async fn remove_container_and_volumes(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let mps = c.snapshot().mount_points;
        self.remove_container(key, force).await?;
        if volumes {
            let _op = self.volumes.op.lock().expect("volumes op lock");
            for m in mps.iter().filter(|m| m.typ == "volume" && m.anonymous) {
                if self.volume_users(&m.name).is_empty() {
                    if let Err(e) = self.volumes.remove_locked(&m.name) {
                        tracing::warn!(volume = %m.name, error = %e.message, "removing an anonymous volume");
                    }
                }
            }
        }
        Ok(())
    }
}

/// The API face of the volume service.
pub struct VolumeApi(pub Arc<Containers>);

impl VolumeApi {
    fn vols(&self) -> &Volumes {
        &self.0.volumes
    }
}

fn check_filters(filters: &Filters, allowed: &[&str]) -> Result<(), ApiError> {
    for k in filters.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl VolumeBackend for VolumeApi {
    async fn create(&self, opts: VolumeCreateOptions) -> ApiResult<Volume> {
        let v = self.vols().create(opts, false)?;
        Ok(self.vols().to_api(&v))
    }

    async fn list(&self, filters: Filters) -> ApiResult<Vec<Volume>> {
        check_filters(&filters, &["name", "driver", "label", "label!", "dangling"])?;
        let in_use = |n: &str| !self.0.volume_users(n).is_empty();
        let mut out = Vec::new();
        for v in self.vols().all() {
            if volumes::matches(&v, &filters, &in_use)? {
                out.push(self.vols().to_api(&v));
            }
        }
        Ok(out)
    }

    async fn inspect(&self, name: &str) -> ApiResult<Volume> {
        let v = self
            .vols()
            .get(name)
            .ok_or_else(|| Volumes::not_found(name))?;
        Ok(self.vols().to_api(&v))
    }

    async fn remove(&self, name: &str, force: bool) -> ApiResult<()> {
        let vols = self.0.volumes.clone();
        let _op = vols.op.lock().expect("volumes op lock");
        if vols.get(name).is_none() {
            return if force {
                Ok(())
            } else {
                Err(Volumes::not_found(name))
            };
        }
        let users = self.0.volume_users(name);
        if vols.is_pending(name) && users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use by a container being created"
            )));
        }
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        vols.remove_locked(name)
    }

    async fn prune(&self, filters: Filters, named: bool) -> ApiResult<(Vec<String>, u64)> {
        check_filters(&filters, &["label", "label!"])?;
        let vols = self.0.volumes.clone();
        let _op = vols.op.lock().expect("volumes op lock");
        let mut deleted = Vec::new();
        let mut space = 0;
        for v in vols.all() {
            if !named && !v.anonymous {
                continue;
            }
            if !volumes::matches(&v, &filters, &|_| false)? {
                continue;
            }
            if !self.0.volume_users(&v.name).is_empty() || vols.is_pending(&v.name) {
                continue;
            }
            let size = vols.size(&v.name);
            if vols.remove_locked(&v.name).is_ok() {
                space += size;
                deleted.push(v.name.clone());
            }
        }
        Ok((deleted, space))
    }
}

/// `system df`'s volumes: each volume with `UsageData` (bytes under `_data`, containers
/// that mount it).
impl crate::storage::VolumeUsage for Containers {
    fn volume_usage(&self) -> Vec<serde_json::Value> {
        self.volumes
            .all()
            .iter()
            .map(|v| {
                let mut j = serde_json::to_value(self.volumes.to_api(v)).unwrap_or_default();
                j["UsageData"] = serde_json::json!({
                    "Size": self.volumes.size(&v.name),
                    "RefCount": self.volume_users(&v.name).len(),
                });
                j
            })
            .collect()
    }
}
