//! `docker commit`: the container's rw layer as a new image (moby `CreateImageFromContainer`):
//! the request's config (or the container's) with the `changes` applied, merged over the
//! container's config; the container paused meanwhile unless `pause=false`.
use berth_api::storage::CommitOptions;
use berth_api::{ApiError, ApiResult};
use berth_oci::image::Config;

use super::{join_err, Storage};
use crate::container::control::set_frozen;
use crate::container::{store_err, Status};

/// moby's `merge(userConf, imageConf)`: fields the user left unset come from the container.
fn merge(user: &mut Config, base: &Config) {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = base.user.clone();
    }
    for (k, v) in &base.exposed_ports {
        user.exposed_ports.entry(k.clone()).or_insert(v.clone());
    }
    let keys: Vec<String> = user
        .env
        .iter()
        .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_owned())
        .collect();
    for e in &base.env {
        let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        if !keys.iter().any(|x| x == k) {
            user.env.push(e.clone());
        }
    }
    for (k, v) in &base.labels {
        user.labels.entry(k.clone()).or_insert(v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = base.healthcheck.clone();
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    for (k, v) in &base.volumes {
        user.volumes.entry(k.clone()).or_insert(v.clone());
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

fn to_config(v: &serde_json::Value) -> Result<Config, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::invalid(format!("invalid config: {e}")))
}

impl Storage {
    pub(crate) async fn commit_container(&self, o: CommitOptions) -> ApiResult<String> {
        let c = self.containers.get(&o.container)?;
        let reference = match (&o.repo, &o.tag) {
            (Some(r), Some(t)) => Some(format!("{r}:{t}")),
            (Some(r), None) => Some(r.clone()),
            (None, Some(_)) => {
                return Err(ApiError::invalid("tag is given without a repository"));
            }
            (None, None) => None,
        };
        if let Some(r) = &reference {
            let parsed = berth_oci::reference::Reference::parse(r)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            if parsed.digest().is_some() {
                return Err(ApiError::invalid(
                    "refusing to create a tag with a digest reference",
                ));
            }
        }
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if matches!(rec.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "You cannot commit container {} which is being removed",
                rec.id
            )));
        }
        let container_config = serde_json::to_value(&rec.config)
            .map_err(|e| ApiError::internal(format!("encoding the container config: {e}")))?;
        let base = to_config(&container_config)?;
        let mut config = match &o.config {
            Some(v) => to_config(v)?,
            None => base.clone(),
        };
        berth_store::apply_changes(&mut config, &o.changes).map_err(store_err)?;
        merge(&mut config, &base);
        // Docker keeps the container's identity fields in the image config.
        for k in ["Hostname", "Domainname", "Image"] {
            if let Some(v) = container_config.get(k) {
                config.extra.entry(k).or_insert(v.clone());
            }
        }

        let freeze = o.pause && rec.state.status == Status::Running;
        if freeze {
            let r = rec.clone();
            tokio::task::spawn_blocking(move || set_frozen(&r, true))
                .await
                .map_err(join_err)?
                .map_err(|e| {
                    ApiError::internal(format!("Cannot pause container {}: {e}", rec.id))
                })?;
        }
        let store = self.store.clone();
        let upper = self
            .containers
            .paths
            .container_dir(&rec.id)
            .join("rw")
            .join("upper");
        let opts = berth_store::CommitOptions {
            reference: reference.clone(),
            author: o.author.clone(),
            comment: o.comment.clone(),
            config,
            container_id: rec.id.clone(),
            container_config,
            created_by: rec.config.cmd.clone().unwrap_or_default().join(" "),
        };
        let holder = rec.id.clone();
        let res = tokio::task::spawn_blocking(move || store.commit(&holder, &upper, &opts))
            .await
            .map_err(join_err);
        if freeze {
            let r = rec.clone();
            let thawed = tokio::task::spawn_blocking(move || set_frozen(&r, false)).await;
            if !matches!(thawed, Ok(Ok(()))) {
                tracing::error!(id = %rec.id, "could not unpause the container after commit");
            }
        }
        let img = res?.map_err(store_err)?;
        let image_ref = reference
            .as_deref()
            .and_then(|r| berth_oci::reference::Reference::parse_with_default_tag(r).ok())
            .map(|r| r.familiar())
            .unwrap_or_default();
        self.containers.emit(
            &c,
            "commit",
            &[
                ("comment", o.comment.clone()),
                ("imageID", img.id.clone()),
                ("imageRef", image_ref.clone()),
            ],
        );
        if !image_ref.is_empty() {
            self.image_event("tag", &img.id, &image_ref);
        }
        Ok(img.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_like_moby() {
        let base = Config {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/w".into()),
            ..Default::default()
        };
        let mut user = Config {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge(&mut user, &base);
        assert_eq!(user.env, vec!["A=2", "PATH=/bin"]);
        assert_eq!(user.cmd.unwrap(), vec!["sh"]);
        assert_eq!(user.working_dir.as_deref(), Some("/w"));
        let mut user = Config {
            entrypoint: Some(vec!["/x".into()]),
            ..Default::default()
        };
        merge(&mut user, &base);
        assert!(user.cmd.is_none());
    }
}
