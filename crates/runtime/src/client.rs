//! Async client for `berth-shim`, used by berthd (tokio).
//!
//! Glossary: the *bundle* is `<exec-root>/containers/<id>/`: it holds `config.json` (OCI
//! spec), `shim.json` ([`crate::protocol::ShimConfig`]), and once the shim runs,
//! `shim.sock`, `shim.pid` and finally `exit.json`.
//!
//! ```ignore
//! let pid = client::spawn(&shim_bin, &bundle).await?;  // container created, not started
//! let shim = ShimClient::new(&bundle);
//! let stream = shim.attach(false, true, true).await?;  // optional
//! shim.start().await?;
//! let status = shim.wait().await?;
//! ```
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use crate::protocol::{ExecProcess, ExitStatus, ProcessState};

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

/// Spawns `berth-shim <bundle>` (which daemonizes: it is re-parented away from berthd),
/// waits until it reports the container created (init stopped before exec) and its control
/// socket listening, and returns the init PID. On failure nothing is left running and the
/// libcontainer state is removed.
pub async fn spawn(shim_binary: &Path, bundle: &Path) -> Result<u32, ShimError> {
    let _ = (shim_binary, bundle);
    unimplemented!("helper A implements")
}

/// Reads `<bundle>/exit.json` if the shim wrote it.
pub fn read_exit_file(bundle: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(bundle.join("exit.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(bundle: &Path) -> Self {
        Self { socket: bundle.join("shim.sock") }
    }
    pub async fn state(&self) -> Result<ProcessState, ShimError> {
        unimplemented!()
    }
    pub async fn start(&self) -> Result<(), ShimError> {
        unimplemented!()
    }
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        let _ = (signal, all);
        unimplemented!()
    }
    pub async fn resize(&self, exec_id: Option<&str>, height: u16, width: u16) -> Result<(), ShimError> {
        let _ = (exec_id, height, width);
        unimplemented!()
    }
    /// See [`crate::protocol::Request::Attach`] for the stream's format.
    pub async fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream, ShimError> {
        let _ = (stdin, stdout, stderr);
        unimplemented!()
    }
    /// Returns the exec's PID and its stream (same format as attach).
    pub async fn exec(&self, exec_id: &str, process: ExecProcess) -> Result<(u32, UnixStream), ShimError> {
        let _ = (exec_id, process);
        unimplemented!()
    }
    /// `exit` is `Some` once the exec process has exited.
    pub async fn exec_state(&self, exec_id: &str) -> Result<ProcessState, ShimError> {
        let _ = exec_id;
        unimplemented!()
    }
    /// Resolves when the init process has exited.
    pub async fn wait(&self) -> Result<ExitStatus, ShimError> {
        unimplemented!()
    }
    pub async fn shutdown(&self) -> Result<(), ShimError> {
        unimplemented!()
    }
}
