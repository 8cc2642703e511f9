//! `berth volume create|ls|inspect|rm|prune`.
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;

use super::inspect::{self, InspectArgs};
use super::ps::filters_json;
use super::Failures;
use crate::client::Client;
use crate::format::json::{ordered_map, HTML_ESCAPE_KEY};
use crate::format::units::human_size_prec;
use crate::format::Formatter;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectVolArgs),
    /// Remove one or more volumes
    #[command(visible_aliases = ["remove"])]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectVolArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub async fn run(client: Client, cmd: VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create(a) => create(client, a).await,
        VolumeCommand::Ls(a) => ls(client, a).await,
        VolumeCommand::Inspect(a) => {
            inspect::inspect(
                client,
                InspectArgs {
                    format: a.format,
                    size: false,
                    kind: Some("volume".into()),
                    names: a.names,
                },
            )
            .await
        }
        VolumeCommand::Rm(a) => rm(client, a).await,
        VolumeCommand::Prune(a) => prune(client, a).await,
    }
}

fn kv(list: &[String]) -> serde_json::Map<String, Value> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
            None => (s.clone(), Value::String(String::new())),
        })
        .collect()
}

async fn create(client: Client, a: CreateArgs) -> Result<i32> {
    if a.name.is_some() && a.name_flag.is_some() {
        bail!("conflicting options: either specify --name or provide positional arg, not both");
    }
    let body = serde_json::json!({
        "Name": a.name.or(a.name_flag).unwrap_or_default(),
        "Driver": a.driver,
        "DriverOpts": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    let raw = client.post_json("/volumes/create", &[], &body).await?;
    let v: Value = serde_json::from_slice(&raw)?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

fn row(v: &Value) -> gotmpl::Value {
    use gotmpl::Value as T;
    let s = |x: &str| T::String(x.into());
    let mut labels: Vec<String> = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let fields = vec![
        ("Driver", s(v["Driver"].as_str().unwrap_or(""))),
        ("Labels", s(&labels.join(","))),
        ("Links", s("N/A")),
        ("Mountpoint", s(v["Mountpoint"].as_str().unwrap_or(""))),
        ("Name", s(v["Name"].as_str().unwrap_or(""))),
        ("Scope", s(v["Scope"].as_str().unwrap_or(""))),
        ("Size", s("N/A")),
        (HTML_ESCAPE_KEY, T::Bool(true)),
    ];
    ordered_map(
        fields
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k), v))
            .collect(),
    )
}

async fn ls(client: Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if !a.filter.is_empty() {
        q.push(("filters", filters_json(&a.filter)?));
    }
    let resp: Value = client.get_json("/volumes", &q).await?;
    let mut vols: Vec<Value> = resp["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" if a.quiet => "{{.Name}}".to_string(),
        "" | "table" => "table {{.Driver}}\t{{.Name}}".to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let rows: Vec<gotmpl::Value> = vols.iter().map(row).collect();
    print!("{}", Formatter::new(&format)?.render(&rows, HEADERS)?);
    Ok(0)
}

async fn rm(client: Client, a: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    let mut failures = Failures::default();
    for n in &a.names {
        match client
            .request(Method::DELETE, &format!("/volumes/{n}"), &q, None)
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

async fn prune(client: Client, a: PruneArgs) -> Result<i32> {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all local volumes not used by at least one container.\n"
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
        };
        print!("{warning}Are you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let mut q = Vec::new();
    if !filters.is_empty() {
        q.push(("filters", filters_json(&filters)?));
    }
    let body = client
        .request(Method::POST, "/volumes/prune", &q, None)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let deleted: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    let space = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    println!(
        "Total reclaimed space: {}",
        human_size_prec(space as f64, 3)
    );
    Ok(0)
}
