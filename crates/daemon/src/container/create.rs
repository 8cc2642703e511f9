//! `create`: validate the request, merge the image config, allocate ID and name, prepare
//! the rw layer and the container's own files, persist.
use std::collections::HashMap;

use berth_api::models::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, HostConfig,
};
use berth_api::{ApiError, ErrorKind};
use berth_oci::image::ImageConfig;

use super::{create_record, encode_record, now_rfc3339, Containers, Record, State};
use crate::names;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Docker's minimum memory limit.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

pub fn store_err(e: berth_store::StoreError) -> ApiError {
    let kind = match e.kind() {
        berth_store::ErrorKind::NotFound => ErrorKind::NotFound,
        berth_store::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
        berth_store::ErrorKind::Conflict => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    };
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ApiError::new(kind, msg)
}

/// Environment merge: image first, then the request; a later `KEY=` replaces an earlier one.
/// The process's argv: entrypoint then cmd; `--entrypoint ""` (`[""]`) means none.
pub fn container_argv(config: &ContainerConfig) -> Vec<String> {
    let ep = config.entrypoint.clone().unwrap_or_default();
    let ep = if ep.len() == 1 && ep[0].is_empty() {
        vec![]
    } else {
        ep
    };
    ep.into_iter()
        .chain(config.cmd.clone().unwrap_or_default())
        .collect()
}

/// Docker's `ReplaceOrAppendEnvValues`: `K=V` replaces or appends; a bare `K` (the CLI's
/// `-e K` with K unset) removes an existing K and is otherwise dropped.
/// Docker's `CreateDaemonEnvironment` then the exec's own: PATH, HOSTNAME, TERM (with a
/// TTY), overridden by the container's Env, then `extra`; HOME from the user when unset (as
/// runc does).
pub fn process_env(
    container_env: &[String],
    extra: &[String],
    hostname: &str,
    tty: bool,
    home: &str,
) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_owned(), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".into());
    }
    let mut env = merge_env(&merge_env(&env, container_env), extra);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |s: &str| {
        s.split_once('=')
            .map(|(k, _)| k.to_owned())
            .unwrap_or_else(|| s.to_owned())
    };
    let mut out: Vec<Option<String>> = base.iter().cloned().map(Some).collect();
    for e in over {
        let k = key(e);
        let value = e.contains('=').then(|| e.clone());
        match out
            .iter_mut()
            .find(|x| x.as_deref().is_some_and(|x| key(x) == k))
        {
            Some(slot) => *slot = value,
            None => out.extend(value.map(Some)),
        }
    }
    out.into_iter().flatten().collect()
}

impl Containers {
    pub async fn create_container(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        // A start usually follows: let the cgroup lock's grace period run meanwhile.
        berth_runtime::cgroup_warm::kick();
        let image_name = body
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::invalid("Config cannot be empty in order to create a container")
            })?;
        let store = self.store.clone();
        let lookup = image_name.clone();
        let image = tokio::task::spawn_blocking(move || store.get_image(&lookup))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| {
                let err = store_err(e);
                if err.kind == ErrorKind::NotFound {
                    let shown =
                        berth_oci::reference::Reference::parse_with_default_tag(&image_name)
                            .map(|r| r.familiar())
                            .unwrap_or_else(|_| image_name.clone());
                    ApiError::not_found(format!("No such image: {shown}"))
                } else {
                    err
                }
            })?;
        let mut host = body.host_config.clone().unwrap_or_default();
        validate_host_config(&mut host)?;
        let warnings = super::options::validate(&body, &mut host)?;
        super::health::validate(body.healthcheck.as_ref())?;
        if let Some(rp) = &host.restart_policy {
            let name = rp.name.map(|n| n.to_string()).unwrap_or_default();
            super::restart::validate_name(&name, rp.maximum_retry_count.unwrap_or(0))?;
        }
        let config = merge_config(&body, &image.config)?;
        let argv = container_argv(&config);
        if argv.is_empty() {
            return Err(ApiError::invalid("no command specified"));
        }

        let id = random_id();
        let name = match name {
            Some(n) => {
                if !names::valid_name(&n) {
                    return Err(ApiError::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                let n = n.trim_start_matches('/').to_owned();
                if let Some(owner) = self.name_owner(&n) {
                    return Err(ApiError::conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = names::random_name(retry);
                    if self.name_owner(&n).is_none() {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        let mut config = config;
        config.image = Some(image_name.clone());
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(
                if host.network_mode.as_deref() == Some("host")
                    || host.uts_mode.as_deref() == Some("host")
                {
                    host_hostname()
                } else {
                    id[..12].to_owned()
                },
            );
        }
        let rec = Record {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            image: image_name,
            image_id: image.id.clone(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config: host,
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            health: None,
            mount_points: vec![],
        };
        // Binds, volumes (created now, as Docker), tmpfs mounts.
        // `pending` keeps the volumes in use until the record is in the map.
        let (mount_points, new_volumes, pending) = self.resolve_mounts(&rec)?;
        let mut rec = rec;
        rec.mount_points = mount_points;

        let dir = self.paths.container_dir(&id);
        let store = self.store.clone();
        let image_id = image.id.clone();
        let rw = dir.join("rw");
        let holder = id.clone();
        let paths = self.paths.clone();
        let rec_data = encode_record(&rec)?;
        // The hold keeps the image's layers for this container, even past `rmi -f`. It and
        // the record are made durable side by side (one wait for the disk, not two in a
        // row); a crash between the two leaves a record without its hold, which restore
        // takes again (`restore::retake_holds`).
        let prep = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
            std::thread::scope(|s| {
                let held = s.spawn(|| -> Result<(), ApiError> {
                    store.hold(&holder, &image_id).map_err(store_err)?;
                    store.prepare_held_rootfs(&holder, &rw).map_err(store_err)?;
                    Ok(())
                });
                let persisted = create_record(&paths, &holder, &rec_data);
                let held = held
                    .join()
                    .unwrap_or_else(|_| Err(ApiError::internal("taking the layer hold panicked")));
                held.and(persisted)
            })
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Err(e) = prep {
            self.discard_created(&id);
            drop(pending);
            self.discard_volumes(&new_volumes);
            return Err(e);
        }
        let endpoints = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        if let Err(e) = self
            .check_container_mode(&rec.host_config)
            .and_then(|_| self.net.register(&id, &name, &rec.host_config, &endpoints))
        {
            self.discard_created(&id);
            drop(pending);
            self.discard_volumes(&new_volumes);
            return Err(e);
        }
        // A racing create with the same name: the first insert wins.
        let c = match self.insert_named(rec) {
            Ok(c) => c,
            Err(owner) => {
                self.net.forget(&id);
                self.discard_created(&id);
                drop(pending);
                self.discard_volumes(&new_volumes);
                return Err(ApiError::conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
        };
        drop(pending);
        self.emit(&c, "create", &[]);
        Ok(ContainerCreateResponse { id, warnings })
    }
}

impl Containers {
    /// Undoes a create that did not finish: its directory and its layer hold.
    fn discard_created(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.paths.container_dir(id));
        if let Err(e) = self.store.release(id) {
            tracing::warn!(%id, error = %e, "releasing the layers of a failed create");
        }
    }
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex_encode(&bytes)
}

pub fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn host_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn merge_config(
    body: &ContainerCreateBody,
    img: &ImageConfig,
) -> Result<ContainerConfig, ApiError> {
    let ic = &img.config;
    let env = merge_env(&ic.env, body.env.as_deref().unwrap_or(&[]));
    if let Some(bad) = env.iter().find(|e| e.is_empty() || e.starts_with('=')) {
        return Err(ApiError::invalid(format!(
            "invalid environment variable: {bad:?}"
        )));
    }
    // An explicit entrypoint (even empty) replaces the image's and drops the image's cmd.
    // Stored as given (`[""]` for `--entrypoint ""`, null when neither sets one), as Docker.
    let (entrypoint, cmd) = match &body.entrypoint {
        Some(ep) if !ep.is_empty() => (Some(ep.clone()), body.cmd.clone()),
        _ => (
            ic.entrypoint.clone().filter(|e| !e.is_empty()),
            body.cmd
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| ic.cmd.clone()),
        ),
    };
    let mut labels: HashMap<String, String> = ic
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(body.labels.clone().unwrap_or_default());
    let mut exposed: HashMap<String, HashMap<(), ()>> = ic
        .exposed_ports
        .keys()
        .map(|k| (k.clone(), HashMap::new()))
        .collect();
    exposed.extend(body.exposed_ports.clone().unwrap_or_default());
    let mut volumes: HashMap<String, HashMap<(), ()>> = ic
        .volumes
        .keys()
        .map(|k| (k.clone(), HashMap::new()))
        .collect();
    volumes.extend(body.volumes.clone().unwrap_or_default());
    let pick = |a: &Option<String>, b: &Option<String>| {
        a.clone()
            .filter(|s| !s.is_empty())
            .or_else(|| b.clone())
            .unwrap_or_default()
    };
    Ok(ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: Some(body.domainname.clone().unwrap_or_default()),
        user: Some(pick(&body.user, &ic.user)),
        attach_stdin: Some(body.attach_stdin.unwrap_or(false)),
        attach_stdout: Some(body.attach_stdout.unwrap_or(false)),
        attach_stderr: Some(body.attach_stderr.unwrap_or(false)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: Some(body.tty.unwrap_or(false)),
        open_stdin: Some(body.open_stdin.unwrap_or(false)),
        stdin_once: Some(body.stdin_once.unwrap_or(false)),
        env: Some(env),
        cmd,
        healthcheck: super::health::merge(body.healthcheck.clone(), ic.healthcheck.as_ref()),
        args_escaped: body.args_escaped,
        image: body.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: Some(pick(&body.working_dir, &ic.working_dir)),
        entrypoint,
        network_disabled: body.network_disabled,
        mac_address: body.mac_address.clone(),
        on_build: body.on_build.clone(),
        labels: Some(labels),
        stop_signal: body
            .stop_signal
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| ic.stop_signal.clone()),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone(),
    })
}

/// Checks and normalises the host config the way dockerd does before accepting it.
fn validate_host_config(h: &mut HostConfig) -> Result<(), ApiError> {
    // Networks by name and container:<id> are checked by the network service.
    if h.network_mode.as_deref().unwrap_or("").is_empty() {
        h.network_mode = Some("default".into());
    }
    let mut lc = h.log_config.clone().unwrap_or_default();
    super::start::validate_log_config(&mut lc)?;
    h.log_config = Some(lc);
    if let Some(m) = h.memory {
        if m != 0 && m < MIN_MEMORY {
            return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    if let (Some(m), Some(s)) = (h.memory, h.memory_swap) {
        if s > 0 && m > 0 && s < m {
            return Err(ApiError::invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
    }
    if h.nano_cpus.unwrap_or(0) < 0 {
        return Err(ApiError::invalid(
            "Range of CPUs is from 0.01 to the number of CPUs available",
        ));
    }
    if h.nano_cpus.unwrap_or(0) > 0 && h.cpu_quota.unwrap_or(0) > 0 {
        return Err(ApiError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if let Some(ncpu) = h.nano_cpus.filter(|n| *n > 0) {
        let max = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1)
            * 1_000_000_000;
        if ncpu > max {
            return Err(ApiError::invalid(format!(
                "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                max / 1_000_000_000,
                max / 1_000_000_000
            )));
        }
    }
    let restart = h
        .restart_policy
        .as_ref()
        .and_then(|r| r.name)
        .map(|n| n.to_string())
        .unwrap_or_default();
    if h.auto_remove.unwrap_or(false) && !restart.is_empty() && restart != "no" {
        return Err(ApiError::invalid(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides() {
        let m = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(m, vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
