//! `berth save` and `berth load`: docker-archive tars to and from the daemon, streamed
//! (never whole in memory).

use std::io::IsTerminal;

use anyhow::{Context as _, Result};
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::status;
use crate::client::Client;

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Save only the given platform variant (linux/amd64 only)
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Load only the given platform variant (linux/amd64 only)
    #[arg(long)]
    pub platform: Option<String>,
}

fn check_platform(p: &Option<String>) -> Result<()> {
    match p.as_deref() {
        None | Some("") | Some("linux") | Some("linux/amd64") => Ok(()),
        Some(other) => Err(status(
            1,
            Some(format!(
                "Error response from daemon: platform {other} is not available: berth runs linux/amd64"
            )),
        )),
    }
}

pub async fn save(client: Client, a: SaveArgs) -> Result<i32> {
    check_platform(&a.platform)?;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(status(
            1,
            Some(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect".to_string(),
            ),
        ));
    }
    let q: Vec<(&str, String)> = a.images.iter().map(|n| ("names", n.clone())).collect();
    let resp = client.stream(Method::GET, "/images/get", &q, None).await?;
    // Into a temporary file beside the target, renamed when whole (as docker's AtomicWriteFile).
    let (mut out, tmp): (
        Box<dyn tokio::io::AsyncWrite + Unpin>,
        Option<(String, String)>,
    ) = match &a.output {
        Some(path) => {
            let tmp = format!("{path}.tmp-{}", std::process::id());
            let f = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("failed to save image: invalid output path: {path}"))?;
            (Box::new(f), Some((tmp, path.clone())))
        }
        None => (Box::new(tokio::io::stdout()), None),
    };
    let mut body = resp.into_body();
    let res: Result<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the archive from the daemon")?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await?;
            }
        }
        out.flush().await?;
        Ok(())
    }
    .await;
    drop(out);
    match (res, tmp) {
        (Ok(()), Some((tmp, path))) => {
            tokio::fs::rename(&tmp, &path).await?;
            Ok(0)
        }
        (Ok(()), None) => Ok(0),
        (Err(e), tmp) => {
            if let Some((tmp, _)) = tmp {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            Err(e)
        }
    }
}

pub async fn load(client: Client, a: LoadArgs) -> Result<i32> {
    check_platform(&a.platform)?;
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match &a.input {
        Some(p) => Box::new(
            tokio::fs::File::open(p)
                .await
                .with_context(|| format!("open {p}"))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(status(
                    1,
                    Some("requested load from stdin, but stdin is empty".to_string()),
                ));
            }
            Box::new(tokio::io::stdin())
        }
    };
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let q = vec![("quiet", if quiet { "1" } else { "0" }.to_string())];
    let resp = client
        .upload(Method::POST, "/images/load", &q, input, "application/x-tar")
        .await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or_default();
        if let Some(err) = v["error"].as_str() {
            return Err(status(1, Some(err.to_string())));
        }
        if let Some(s) = v["stream"].as_str() {
            if !a.quiet || s.starts_with("Loaded image") {
                print!("{s}");
            }
        } else if let Some(st) = v["status"].as_str() {
            if !quiet {
                println!("{}: {st}", v["id"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(0)
}
