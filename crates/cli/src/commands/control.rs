//! `berth rename`.
use anyhow::Result;
use clap::Args;

use super::Failures;
use crate::client::Client;

#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub async fn rename(client: Client, a: RenameArgs) -> Result<i32> {
    let mut failures = Failures::default();
    if let Err(e) = client
        .post(
            &format!("/containers/{}/rename", a.container),
            &[("name", a.new_name.clone())],
        )
        .await
    {
        failures.push(&e);
    }
    failures.finish()
}

#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options passed to ps (default -ef)
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Top {
    #[serde(rename = "Titles", default)]
    titles: Vec<String>,
    #[serde(rename = "Processes", default)]
    processes: Vec<Vec<String>>,
}

/// `docker top`: a table aligned as docker's (`tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)`).
pub async fn top(client: Client, a: TopArgs) -> Result<i32> {
    let mut q = Vec::new();
    if !a.ps_args.is_empty() {
        q.push(("ps_args", a.ps_args.join(" ")));
    }
    let t: Top = client
        .get_json(&format!("/containers/{}/top", a.container), &q)
        .await?;
    let mut text = t.titles.join("\t");
    text.push('\n');
    for p in &t.processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    print!(
        "{}",
        crate::format::tabwriter::TabWriter::new(20, 3).format(&text)
    );
    Ok(0)
}
