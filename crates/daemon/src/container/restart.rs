//! Restart policies with Docker's restart manager semantics (moby `restartmanager`):
//! `no`, `always`, `unless-stopped`, `on-failure[:N]`, and berth's `on-unhealthy[:N]`.
//!
//! - Backoff: the first restart waits 100 ms, each further one twice as long, at most 1 min;
//!   a run of 10 s or more resets it.
//! - A manual `stop`/`kill` cancels the pending restart and suppresses every policy until
//!   the container is started again; at daemon start `always` containers start anyway,
//!   `unless-stopped` ones only if they were not stopped by hand.
//! - A manual `start` resets `RestartCount` to 0.
//! - `on-unhealthy[:N]` (beyond Docker) restarts a container whose health check turns it
//!   unhealthy, and one that exits non-zero (as `on-failure`), at most N times when N > 0.
//!   The Docker API has no such policy name: it travels as `HostConfig.RestartPolicy.Name`
//!   on the wire, the API layer carries it in the label [`POLICY_LABEL`], and inspect shows
//!   it back under `HostConfig.RestartPolicy.Name`.
use std::sync::Arc;
use std::time::Duration;

use berth_api::ApiError;

use super::{Containers, Ctr, Record, Status};

pub use berth_api::restart_policy::POLICY_LABEL;

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    OnFailure(i64),
    OnUnhealthy(i64),
}

impl Policy {
    /// The policy of a container record (berth's label first, then the HostConfig).
    pub fn of(rec: &Record) -> Policy {
        if let Some(p) = rec
            .config
            .labels
            .as_ref()
            .and_then(|l| l.get(POLICY_LABEL))
            .and_then(|v| parse(v).ok())
        {
            return p;
        }
        let rp = rec.host_config.restart_policy.clone().unwrap_or_default();
        let max = rp.maximum_retry_count.unwrap_or(0);
        match rp.name.map(|n| n.to_string()).unwrap_or_default().as_str() {
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => Policy::OnFailure(max),
            _ => Policy::No,
        }
    }
}

/// Parses `name[:N]` as the daemon accepts it.
pub fn parse(s: &str) -> Result<Policy, ApiError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let n = match count {
        Some(c) => c.parse::<i64>().map_err(|_| {
            ApiError::invalid(format!(
                "invalid restart policy format: maximum retry count must be an integer: {c}"
            ))
        })?,
        None => 0,
    };
    validate_name(name, n)
}

/// Docker's `validateRestartPolicy` (its messages), plus `on-unhealthy`.
pub fn validate_name(name: &str, max: i64) -> Result<Policy, ApiError> {
    match name {
        "no" | "always" | "unless-stopped" if max != 0 => Err(ApiError::invalid(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        ))),
        "" | "no" => Ok(Policy::No),
        "always" => Ok(Policy::Always),
        "unless-stopped" => Ok(Policy::UnlessStopped),
        "on-failure" | "on-unhealthy" if max < 0 => {
            Err(ApiError::invalid("maximum retry count cannot be negative"))
        }
        "on-failure" => Ok(Policy::OnFailure(max)),
        "on-unhealthy" => Ok(Policy::OnUnhealthy(max)),
        other => Err(ApiError::invalid(format!(
            "invalid restart policy '{other}'"
        ))),
    }
}

/// The in-memory half of Docker's restart manager: backoff and cancellation.
#[derive(Debug, Default)]
pub struct Manager {
    timeout: Duration,
    /// A manual stop/kill: no restart until the next start.
    canceled: bool,
    /// Bumped on every cancel, so a pending restart knows it was overtaken.
    generation: u64,
}

impl Manager {
    /// Docker's `ShouldRestart`: whether to restart, and after how long.
    pub fn should_restart(
        &mut self,
        policy: Policy,
        exit_code: i64,
        manually_stopped: bool,
        ran_for: Duration,
        restart_count: i64,
    ) -> Option<Duration> {
        if policy == Policy::No || self.canceled {
            return None;
        }
        if ran_for >= Duration::from_secs(10) {
            self.timeout = Duration::ZERO;
        }
        if self.timeout.is_zero() {
            self.timeout = DEFAULT_TIMEOUT;
        } else if self.timeout < MAX_TIMEOUT {
            self.timeout *= 2;
        }
        self.timeout = self.timeout.min(MAX_TIMEOUT);
        let restart = match policy {
            Policy::No => false,
            // A manual stop holds `always` back through `cancel`, not here (moby).
            Policy::Always => true,
            Policy::UnlessStopped => !manually_stopped,
            Policy::OnFailure(max) | Policy::OnUnhealthy(max) => {
                exit_code != 0 && (max == 0 || restart_count < max)
            }
        };
        restart.then_some(self.timeout)
    }

    pub fn cancel(&mut self) {
        self.canceled = true;
        self.generation += 1;
    }

    /// A manual start: a fresh manager.
    pub fn reset(&mut self) {
        self.timeout = Duration::ZERO;
        self.canceled = false;
        self.generation += 1;
    }
}

/// Whether a stopped container starts when the daemon starts (Docker's restore rule: the
/// restart manager is new, so a manual stop only holds `unless-stopped` back).
pub fn starts_with_daemon(rec: &Record) -> bool {
    if rec.state.started_at == super::ZERO_TIME {
        return false;
    }
    match Policy::of(rec) {
        Policy::No => false,
        Policy::Always => true,
        Policy::UnlessStopped => !rec.manually_stopped,
        Policy::OnFailure(max) | Policy::OnUnhealthy(max) => {
            rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
        }
    }
}

fn ran_for(rec: &Record) -> Duration {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(&rec.state.started_at), parse(&rec.state.finished_at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

impl Containers {
    /// Called by the exit handler with the record already marked exited: decides whether
    /// the policy restarts the container; if so marks it `restarting`, bumps
    /// `RestartCount` and schedules the start. Returns whether it will restart.
    pub(crate) fn schedule_restart(self: &Arc<Self>, c: &Arc<Ctr>) -> bool {
        let rec = c.snapshot();
        let policy = Policy::of(&rec);
        let (delay, generation) = {
            let mut m = c.restart.lock().expect("restart lock");
            let d = m.should_restart(
                policy,
                rec.state.exit_code,
                rec.manually_stopped,
                ran_for(&rec),
                rec.restart_count,
            );
            (d, m.generation)
        };
        let Some(delay) = delay else { return false };
        self.update(c, |r| {
            r.state.status = Status::Restarting;
            r.restart_count += 1;
        });
        self.spawn_restart(c.clone(), delay, generation);
        true
    }

    fn spawn_restart(self: &Arc<Self>, c: Arc<Ctr>, delay: Duration, generation: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = this.start_restarting(&c, generation).await {
                tracing::warn!(id = %c.id, error = %e.message, "restarting the container");
                this.update(&c, |r| {
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                        r.state.error = e.message.clone();
                    }
                });
            }
        });
    }

    /// Stops a pending restart (manual stop/kill/rm of a `restarting` container): the
    /// container is left exited. Returns whether it was restarting.
    pub(crate) fn cancel_restart(&self, c: &Ctr) -> bool {
        c.restart.lock().expect("restart lock").cancel();
        let was = self.update(c, |r| {
            let was = r.state.status == Status::Restarting;
            if was {
                r.state.status = Status::Exited;
                r.manually_stopped = true;
            }
            was
        });
        if was {
            // Waiters of a stop see the exit they were waiting for.
            c.exits.send_modify(|ev| ev.seq += 1);
        }
        was
    }

    /// After a live restore: restarts that were pending when the daemon went down, and
    /// stopped containers whose policy starts them with the daemon.
    pub(crate) fn start_policy_containers(self: &Arc<Self>, loaded: &[Arc<Ctr>]) {
        for c in loaded {
            let rec = c.snapshot();
            if rec.state.status == Status::Restarting {
                // A policy restart: it keeps its count.
                let generation = c.restart.lock().expect("restart lock").generation;
                self.spawn_restart(c.clone(), Duration::ZERO, generation);
                continue;
            }
            if rec.state.status != Status::Exited || !starts_with_daemon(&rec) {
                continue;
            }
            // As dockerd's restore: a fresh start (RestartCount back to 0).
            let this = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tracing::info!(id = %c.id, "starting the container per its restart policy");
                if let Err(e) = this.start_container(&c.id).await {
                    tracing::warn!(id = %c.id, error = %e.message, "restart policy start failed");
                }
            });
        }
    }

    /// `on-unhealthy`: the health monitor saw the container turn unhealthy.
    pub(crate) fn restart_unhealthy(self: &Arc<Self>, c: &Arc<Ctr>) {
        let rec = c.snapshot();
        let Policy::OnUnhealthy(max) = Policy::of(&rec) else {
            return;
        };
        if max > 0 && rec.restart_count >= max {
            return;
        }
        let this = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let _op = c.op.lock().await;
            if c.status() != Status::Running {
                return;
            }
            tracing::info!(id = %c.id, "restarting an unhealthy container");
            // Stopped by its policy, not by a user: the exit handler must not restart it
            // too, and the next start keeps the count.
            c.restart.lock().expect("restart lock").cancel();
            let res = this.stop_locked(&c, None, None).await;
            this.update(&c, |r| r.manually_stopped = false);
            if let Err(e) = res {
                tracing::warn!(id = %c.id, error = %e.message, "stopping an unhealthy container");
                return;
            }
            let mut rx = c.exits.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                rx.wait_for(|_| !c.status().is_running()),
            )
            .await;
            this.update(&c, |r| {
                r.restart_count += 1;
                r.state.status = Status::Restarting;
            });
            let generation = {
                let mut m = c.restart.lock().expect("restart lock");
                m.canceled = false;
                m.generation += 1;
                m.generation
            };
            drop(_op);
            if let Err(e) = this.start_restarting(&c, generation).await {
                tracing::warn!(id = %c.id, error = %e.message, "restarting an unhealthy container");
                this.update(&c, |r| {
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
            }
        });
    }

    /// Starts a `restarting` container (a policy restart: `RestartCount` is kept), unless
    /// the restart was canceled meanwhile.
    async fn start_restarting(
        self: &Arc<Self>,
        c: &Arc<Ctr>,
        generation: u64,
    ) -> Result<(), ApiError> {
        let _op = c.op.lock().await;
        {
            let m = c.restart.lock().expect("restart lock");
            if m.canceled || m.generation != generation {
                return Ok(());
            }
        }
        if c.status() != Status::Restarting {
            return Ok(());
        }
        self.start_locked(c, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut m = Manager::default();
        let short = Duration::from_secs(1);
        let mut seen = vec![];
        for i in 0..12 {
            seen.push(
                m.should_restart(Policy::Always, 1, false, short, i)
                    .unwrap(),
            );
        }
        assert_eq!(seen[0], Duration::from_millis(100));
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(seen[2], Duration::from_millis(400));
        assert_eq!(seen[9], Duration::from_millis(51_200));
        assert_eq!(seen[10], Duration::from_secs(60));
        assert_eq!(seen[11], Duration::from_secs(60));
        // Up for 10 s: back to 100 ms.
        assert_eq!(
            m.should_restart(Policy::Always, 1, false, Duration::from_secs(10), 0),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn policies() {
        let s = Duration::ZERO;
        let mut m = Manager::default();
        assert_eq!(m.should_restart(Policy::No, 1, false, s, 0), None);
        assert!(m.should_restart(Policy::Always, 0, false, s, 0).is_some());
        assert!(m
            .should_restart(Policy::UnlessStopped, 0, false, s, 0)
            .is_some());
        assert_eq!(m.should_restart(Policy::UnlessStopped, 0, true, s, 0), None);
        assert_eq!(m.should_restart(Policy::OnFailure(0), 0, false, s, 0), None);
        assert!(m
            .should_restart(Policy::OnFailure(0), 3, false, s, 50)
            .is_some());
        assert!(m
            .should_restart(Policy::OnFailure(2), 3, false, s, 1)
            .is_some());
        assert_eq!(m.should_restart(Policy::OnFailure(2), 3, false, s, 2), None);
        m.cancel();
        assert_eq!(m.should_restart(Policy::Always, 1, false, s, 0), None);
        m.reset();
        assert!(m.should_restart(Policy::Always, 1, false, s, 0).is_some());
    }

    #[test]
    fn parses_and_validates() {
        assert_eq!(parse("always").unwrap(), Policy::Always);
        assert_eq!(parse("on-failure:3").unwrap(), Policy::OnFailure(3));
        assert_eq!(parse("on-unhealthy").unwrap(), Policy::OnUnhealthy(0));
        assert!(parse("always:3").is_err());
        assert!(parse("on-failure:x").is_err());
        assert!(parse("on-failure:-1").is_err());
        assert!(parse("sometimes").is_err());
    }
}
