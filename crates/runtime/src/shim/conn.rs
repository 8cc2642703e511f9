//! Control-socket connections: a [`Pending`] connection until its request line arrived, then
//! for `Attach` / `Exec` an attached [`Stream`] that gets the process's output (Docker's
//! multiplexed frames, or raw with a TTY) and feeds its input. Nothing here blocks: output
//! for a client that does not read is dropped beyond [`CLIENT_BUF_MAX`].
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Per-client output bound: a slow reader loses output rather than stalling the container.
pub const CLIENT_BUF_MAX: usize = 1 << 20;
/// Longest accepted request line.
const REQUEST_MAX: usize = 1 << 20;

/// A connection whose request line has not fully arrived yet.
pub struct Pending {
    pub sock: UnixStream,
    buf: Vec<u8>,
    pub since: Instant,
    /// EOF or garbage before a full request: drop at the next housekeeping.
    pub dead: bool,
}

/// What reading a pending connection produced.
pub enum Progress {
    /// Not complete yet.
    More,
    /// The request line (without `\n`) and any bytes that followed it (stream input).
    Line(String, Vec<u8>),
    /// EOF, error or garbage: drop the connection.
    Drop,
}

impl Pending {
    pub fn new(sock: UnixStream) -> Pending {
        Pending {
            sock,
            buf: Vec::new(),
            since: Instant::now(),
            dead: false,
        }
    }

    pub fn read(&mut self, scratch: &mut [u8]) -> Progress {
        loop {
            match self.sock.read(scratch) {
                Ok(0) => return Progress::Drop,
                Ok(n) => {
                    let start = self.buf.len();
                    self.buf.extend_from_slice(&scratch[..n]);
                    if let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
                        let extra = self.buf.split_off(start + pos + 1);
                        self.buf.pop();
                        return match String::from_utf8(std::mem::take(&mut self.buf)) {
                            Ok(line) => Progress::Line(line, extra),
                            Err(_) => Progress::Drop,
                        };
                    }
                    if self.buf.len() > REQUEST_MAX {
                        return Progress::Drop;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::More,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Drop,
            }
        }
    }
}

/// Which process a stream is attached to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Target {
    Init,
    Exec(String),
}

/// An attach or exec stream.
pub struct Stream {
    pub sock: UnixStream,
    pub target: Target,
    pub stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    out: Vec<u8>,
    /// The client half-closed (or the stream has no input).
    pub read_closed: bool,
    /// Close once `out` is flushed (the process is gone and drained).
    pub closing: bool,
    pub dead: bool,
}

impl Stream {
    pub fn new(
        sock: UnixStream,
        target: Target,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> Stream {
        Stream {
            sock,
            target,
            stdin,
            stdout,
            stderr,
            tty,
            out: Vec::new(),
            read_closed: false,
            closing: false,
            dead: false,
        }
    }

    /// Queues output of `stream` (1 = stdout, 2 = stderr) and writes what the socket takes.
    pub fn push(&mut self, stream: u8, data: &[u8]) {
        if (stream == 1 && !self.stdout) || (stream == 2 && !self.stderr) || self.dead {
            return;
        }
        if self.out.len() + data.len() + 8 > CLIENT_BUF_MAX {
            return;
        }
        if !self.tty {
            self.out.push(stream);
            self.out.extend_from_slice(&[0, 0, 0]);
            self.out
                .extend_from_slice(&(data.len() as u32).to_be_bytes());
        }
        self.out.extend_from_slice(data);
        self.flush();
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
    }

    /// Whether the stream can be dropped now.
    pub fn finished(&self) -> bool {
        self.dead || (self.closing && self.out.is_empty())
    }
}
