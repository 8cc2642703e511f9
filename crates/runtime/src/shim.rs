//! The `berth-shim` process: one per container, single-threaded, no async runtime.
//!
//! Life: `berth-shim <bundle>` forks and the first process exits at once, so the shim is
//! nobody's child; the daemon child writes its readiness line (`{"pid":N}` or
//! `{"error":…}`) straight to berthd's pipe (inherited stdout), then points its stdio at
//! /dev/null. berthd reads one line, not EOF: the container's init holds a copy of the pipe
//! until libcontainer closes extra descriptors before exec.
//! The shim becomes a child subreaper, creates the container with libcontainer (init
//! blocked before exec), listens on `<bundle>/shim.sock` and serves
//! [`crate::protocol::Request`]s from a `poll(2)` loop that also pumps stdio into the
//! json-file log and to attached clients. When init exits it drains the output, persists
//! `exit.json`, answers waiters, deletes the libcontainer state (cgroups) and exits.
mod conn;
mod executor;
pub mod log;
mod memory;
mod requests;
mod security;
mod server;
mod stdio;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::protocol::ShimConfig;

/// Why the shim could not bring the container up (reported to berthd as `{"error":…}`).
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}")]
    Setup {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// libcontainer refused to create the container; the message is Docker-worded.
    #[error("{0}")]
    Create(String),
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    // Nothing berthd leaked (listeners, pipes) may stay open in a long-lived shim.
    close_inherited_fds();
    let Some(arg) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-shim <bundle> | --standby");
        return 2;
    };
    if arg == STANDBY_ARG {
        return standby();
    }
    let Some((bundle, cfg)) = load(&PathBuf::from(arg)) else {
        return 1;
    };
    let Some(ready) = ready_fd() else { return 1 };
    // SAFETY: the process is single-threaded here (nothing has spawned a thread), so the
    // child may continue running arbitrary code.
    match unsafe { nix::unistd::fork() } {
        // berthd learns the outcome from the child; exiting now re-parents it.
        Ok(nix::unistd::ForkResult::Parent { .. }) => 0,
        Ok(nix::unistd::ForkResult::Child) => {
            daemon(bundle, cfg, ready);
            0
        }
        Err(e) => fail(format!("fork: {e}")),
    }
}

/// `berth-shim --standby`: started ahead of need by berthd (`crate::client::spawn`). Forks
/// at once (the first process exits, the shim is nobody's child), then waits for one bundle
/// path on stdin and serves it like `berth-shim <bundle>`; EOF (berthd gone or done with
/// it) ends it. Exec, dynamic linking and daemonizing are then off the `start` path.
pub const STANDBY_ARG: &str = "--standby";

fn standby() -> i32 {
    // SAFETY: single-threaded here, as in `main`.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => 0,
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir("/");
            let mut line = String::new();
            match std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {}
                _ => return 0,
            }
            // Started at berthd's low standby priority; the container gets the normal one.
            // SAFETY: setpriority on this (single-threaded) process; no memory involved.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
            let Some((bundle, cfg)) = load(Path::new(line.trim_end_matches('\n'))) else {
                return 1;
            };
            let Some(ready) = ready_fd() else { return 1 };
            daemon(bundle, cfg, ready);
            0
        }
        Err(e) => fail(format!("fork: {e}")),
    }
}

/// Reports a failure before the daemon runs (on stdout, berthd's pipe).
fn fail(msg: String) -> i32 {
    println!("{}", serde_json::json!({ "error": msg }));
    1
}

/// The canonical bundle path and its `shim.json`, or None after reporting why not.
fn load(arg: &Path) -> Option<(PathBuf, ShimConfig)> {
    let bundle = match std::fs::canonicalize(arg) {
        Ok(b) => b,
        Err(e) => {
            fail(format!("bundle {}: {e}", arg.display()));
            return None;
        }
    };
    let shim_json = bundle.join("shim.json");
    match std::fs::read(&shim_json)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => Some((bundle, c)),
        Err(e) => {
            fail(format!("reading {}: {e}", shim_json.display()));
            None
        }
    }
}

/// The readiness channel: our stdout (berthd's pipe), moved off fd 1 so that pointing the
/// standard descriptors at /dev/null leaves it open, and close-on-exec.
fn ready_fd() -> Option<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on stdout; the result is a new descriptor or -1.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        fail(format!("dup: {}", std::io::Error::last_os_error()));
        return None;
    }
    // SAFETY: fcntl just returned this descriptor to us.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The long-lived shim: own session, no cwd held, stdio detached, then serve.
fn daemon(bundle: PathBuf, cfg: ShimConfig, ready: OwnedFd) {
    let _ = nix::unistd::setsid();
    // Hold no directory of berthd's busy.
    let _ = std::env::set_current_dir("/");
    detach_stdio();
    debug_log();
    server::run(bundle, cfg, ready);
}

/// Closes every descriptor above stderr.
fn close_inherited_fds() {
    // SAFETY: close_range(2) on descriptors nobody in this fresh process uses yet.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r != 0 {
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect();
            for fd in fds {
                // SAFETY: closing an inherited descriptor (the directory's own is closed too, harmlessly).
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// With `BERTH_SHIM_LOG=<file>`, libcontainer's own tracing goes to that file (debugging).
fn debug_log() {
    if let Some(path) = std::env::var_os("BERTH_SHIM_LOG") {
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(f))
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .try_init();
        }
    }
}

/// Points fds 0-2 at /dev/null: the shim outlives berthd's pipes.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Reports readiness (or the failure) to the relaying parent.
pub(crate) fn report(wr: OwnedFd, value: serde_json::Value) {
    let mut f = std::fs::File::from(wr);
    // One write: berthd reads up to the newline.
    let _ = f.write_all(format!("{value}\n").as_bytes());
}

/// Writes a file atomically (temp + fsync + rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A pipe pair (read, write), close-on-exec.
pub(crate) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

pub(crate) fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Receives one fd sent with SCM_RIGHTS on a connected unix socket.
pub(crate) fn recv_fd(sock: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(std::io::Error::other(
        "no file descriptor received on the console socket",
    ))
}

/// The whole `source()` chain of an error, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let m = x.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = x.source();
    }
    s
}

/// Now, RFC 3339 with nanoseconds, UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's (runc's) wording for a process that could not be started, from libcontainer's
/// error chain: `exec: "x": executable file not found in $PATH`, `permission denied`, ….
pub(crate) fn docker_start_error(chain: &str, argv0: &str) -> String {
    if chain.contains("not found in $PATH") {
        if argv0.contains('/') {
            return format!("exec: \"{argv0}\": stat {argv0}: no such file or directory");
        }
        return format!("exec: \"{argv0}\": executable file not found in $PATH");
    }
    if chain.contains("does not have correct permissions") || chain.contains("EACCES") {
        return format!("exec: \"{argv0}\": permission denied");
    }
    if chain.contains("executing") && chain.contains("ENOENT") {
        return format!("exec: \"{argv0}\": no such file or directory");
    }
    format!("error during container init: {chain}")
}

/// A failed container create, worded as Docker reports it (berthd prefixes
/// `failed to create task for container: `).
pub(crate) fn create_error(chain: &str, argv0: &str) -> String {
    format!(
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {}: unknown",
        docker_start_error(chain, argv0)
    )
}

/// A failed exec, worded as Docker reports it (berthd prefixes `OCI runtime exec failed: `).
pub(crate) fn exec_error(chain: &str, argv0: &str) -> String {
    format!(
        "exec failed: unable to start container process: {}: unknown",
        docker_start_error(chain, argv0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_wording() {
        let m = create_error(
            "failed to create container: executable 'nosuchcmd' not found in $PATH",
            "nosuchcmd",
        );
        assert_eq!(
            m,
            "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH: unknown"
        );
        assert!(exec_error("x not found in $PATH", "/no")
            .contains("exec: \"/no\": stat /no: no such file or directory"));
        assert!(exec_error(
            "executable 'x' at path '\"/x\"' does not have correct permissions",
            "x"
        )
        .contains("exec: \"x\": permission denied"));
        assert!(create_error("mount failed", "sh")
            .contains("error during container init: mount failed: unknown"));
    }

    #[test]
    fn atomic_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert!(!d.path().join("exit.tmp").exists());
    }
}
