//! Attached I/O as docker/cli's `holdHijackedConnection`: copy the hijacked stream to our
//! stdout/stderr (raw with a TTY, demultiplexed otherwise), forward stdin and half-close
//! on EOF, raw terminal mode, TTY resize on start and SIGWINCH, signal proxying.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::client::{Client, Hijacked};

/// Local stdin as a channel of chunks, read by a plain thread (so a pending read never
/// blocks shutdown; the process exits with `std::process::exit`).
pub fn stdin_channel() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Read one multiplexed frame payload into the matching local stream.
async fn demux<R: AsyncRead + Unpin>(mut r: R) -> Result<()> {
    let mut header = [0u8; 8];
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        match r.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        if header[0] == 2 {
            stderr.write_all(&payload)?;
            stderr.flush()?;
        } else {
            stdout.write_all(&payload)?;
            stdout.flush()?;
        }
    }
}

async fn copy_raw<R: AsyncRead + Unpin>(mut r: R) -> Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut stdout = std::io::stdout();
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
}

/// Copy a stream body (logs) that may be multiplexed or raw.
pub async fn copy_output<R: AsyncRead + Unpin>(r: R, tty: bool) -> Result<()> {
    if tty {
        copy_raw(r).await
    } else {
        demux(r).await
    }
}

/// Pump a hijacked connection until the output ends. With `stdin`, forward it and
/// half-close the connection on EOF (the output keeps flowing until the daemon closes).
pub async fn hold(conn: Hijacked, tty: bool, stdin: Option<mpsc::Receiver<Vec<u8>>>) -> Result<()> {
    let (read_half, mut write_half) = conn.stream.into_split();
    let reader = AsyncReadExt::chain(std::io::Cursor::new(conn.leftover), read_half);
    let output = async move {
        if tty {
            copy_raw(reader).await
        } else {
            demux(reader).await
        }
    };
    match stdin {
        None => {
            // Keep the write half open so the daemon does not see EOF on stdin.
            let r = output.await;
            drop(write_half);
            r
        }
        Some(mut rx) => {
            let input = async move {
                while let Some(chunk) = rx.recv().await {
                    if write_half.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = write_half.shutdown().await;
                std::future::pending::<()>().await;
            };
            tokio::select! {
                r = output => r,
                _ = input => Ok(()),
            }
        }
    }
}

/// Puts the local terminal (stdin) into raw mode; restores it on drop.
pub struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    pub fn enable() -> Self {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // Keep output post-processing so "\n" from our own messages still returns.
        raw.output_flags
            .insert(nix::sys::termios::OutputFlags::OPOST | nix::sys::termios::OutputFlags::ONLCR);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Height and width of the local terminal on stdout, if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: TIOCGWINSZ writes a `winsize` into the valid pointer we pass.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Resize the container (or exec) TTY now and on every SIGWINCH.
pub fn monitor_tty_size(client: Client, resize_path: String) {
    tokio::spawn(async move {
        let resize = |client: Client, path: String| async move {
            if let Some((h, w)) = terminal_size() {
                let _ = client
                    .post(&path, &[("h", h.to_string()), ("w", w.to_string())])
                    .await;
            }
        };
        resize(client.clone(), resize_path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(client.clone(), resize_path.clone()).await;
        }
    });
}

/// Forward the usual catchable signals to the container (docker's `ForwardAllSignals`).
pub fn proxy_signals(client: Client, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let sigs = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGTSTP, "SIGTSTP"),
    ];
    for (num, name) in sigs {
        let Ok(mut s) = signal(SignalKind::from_raw(num)) else {
            continue;
        };
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = client
                    .post(
                        &format!("/containers/{id}/kill"),
                        &[("signal", name.to_string())],
                    )
                    .await;
            }
        });
    }
}
