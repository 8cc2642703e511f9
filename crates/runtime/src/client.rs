//! Async client for `berth-shim`, used by berthd (tokio).
//!
//! Glossary: the *bundle* is `<exec-root>/containers/<id>/`: it holds `config.json` (OCI
//! spec), `shim.json` ([`crate::protocol::ShimConfig`]), and once the shim runs,
//! `shim.sock`, `shim.pid` and finally `exit.json`. The shim exits (removing `shim.sock`)
//! right after it recorded the exit, so [`ShimClient::wait`] and [`ShimClient::state`]
//! answer from `exit.json` when they find it gone.
//!
//! ```ignore
//! let pid = client::spawn(&shim_bin, &bundle).await?;  // container created, not started
//! let shim = ShimClient::new(&bundle);
//! let stream = shim.attach(false, true, true).await?;  // optional
//! shim.start().await?;
//! let status = shim.wait().await?;
//! ```
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::protocol::{ExecProcess, ExitStatus, ProcessState, Request, Response};

/// The connection a `Wait` was answered on: the shim closes it once it has deleted the
/// container (cgroups, libcontainer state). Until then the same ID must not be created
/// again. `None`: the shim was gone already, so done.
pub struct Cleanup(Option<UnixStream>);

impl Cleanup {
    /// Resolves when the shim is done with the container, or after `limit`.
    pub async fn done(self, limit: std::time::Duration) {
        let Some(mut s) = self.0 else { return };
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(limit, async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The shim could not create the container (bad spec, missing binary in rootfs, ...).
    /// The message is the shim's own, meant for the user.
    #[error("{0}")]
    Create(String),
    /// The shim answered a request with an error.
    #[error("{0}")]
    Request(String),
    /// The shim is not running (socket missing or refused).
    #[error("shim is not running")]
    NotRunning,
    #[error("shim i/o")]
    Io(#[source] std::io::Error),
    #[error("shim protocol")]
    Protocol(#[source] serde_json::Error),
}

/// A `berth-shim --standby` waiting for a bundle: the write end of its stdin, the read end
/// of its stdout.
struct Standby {
    binary: PathBuf,
    stdin: std::fs::File,
    stdout: std::os::fd::OwnedFd,
}

/// At most one standby shim per process (berthd), kept in plain fds so that it does not
/// belong to any one tokio runtime.
static STANDBY: std::sync::Mutex<Option<Standby>> = std::sync::Mutex::new(None);

/// Starts a standby shim for the next `spawn` (blocking: run off the request path). Its
/// first process exits at once and is reaped here; the standby itself is re-parented.
fn start_standby(binary: &Path) -> std::io::Result<Standby> {
    let mut child = std::process::Command::new(binary)
        .arg(crate::shim::STANDBY_ARG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdin = child.stdin.take().map(std::os::fd::OwnedFd::from);
    let stdout = child.stdout.take().map(std::os::fd::OwnedFd::from);
    child.wait()?;
    match (stdin, stdout) {
        (Some(i), Some(o)) => Ok(Standby {
            binary: binary.to_path_buf(),
            stdin: std::fs::File::from(i),
            stdout: o,
        }),
        _ => Err(std::io::Error::other("standby shim without pipes")),
    }
}

/// Replaces the standby shim in the background, from one thread that runs at a low CPU
/// priority: the new standby (its exec, dynamic linking and fork, inherited nice value and
/// all) then takes CPU only when the container being started does not need it. The standby
/// returns to the normal priority when it is handed a bundle (`shim::standby`).
fn replenish(binary: &Path) {
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<PathBuf>>> =
        std::sync::OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<PathBuf>(1);
        std::thread::Builder::new()
            .name("shim-standby".into())
            .spawn(move || {
                // SAFETY: setpriority on the calling thread (who = 0); no memory involved.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, STANDBY_NICE) };
                while let Ok(binary) = rx.recv() {
                    match start_standby(&binary) {
                        // A standby that lost the race to a newer one sees EOF and exits.
                        Ok(s) => *STANDBY.lock().unwrap_or_else(|e| e.into_inner()) = Some(s),
                        Err(e) => tracing::warn!(error = %e, "starting a standby shim"),
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "starting the standby spawner"))
            .ok()?;
        Some(tx)
    });
    if let Some(tx) = tx {
        // Full: a replacement is already queued.
        let _ = tx.try_send(binary.to_path_buf());
    }
}

/// The nice value standby shims start with (see [`replenish`]).
const STANDBY_NICE: libc::c_int = 10;

/// Hands `bundle` to the standby shim; its stdout then carries the readiness line. None when
/// there is no usable standby (none yet, another binary, or it is gone).
fn use_standby(shim_binary: &Path, bundle: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut s = STANDBY.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    if s.binary != shim_binary {
        return None;
    }
    let path = bundle.as_os_str().as_bytes();
    if path.contains(&b'\n') {
        return None;
    }
    let mut line = Vec::with_capacity(path.len() + 1);
    line.extend_from_slice(path);
    line.push(b'\n');
    // One small write to an empty pipe: never blocks; EPIPE if the standby died.
    s.stdin.write_all(&line).ok()?;
    Some(s.stdout)
}

/// Spawns `berth-shim <bundle>` (which daemonizes: it is re-parented away from berthd) — or
/// hands the bundle to the standby shim started after the previous spawn — waits until it
/// reports the container created (init stopped before exec) and its control socket
/// listening, and returns the init PID. On failure nothing is left running and the
/// libcontainer state is removed.
pub async fn spawn(shim_binary: &Path, bundle: &Path) -> Result<u32, ShimError> {
    crate::cgroup_warm::kick();
    // `BERTH_SHIM_STANDBY=0` turns standby shims off (to measure what they save).
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled =
        *ENABLED.get_or_init(|| std::env::var_os("BERTH_SHIM_STANDBY").is_none_or(|v| v != "0"));
    let standby = if enabled {
        let s = use_standby(shim_binary, bundle);
        replenish(shim_binary);
        s
    } else {
        None
    };
    let (line, status) = match standby {
        Some(out) => {
            let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(out).map_err(ShimError::Io)?;
            let mut line = String::new();
            BufReader::new(rx)
                .read_line(&mut line)
                .await
                .map_err(ShimError::Io)?;
            (line, "standby shim".to_owned())
        }
        None => {
            let mut child = tokio::process::Command::new(shim_binary)
                .arg(bundle)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(false)
                .spawn()
                .map_err(ShimError::Io)?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| ShimError::Create("shim has no stdout".into()))?;
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .await
                .map_err(ShimError::Io)?;
            let status = child.wait().await.map_err(ShimError::Io)?;
            (line, status.to_string())
        }
    };
    if line.trim().is_empty() {
        return Err(ShimError::Create(format!(
            "failed to create shim task: berth-shim exited without reporting ({status})"
        )));
    }
    #[derive(serde::Deserialize)]
    struct Ready {
        pid: Option<u32>,
        error: Option<String>,
    }
    let r: Ready = serde_json::from_str(line.trim()).map_err(ShimError::Protocol)?;
    match (r.pid, r.error) {
        (_, Some(e)) => Err(ShimError::Create(e)),
        (Some(pid), None) => Ok(pid),
        (None, None) => Err(ShimError::Create(
            "shim reported neither pid nor error".into(),
        )),
    }
}

/// Reads one response line, consuming nothing past its newline: whatever follows belongs
/// to the stream and must stay in the socket. Peeks, then takes exactly the line.
async fn read_line_exact(s: &mut UnixStream) -> Result<Vec<u8>, ShimError> {
    use std::os::fd::AsRawFd;
    let mut resp = Vec::with_capacity(128);
    let mut buf = [0u8; 512];
    loop {
        s.readable().await.map_err(ShimError::Io)?;
        let fd = s.as_raw_fd();
        let peeked = s.try_io(tokio::io::Interest::READABLE, || {
            // SAFETY: recv(2) with MSG_PEEK into our buffer of `buf.len()` bytes.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        let n = match peeked {
            Ok(0) => return Err(ShimError::NotRunning),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(ShimError::Io(e)),
        };
        // Up to and including the newline, or all of it (it is all part of the line).
        let take = buf[..n].iter().position(|b| *b == b'\n').map(|p| p + 1);
        let mut chunk = vec![0u8; take.unwrap_or(n)];
        s.read_exact(&mut chunk).await.map_err(ShimError::Io)?;
        if take.is_some() {
            chunk.pop();
            resp.extend_from_slice(&chunk);
            return Ok(resp);
        }
        resp.extend_from_slice(&chunk);
    }
}

/// Reads `<bundle>/exit.json` if the shim wrote it.
pub fn read_exit_file(bundle: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(bundle.join("exit.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

#[derive(Debug, Clone)]
pub struct ShimClient {
    bundle: PathBuf,
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(bundle: &Path) -> Self {
        Self {
            bundle: bundle.to_path_buf(),
            socket: bundle.join("shim.sock"),
        }
    }

    /// The shim exits right after recording the exit: a request that finds it gone (or
    /// loses it mid-answer) is answered from `exit.json` when there is one.
    fn exited(&self, e: ShimError) -> Result<ExitStatus, ShimError> {
        let gone = match &e {
            ShimError::NotRunning => true,
            ShimError::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        };
        match gone.then(|| read_exit_file(&self.bundle)).flatten() {
            Some(st) => Ok(st),
            None => Err(e),
        }
    }

    async fn connect(&self) -> Result<UnixStream, ShimError> {
        match UnixStream::connect(&self.socket).await {
            Ok(s) => Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ShimError::NotRunning)
            }
            Err(e) => Err(ShimError::Io(e)),
        }
    }

    /// Sends `req` and reads one response line; returns the response and the connection.
    async fn call(&self, req: &Request) -> Result<(Response, UnixStream), ShimError> {
        let mut s = self.connect().await?;
        let mut line = serde_json::to_vec(req).map_err(ShimError::Protocol)?;
        line.push(b'\n');
        s.write_all(&line).await.map_err(ShimError::Io)?;
        let resp = read_line_exact(&mut s).await?;
        let r: Response = serde_json::from_slice(&resp).map_err(ShimError::Protocol)?;
        if let Response::Error { message } = r {
            return Err(ShimError::Request(message));
        }
        Ok((r, s))
    }

    async fn ok(&self, req: &Request) -> Result<(), ShimError> {
        self.call(req).await.map(|_| ())
    }

    /// State of init; once the shim is gone, from `exit.json` (`pid` 0).
    pub async fn state(&self) -> Result<ProcessState, ShimError> {
        match self.call(&Request::State).await {
            Ok((Response::State(s), _)) => Ok(s),
            Ok((other, _)) => Err(ShimError::Request(format!("unexpected answer {other:?}"))),
            Err(e) => self.exited(e).map(|st| ProcessState {
                pid: 0,
                running: false,
                exit: Some(st),
            }),
        }
    }
    pub async fn start(&self) -> Result<(), ShimError> {
        self.ok(&Request::Start).await
    }
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        self.ok(&Request::Kill { signal, all }).await
    }
    pub async fn resize(
        &self,
        exec_id: Option<&str>,
        height: u16,
        width: u16,
    ) -> Result<(), ShimError> {
        self.ok(&Request::Resize {
            exec_id: exec_id.map(str::to_owned),
            height,
            width,
        })
        .await
    }
    /// See [`crate::protocol::Request::Attach`] for the stream's format.
    pub async fn attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<UnixStream, ShimError> {
        Ok(self
            .call(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .await?
            .1)
    }
    /// Returns the exec's PID and its stream (same format as attach).
    pub async fn exec(
        &self,
        exec_id: &str,
        process: ExecProcess,
    ) -> Result<(u32, UnixStream), ShimError> {
        crate::cgroup_warm::kick();
        match self
            .call(&Request::Exec {
                exec_id: exec_id.to_owned(),
                process,
            })
            .await?
        {
            (Response::Ok { pid: Some(pid) }, s) => Ok((pid, s)),
            (other, _) => Err(ShimError::Request(format!("unexpected answer {other:?}"))),
        }
    }
    /// `exit` is `Some` once the exec process has exited.
    pub async fn exec_state(&self, exec_id: &str) -> Result<ProcessState, ShimError> {
        match self
            .call(&Request::ExecState {
                exec_id: exec_id.to_owned(),
            })
            .await?
            .0
        {
            Response::State(s) => Ok(s),
            other => Err(ShimError::Request(format!("unexpected answer {other:?}"))),
        }
    }
    /// Resolves when the init process has exited (also when the shim already recorded the
    /// exit and went away).
    pub async fn wait(&self) -> Result<ExitStatus, ShimError> {
        self.wait_cleanup().await.map(|(s, _)| s)
    }
    /// [`ShimClient::wait`], and what tells when the shim has also deleted the container
    /// (its cgroups and runtime state), which it does after answering.
    pub async fn wait_cleanup(&self) -> Result<(ExitStatus, Cleanup), ShimError> {
        match self.call(&Request::Wait).await {
            Ok((Response::Exited(s), sock)) => Ok((s, Cleanup(Some(sock)))),
            Ok((other, _)) => Err(ShimError::Request(format!("unexpected answer {other:?}"))),
            Err(e) => self.exited(e).map(|s| (s, Cleanup(None))),
        }
    }
    pub async fn shutdown(&self) -> Result<(), ShimError> {
        self.ok(&Request::Shutdown).await
    }
}
