//! The exec service: processes started inside running containers (`docker exec`).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use berth_api::{ApiError, ExecBackend, ProcessStream, Session};
use berth_runtime::protocol::ExecProcess;

use crate::container::{process_failure_code, Containers};

#[derive(Debug, Clone)]
struct ExecRecord {
    id: String,
    container_id: String,
    config: ExecConfig,
    running: bool,
    started: bool,
    pid: u32,
    exit_code: Option<i64>,
}

pub struct Execs {
    containers: Arc<Containers>,
    map: Arc<Mutex<HashMap<String, ExecRecord>>>,
}

impl Execs {
    pub fn new(containers: Arc<Containers>) -> Arc<Self> {
        Arc::new(Self {
            containers,
            map: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn get(&self, id: &str) -> Result<ExecRecord, ApiError> {
        self.map
            .lock()
            .expect("exec lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// Refreshes a started exec's state from the shim.
    async fn refresh(&self, rec: &mut ExecRecord) {
        if !rec.started || rec.exit_code.is_some() {
            return;
        }
        let shim = self.containers.shim(&rec.container_id);
        match shim.exec_state(&rec.id).await {
            Ok(st) => {
                rec.running = st.running;
                if let Some(e) = st.exit {
                    rec.exit_code = Some(e.code as i64);
                    rec.running = false;
                }
            }
            Err(_) => {
                // The shim is gone: the container (and so the exec) has exited.
                rec.running = false;
                rec.exit_code.get_or_insert(137);
            }
        }
        if let Some(r) = self.map.lock().expect("exec lock").get_mut(&rec.id) {
            r.running = rec.running;
            r.exit_code = rec.exit_code;
        }
    }
}

impl Execs {
    /// The process an exec runs: the container's environment, user and working directory
    /// under the exec's overrides.
    fn exec_process(
        &self,
        rec: &ExecRecord,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<(String, ExecProcess), ApiError> {
        let c = self.containers.get(&rec.container_id)?;
        let crec = c.snapshot();
        if !crec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                crec.id
            )));
        }
        let cfg = &rec.config;
        let rootfs = self.containers.paths.bundle(&crec.id).join("rootfs");
        let user_spec = cfg
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or(crec.config.user.clone())
            .unwrap_or_default();
        let user = crate::user::resolve(
            &rootfs,
            &user_spec,
            crec.host_config.group_add.as_deref().unwrap_or(&[]),
        )
        .map_err(|e| ApiError::invalid(e.to_string()))?;
        let tty = cfg.tty.unwrap_or(false);
        let env = crate::container::process_env(
            crec.config.env.as_deref().unwrap_or(&[]),
            cfg.env.as_deref().unwrap_or(&[]),
            crec.config.hostname.as_deref().unwrap_or(""),
            tty,
            &user.home,
        );
        let cwd = cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or(crec.config.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let stdin = cfg.attach_stdin.unwrap_or(false) && !detach;
        let console = console_size.or_else(|| {
            cfg.console_size
                .as_ref()
                .filter(|v| v.len() == 2)
                .map(|v| (v[0] as u16, v[1] as u16))
        });
        let process = ExecProcess {
            args: cfg.cmd.clone().unwrap_or_default(),
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            tty,
            stdin,
            console_size: console,
        };
        Ok((crec.id.clone(), process))
    }
}

#[async_trait::async_trait]
impl ExecBackend for Execs {
    async fn create(&self, container: &str, config: ExecConfig) -> Result<String, ApiError> {
        let c = self.containers.get(container)?;
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                rec.id
            )));
        }
        if rec.state.status == crate::container::Status::Paused {
            return Err(ApiError::conflict(format!(
                "container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::invalid("No exec command specified"));
        }
        let bytes: [u8; 32] = rand::random();
        let id = crate::container::hex_id(&bytes);
        let cmdline = config.cmd.clone().unwrap_or_default().join(" ");
        self.containers.emit(
            &c,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        let mut map = self.map.lock().expect("exec lock");
        // Forget execs of containers that are gone (Docker drops them with the container).
        map.retain(|_, e| self.containers.get(&e.container_id).is_ok());
        map.insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container_id: rec.id,
                config,
                running: false,
                started: false,
                pid: 0,
                exit_code: None,
            },
        );
        Ok(id)
    }

    async fn start(
        &self,
        exec_id: &str,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Option<Session>, ApiError> {
        let rec = {
            let mut m = self.map.lock().expect("exec lock");
            let r = m
                .get_mut(exec_id)
                .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {exec_id}")))?;
            if r.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            r.started = true;
            r.clone()
        };
        let tty = rec.config.tty.unwrap_or(false);
        let (container_id, process) = match self.exec_process(&rec, detach, console_size) {
            Ok(p) => p,
            Err(e) => {
                // Docker reports these on the hijacked stream too, with exit code 126.
                if let Some(r) = self.map.lock().expect("exec lock").get_mut(exec_id) {
                    r.exit_code = Some(126);
                }
                if detach {
                    return Err(e);
                }
                let msg = e.message;
                return Ok(Some(Session {
                    tty,
                    stdin: false,
                    stream: Box::pin(async move { Err(msg) }),
                }));
            }
        };
        let stdin = process.stdin;
        let shim = self.containers.shim(&container_id);
        let started_event = self.containers.get(&container_id).ok().map(|c| {
            let cmdline = rec.config.cmd.clone().unwrap_or_default().join(" ");
            let containers = self.containers.clone();
            let exec_id = exec_id.to_owned();
            move || {
                containers.emit(
                    &c,
                    &format!("exec_start: {cmdline}"),
                    &[("execID", exec_id)],
                )
            }
        });
        let map = self.map.clone();
        let exec_id = exec_id.to_owned();
        let containers = self.containers.clone();
        let run = async move {
            let res = shim.exec(&exec_id, process).await.map(|(pid, stream)| {
                let m = map.clone();
                let id = exec_id.clone();
                let stream = crate::exec_watch::watch(
                    stream,
                    containers,
                    container_id.clone(),
                    exec_id.clone(),
                    move |code| {
                        if let Some(r) = m.lock().expect("exec lock").get_mut(&id) {
                            r.running = false;
                            r.exit_code = Some(code);
                        }
                    },
                );
                (pid, stream)
            });
            let mut m = map.lock().expect("exec lock");
            let r = m.get_mut(&exec_id);
            match res {
                Ok((pid, stream)) => {
                    if let Some(r) = r {
                        r.running = true;
                        r.pid = pid;
                    }
                    if let Some(ev) = started_event {
                        ev();
                    }
                    Ok(stream)
                }
                Err(e) => {
                    // As Docker: 127 when the command is not there, 126 when it cannot run.
                    let msg = format!("OCI runtime exec failed: {e}");
                    if let Some(r) = r {
                        r.exit_code = Some(process_failure_code(&msg).unwrap_or(126));
                    }
                    Err(msg)
                }
            }
        };
        if detach {
            return match run.await {
                Ok(mut stream) => {
                    // Nobody reads a detached exec's output: drain it so its end is seen.
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
                    });
                    Ok(None)
                }
                Err(msg) if process_failure_code(&msg).is_some() => Err(ApiError::invalid(msg)),
                Err(msg) => Err(ApiError::internal(msg)),
            };
        }
        // The process starts once the client holds the hijacked stream; failures are told there.
        Ok(Some(Session {
            tty,
            stdin,
            stream: Box::pin(
                async move { run.await.map(|s| Box::new(s) as Box<dyn ProcessStream>) },
            ),
        }))
    }

    async fn inspect(&self, exec_id: &str) -> Result<ExecInspectResponse, ApiError> {
        let mut rec = self.get(exec_id)?;
        self.refresh(&mut rec).await;
        let args = rec.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(rec.config.detach_keys.clone().unwrap_or_default()),
            id: Some(rec.id.clone()),
            running: Some(rec.running),
            exit_code: rec.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(rec.config.privileged.unwrap_or(false)),
                user: Some(rec.config.user.clone().unwrap_or_default()),
                tty: Some(rec.config.tty.unwrap_or(false)),
                entrypoint: args.first().cloned(),
                arguments: Some(args.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(rec.config.attach_stdin.unwrap_or(false)),
            open_stderr: Some(rec.config.attach_stderr.unwrap_or(false)),
            open_stdout: Some(rec.config.attach_stdout.unwrap_or(false)),
            container_id: Some(rec.container_id.clone()),
            pid: Some(rec.pid as i64),
        })
    }

    async fn resize(&self, exec_id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        let rec = self.get(exec_id)?;
        self.containers
            .shim(&rec.container_id)
            .resize(Some(exec_id), height, width)
            .await
            .map_err(|e| ApiError::from_chain(&e))
    }
}
