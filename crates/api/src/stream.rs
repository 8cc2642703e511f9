//! Stream framing and connection hijacking (attach / exec start).
//!
//! Docker's multiplexed framing: an 8-byte header (stream type 0=stdin 1=stdout 2=stderr,
//! three zero bytes, big-endian u32 payload length) before each payload. With a TTY the
//! stream is raw.
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::Session;

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Frames `data` with Docker's 8-byte multiplex header.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.put_u8(stream);
    b.put_bytes(0, 3);
    b.put_u32(data.len() as u32);
    b.put_slice(data);
    b.freeze()
}

fn content_type(tty: bool) -> HeaderValue {
    HeaderValue::from_static(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM })
}

/// Answers a hijack request: `101 UPGRADED` when the client asked for an upgrade (docker
/// CLI, bollard), else a plain `200` streaming the output only. Once upgraded, pumps the
/// session: process output → client; client input → process stdin (a client write
/// half-close becomes stdin EOF). The connection closes when the process output ends.
pub fn hijack(mut req: Request, session: Session) -> Response {
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| !v.is_empty());
    let tty = session.tty;
    if !wants_upgrade {
        let body = async_stream_body(session);
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, content_type(tty));
        return resp;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        match session.stream.await {
            Ok(process) => pump(client, process, session.stdin).await,
            Err(msg) if !msg.is_empty() => {
                let _ = client.write_all(&error_bytes(&msg, tty)).await;
                let _ = client.shutdown().await;
            }
            Err(_) => {}
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(tty));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

async fn pump<C, P>(client: C, process: P, stdin: bool)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    P: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut pr, mut pw) = tokio::io::split(process);
    let output = async {
        let _ = tokio::io::copy(&mut pr, &mut cw).await;
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
    };
    let input = async {
        if stdin {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if pw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = pw.shutdown().await;
        }
        // Without stdin (or after EOF) keep the process side open until output ends.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
}

/// An error after the hijack: a line on stdout (moby writes `err + "\r\n"`).
fn error_bytes(msg: &str, tty: bool) -> Bytes {
    let line = format!("{msg}\r\n");
    if tty {
        Bytes::from(line)
    } else {
        frame(1, line.as_bytes())
    }
}

fn async_stream_body(session: Session) -> Body {
    let tty = session.tty;
    let s = futures_util::stream::once(session.stream).flat_map(move |p| match p {
        Ok(p) => tokio_util::io::ReaderStream::new(p).left_stream(),
        Err(msg) => {
            let first = (!msg.is_empty()).then(|| Ok::<_, std::io::Error>(error_bytes(&msg, tty)));
            futures_util::stream::iter(first).right_stream()
        }
    });
    Body::from_stream(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header() {
        let f = frame(2, b"hey");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'e', b'y']);
    }
}
