//! Live restore: at start-up, reload every container and reconnect to live shims. A
//! container that exited while berthd was down gets the status its shim recorded.
use std::sync::Arc;

use berth_runtime::client::{read_exit_file, ShimClient};
use berth_runtime::protocol::ExitStatus;

use crate::container::{now_rfc3339, Containers, Status};

pub async fn restore(containers: &Arc<Containers>) {
    let loaded = containers.load_all();
    // Layer holds of containers that no longer exist (removal cut short by a crash).
    let known: std::collections::HashSet<String> = loaded.iter().map(|c| c.id.clone()).collect();
    let holders = containers.store.holders();
    for holder in &holders {
        if !known.contains(holder) {
            if let Err(e) = containers.store.release(holder) {
                tracing::warn!(%holder, error = %e, "releasing a stale layer hold");
            }
        }
    }
    retake_holds(containers, &loaded, &holders);
    // Network records written without fsync (see `Networks::register`) and lost to a
    // crash: derived again from the HostConfig.
    for c in &loaded {
        let rec = c.snapshot();
        let name = rec.name.trim_start_matches('/').to_owned();
        containers
            .net
            .ensure_registered(&c.id, &name, &rec.host_config);
    }
    let mut live = 0;
    // Stopped (or waiting to restart) when berthd went down: their restart policy decides.
    let stopped: Vec<_> = loaded
        .iter()
        .filter(|c| matches!(c.status(), Status::Exited | Status::Restarting))
        .cloned()
        .collect();
    for c in loaded {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Restarting => continue,
            Status::Removing | Status::Dead => {
                // A removal that was cut short: finish it.
                if let Err(e) = containers.remove_container(&c.id, true).await {
                    tracing::warn!(id = %c.id, error = %e.message, "finishing interrupted removal");
                }
                continue;
            }
            s if !s.is_running() => continue,
            _ => {}
        }
        let bundle = containers.paths.bundle(&c.id);
        match ShimClient::new(&bundle).state().await {
            Ok(st) if st.running => {
                live += 1;
                containers.spawn_monitor(c.clone());
                containers.resume_health(&c);
            }
            Ok(st) => {
                let status = st.exit.unwrap_or(ExitStatus {
                    code: 255,
                    exited_at: now_rfc3339(),
                    oom_killed: false,
                });
                containers.handle_exit(&c, status).await;
            }
            Err(_) => {
                let status = read_exit_file(&bundle).unwrap_or_else(|| {
                    tracing::warn!(id = %c.id, "shim gone without an exit status");
                    ExitStatus {
                        code: 255,
                        exited_at: now_rfc3339(),
                        oom_killed: false,
                    }
                });
                containers.handle_exit(&c, status).await;
            }
        }
    }
    containers.start_policy_containers(&stopped);
    let mut running = std::collections::BTreeSet::new();
    let mut existing = std::collections::BTreeSet::new();
    for c in containers.all() {
        existing.insert(c.id.clone());
        if c.status().is_running() {
            running.insert(c.id.clone());
        }
    }
    containers.net.reconcile(&running, &existing).await;
    tracing::info!(live, "restored containers");
}

/// Holds lost to a crash: `create` writes a container's hold and its record side by side,
/// so a record may have been saved without its hold. It is taken again on the record's
/// image; an image deleted meanwhile leaves the container without layers (reported).
pub(crate) fn retake_holds(
    containers: &Containers,
    loaded: &[Arc<crate::container::Ctr>],
    holders: &[String],
) {
    // `Store::holders` is sorted.
    for c in loaded
        .iter()
        .filter(|c| holders.binary_search(&c.id).is_err())
    {
        let image = c.snapshot().image;
        match containers.store.hold(&c.id, &image) {
            Ok(_) => tracing::info!(id = %c.id, %image, "took the lost layer hold again"),
            Err(e) => {
                tracing::warn!(id = %c.id, %image, error = %e, "the container's layer hold is lost")
            }
        }
    }
}
