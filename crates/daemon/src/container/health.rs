//! Health checks (moby `daemon/health.go`): the container's `Healthcheck` (from the image,
//! `--health-*` or `--no-healthcheck`) runs as an exec in the container through the shim,
//! every interval, with a timeout; results go to `State.Health` {Status, FailingStreak,
//! Log (last 5)}, a change of status is a `health_status: <status>` event, and `ps` shows
//! `(healthy)`, `(unhealthy)` or `(health: starting)`.
//!
//! The state is persisted with the record, so a daemon restart keeps it: a live container's
//! monitor resumes where it was (Docker resets it to `starting`).
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::HealthConfig;
use berth_runtime::protocol::ExecProcess;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{now_rfc3339, Containers, Ctr, Record, Status};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT_LEN: usize = 4096;
/// Docker's minimum for intervals, timeouts and start periods.
const MIN_DURATION_NS: i64 = 1_000_000;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// `State.Health` as Docker's JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthState {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: i64,
    #[serde(rename = "Log", default)]
    pub log: Vec<ProbeResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "Output")]
    pub output: String,
}

impl HealthState {
    /// The suffix `ps` shows after "Up …" (moby `Health.String`).
    pub fn ps_suffix(&self) -> String {
        if self.status == STARTING {
            "health: starting".into()
        } else {
            self.status.clone()
        }
    }

    /// moby `handleProbeResult`: log it, update the streak and the status. Returns the
    /// status before.
    pub fn record(&mut self, result: ProbeResult, retries: i64, in_start_period: bool) -> String {
        let old = self.status.clone();
        self.log.push(result.clone());
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        old
    }
}

/// The status `--filter health=` matches: `none` without a health state.
fn filter_status(rec: &Record) -> &str {
    rec.health
        .as_ref()
        .map(|h| h.status.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("none")
}

pub fn filter_matches(rec: &Record, want: &str) -> bool {
    filter_status(rec) == want
}

pub fn validate_filter(vals: &[String]) -> Result<(), berth_api::ApiError> {
    for v in vals {
        if ![STARTING, HEALTHY, UNHEALTHY, "none"].contains(&v.as_str()) {
            return Err(berth_api::ApiError::invalid(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
    }
    Ok(())
}

/// `State.Health` for inspect (None until a health-checked container first started).
pub fn inspect_health(rec: &Record) -> Option<berth_api::models::Health> {
    let h = rec.health.as_ref()?;
    // Through JSON: the model's timestamp type depends on bollard-stubs' features.
    serde_json::to_value(h)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// A running monitor; dropping it stops the loop.
pub struct Monitor {
    task: tokio::task::AbortHandle,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The probe: `CMD args…` or `CMD-SHELL cmd` (`/bin/sh -c`); None when disabled or unset.
pub fn probe_args(hc: Option<&HealthConfig>) -> Option<Vec<String>> {
    let test = hc?.test.as_ref()?;
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        Some("CMD-SHELL") if test.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")])
        }
        _ => None,
    }
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// Docker's create-time checks of a healthcheck.
pub fn validate(hc: Option<&HealthConfig>) -> Result<(), berth_api::ApiError> {
    let Some(hc) = hc else { return Ok(()) };
    let check = |v: Option<i64>, what: &str| {
        let v = v.unwrap_or(0);
        if v != 0 && v < MIN_DURATION_NS {
            Err(berth_api::ApiError::invalid(format!(
                "{what} in Healthcheck cannot be less than 1ms"
            )))
        } else {
            Ok(())
        }
    };
    check(hc.interval, "Interval")?;
    check(hc.timeout, "Timeout")?;
    check(hc.start_period, "StartPeriod")?;
    check(hc.start_interval, "StartInterval")?;
    if hc.retries.unwrap_or(0) < 0 {
        return Err(berth_api::ApiError::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    Ok(())
}

/// moby's config merge: the image's healthcheck unless the request sets one; fields the
/// request leaves at zero are inherited from the image.
pub fn merge(
    user: Option<HealthConfig>,
    image: Option<&serde_json::Value>,
) -> Option<HealthConfig> {
    let image: Option<HealthConfig> = image
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let Some(image) = image else { return user };
    let Some(mut user) = user else {
        return Some(image);
    };
    if user.test.as_ref().is_none_or(|t| t.is_empty()) {
        user.test = image.test.clone();
    }
    let inherit = |u: &mut Option<i64>, i: Option<i64>| {
        if u.unwrap_or(0) == 0 {
            *u = i;
        }
    };
    inherit(&mut user.interval, image.interval);
    inherit(&mut user.timeout, image.timeout);
    inherit(&mut user.start_period, image.start_period);
    inherit(&mut user.start_interval, image.start_interval);
    inherit(&mut user.retries, image.retries);
    Some(user)
}

fn in_start_period(rec: &Record, hc: &HealthConfig, at: chrono::DateTime<chrono::Utc>) -> bool {
    let period = dur(hc.start_period, Duration::ZERO);
    chrono::DateTime::parse_from_rfc3339(&rec.state.started_at)
        .ok()
        .and_then(|s| (at - s.with_timezone(&chrono::Utc)).to_std().ok())
        .is_some_and(|since| since < period)
}

/// Docker's multiplexed frames → the payloads, up to `MAX_OUTPUT_LEN` bytes kept.
fn demux(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    while buf.len() - used >= 8 {
        let len = u32::from_be_bytes([buf[used + 4], buf[used + 5], buf[used + 6], buf[used + 7]])
            as usize;
        if buf.len() - used - 8 < len {
            break;
        }
        let payload = &buf[used + 8..used + 8 + len];
        let room = MAX_OUTPUT_LEN.saturating_sub(out.len());
        out.extend_from_slice(&payload[..payload.len().min(room)]);
        used += 8 + len;
    }
    used
}

impl Containers {
    /// At start: status `starting`, streak 0 (the log is kept), and the monitor.
    pub(crate) fn start_health(self: &Arc<Self>, c: &Arc<Ctr>) {
        let rec = c.snapshot();
        if probe_args(rec.config.healthcheck.as_ref()).is_none() {
            *c.health.lock().expect("health lock") = None;
            return;
        }
        self.update(c, |r| {
            let h = r.health.get_or_insert_with(HealthState::default);
            h.status = STARTING.into();
            h.failing_streak = 0;
        });
        self.spawn_health(c);
    }

    /// After a live restore: the monitor goes on with the persisted state.
    pub(crate) fn resume_health(self: &Arc<Self>, c: &Arc<Ctr>) {
        let rec = c.snapshot();
        if probe_args(rec.config.healthcheck.as_ref()).is_none() {
            return;
        }
        if rec.health.is_none() {
            self.update(c, |r| {
                r.health = Some(HealthState {
                    status: STARTING.into(),
                    ..Default::default()
                })
            });
        }
        self.spawn_health(c);
    }

    /// At exit: the monitor stops; dockerd shows a stopped container `unhealthy` (the
    /// streak as it was).
    pub(crate) fn stop_health(&self, c: &Ctr) {
        *c.health.lock().expect("health lock") = None;
        if c.snapshot().health.is_some() {
            self.update(c, |r| {
                if let Some(h) = r.health.as_mut() {
                    h.status = UNHEALTHY.into();
                }
            });
        }
    }

    fn spawn_health(self: &Arc<Self>, c: &Arc<Ctr>) {
        let this = self.clone();
        let ctr = c.clone();
        let task = tokio::spawn(async move { this.health_loop(ctr).await });
        *c.health.lock().expect("health lock") = Some(Monitor {
            task: task.abort_handle(),
        });
    }

    async fn health_loop(self: Arc<Self>, c: Arc<Ctr>) {
        loop {
            let rec = c.snapshot();
            let Some(hc) = rec.config.healthcheck.clone() else {
                return;
            };
            let starting = rec.health.as_ref().is_some_and(|h| h.status == STARTING);
            let wait = if starting
                && hc.start_interval.unwrap_or(0) > 0
                && in_start_period(&rec, &hc, chrono::Utc::now())
            {
                dur(hc.start_interval, DEFAULT_START_INTERVAL)
            } else {
                dur(hc.interval, DEFAULT_INTERVAL)
            };
            tokio::time::sleep(wait).await;
            match c.status() {
                Status::Running => {}
                Status::Paused => continue,
                _ => return,
            }
            let Some(args) = probe_args(Some(&hc)) else {
                return;
            };
            let timeout = dur(hc.timeout, DEFAULT_TIMEOUT);
            let result = self.probe(&c, args, timeout).await;
            let rec = c.snapshot();
            if rec.state.status != Status::Running {
                return;
            }
            let retries = match hc.retries.unwrap_or(0) {
                r if r <= 0 => DEFAULT_RETRIES,
                r => r,
            };
            let start = chrono::DateTime::parse_from_rfc3339(&result.start)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|_| chrono::Utc::now());
            let in_start = in_start_period(&rec, &hc, start);
            let (old, new) = self.update(&c, |r| {
                let h = r.health.get_or_insert_with(HealthState::default);
                let old = h.record(result, retries, in_start);
                (old, h.status.clone())
            });
            if old != new {
                self.emit(&c, &format!("health_status: {new}"), &[]);
                if new == UNHEALTHY {
                    self.restart_unhealthy(&c);
                }
            }
        }
    }

    /// Runs one probe as an exec (with Docker's exec events) and returns its result.
    async fn probe(&self, c: &Ctr, args: Vec<String>, limit: Duration) -> ProbeResult {
        let start = now_rfc3339();
        let fail = |code: i64, output: String| ProbeResult {
            start: start.clone(),
            end: now_rfc3339(),
            exit_code: code,
            output,
        };
        let rec = c.snapshot();
        let rootfs = self.paths.bundle(&rec.id).join("rootfs");
        let user = match crate::user::resolve(
            &rootfs,
            rec.config.user.as_deref().unwrap_or(""),
            rec.host_config.group_add.as_deref().unwrap_or(&[]),
        ) {
            Ok(u) => u,
            Err(e) => return fail(-1, e.to_string()),
        };
        let env = super::process_env(
            rec.config.env.as_deref().unwrap_or(&[]),
            &[],
            rec.config.hostname.as_deref().unwrap_or(""),
            false,
            &user.home,
        );
        let cwd = rec
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let process = ExecProcess {
            args: args.clone(),
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            tty: false,
            stdin: false,
            console_size: None,
        };
        let bytes: [u8; 32] = rand::random();
        let exec_id = super::hex_id(&bytes);
        let cmdline = args.join(" ");
        self.emit(
            c,
            &format!("exec_create: {cmdline}"),
            &[("execID", exec_id.clone())],
        );
        let shim = self.shim(&c.id);
        let started = tokio::time::Instant::now();
        let (pid, mut stream) =
            match tokio::time::timeout(limit, shim.exec(&exec_id, process)).await {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    let msg = format!("OCI runtime exec failed: {e}");
                    let code = super::process_failure_code(&msg).unwrap_or(126);
                    return fail(code, msg);
                }
                Err(_) => {
                    return fail(
                        -1,
                        format!("Health check exceeded timeout ({})", go_duration(limit)),
                    )
                }
            };
        let timeout = limit.saturating_sub(started.elapsed());
        self.emit(
            c,
            &format!("exec_start: {cmdline}"),
            &[("execID", exec_id.clone())],
        );
        let read_all = async {
            let mut raw = Vec::new();
            let mut out = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        raw.extend_from_slice(&buf[..n]);
                        let used = demux(&raw, &mut out);
                        raw.drain(..used);
                    }
                }
            }
            out
        };
        let output = match tokio::time::timeout(timeout, read_all).await {
            Ok(out) => out,
            Err(_) => {
                kill_exec(pid, &c.id);
                let res = fail(
                    -1,
                    format!("Health check exceeded timeout ({})", go_duration(limit)),
                );
                self.emit(
                    c,
                    "exec_die",
                    &[("execID", exec_id.clone()), ("exitCode", "137".into())],
                );
                return res;
            }
        };
        // The stream ends when the process exited; its status follows shortly.
        let mut code = None;
        for _ in 0..100 {
            match shim.exec_state(&exec_id).await {
                Ok(st) if st.exit.is_some() => {
                    code = st.exit.map(|e| e.code as i64);
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(_) => break,
            }
        }
        let code = code.unwrap_or(-1);
        self.emit(
            c,
            "exec_die",
            &[("execID", exec_id), ("exitCode", code.to_string())],
        );
        ProbeResult {
            start,
            end: now_rfc3339(),
            exit_code: code,
            output: String::from_utf8_lossy(&output).into_owned(),
        }
    }
}

/// SIGKILLs a probe that hung, if the PID is still a process of this container.
fn kill_exec(pid: u32, id: &str) {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    if cg.contains(id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Go's `time.Duration.String()` for whole seconds and milliseconds (`30s`, `1.5s`, `500ms`).
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return format!("{}s", trim(secs));
    }
    let m = d.as_secs() / 60;
    let s = secs - (m * 60) as f64;
    if m < 60 {
        return format!("{m}m{}s", trim(s));
    }
    format!("{}h{}m{}s", m / 60, m % 60, trim(s))
}

fn trim(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i64) -> ProbeResult {
        ProbeResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn streaks_and_statuses() {
        let mut h = HealthState {
            status: STARTING.into(),
            ..Default::default()
        };
        // Failures inside the start period do not count while starting.
        h.record(res(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        h.record(res(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        assert_eq!(h.record(res(1), 2, false), STARTING);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        h.record(res(0), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        for _ in 0..10 {
            h.record(res(0), 2, false);
        }
        assert_eq!(h.log.len(), 5);
        // Healthy: a failure inside the start period counts.
        h.record(res(1), 3, true);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
    }

    #[test]
    fn probes() {
        let hc = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            probe_args(Some(&hc(&["CMD-SHELL", "true"]))).unwrap(),
            vec!["/bin/sh", "-c", "true"]
        );
        assert_eq!(
            probe_args(Some(&hc(&["CMD", "ls", "/"]))).unwrap(),
            vec!["ls", "/"]
        );
        assert!(probe_args(Some(&hc(&["NONE"]))).is_none());
        assert!(probe_args(None).is_none());
    }

    #[test]
    fn merges_with_the_image() {
        let image = serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 4});
        let m = merge(None, Some(&image)).unwrap();
        assert_eq!(m.retries, Some(4));
        let user = HealthConfig {
            interval: Some(1_000_000_000),
            ..Default::default()
        };
        let m = merge(Some(user), Some(&image)).unwrap();
        assert_eq!(m.test.unwrap(), vec!["CMD-SHELL", "true"]);
        assert_eq!(m.interval, Some(1_000_000_000));
        assert_eq!(m.retries, Some(4));
        let none = HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        assert!(probe_args(merge(Some(none), Some(&image)).as_ref()).is_none());
    }

    #[test]
    fn demuxes_and_caps_output() {
        let mut buf = vec![1, 0, 0, 0, 0, 0, 0, 2, b'h', b'i', 2, 0, 0, 0, 0, 0, 0, 1];
        let mut out = Vec::new();
        let used = demux(&buf, &mut out);
        assert_eq!((used, out.as_slice()), (10, &b"hi"[..]));
        buf.push(b'!');
        let used = demux(&buf[10..], &mut out);
        assert_eq!((used, out.as_slice()), (9, &b"hi!"[..]));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }
}
