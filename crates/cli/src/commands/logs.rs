//! `logs`: fetch (or follow) a container's log stream, demultiplexed to stdout/stderr.

use anyhow::Result;
use clap::Args;
use futures_util::TryStreamExt;
use http_body_util::BodyDataStream;
use hyper::Method;
use serde_json::Value;
use tokio_util::io::StreamReader;

use super::parse_timestamp;
use crate::client::Client;
use crate::stream;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Turn a streaming response body into an `AsyncRead`.
pub fn body_reader(body: hyper::body::Incoming) -> impl tokio::io::AsyncRead + Unpin + Send {
    StreamReader::new(BodyDataStream::new(body).map_err(std::io::Error::other))
}

pub async fn logs(client: Client, a: LogsArgs) -> Result<i32> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", a.container), &[])
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("tail", a.tail.clone()),
    ];
    if let Some(s) = &a.since {
        q.push(("since", parse_timestamp(s)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", parse_timestamp(u)?));
    }
    if a.timestamps {
        q.push(("timestamps", "1".to_string()));
    }
    if a.follow {
        q.push(("follow", "1".to_string()));
    }
    if a.details {
        q.push(("details", "1".to_string()));
    }
    let resp = client
        .stream(
            Method::GET,
            &format!("/containers/{}/logs", a.container),
            &q,
            None,
        )
        .await?;
    stream::copy_output(body_reader(resp.into_body()), tty).await?;
    Ok(0)
}
