//! `start`: mount the rootfs, write the OCI bundle, spawn the shim, hand pending attach
//! streams their connection, start the process; and the exit monitor that follows it.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::{ApiError, ErrorKind};
use berth_runtime::client::{self, ShimError};
use berth_runtime::protocol::{ExitStatus, ShimConfig};
use berth_runtime::spec::{self, BindMount, NetworkMode, SpecOptions};

use super::create::store_err;
use super::{now_rfc3339, Containers, Ctr, Record, Status};
use crate::fsutil::{mkdir_all_in_root, write_atomic};
use crate::user;

/// Default log rotation: bounded so a chatty container cannot fill the disk.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 20 * 1000 * 1000;
pub const DEFAULT_LOG_MAX_FILE: u32 = 5;

impl Containers {
    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let op = c.op.lock().await;
        let res = self.start_locked(&c, true).await;
        if res.is_err() && c.snapshot().host_config.auto_remove.unwrap_or(false) {
            drop(op);
            let _ = self.remove_container_and_volumes(&c.id, true, true).await;
        }
        res
    }

    /// Start with the op lock held. `manual`: a user's start (a fresh restart manager,
    /// `RestartCount` 0); otherwise a restart policy's (from `restarting`).
    pub(crate) async fn start_locked(
        self: &Arc<Self>,
        c: &Arc<Ctr>,
        manual: bool,
    ) -> Result<(), ApiError> {
        let c = c.clone();
        let rec = c.snapshot();
        match rec.state.status {
            Status::Restarting if !manual => {}
            s if s.is_running() => return Err(ApiError::not_modified()),
            s if !s.can_start() => {
                return Err(ApiError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.id
                )))
            }
            _ => {}
        }
        match self.launch(&c, &rec).await {
            Ok(pid) => {
                self.update(&c, |r| {
                    r.state.status = Status::Running;
                    r.state.pid = pid;
                    r.state.exit_code = 0;
                    r.state.error.clear();
                    r.state.oom_killed = false;
                    r.state.started_at = now_rfc3339();
                    r.manually_stopped = false;
                    if manual {
                        r.restart_count = 0;
                    }
                });
                if manual {
                    c.restart.lock().expect("restart lock").reset();
                }
                self.spawn_monitor(c.clone());
                self.start_health(&c);
                self.emit(&c, "start", &[]);
                Ok(())
            }
            Err(e) => {
                let code = process_failure_code(&e.message).unwrap_or(128);
                self.update(&c, |r| {
                    r.state.exit_code = code;
                    r.state.error = e.message.clone();
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
                // Attach clients waiting for this start get nothing: drop their senders.
                c.pending.lock().expect("pending lock").clear();
                // An auto-remove container is removed by `start_container` once it
                // released the op lock.
                if !rec.host_config.auto_remove.unwrap_or(false) {
                    c.exits.send_modify(|ev| {
                        ev.seq += 1;
                        ev.code = code;
                        ev.error = Some(e.message.clone());
                    });
                }
                Err(e)
            }
        }
    }

    /// Mounts, writes the bundle, spawns the shim, connects pending attachers, starts.
    /// On error everything it did is undone.
    async fn launch(&self, c: &Arc<Ctr>, rec: &Record) -> Result<u32, ApiError> {
        // The previous run's shim may still be deleting the same ID's cgroups and state, and
        // its overlay (on the same upper directory) may still be going away.
        c.shim_cleanup.settled().await;
        c.rootfs_teardown.settled().await;
        let bundle = self.paths.bundle(&rec.id);
        let rootfs = bundle.join("rootfs");
        let this_paths = self.paths.clone();
        let store = self.store.clone();
        let rec2 = rec.clone();
        let b2 = bundle.clone();
        let joins = self.resolve_joins(&rec.host_config)?;
        let volumes = self.volumes.clone();
        let joined = self.joined_netns(rec)?;
        let plan = self
            .net
            .prepare(&rec.id, &rec.config, &rec.host_config)
            .await?;
        let netns = joined.as_ref().map(|j| j.0.clone());
        let dir = self.paths.container_dir(&rec.id);
        let joined_dir = joined.map(|j| j.1);
        // Short blocking work on this worker: no hand-off to the blocking pool and back.
        let prepared = tokio::task::block_in_place(|| {
            prepare_bundle(&this_paths, &store, &rec2, &b2, joins, &volumes, netns)?;
            super::netmode::write_net_files(&dir, &plan, joined_dir.as_deref())
        });
        if let Err(e) = prepared {
            cleanup_bundle(&bundle);
            self.release_volumes(c);
            self.net.release(&rec.id).await;
            return Err(e);
        }
        let pid = match client::spawn(&self.paths.shim_bin, &bundle).await {
            Ok(pid) => pid,
            Err(e) => {
                cleanup_bundle(&bundle);
                self.release_volumes(c);
                self.net.release(&rec.id).await;
                return Err(shim_create_error(e));
            }
        };
        super::options::after_create(&rec.id, &rec.host_config);
        let shim = self.shim(&rec.id);
        if let Err(e) = self.net.activate(&rec.id, pid).await {
            let _ = shim.kill(9, true).await;
            let _ = shim.wait().await;
            let _ = shim.shutdown().await;
            cleanup_bundle(&bundle);
            self.release_volumes(c);
            self.net.release(&rec.id).await;
            return Err(e);
        }
        let pending: Vec<_> = std::mem::take(&mut *c.pending.lock().expect("pending lock"));
        for p in pending {
            match shim.attach(p.stdin, p.stdout, p.stderr).await {
                Ok(s) => {
                    let _ = p.tx.send(s);
                }
                Err(e) => tracing::warn!(id = %rec.id, error = %e, "attaching pending client"),
            }
        }
        if let Err(e) = shim.start().await {
            let _ = shim.kill(9, true).await;
            let _ = shim.wait().await;
            let _ = shim.shutdown().await;
            cleanup_bundle(&bundle);
            self.release_volumes(c);
            self.net.release(&rec.id).await;
            return Err(shim_create_error(e));
        }
        let _ = rootfs;
        Ok(pid)
    }

    /// Follows the container until it exits, then records the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, c: Arc<Ctr>) {
        let this = self.clone();
        tokio::spawn(async move {
            let shim = this.shim(&c.id);
            let status = match shim.wait_cleanup().await {
                Ok((s, cleanup)) => {
                    // The shim deletes the container after answering: that overlaps with
                    // the exit handling here, and a start or removal waits for it.
                    let job = c.shim_cleanup.begin();
                    tokio::spawn(async move {
                        cleanup.done(SHIM_CLEANUP_LIMIT).await;
                        drop(job);
                    });
                    s
                }
                Err(e) => match client::read_exit_file(&this.paths.bundle(&c.id)) {
                    Some(s) => s,
                    None => {
                        tracing::warn!(id = %c.id, error = %e, "lost the shim; marking the container exited");
                        ExitStatus {
                            code: 255,
                            exited_at: now_rfc3339(),
                            oom_killed: false,
                        }
                    }
                },
            };
            this.handle_exit(&c, status).await;
        });
    }

    /// Records an exit: unmount, state, waiters, auto-remove.
    pub(crate) async fn handle_exit(self: &Arc<Self>, c: &Arc<Ctr>, status: ExitStatus) {
        // The shim exits on its own once its streams are done; tell it not to linger, but
        // do not wait for the answer.
        let shim = self.shim(&c.id);
        tokio::spawn(async move {
            let _ = shim.shutdown().await;
        });
        let bundle = self.paths.bundle(&c.id);
        if let Some(overlay) = tokio::task::block_in_place(|| detach_bundle(&bundle)) {
            // Its teardown (a sync of the upper filesystem, milliseconds) runs off the exit
            // path, in whichever thread drops the last reference.
            let job = c.rootfs_teardown.begin();
            tokio::task::spawn_blocking(move || {
                drop(overlay);
                drop(job);
            });
        }
        self.stop_health(c);
        self.release_volumes(c);
        let auto_remove = self.update(c, |r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = status.code as i64;
            r.state.oom_killed = status.oom_killed;
            r.state.finished_at = status.exited_at.clone();
            r.host_config.auto_remove.unwrap_or(false)
        });
        let restarting = self.schedule_restart(c);
        // After the state (inspect shows it exited at once), before the waiters (a `run`
        // right after finds the addresses and ports free).
        self.net.release(&c.id).await;
        if status.oom_killed {
            self.emit(c, "oom", &[]);
        }
        self.emit(c, "die", &[("exitCode", status.code.to_string())]);
        c.exits.send_modify(|ev| {
            ev.seq += 1;
            ev.code = status.code as i64;
            ev.error = None;
        });
        if auto_remove && !restarting {
            let this = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                if let Err(e) = this.remove_container_and_volumes(&id, true, true).await {
                    tracing::warn!(%id, error = %e.message, "auto-remove failed");
                }
            });
        }
    }
}

/// How long an exit waits at most for its shim to delete the container (it takes a few
/// milliseconds; libcontainer retries a busy cgroup for up to 400 ms).
const SHIM_CLEANUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Docker's exit code for a process that could not be started, from the runtime's message:
/// 127 when the command is not there, 126 when it cannot be run; `None` for other failures
/// (the runtime's own, not the user's command).
pub fn process_failure_code(msg: &str) -> Option<i64> {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        Some(127)
    } else if msg.contains("permission denied") {
        Some(126)
    } else {
        None
    }
}

fn shim_create_error(e: ShimError) -> ApiError {
    match e {
        ShimError::Create(msg) => {
            let kind = if process_failure_code(&msg).is_some() {
                ErrorKind::InvalidArgument
            } else {
                ErrorKind::Internal
            };
            ApiError::new(kind, format!("failed to create task for container: {msg}"))
        }
        other => ApiError::from_chain(&other),
    }
}

/// [`cleanup_bundle`], keeping a reference to the rootfs mount: the overlay is detached from
/// every namespace at once, but its superblock, whose shutdown syncs the whole upper
/// filesystem, lives until the returned descriptor is dropped. None when nothing was mounted.
pub(crate) fn detach_bundle(bundle: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let rootfs = bundle.join("rootfs");
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&rootfs)
        .ok();
    // Only a mount's root is worth keeping (not the bare directory of an unmounted bundle).
    let mounted = root.as_ref().is_some_and(|f| {
        std::fs::metadata(bundle).is_ok_and(|b| {
            use std::os::unix::fs::MetadataExt;
            f.metadata().is_ok_and(|r| r.dev() != b.dev())
        })
    });
    cleanup_bundle(bundle);
    root.filter(|_| mounted).map(std::os::fd::OwnedFd::from)
}

/// Unmounts the rootfs and removes the bundle (idempotent).
pub(crate) fn cleanup_bundle(bundle: &Path) {
    // `--ipc shareable`: the host-side /dev/shm (options.rs).
    let _ = berth_store::unmount(&bundle.join("shm"));
    let rootfs = bundle.join("rootfs");
    if let Err(e) = berth_store::unmount(&rootfs) {
        tracing::warn!(path = %rootfs.display(), error = %e, "unmounting rootfs");
        return;
    }
    let _ = std::fs::remove_dir_all(bundle);
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{what}: {e}"))
}

/// Everything before the shim: rootfs mount, user lookup, workdir, /etc files, config.json,
/// shim.json. Blocking.
fn prepare_bundle(
    paths: &crate::paths::Paths,
    store: &berth_store::Store,
    rec: &Record,
    bundle: &Path,
    joins: super::options::Joins,
    volumes: &crate::volumes::Volumes,
    netns: Option<PathBuf>,
) -> Result<(), ApiError> {
    let rootfs = bundle.join("rootfs");
    // A leftover from a crash: start clean.
    cleanup_bundle(bundle);
    std::fs::create_dir_all(&rootfs).map_err(|e| io_err("creating bundle", e))?;
    let dir = paths.container_dir(&rec.id);
    let mount = store
        .prepare_held_rootfs(&rec.id, &dir.join("rw"))
        .map_err(store_err)?;
    mount
        .mount(&rootfs)
        .map_err(|e| io_err("mounting rootfs", e))?;

    let cfg = &rec.config;
    let hc = &rec.host_config;
    let user = user::resolve(
        &rootfs,
        cfg.user.as_deref().unwrap_or(""),
        hc.group_add.as_deref().unwrap_or(&[]),
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let cwd = cfg
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if cwd != "/" {
        mkdir_all_in_root(&rootfs, &cwd, user.uid, user.gid)
            .map_err(|e| io_err("creating working directory", e))?;
    }
    let network = match hc.network_mode.as_deref() {
        Some("host") => NetworkMode::Host,
        _ if netns.is_some() => NetworkMode::Path(netns.expect("netns")),
        _ => NetworkMode::None,
    };
    let hostname = cfg.hostname.clone().unwrap_or_default();
    let (hostname_p, hosts_p, resolv_p) =
        write_etc_files(&dir, &hostname, network == NetworkMode::Host)?;

    let env = super::process_env(
        cfg.env.as_deref().unwrap_or(&[]),
        &[],
        &hostname,
        cfg.tty.unwrap_or(false),
        &user.home,
    );

    let mut mounts = Vec::new();
    let user_mounts = volumes.start_mounts(
        &rec.id,
        &rec.mount_points,
        &hc.tmpfs.clone().unwrap_or_default(),
        &rootfs,
        &paths.data_root,
    )?;
    let user_dests: Vec<String> = user_mounts.iter().map(|m| m.destination.clone()).collect();
    for (src, dst) in [
        (hostname_p, "/etc/hostname"),
        (hosts_p, "/etc/hosts"),
        (resolv_p, "/etc/resolv.conf"),
    ] {
        if !user_dests.iter().any(|d| d == dst) {
            mounts.push(BindMount {
                source: src,
                destination: dst.into(),
                readonly: false,
            });
        }
    }
    let argv: Vec<String> = std::iter::once(rec.path.clone())
        .chain(rec.args.iter().cloned())
        .collect();
    let mut opts = SpecOptions {
        id: rec.id.clone(),
        rootfs: rootfs.clone(),
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        args: argv,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        tty: cfg.tty.unwrap_or(false),
        hostname: if network == NetworkMode::Host {
            String::new()
        } else {
            hostname
        },
        domainname: cfg.domainname.clone().unwrap_or_default(),
        network,
        mounts,
        memory: hc.memory.unwrap_or(0),
        memory_swap: hc.memory_swap.unwrap_or(0),
        nano_cpus: hc.nano_cpus.unwrap_or(0),
        cpu_shares: hc.cpu_shares.unwrap_or(0).max(0) as u64,
        cpu_quota: hc.cpu_quota.unwrap_or(0),
        cpu_period: hc.cpu_period.unwrap_or(0).max(0) as u64,
        cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: hc.pids_limit.unwrap_or(0),
        cgroup_parent: hc
            .cgroup_parent
            .clone()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{}/{}", p.trim_end_matches('/'), rec.id)),
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        shm_size: hc.shm_size.unwrap_or(0),
        sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
        console_size: hc
            .console_size
            .as_ref()
            .filter(|v| v.len() == 2 && v[0] > 0)
            .map(|v| (v[0] as u16, v[1] as u16)),
        // --init, --security-opt, --ulimit, --device, ...: options.rs.
        ..Default::default()
    };
    super::options::apply(paths, hc, joins, &mut opts)?;
    let mut spec = spec::build(&opts).map_err(|e| ApiError::from_chain(&e))?;
    spec::push_mounts(&mut spec, &user_mounts).map_err(|e| ApiError::from_chain(&e))?;
    let spec_json = serde_json::to_vec(&spec).map_err(|e| io_err("encoding spec", e))?;
    write_atomic(&bundle.join("config.json"), &spec_json, false)
        .map_err(|e| io_err("writing config.json", e))?;

    let (max_size, max_file, log_path) = log_settings(paths, rec)?;
    let shim_cfg = ShimConfig {
        id: rec.id.clone(),
        runtime_root: paths.runtime_root(),
        log_path,
        log_max_size: max_size,
        log_max_file: max_file,
        tty: cfg.tty.unwrap_or(false),
        open_stdin: cfg.open_stdin.unwrap_or(false),
        stdin_once: cfg.stdin_once.unwrap_or(false),
        console_size: opts.console_size,
    };
    let shim_json = serde_json::to_vec(&shim_cfg).map_err(|e| io_err("encoding shim config", e))?;
    write_atomic(&bundle.join("shim.json"), &shim_json, false)
        .map_err(|e| io_err("writing shim.json", e))?;
    Ok(())
}

/// Log driver settings: json-file (default, rotated) or none.
fn log_settings(
    paths: &crate::paths::Paths,
    rec: &Record,
) -> Result<(u64, u32, Option<PathBuf>), ApiError> {
    let lc = rec.host_config.log_config.clone().unwrap_or_default();
    let driver = lc.typ.clone().unwrap_or_default();
    let Some(log_path) = super::options::log_file(&paths.container_dir(&rec.id), &rec.id, &driver)
    else {
        return Ok((0, 1, None));
    };
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating the log directory", e))?;
    }
    let opts = lc.config.unwrap_or_default();
    let max_size = match opts.get("max-size") {
        Some(s) => {
            parse_size(s).ok_or_else(|| ApiError::invalid(format!("invalid max-size: {s}")))?
        }
        None => DEFAULT_LOG_MAX_SIZE,
    };
    let max_file = match opts.get("max-file") {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::invalid(format!("invalid max-file: {s}")))?,
        None => DEFAULT_LOG_MAX_FILE,
    };
    Ok((max_size, max_file, Some(log_path)))
}

/// Checks `--log-driver` / `--log-opt` at create as Docker does, filling in the default
/// driver, so a bad option fails `create` rather than `start`.
pub fn validate_log_config(
    lc: &mut bollard_stubs::models::HostConfigLogConfig,
) -> Result<(), ApiError> {
    let driver = lc
        .typ
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "json-file".into());
    let opts = lc.config.clone().unwrap_or_default();
    let allowed: &[&str] = match driver.as_str() {
        "json-file" => &[
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "local" => &["max-size", "max-file", "compress"],
        "none" => &[],
        other => {
            return Err(ApiError::invalid(format!(
                "logger: no log driver named '{other}' is registered"
            )))
        }
    };
    for (k, v) in &opts {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::invalid(if driver == "local" {
                format!("unknown log opt '{k}' for log driver local")
            } else {
                format!("unknown log opt '{k}' for {driver} log driver")
            }));
        }
        match k.as_str() {
            "max-size" if parse_size(v).is_none() => {
                return Err(ApiError::invalid(format!("invalid size: '{v}'")))
            }
            "max-file" if v.parse::<u32>().ok().filter(|n| *n >= 1).is_none() => {
                return Err(ApiError::invalid(format!(
                    "invalid value for max-file: '{v}' (must be a number of at least 1)"
                )))
            }
            "compress" if v.parse::<bool>().is_err() => {
                return Err(ApiError::invalid(format!(
                    "invalid value for compress: '{v}'"
                )))
            }
            _ => {}
        }
    }
    lc.typ = Some(driver);
    lc.config = Some(opts);
    Ok(())
}

/// go-units RAMInBytes-like sizes for log options: `10m`, `1k`, `512` (`-1` = unlimited).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    if s == "-1" {
        return Some(0);
    }
    let s = s.trim_end_matches('b');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024u64),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// Writes the container's hostname, hosts and resolv.conf; returns their paths.
fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_net: bool,
) -> Result<(PathBuf, PathBuf, PathBuf), ApiError> {
    let hostname_p = dir.join("hostname");
    let hosts_p = dir.join("hosts");
    let resolv_p = dir.join("resolv.conf");
    let hn = if host_net {
        super::create::host_hostname()
    } else {
        hostname.to_owned()
    };
    std::fs::write(&hostname_p, format!("{hn}\n")).map_err(|e| io_err("writing hostname", e))?;
    let hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_owned()
    };
    std::fs::write(&hosts_p, hosts).map_err(|e| io_err("writing hosts", e))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if host_net {
        host_resolv
    } else {
        // Loopback resolvers of the host are unreachable from a private network namespace.
        host_resolv
            .lines()
            .filter(|l| {
                let mut f = l.split_whitespace();
                !(f.next() == Some("nameserver")
                    && f.next()
                        .is_some_and(|a| a.starts_with("127.") || a == "::1"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    std::fs::write(&resolv_p, resolv).map_err(|e| io_err("writing resolv.conf", e))?;
    Ok((hostname_p, hosts_p, resolv_p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("-1"), Some(0));
        assert_eq!(parse_size("x"), None);
    }
}
