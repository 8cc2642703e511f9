//! The container side of networking: `container:<id>` network mode, and the network
//! service's hooks around the shim in `start`.
use std::path::{Path, PathBuf};

use berth_api::models::HostConfig;
use berth_api::ApiError;

use super::{Containers, Record};

impl Containers {
    /// At create: `container:<id>` must name an existing container.
    pub(crate) fn check_container_mode(&self, h: &HostConfig) -> Result<(), ApiError> {
        let mode = h.network_mode.as_deref().unwrap_or("");
        if let Some(t) = mode.strip_prefix("container:") {
            if t.is_empty() {
                return Err(ApiError::invalid(
                    "container: network mode needs a container name or ID",
                ));
            }
            // The container itself is looked up at start, as Docker does.
        }
        Ok(())
    }

    /// For `container:<id>`: the target's network namespace and directory (it must run).
    pub(crate) fn joined_netns(
        &self,
        rec: &Record,
    ) -> Result<Option<(PathBuf, PathBuf)>, ApiError> {
        let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
        let Some(t) = mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let target = self.get(t)?;
        let tr = target.snapshot();
        if tr.id == rec.id {
            return Err(ApiError::invalid("cannot join own network namespace"));
        }
        if !tr.state.status.is_running() || tr.state.pid == 0 {
            return Err(ApiError::conflict(format!(
                "cannot join network of a non running container: {}",
                tr.id
            )));
        }
        Ok(Some((
            PathBuf::from(format!("/proc/{}/ns/net", tr.state.pid)),
            self.paths.container_dir(&tr.id),
        )))
    }
}

/// Writes the network service's hosts / resolv.conf (or, for `container:<id>`, the
/// target's) over the defaults `prepare_bundle` wrote.
pub(crate) fn write_net_files(
    dir: &Path,
    plan: &crate::network::Plan,
    joined: Option<&Path>,
) -> Result<(), ApiError> {
    let io = |what: &str, e: std::io::Error| ApiError::internal(format!("writing {what}: {e}"));
    if let Some(t) = joined {
        for f in ["hosts", "resolv.conf"] {
            if let Ok(data) = std::fs::read(t.join(f)) {
                std::fs::write(dir.join(f), data).map_err(|e| io(f, e))?;
            }
        }
        return Ok(());
    }
    if let Some(h) = &plan.hosts {
        std::fs::write(dir.join("hosts"), h).map_err(|e| io("hosts", e))?;
    }
    if let Some(r) = &plan.resolv {
        std::fs::write(dir.join("resolv.conf"), r).map_err(|e| io("resolv.conf", e))?;
    }
    Ok(())
}
