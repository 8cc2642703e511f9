//! Stdio of a container process (init or exec): pipes, or a pty whose master libcontainer
//! hands over through a console socket; plus the non-blocking stdin feeding.
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::{pipe, recv_fd, set_nonblocking};

/// The shim's ends of one process's stdio.
#[derive(Default)]
pub struct ProcIo {
    /// pty master (input and output) when the process has a terminal.
    pub pty: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Write end of the process's stdin pipe.
    pub stdin: Option<OwnedFd>,
    /// Client input not yet accepted by the process.
    pub stdin_buf: Vec<u8>,
    /// Close stdin (or send EOF on the pty) once `stdin_buf` is written.
    pub close_stdin_when_flushed: bool,
}

/// Bound of buffered client input per process: beyond it input is dropped.
const STDIN_BUF_MAX: usize = 1 << 20;

impl ProcIo {
    /// Whether some output source is still open.
    pub fn output_open(&self) -> bool {
        self.pty.is_some() || self.stdout.is_some() || self.stderr.is_some()
    }

    /// Where client input goes: the pty master, or the stdin pipe.
    pub fn input_fd(&self) -> Option<RawFd> {
        self.pty
            .as_ref()
            .or(self.stdin.as_ref())
            .map(|f| f.as_raw_fd())
    }

    /// Drops the output source `fd` (EOF or error).
    pub fn close_output(&mut self, fd: RawFd) {
        for slot in [&mut self.pty, &mut self.stdout, &mut self.stderr] {
            if slot.as_ref().is_some_and(|f| f.as_raw_fd() == fd) {
                *slot = None;
            }
        }
    }

    /// Queues client input and writes as much as the process accepts without blocking.
    pub fn feed(&mut self, data: &[u8]) {
        if self.input_fd().is_none() || self.stdin_buf.len() + data.len() > STDIN_BUF_MAX {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.flush_stdin();
    }

    /// Ends the input once what is queued is written.
    pub fn close_stdin(&mut self) {
        self.close_stdin_when_flushed = true;
        self.flush_stdin();
    }

    pub fn flush_stdin(&mut self) {
        let fd = self.pty.as_ref().or(self.stdin.as_ref());
        if let Some(fd) = fd {
            while !self.stdin_buf.is_empty() {
                match nix::unistd::write(fd.as_fd(), &self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(nix::errno::Errno::EAGAIN) => return,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => {
                        // The reader is gone: nothing more will be consumed.
                        self.stdin_buf.clear();
                        self.stdin = None;
                        break;
                    }
                }
            }
        } else {
            self.stdin_buf.clear();
        }
        if self.close_stdin_when_flushed && self.stdin_buf.is_empty() {
            if let Some(pty) = &self.pty {
                // A terminal has no half-close: send EOF (^D) as a terminal would.
                let _ = nix::unistd::write(pty.as_fd(), &[4u8]);
            }
            self.stdin = None;
            self.close_stdin_when_flushed = false;
        }
    }
}

/// What a process about to be created needs: the child's ends (or a console socket) and
/// the shim's ends.
pub struct Stdio {
    /// Console socket for a pty process: libcontainer connects and sends the master.
    pub console: Option<(UnixListener, PathBuf)>,
    pub child_stdin: Option<OwnedFd>,
    pub child_stdout: Option<OwnedFd>,
    pub child_stderr: Option<OwnedFd>,
    pub io: ProcIo,
}

impl Stdio {
    /// Hands the child's ends (or the console socket) and the shim's executor to a
    /// libcontainer builder: the same for init and exec'd processes.
    pub fn wire(
        &mut self,
        b: libcontainer::container::builder::ContainerBuilder,
        executor: super::executor::ShimExecutor,
    ) -> libcontainer::container::builder::ContainerBuilder {
        let mut b = b
            .with_executor(executor)
            .with_console_socket(self.console.as_ref().map(|(_, p)| p.clone()));
        if let Some(fd) = self.child_stdin.take() {
            b = b.with_stdin(fd);
        }
        if let Some(fd) = self.child_stdout.take() {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = self.child_stderr.take() {
            b = b.with_stderr(fd);
        }
        b
    }

    /// A console socket at `<bundle>/<name>.sock` for a tty process, else pipes; stdin is
    /// a pipe when `stdin`, else /dev/null.
    pub fn new(bundle: &Path, name: &str, tty: bool, stdin: bool) -> std::io::Result<Stdio> {
        if tty {
            let path = bundle.join(format!("{name}.sock"));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)?;
            return Ok(Stdio {
                console: Some((l, path)),
                child_stdin: None,
                child_stdout: None,
                child_stderr: None,
                io: ProcIo::default(),
            });
        }
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        let mut io = ProcIo {
            stdout: Some(or),
            stderr: Some(er),
            ..Default::default()
        };
        let child_stdin = if stdin {
            let (ir, iw) = pipe()?;
            io.stdin = Some(iw);
            ir
        } else {
            OwnedFd::from(std::fs::File::open("/dev/null")?)
        };
        Ok(Stdio {
            console: None,
            child_stdin: Some(child_stdin),
            child_stdout: Some(ow),
            child_stderr: Some(ew),
            io,
        })
    }

    /// Removes the console socket file, if any (after a failed create).
    pub fn discard(self) {
        if let Some((_, path)) = &self.console {
            let _ = std::fs::remove_file(path);
        }
    }

    /// After the process was created: receives the pty master (sized to `size`), makes
    /// every shim end non-blocking and returns them.
    pub fn finish(self, size: Option<(u16, u16)>) -> std::io::Result<ProcIo> {
        let mut io = self.io;
        if let Some((l, path)) = self.console {
            let _ = std::fs::remove_file(&path);
            // libcontainer sent the master before the process reported ready: never wait.
            l.set_nonblocking(true)?;
            let (sock, _) = l.accept()?;
            sock.set_nonblocking(false)?;
            let fd = recv_fd(&sock)?;
            if let Some((h, w)) = size {
                let _ = set_winsize(fd.as_raw_fd(), h, w);
            }
            io.pty = Some(fd);
        }
        for fd in [
            io.pty.as_ref(),
            io.stdout.as_ref(),
            io.stderr.as_ref(),
            io.stdin.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            set_nonblocking(fd.as_raw_fd());
        }
        Ok(io)
    }
}

/// TIOCSWINSZ on a pty master.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize; `fd` is a pty master owned by the caller.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
