//! `berth diff` and `berth export`.
use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(serde::Deserialize)]
struct Change {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Kind")]
    kind: u8,
}

pub async fn diff(client: Client, a: DiffArgs) -> Result<i32> {
    let changes: Vec<Change> = client
        .get_json(&format!("/containers/{}/changes", a.container), &[])
        .await?;
    let mut out = std::io::stdout().lock();
    for c in changes {
        let k = match c.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        };
        writeln!(out, "{k} {}", c.path)?;
    }
    Ok(0)
}

pub async fn export(client: Client, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = client
        .stream(
            Method::GET,
            &format!("/containers/{}/export", a.container),
            &[],
            None,
        )
        .await?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("failed to export container: {p}"))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the export stream")?;
        if let Some(data) = frame.data_ref() {
            out.write_all(data)?;
        }
    }
    out.flush()?;
    Ok(0)
}
