//! `POST /containers/{id}/update` (`docker update`): resources and the restart policy of a
//! container, running or not. A running container's cgroup is written at once (v1 or v2);
//! the new values are persisted in its HostConfig. moby's rules: a zero field keeps the
//! current value, NanoCPUs and CPU period/quota exclude each other, the restart policy of
//! an auto-remove container cannot change.
//!
//! One deliberate difference: dockerd 20.10 refuses `--memory` without `--memory-swap` on a
//! container that has no memory limit yet ("Memory limit should be smaller than already
//! set memoryswap limit"); berth accepts it and leaves swap as it was (unlimited).
use std::path::Path;
use std::sync::Arc;

use berth_api::models::{
    ContainerUpdateBody, ContainerUpdateResponse, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use berth_api::ApiError;

use super::restart::{validate_name, Policy, POLICY_LABEL};
use super::{Containers, Record, Status};

const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// What an update changes, computed before anything is written.
#[derive(Debug)]
struct Plan {
    host: HostConfig,
    /// `Some(Some(v))`: set berth's policy label; `Some(None)`: remove it.
    label: Option<Option<String>>,
}

fn cannot(id: &str, msg: &str) -> ApiError {
    ApiError::invalid(format!("Cannot update container {id}: {msg}"))
}

/// The effective memory+swap limit (berth stores 0 for "twice the memory", as the spec
/// applies it).
fn effective_swap(h: &HostConfig) -> i64 {
    match (h.memory.unwrap_or(0), h.memory_swap.unwrap_or(0)) {
        (m, 0) if m > 0 => 2 * m,
        (_, s) => s,
    }
}

fn plan(
    rec: &Record,
    u: &ContainerUpdateBody,
    restart: Option<&(String, i64)>,
) -> Result<Plan, ApiError> {
    let id = &rec.id;
    if let Some(m) = u.memory.filter(|m| *m != 0) {
        if m < MIN_MEMORY {
            return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    let policy = match restart.filter(|(n, _)| !n.is_empty()) {
        Some((name, max)) => Some((name.clone(), *max, validate_name(name, *max)?)),
        None => None,
    };
    let cur = &rec.host_config;
    let mut h = cur.clone();
    let nano = u.nano_cpus.unwrap_or(0);
    let period = u.cpu_period.unwrap_or(0);
    let quota = u.cpu_quota.unwrap_or(0);
    if nano > 0 && cur.cpu_period.unwrap_or(0) > 0 {
        return Err(cannot(
            id,
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if nano > 0 && cur.cpu_quota.unwrap_or(0) > 0 {
        return Err(cannot(
            id,
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        ));
    }
    if period > 0 && cur.nano_cpus.unwrap_or(0) > 0 {
        return Err(cannot(
            id,
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        ));
    }
    if quota > 0 && cur.nano_cpus.unwrap_or(0) > 0 {
        return Err(cannot(
            id,
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    if nano < 0 {
        return Err(ApiError::invalid(
            "Range of CPUs is from 0.01 to the number of CPUs available",
        ));
    }
    if nano > 0 {
        let max = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        if nano > max * 1_000_000_000 {
            return Err(ApiError::invalid(format!(
                "Range of CPUs is from 0.01 to {max}.00, as there are only {max} CPUs available"
            )));
        }
        h.nano_cpus = Some(nano);
    }
    if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
        h.blkio_weight = Some(w);
    }
    if let Some(s) = u.cpu_shares.filter(|s| *s != 0) {
        h.cpu_shares = Some(s);
    }
    if period != 0 {
        h.cpu_period = Some(period);
    }
    if quota != 0 {
        h.cpu_quota = Some(quota);
    }
    if let Some(c) = u.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        validate_cpuset(&c)?;
        h.cpuset_cpus = Some(c);
    }
    if let Some(c) = u.cpuset_mems.clone().filter(|c| !c.is_empty()) {
        validate_cpuset(&c)?;
        h.cpuset_mems = Some(c);
    }
    let swap = u.memory_swap.unwrap_or(0);
    if let Some(m) = u.memory.filter(|m| *m != 0) {
        let cur_swap = effective_swap(cur);
        if cur_swap > 0 && m > cur_swap && swap == 0 {
            return Err(cannot(id, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        if cur.memory.unwrap_or(0) > 0 && cur.memory_swap.unwrap_or(0) == 0 && swap == 0 {
            // Keep "twice the old memory" explicit: it is what the cgroup holds.
            h.memory_swap = Some(cur_swap);
        }
        h.memory = Some(m);
    }
    if swap != 0 {
        h.memory_swap = Some(swap);
    }
    let (m, s) = (h.memory.unwrap_or(0), h.memory_swap.unwrap_or(0));
    if s > 0 && m > 0 && s < m {
        return Err(ApiError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if s > 0 && m == 0 {
        return Err(ApiError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if let Some(r) = u.memory_reservation.filter(|r| *r != 0) {
        h.memory_reservation = Some(r);
    }
    if let Some(p) = u.pids_limit {
        h.pids_limit = Some(if p <= 0 { 0 } else { p });
    }
    let mut label = None;
    if let Some((name, max, p)) = policy {
        if h.auto_remove.unwrap_or(false) && p != Policy::No {
            return Err(cannot(
                id,
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        match p {
            Policy::OnUnhealthy(_) => {
                h.restart_policy = Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: Some(0),
                });
                label = Some(Some(if max != 0 {
                    format!("{name}:{max}")
                } else {
                    name.clone()
                }));
            }
            _ => {
                let name = match p {
                    Policy::Always => RestartPolicyNameEnum::ALWAYS,
                    Policy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                    Policy::OnFailure(_) => RestartPolicyNameEnum::ON_FAILURE,
                    _ => RestartPolicyNameEnum::NO,
                };
                h.restart_policy = Some(RestartPolicy {
                    name: Some(name),
                    maximum_retry_count: Some(max),
                });
                if rec
                    .config
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(POLICY_LABEL))
                {
                    label = Some(None);
                }
            }
        }
    }
    Ok(Plan { host: h, label })
}

/// `0-3`, `0,2`, `1`.
fn validate_cpuset(s: &str) -> Result<(), ApiError> {
    let ok = s.split(',').all(|part| {
        let mut it = part.splitn(2, '-');
        let a = it.next().and_then(|a| a.parse::<u32>().ok());
        match (a, it.next()) {
            (Some(_), None) => true,
            (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid value {s} for cpuset cpus"
        )))
    }
}

/// A cgroup file write: (controller, file, value).
type Write = (&'static str, &'static str, String);

/// The cgroup files to write for the fields this update changes (v1 or v2 names).
fn writes(old: &HostConfig, new: &HostConfig, v2: bool) -> Vec<Write> {
    let mut w: Vec<Write> = Vec::new();
    let changed = |a: Option<i64>, b: Option<i64>| a.unwrap_or(0) != b.unwrap_or(0);
    let mem = new.memory.unwrap_or(0);
    let swap = effective_swap(new);
    if changed(old.memory, new.memory) || effective_swap(old) != swap {
        if v2 {
            w.push((
                "memory",
                "memory.max",
                if mem > 0 {
                    mem.to_string()
                } else {
                    "max".into()
                },
            ));
            let s = if swap > 0 && mem > 0 {
                (swap - mem).to_string()
            } else {
                "max".into()
            };
            w.push(("memory", "memory.swap.max", s));
        } else {
            let limit = if mem > 0 {
                mem.to_string()
            } else {
                "-1".into()
            };
            let memsw = if swap > 0 {
                swap.to_string()
            } else {
                "-1".into()
            };
            // The kernel keeps memsw >= the limit at every step: `apply` swaps the two
            // when the limit cannot go first.
            w.push(("memory", "memory.limit_in_bytes", limit));
            if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
                w.push(("memory", "memory.memsw.limit_in_bytes", memsw));
            }
        }
    }
    if changed(old.memory_reservation, new.memory_reservation) {
        let r = new.memory_reservation.unwrap_or(0).to_string();
        w.push(if v2 {
            ("memory", "memory.low", r)
        } else {
            ("memory", "memory.soft_limit_in_bytes", r)
        });
    }
    if changed(old.nano_cpus, new.nano_cpus)
        || changed(old.cpu_quota, new.cpu_quota)
        || changed(old.cpu_period, new.cpu_period)
    {
        let (quota, period) = match new.nano_cpus.unwrap_or(0) {
            n if n > 0 => (n * 100_000 / 1_000_000_000, 100_000),
            _ => (
                new.cpu_quota.filter(|q| *q > 0).unwrap_or(-1),
                new.cpu_period.filter(|p| *p > 0).unwrap_or(100_000),
            ),
        };
        if v2 {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            w.push(("cpu", "cpu.max", format!("{q} {period}")));
        } else {
            w.push(("cpu", "cpu.cfs_period_us", period.to_string()));
            w.push(("cpu", "cpu.cfs_quota_us", quota.to_string()));
        }
    }
    if changed(old.cpu_shares, new.cpu_shares) {
        let shares = new.cpu_shares.unwrap_or(1024).max(2) as u64;
        if v2 {
            // runc's conversion of shares [2, 262144] to weight [1, 10000].
            let weight = 1 + ((shares.min(262_144) - 2) * 9999) / 262_142;
            w.push(("cpu", "cpu.weight", weight.to_string()));
        } else {
            w.push(("cpu", "cpu.shares", shares.to_string()));
        }
    }
    if old.cpuset_cpus != new.cpuset_cpus {
        if let Some(c) = &new.cpuset_cpus {
            w.push(("cpuset", "cpuset.cpus", c.clone()));
        }
    }
    if old.cpuset_mems != new.cpuset_mems {
        if let Some(c) = &new.cpuset_mems {
            w.push(("cpuset", "cpuset.mems", c.clone()));
        }
    }
    if changed(old.pids_limit, new.pids_limit) {
        let p = match new.pids_limit.unwrap_or(0) {
            p if p > 0 => p.to_string(),
            _ => "max".into(),
        };
        w.push(("pids", "pids.max", p));
    }
    if old.blkio_weight != new.blkio_weight {
        if let Some(b) = new.blkio_weight {
            w.push(if v2 {
                ("io", "io.weight", format!("default {b}"))
            } else {
                ("blkio", "blkio.weight", b.to_string())
            });
        }
    }
    w
}

fn apply(rec: &Record, writes: &[Write]) -> Result<(), String> {
    let write = |(ctrl, file, value): &Write| -> Result<(), (std::io::Error, String)> {
        let p = super::control::cgroup_dir(rec, ctrl).join(file);
        std::fs::write(&p, value).map_err(|e| {
            let msg = format!("failed to write {value:?} to {}: {e}", p.display());
            (e, msg)
        })
    };
    let mut i = 0;
    while i < writes.len() {
        let w = &writes[i];
        if w.0 == "blkio" && !super::control::cgroup_dir(rec, "blkio").join(w.1).exists() {
            // blkio.weight exists only with the CFQ/BFQ scheduler.
            i += 1;
            continue;
        }
        match write(w) {
            Ok(()) => i += 1,
            // Raising the limit above memsw: memsw goes first.
            Err((e, _))
                if w.1 == "memory.limit_in_bytes"
                    && e.raw_os_error() == Some(libc::EINVAL)
                    && writes
                        .get(i + 1)
                        .is_some_and(|n| n.1 == "memory.memsw.limit_in_bytes") =>
            {
                write(&writes[i + 1]).map_err(|(_, m)| m)?;
                write(w).map_err(|(_, m)| m)?;
                i += 2;
            }
            Err((_, m)) => return Err(m),
        }
    }
    Ok(())
}

impl Containers {
    pub async fn update_container(
        self: &Arc<Self>,
        key: &str,
        body: ContainerUpdateBody,
        restart: Option<(String, i64)>,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if matches!(rec.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "Cannot update container {}: container is marked for removal and cannot be \"update\"",
                rec.id
            )));
        }
        let plan = plan(&rec, &body, restart.as_ref())?;
        if rec.state.status.is_running() && rec.state.status != Status::Restarting {
            let v2 = berth_runtime::cgroup_unified();
            let forward = writes(&rec.host_config, &plan.host, v2);
            let r2 = rec.clone();
            let res = tokio::task::spawn_blocking(move || apply(&r2, &forward))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Err(e) = res {
                // Put back what was written (the old values, in the reverse order).
                let back = writes(&plan.host, &rec.host_config, v2);
                let r2 = rec.clone();
                let _ = tokio::task::spawn_blocking(move || apply(&r2, &back)).await;
                return Err(ApiError::invalid(format!(
                    "Cannot update container {}: {e}",
                    rec.id
                )));
            }
        }
        self.update(&c, |r| {
            r.host_config = plan.host;
            match plan.label {
                Some(Some(v)) => {
                    r.config
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert(POLICY_LABEL.to_owned(), v);
                }
                Some(None) => {
                    if let Some(l) = r.config.labels.as_mut() {
                        l.remove(POLICY_LABEL);
                    }
                }
                None => {}
            }
        });
        self.emit(&c, "update", &[]);
        Ok(ContainerUpdateResponse {
            warnings: Some(vec![]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    #[test]
    fn v1_memory_writes() {
        let old = HostConfig {
            memory: Some(100 << 20),
            ..hc()
        };
        let grow = HostConfig {
            memory: Some(300 << 20),
            memory_swap: Some(600 << 20),
            ..hc()
        };
        let w = writes(&old, &grow, false);
        assert_eq!(
            w[0],
            (
                "memory",
                "memory.limit_in_bytes",
                (300u64 << 20).to_string()
            )
        );
        if w.len() > 1 {
            assert_eq!(
                w[1],
                (
                    "memory",
                    "memory.memsw.limit_in_bytes",
                    (600u64 << 20).to_string()
                )
            );
        }
        let w = writes(&grow, &old, false);
        if w.len() > 1 {
            assert_eq!(w[1].2, (200u64 << 20).to_string());
        }
    }

    #[test]
    fn v2_writes() {
        let new = HostConfig {
            memory: Some(100 << 20),
            memory_swap: Some(300 << 20),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(1024),
            pids_limit: Some(50),
            cpuset_cpus: Some("0".into()),
            ..hc()
        };
        let w = writes(&hc(), &new, true);
        let get = |f: &str| w.iter().find(|x| x.1 == f).map(|x| x.2.clone());
        assert_eq!(get("memory.max").unwrap(), (100u64 << 20).to_string());
        assert_eq!(get("memory.swap.max").unwrap(), (200u64 << 20).to_string());
        assert_eq!(get("cpu.max").unwrap(), "50000 100000");
        assert_eq!(get("cpu.weight").unwrap(), "39");
        assert_eq!(get("pids.max").unwrap(), "50");
        assert_eq!(get("cpuset.cpus").unwrap(), "0");
        let w = writes(
            &new,
            &HostConfig {
                pids_limit: Some(0),
                ..new.clone()
            },
            true,
        );
        assert_eq!(w, vec![("pids", "pids.max", "max".to_string())]);
    }

    fn record(host: HostConfig) -> Record {
        let mut r: Record = serde_json::from_str(
            r#"{"id":"c1","name":"x","created":"","image":"","image_id":"","path":"","args":[],"config":{},"host_config":{},"state":{"status":"running","pid":1,"exit_code":0,"error":"","oom_killed":false,"started_at":"","finished_at":""},"restart_count":0}"#,
        )
        .unwrap();
        r.host_config = host;
        r
    }

    #[test]
    fn moby_update_rules() {
        let body = |f: fn(&mut ContainerUpdateBody)| {
            let mut b = ContainerUpdateBody::default();
            f(&mut b);
            b
        };
        // Zero keeps a value; a value replaces it.
        let r = record(HostConfig {
            memory: Some(100 << 20),
            cpu_shares: Some(512),
            ..hc()
        });
        let p = plan(&r, &body(|b| b.pids_limit = Some(-1)), None).unwrap();
        assert_eq!(p.host.memory, Some(100 << 20));
        assert_eq!(p.host.cpu_shares, Some(512));
        assert_eq!(p.host.pids_limit, Some(0));
        // Memory above the (implicit, twice the memory) memory+swap needs a new swap.
        let e = plan(&r, &body(|b| b.memory = Some(300 << 20)), None).unwrap_err();
        assert!(
            e.message.contains("Memory limit should be smaller"),
            "{}",
            e.message
        );
        let p = plan(
            &r,
            &body(|b| {
                b.memory = Some(300 << 20);
                b.memory_swap = Some(600 << 20)
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            (p.host.memory, p.host.memory_swap),
            (Some(300 << 20), Some(600 << 20))
        );
        // NanoCPUs and CPU quota exclude each other.
        let r = record(HostConfig {
            nano_cpus: Some(500_000_000),
            ..hc()
        });
        assert!(plan(&r, &body(|b| b.cpu_quota = Some(1000)), None).is_err());
        assert!(plan(&r, &body(|b| b.memory = Some(1024)), None).is_err());
        // Restart policies: berth's own name travels in the label; AutoRemove refuses.
        let p = plan(
            &r,
            &ContainerUpdateBody::default(),
            Some(&("on-unhealthy".into(), 2)),
        )
        .unwrap();
        assert_eq!(p.label, Some(Some("on-unhealthy:2".into())));
        let r = record(HostConfig {
            auto_remove: Some(true),
            ..hc()
        });
        let e = plan(
            &r,
            &ContainerUpdateBody::default(),
            Some(&("always".into(), 0)),
        )
        .unwrap_err();
        assert!(e.message.contains("AutoRemove"), "{}", e.message);
        assert!(plan(
            &r,
            &ContainerUpdateBody::default(),
            Some(&("bogus".into(), 0))
        )
        .is_err());
    }

    #[test]
    fn cpusets() {
        assert!(validate_cpuset("0-1,3").is_ok());
        assert!(validate_cpuset("1-0").is_err());
        assert!(validate_cpuset("x").is_err());
    }
}
