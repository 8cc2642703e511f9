//! `berth container prune`, `berth image prune`, `berth system prune`, with docker's
//! prompts and output.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::ps::filters_json;
use super::status;
use crate::client::{api_error, Client};
use crate::format::units::human_size_prec;

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

fn human(n: u64) -> String {
    human_size_prec(n as f64, 4)
}

/// docker's `PromptForConfirmation`: the message, ` [y/N] `, and a line from stdin.
fn confirm(message: &str) -> bool {
    print!("{message} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

fn query(filters: &[String], extra: Option<(&str, &str)>) -> Result<Vec<(&'static str, String)>> {
    let mut f = filters.to_vec();
    if let Some((k, v)) = extra {
        f.push(format!("{k}={v}"));
    }
    Ok(if f.is_empty() {
        vec![]
    } else {
        vec![("filters", filters_json(&f)?)]
    })
}

async fn prune_containers(client: &Client, filters: &[String]) -> Result<(u64, String)> {
    let body = client
        .post("/containers/prune", &query(filters, None)?)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let mut out = String::new();
    let ids = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut reclaimed = 0;
    if !ids.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in ids {
            out.push_str(id.as_str().unwrap_or_default());
            out.push('\n');
        }
        reclaimed = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    }
    Ok((reclaimed, out))
}

async fn prune_images(client: &Client, all: bool, filters: &[String]) -> Result<(u64, String)> {
    let dangling = if all { "false" } else { "true" };
    let body = client
        .post(
            "/images/prune",
            &query(filters, Some(("dangling", dangling)))?,
        )
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let mut out = String::new();
    let recs = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    let mut reclaimed = 0;
    if !recs.is_empty() {
        out.push_str("Deleted Images:\n");
        for r in recs {
            match (r["Untagged"].as_str(), r["Deleted"].as_str()) {
                (Some(t), _) if !t.is_empty() => out.push_str(&format!("untagged: {t}\n")),
                (_, Some(d)) => out.push_str(&format!("deleted: {d}\n")),
                _ => {}
            }
        }
        reclaimed = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    }
    Ok((reclaimed, out))
}

/// A prune endpoint of a resource this daemon may not have (networks, volumes, build
/// cache): a 404 means there is nothing of that kind to prune.
async fn prune_optional(
    client: &Client,
    path: &str,
    q: &[(&str, String)],
    list_key: &str,
    title: &str,
) -> Result<(u64, String)> {
    let body = match client.post(path, q).await {
        Ok(b) => b,
        Err(e) if api_error(&e).is_some_and(|a| a.status == 404) => return Ok((0, String::new())),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let items = v[list_key].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    if !items.is_empty() {
        out.push_str(&format!("{title}:\n"));
        for i in items {
            let s = i
                .as_str()
                .map(str::to_owned)
                .or_else(|| i["ID"].as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&s);
            out.push('\n');
        }
    }
    let space = v["SpaceReclaimed"]
        .as_u64()
        .or(v["SpaceReclaimed"].as_i64().map(|n| n.max(0) as u64));
    Ok((space.unwrap_or(0), out))
}

pub async fn container_prune(client: Client, a: ContainerPruneArgs) -> Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(0);
    }
    let (space, out) = prune_containers(&client, &a.filter).await?;
    if !out.is_empty() {
        println!("{out}");
    }
    println!("Total reclaimed space: {}", human(space));
    Ok(0)
}

pub async fn image_prune(client: Client, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (space, out) = prune_images(&client, a.all, &a.filter).await?;
    if !out.is_empty() {
        println!("{out}");
    }
    println!("Total reclaimed space: {}", human(space));
    Ok(0)
}

pub async fn system_prune(client: Client, a: SystemPruneArgs) -> Result<i32> {
    if a.volumes && a.filter.iter().any(|f| f.starts_with("until=")) {
        return Err(status(
            1,
            Some("ERROR: The \"until\" filter is not supported with \"--volumes\"".into()),
        ));
    }
    if !a.force {
        let mut warnings = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if a.volumes {
            warnings.push("all anonymous volumes not used by at least one container");
        }
        warnings.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        warnings.push(if a.all {
            "all build cache"
        } else {
            "unused build cache"
        });
        let mut msg = String::from("WARNING! This will remove:\n");
        for w in warnings {
            msg.push_str(&format!("  - {w}\n"));
        }
        if !a.filter.is_empty() {
            msg.push_str("\n  Items to be pruned will be filtered with:\n");
            for f in &a.filter {
                msg.push_str(&format!("  - {f}\n"));
            }
        }
        msg.push_str("\nAre you sure you want to continue?");
        if !confirm(&msg) {
            return Ok(0);
        }
    }
    let mut total = 0;
    let mut outputs = Vec::new();
    let (s, o) = prune_containers(&client, &a.filter).await?;
    total += s;
    outputs.push(o);
    let q = query(&a.filter, None)?;
    let (s, o) = prune_optional(
        &client,
        "/networks/prune",
        &q,
        "NetworksDeleted",
        "Deleted Networks",
    )
    .await?;
    total += s;
    outputs.push(o);
    if a.volumes {
        let (s, o) = prune_optional(
            &client,
            "/volumes/prune",
            &query(&a.filter, None)?,
            "VolumesDeleted",
            "Deleted Volumes",
        )
        .await?;
        total += s;
        outputs.push(o);
    }
    let (s, o) = prune_images(&client, a.all, &a.filter).await?;
    total += s;
    outputs.push(o);
    let mut bq = q.clone();
    if a.all {
        bq.push(("all", "1".to_string()));
    }
    let (s, o) = prune_optional(
        &client,
        "/build/prune",
        &bq,
        "CachesDeleted",
        "Deleted build cache objects",
    )
    .await?;
    total += s;
    outputs.push(o);
    for o in outputs.into_iter().filter(|o| !o.is_empty()) {
        println!("{o}");
    }
    println!("Total reclaimed space: {}", human(total));
    Ok(0)
}
