//! `berth commit`: a new image from a container's changes (`POST /commit`).

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::images::{normalize_name, split_tag};
use super::status;
use crate::client::Client;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub async fn commit(client: Client, a: CommitArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = vec![("container", a.container.clone())];
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        let (repo, tag) = split_tag(r);
        normalize_name(&repo).map_err(|e| status(1, Some(e.to_string())))?;
        q.push(("repo", repo));
        if let Some(t) = tag {
            q.push(("tag", t));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    q.push(("pause", if a.pause { "1" } else { "0" }.to_string()));
    let body = client.post_json("/commit", &q, &Value::Null).await?;
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}
