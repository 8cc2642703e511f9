//! Lingering close of API connections, as Go's net/http (and so dockerd) closes them.
//!
//! A handler may answer before it has read the request body: a bad `path` on
//! `PUT /containers/{id}/archive`, an unknown container, a refused upload. hyper then ends
//! the connection without reading the rest. A client still writing that body gets EPIPE
//! (unix socket) or a reset (TCP) on its next write, and most clients, the docker CLI among
//! them, give up on that error without reading the answer that is already waiting for them.
//!
//! So each connection, once hyper is done with it, shuts down its write side (the client
//! reads the answer and then EOF) and reads and discards what the client still sends, until
//! the client closes, for at most [`LINGER`] and [`LINGER_BYTES`], before the socket is
//! closed. When the client has already closed, which is the usual case, that is one read.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{UnixListener, UnixStream};

/// How long a closed connection waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(2);
/// How much of an unread body it discards before it closes anyway.
const LINGER_BYTES: usize = 64 << 20;

/// A unix listener whose connections linger on close (see the module doc).
pub struct Listener(pub UnixListener);

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (s, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (Stream(Some(s)), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// An accepted connection; dropping it hands the socket to [`linger`].
pub struct Stream(Option<UnixStream>);

impl Stream {
    fn inner(&mut self) -> Pin<&mut UnixStream> {
        Pin::new(self.0.as_mut().expect("stream used after drop"))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let (Some(s), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(linger(s));
        }
    }
}

/// Shuts the write side, then discards input until EOF, [`LINGER`] or [`LINGER_BYTES`].
async fn linger(mut s: UnixStream) {
    let _ = s.shutdown().await;
    // Usually the client has closed already and the first read returns 0: a small buffer,
    // part of the task, rather than a heap buffer for every connection.
    let mut buf = [0u8; 8 << 10];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner().poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use axum::routing::put;
    use axum::Router;

    /// The answer to a request whose body the handler never reads reaches a client that
    /// writes the body only after the headers, as the docker CLI and the e2e harness do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn early_answer_reaches_a_client_still_sending() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let listener = super::Listener(tokio::net::UnixListener::bind(&sock).unwrap());
        let app = Router::new().route(
            "/x",
            put(|| async { (axum::http::StatusCode::BAD_REQUEST, "refused") }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let body = vec![7u8; 4 << 20];
        let out = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            let head = format!(
                "PUT /x HTTP/1.1\r\nHost: d\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            // Let the server answer and finish with the connection first.
            std::thread::sleep(std::time::Duration::from_millis(200));
            s.write_all(&body)
                .expect("body write after an early answer");
            let mut raw = String::new();
            s.read_to_string(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        assert!(out.ends_with("refused"), "{out}");
    }
}
