//! The Docker Engine API over a unix socket: plain requests through hyper's HTTP/1
//! client, hijacked attach/exec streams through a hand-written upgrade (so stdin can be
//! half-closed and the raw stream is ours), API version negotiation as docker/cli does.

use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Highest API version this client speaks.
pub const MAX_API_VERSION: &str = "1.47";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// An error answered by the daemon (`{"message": ...}` with a status code).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

/// The daemon could not be reached at all.
#[derive(Debug)]
pub struct ConnectError {
    host: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot connect to the Docker daemon at {}. Is the docker daemon running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

#[derive(Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
    version: String,
}

/// Percent-encode a query component.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn query_string(q: &[(&str, String)]) -> String {
    if q.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

fn cmp_version(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

/// Body of an error response as docker/cli reports it.
fn error_message(status: StatusCode, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                format!("{}", status)
            } else {
                text
            }
        });
    ApiError {
        status: status.as_u16(),
        message,
    }
}

/// A hijacked connection: the raw socket plus bytes already read past the headers.
pub struct Hijacked {
    pub stream: UnixStream,
    pub leftover: Vec<u8>,
}

impl Client {
    /// Resolve the host (`-H`, `DOCKER_HOST`, default) and negotiate the API version.
    pub async fn connect(host: Option<&str>) -> Result<Self> {
        let host = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let socket = match host.strip_prefix("unix://") {
            Some(p) => PathBuf::from(p),
            None if host.starts_with('/') => PathBuf::from(&host),
            None => bail!("unsupported host {host:?}: only unix:// sockets are supported"),
        };
        let mut client = Client {
            host,
            socket,
            version: MAX_API_VERSION.to_string(),
        };
        if let Ok(v) = std::env::var("DOCKER_API_VERSION") {
            if !v.is_empty() {
                client.version = v.trim_start_matches('v').to_string();
                return Ok(client);
            }
        }
        // docker/cli pings and downgrades to the daemon's version when it is older.
        let resp = client
            .send(Method::GET, "/_ping", Full::new(Bytes::new()), None)
            .await?;
        if let Some(v) = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
        {
            if cmp_version(v, MAX_API_VERSION).is_lt() {
                client.version = v.to_string();
            }
        }
        Ok(client)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    fn versioned(&self, path: &str) -> String {
        format!("/v{}{}", self.version, path)
    }

    async fn dial(&self) -> Result<UnixStream> {
        UnixStream::connect(&self.socket).await.map_err(|_| {
            anyhow::Error::new(ConnectError {
                host: self.host.clone(),
            })
        })
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Full<Bytes>,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let stream = self.dial().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake with the daemon")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "docker")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let req = req.body(body).context("building request")?;
        sender
            .send_request(req)
            .await
            .with_context(|| format!("request to {uri}"))
    }

    /// Send a request; non-2xx answers become [`ApiError`]. Returns the streaming body.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Response<Incoming>> {
        let uri = format!("{}{}", self.versioned(path), query_string(query));
        let (body, ct) = match body {
            Some((b, ct)) => (Full::new(Bytes::from(b)), Some(ct)),
            None => (Full::new(Bytes::new()), None),
        };
        let resp = self.send(method, &uri, body, ct).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(error_message(status, &body).into());
        }
        Ok(resp)
    }

    /// Send a request whose body streams from `body` (`load`, large uploads); non-2xx
    /// answers become [`ApiError`].
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        content_type: &str,
    ) -> Result<Response<Incoming>> {
        use futures_util::TryStreamExt;
        let uri = format!("{}{}", self.versioned(path), query_string(query));
        let frames = tokio_util::io::ReaderStream::with_capacity(body, 256 * 1024)
            .map_ok(hyper::body::Frame::data);
        let body = http_body_util::StreamBody::new(frames);
        let stream = self.dial().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake with the daemon")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("Host", "docker")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", content_type)
            .body(body)
            .context("building request")?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("request to {uri}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(error_message(status, &body).into());
        }
        Ok(resp)
    }

    /// Send a request and collect the whole body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Bytes> {
        let resp = self.stream(method, path, query, body).await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Bytes> {
        self.request(Method::GET, path, query, None).await
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let body = self.get(path, query).await?;
        serde_json::from_slice(&body).with_context(|| format!("decoding response of {path}"))
    }

    pub async fn post_json<B: serde::Serialize>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &B,
    ) -> Result<Bytes> {
        let b = serde_json::to_vec(body)?;
        self.request(Method::POST, path, query, Some((b, "application/json")))
            .await
    }

    pub async fn post(&self, path: &str, query: &[(&str, String)]) -> Result<Bytes> {
        self.request(Method::POST, path, query, None).await
    }

    /// Hijack a connection (`Connection: Upgrade`, `Upgrade: tcp`) for attach/exec.
    pub async fn hijack(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Hijacked> {
        let mut stream = self.dial().await?;
        let uri = format!("{}{}", self.versioned(path), query_string(query));
        let body = body.unwrap_or_default();
        let head = format!(
            "POST {uri} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-cli/{}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            if body.is_empty() { "text/plain" } else { "application/json" },
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut buf = Vec::with_capacity(1024);
        let header_end = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("daemon closed the connection during the upgrade");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 64 * 1024 {
                bail!("response headers too large");
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("malformed response: {status_line}"))?;
        let mut leftover = buf[header_end..].to_vec();
        if code == 101 || code == 200 {
            return Ok(Hijacked { stream, leftover });
        }
        // Error: read the body (Content-Length or chunked) and report it.
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let len: Option<usize> = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok());
        let read_more = async {
            loop {
                if let Some(l) = len {
                    if leftover.len() >= l {
                        break;
                    }
                } else if chunked && leftover.windows(5).any(|w| w == b"0\r\n\r\n") {
                    break;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => leftover.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read_more).await;
        let body = if chunked {
            dechunk(&leftover)
        } else {
            leftover
        };
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Err(error_message(status, &body).into())
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..p])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        data = &data[p + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Find the daemon error inside an anyhow chain.
pub fn api_error(err: &anyhow::Error) -> Option<&ApiError> {
    err.chain().find_map(|e| e.downcast_ref::<ApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(
            query_string(&[
                ("filters", r#"{"status":["exited"]}"#.into()),
                ("all", "1".into())
            ]),
            "?filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&all=1"
        );
        assert_eq!(cmp_version("1.41", "1.47"), std::cmp::Ordering::Less);
        assert_eq!(cmp_version("1.100", "1.47"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"5\r\nhello\r\n0\r\n\r\n"), b"hello");
    }
}
