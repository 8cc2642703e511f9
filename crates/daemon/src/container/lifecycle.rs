//! `stop`, `kill`, `restart`, `wait`, `rm`.
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{ContainerWaitExitError, ContainerWaitResponse};
use berth_api::{ApiError, BoxFuture, WaitCondition};

use super::{Containers, Ctr, Status};

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ApiError::invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            if let Some(rt) = name.strip_prefix("RTMIN+") {
                return rt
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=30).contains(n))
                    .map(|n| 34 + n)
                    .ok_or_else(|| ApiError::invalid(format!("Invalid signal: {s}")));
            }
            return Err(ApiError::invalid(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

impl Containers {
    /// Waits until the exit counter passes `seq`, up to `timeout` (None = forever).
    async fn wait_exit_after(c: &Ctr, seq: u64, timeout: Option<Duration>) -> bool {
        let mut rx = c.exits.subscribe();
        let fut = rx.wait_for(|ev| ev.seq > seq || ev.removed);
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    pub async fn stop_container(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, signal, timeout).await
    }

    /// Stop with the op lock held: signal, grace period, then SIGKILL to every process.
    pub(crate) async fn stop_locked(
        &self,
        c: &Ctr,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(ApiError::not_modified());
        }
        if self.cancel_restart(c) {
            self.emit(c, "stop", &[]);
            return Ok(());
        }
        let sig = match signal.or_else(|| rec.config.stop_signal.clone()) {
            Some(s) => parse_signal(&s)?,
            None => 15,
        };
        let grace = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        self.update(c, |r| r.manually_stopped = true);
        let seq = c.exits.borrow().seq;
        let shim = self.shim(&c.id);
        self.emit(c, "kill", &[("signal", sig.to_string())]);
        let sent = shim.kill(sig, false).await.is_ok();
        let _ = self.thaw(c).await;
        if sent {
            let t = if grace < 0 {
                None
            } else {
                Some(Duration::from_secs(grace as u64))
            };
            if Self::wait_exit_after(c, seq, t).await {
                self.emit(c, "stop", &[]);
                return Ok(());
            }
        }
        self.emit(c, "kill", &[("signal", "9".to_owned())]);
        let _ = shim.kill(9, true).await;
        if Self::wait_exit_after(c, seq, Some(Duration::from_secs(30))).await {
            self.emit(c, "stop", &[]);
            Ok(())
        } else {
            Err(ApiError::internal(format!("cannot stop container: {}: tried to kill container, but did not receive an exit event", c.id)))
        }
    }

    pub async fn kill_container(&self, key: &str, signal: Option<String>) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let sig = match signal {
            Some(s) => parse_signal(&s)?,
            None => 9,
        };
        if !c.status().can_kill() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                key, c.id
            )));
        }
        // moby's killWithSignal: any kill marks the container stopped by hand; the stop
        // signal (any signal when none is configured) or SIGKILL also cancels restarts.
        let stop_signal = c
            .snapshot()
            .config
            .stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_signal)
            .transpose()
            .unwrap_or(None);
        if (stop_signal.is_none_or(|s| s == sig) || sig == 9) && self.cancel_restart(&c) {
            return Ok(());
        }
        let seq = c.exits.borrow().seq;
        self.update(&c, |r| r.manually_stopped = true);
        self.shim(&c.id)
            .kill(sig, sig == 9)
            .await
            .map_err(|e| ApiError::internal(format!("Cannot kill container: {key}: {e}")))?;
        self.emit(&c, "kill", &[("signal", sig.to_string())]);
        if sig == 9 {
            let _ = self.thaw(&c).await;
            // As moby's `Kill`: a SIGKILL answers once the container is no longer running,
            // so the next command sees it exited.
            if !Self::wait_exit_after(&c, seq, Some(Duration::from_secs(10))).await {
                return Err(ApiError::internal(format!(
                    "Cannot kill container: {key}: tried to kill container, but did not receive an exit event"
                )));
            }
        }
        Ok(())
    }

    pub async fn restart_container(
        self: &Arc<Self>,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let c = self.get(key)?;
        {
            let _op = c.op.lock().await;
            match self.stop_locked(&c, signal, timeout).await {
                Ok(()) => {}
                Err(e) if e.kind == berth_api::ErrorKind::NotModified => {}
                Err(e) => return Err(e),
            }
        }
        // The exit monitor records the exit asynchronously; wait until it has.
        let mut rx = c.exits.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|_| !c.status().is_running()),
        )
        .await;
        match self.start_container(&c.id).await {
            Ok(()) => {}
            Err(e) if e.kind == berth_api::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.emit(&c, "restart", &[]);
        Ok(())
    }

    pub async fn wait_container(
        &self,
        key: &str,
        cond: WaitCondition,
    ) -> Result<BoxFuture<ContainerWaitResponse>, ApiError> {
        let c = self.get(key)?;
        let mut rx = c.exits.subscribe();
        let (seq, status) = (rx.borrow().seq, c.status());
        let response = |code: i64, error: Option<String>| ContainerWaitResponse {
            status_code: code,
            error: error.map(|m| ContainerWaitExitError { message: Some(m) }),
        };
        if cond == WaitCondition::NotRunning && !status.is_running() {
            let code = c.snapshot().state.exit_code;
            return Ok(Box::pin(async move { response(code, None) }));
        }
        Ok(Box::pin(async move {
            let res = rx
                .wait_for(|ev| match cond {
                    WaitCondition::Removed => ev.removed,
                    _ => ev.seq > seq || ev.removed,
                })
                .await
                .map(|ev| (ev.code, ev.error.clone()));
            match res {
                Ok((code, err)) => response(code, err),
                // Sender dropped: the container is gone.
                Err(_) => response(0, None),
            }
        }))
    }

    pub async fn remove_container(
        self: &Arc<Self>,
        key: &str,
        force: bool,
    ) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let status = c.status();
        if status == Status::Removing {
            return Err(ApiError::conflict(format!(
                "removal of container {} is already in progress",
                c.id
            )));
        }
        if !status.can_delete() {
            if !force {
                let what = match status {
                    Status::Paused => "paused",
                    Status::Restarting => "restarting",
                    _ => "running",
                };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    c.snapshot().name
                )));
            }
            let seq = c.exits.borrow().seq;
            // Canceled first, so the exit does not restart it; nothing runs while a
            // restart is pending.
            if !self.cancel_restart(&c) {
                self.emit(&c, "kill", &[("signal", "9".to_owned())]);
                let _ = self.shim(&c.id).kill(9, true).await;
                let _ = self.thaw(&c).await;
                if !Self::wait_exit_after(&c, seq, Some(Duration::from_secs(30))).await {
                    return Err(ApiError::internal(format!(
                        "could not kill container {}",
                        c.id
                    )));
                }
            }
        }
        // In memory only, as Docker's removal-in-progress mark: the record is deleted next.
        c.rec.lock().expect("record lock").state.status = Status::Removing;
        let paths = self.paths.clone();
        let store = self.store.clone();
        let id = c.id.clone();
        let res = tokio::task::block_in_place(move || -> std::io::Result<()> {
            super::start::cleanup_bundle(&paths.bundle(&id));
            let dir = paths.container_dir(&id);
            // The record goes first so a crash never leaves a half-deleted container that
            // loads; restore removes directories without a record and their layer holds.
            match std::fs::remove_file(dir.join("config.v2.json")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            // The rest (the rw layer, logs: any number of files) is renamed aside and deleted
            // in the background; a crash leaves a directory without a record, which restore
            // deletes (`load_all`).
            let trash = dir.with_file_name(format!(".removed-{id}"));
            match std::fs::rename(&dir, &trash) {
                Ok(()) => {
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = std::fs::remove_dir_all(&trash) {
                            tracing::warn!(path = %trash.display(), error = %e, "deleting a removed container's files");
                        }
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
            if let Err(e) = store.release(&id) {
                tracing::warn!(%id, error = %e, "releasing the container's layers");
            }
            Ok(())
        });
        self.net.release(&c.id).await;
        self.net.forget(&c.id);
        if let Err(e) = res {
            self.update(&c, |r| r.state.status = Status::Dead);
            return Err(ApiError::internal(format!(
                "unable to remove filesystem for {}: {e}",
                c.id
            )));
        }
        // Removed means its cgroups are gone too.
        c.shim_cleanup.settled().await;
        self.forget(&c.id);
        self.emit(&c, "destroy", &[]);
        c.exits.send_modify(|ev| ev.removed = true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), 35);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
