//! `exec_die`: follows an exec's stream; when it ends (the process exited and its output
//! drained) or the client lets go, waits for the exit status from the shim and publishes
//! Docker's `exec_die` event with `execID` and `exitCode`.
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::container::Containers;

/// A stream that tells when it reached its end or was dropped.
pub struct Watched<S> {
    inner: S,
    done: Option<oneshot::Sender<()>>,
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(res) = &r {
            if res.is_err() || buf.filled().len() == before {
                if let Some(d) = self.done.take() {
                    let _ = d.send(());
                }
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Wraps an exec's stream; `exited(code)` runs once the exit status is known, after the
/// `exec_die` event.
pub fn watch<S>(
    stream: S,
    containers: Arc<Containers>,
    container_id: String,
    exec_id: String,
    exited: impl FnOnce(i64) + Send + 'static,
) -> Watched<S> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = rx.await;
        let shim = containers.shim(&container_id);
        // The stream may end a moment before the shim has reaped the process.
        let mut code = None;
        let mut delay = Duration::from_millis(5);
        for _ in 0..400 {
            match shim.exec_state(&exec_id).await {
                Ok(st) => {
                    if let Some(e) = st.exit {
                        code = Some(e.code as i64);
                        break;
                    }
                }
                // The shim is gone with the container: so is the exec.
                Err(_) => {
                    code = Some(137);
                    break;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
        let Some(code) = code else { return };
        if let Ok(c) = containers.get(&container_id) {
            containers.emit(
                &c,
                "exec_die",
                &[("execID", exec_id), ("exitCode", code.to_string())],
            );
        }
        exited(code);
    });
    Watched {
        inner: stream,
        done: Some(tx),
    }
}
