//! Wire types of the shim control socket (`<bundle>/shim.sock`).
//!
//! Every request is a fresh unix-socket connection: the client writes one JSON
//! [`Request`] followed by `\n`, the shim answers one JSON [`Response`] followed by `\n`.
//! For `Attach` and `Exec` the connection then turns into a byte stream (see
//! [`Request::Attach`]). `Wait` answers only once the container has exited.
use serde::{Deserialize, Serialize};

/// Written by berthd to `<bundle>/shim.json` before spawning `berth-shim <bundle>`.
/// `<bundle>/config.json` is the OCI runtime spec (rootfs already mounted by berthd at the
/// path the spec names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container ID (64 hex chars).
    pub id: String,
    /// libcontainer state root shared by all containers of this berthd (`<exec-root>/runtime`).
    pub runtime_root: std::path::PathBuf,
    /// json-file log path (`<data-root>/containers/<id>/<id>-json.log`); `None` = log driver none.
    pub log_path: Option<std::path::PathBuf>,
    /// Rotate when the current file would exceed this many bytes (0 = never rotate).
    pub log_max_size: u64,
    /// Number of files kept including the current one (>= 1). Rotated files are
    /// `<log_path>.1` (newest) .. `<log_path>.<max_file-1>`.
    pub log_max_file: u32,
    /// Allocate a pty for the init process (stdout and stderr merged, raw stream).
    pub tty: bool,
    /// Keep a stdin pipe (or the pty input) open for attach clients.
    pub open_stdin: bool,
    /// Close the container's stdin after the first attached client detaches / half-closes.
    pub stdin_once: bool,
    /// Initial pty size (rows, cols), if known.
    pub console_size: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Current state of the init process.
    State,
    /// Start the created init process (it was created, stopped before exec, when the shim
    /// reported ready).
    Start,
    /// Send a signal to the init process, or to every process of the container when `all`.
    Kill { signal: i32, all: bool },
    /// Resize the pty of the init process (`exec_id: None`) or of an exec.
    Resize {
        exec_id: Option<String>,
        height: u16,
        width: u16,
    },
    /// After an `Ok` response the connection is a stream. shim → client: with a TTY raw pty
    /// output bytes; without, Docker's multiplexed frames (8-byte header: stream type
    /// 1=stdout 2=stderr, three zero bytes, big-endian u32 length; then the payload).
    /// client → shim: raw stdin bytes (only if `stdin`); a write half-close means stdin EOF
    /// (the container's stdin is closed when the container has `stdin_once`).
    /// The shim closes the stream once the process exited and its output is drained.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Start a new process in the running container. After an `Ok { pid }` response the
    /// connection is a stream exactly like `Attach` (stdin only if `process.stdin`).
    /// Output of an exec is not written to the container log.
    Exec {
        exec_id: String,
        process: ExecProcess,
    },
    /// State of an exec started on this shim.
    ExecState { exec_id: String },
    /// Answered when the init process has exited (immediately if it already has).
    Wait,
    /// Tell the shim to exit now (after the container exited). Used by berthd when it has
    /// collected the exit status.
    Shutdown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub stdin: bool,
    pub console_size: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    State(ProcessState),
    Exited(ExitStatus),
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessState {
    pub pid: u32,
    pub running: bool,
    /// Set once exited.
    pub exit: Option<ExitStatus>,
}

/// Also persisted by the shim, atomically, as `<bundle>/exit.json` before it answers
/// waiters, so berthd learns the status even if it was down when the container exited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitStatus {
    /// Exit code; 128+signal when killed by a signal.
    pub code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub exited_at: String,
    pub oom_killed: bool,
}
