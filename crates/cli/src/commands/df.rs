//! `berth system df`: disk usage of images, containers, volumes and build cache
//! (`GET /system/df`), docker's summary table, `-v` sections and `--format`.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use gotmpl::Value as T;
use serde_json::Value;

use super::images::split_tag;
use super::ps::row as container_row;
use crate::client::Client;
use crate::format::json::{ordered_map, HTML_ESCAPE_KEY};
use crate::format::units::{human_size_prec, since_unix, truncate_id};
use crate::format::Formatter;

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

fn s(v: &str) -> T {
    T::String(v.into())
}

fn map(fields: Vec<(&str, T)>) -> T {
    ordered_map(
        fields
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k), v))
            .collect(),
    )
}

fn h(n: i64) -> String {
    human_size_prec(n.max(0) as f64, 4)
}

/// docker's `"%s (%v%%)"` reclaimable column (no percentage when the total is 0).
fn reclaimable(rec: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", h(rec), rec * 100 / total)
    } else {
        h(rec)
    }
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn summary_rows(du: &Value) -> Vec<T> {
    let images = arr(&du["Images"]);
    let layers = du["LayersSize"].as_i64().unwrap_or(0);
    let used: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .map(|i| i["Size"].as_i64().unwrap_or(0) - i["SharedSize"].as_i64().unwrap_or(0))
        .sum();
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let containers = arr(&du["Containers"]);
    let active = |c: &Value| {
        matches!(
            c["State"].as_str().unwrap_or(""),
            "running" | "paused" | "restarting"
        )
    };
    let c_size: i64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let c_rec: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let volumes = arr(&du["Volumes"]);
    let v_size: i64 = volumes
        .iter()
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let v_rec: i64 = volumes
        .iter()
        .filter(|v| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) == 0)
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let v_active = volumes
        .iter()
        .filter(|v| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let cache = arr(&du["BuildCache"]);
    let b_size: i64 = cache
        .iter()
        .filter(|b| !b["Shared"].as_bool().unwrap_or(false))
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    let b_rec: i64 = cache
        .iter()
        .filter(|b| {
            !b["Shared"].as_bool().unwrap_or(false) && !b["InUse"].as_bool().unwrap_or(false)
        })
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    let b_active = cache
        .iter()
        .filter(|b| b["InUse"].as_bool().unwrap_or(false))
        .count();
    let row = |typ: &str, total: usize, active: usize, size: i64, rec: String| {
        map(vec![
            ("Active", s(&active.to_string())),
            ("Reclaimable", s(&rec)),
            ("Size", s(&h(size))),
            ("TotalCount", s(&total.to_string())),
            ("Type", s(typ)),
            (HTML_ESCAPE_KEY, T::Bool(true)),
        ])
    };
    vec![
        row(
            "Images",
            images.len(),
            img_active,
            layers,
            reclaimable(layers - used, layers),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| active(c)).count(),
            c_size,
            reclaimable(c_rec, c_size),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            v_active,
            v_size,
            reclaimable(v_rec, v_size),
        ),
        row("Build Cache", cache.len(), b_active, b_size, h(b_rec)),
    ]
}

fn image_rows(du: &Value) -> Vec<T> {
    let mut out = Vec::new();
    for i in arr(&du["Images"]) {
        let size = i["Size"].as_i64().unwrap_or(0);
        let shared = i["SharedSize"].as_i64().unwrap_or(0);
        let created = i["Created"].as_i64().unwrap_or(0);
        let tags: Vec<String> = arr(&i["RepoTags"])
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let pairs: Vec<(String, String)> = if tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            tags.iter()
                .map(|t| {
                    let (r, tag) = split_tag(t);
                    (r, tag.unwrap_or_else(|| "latest".into()))
                })
                .collect()
        };
        for (repo, tag) in pairs {
            out.push(map(vec![
                (
                    "Containers",
                    s(&i["Containers"].as_i64().unwrap_or(0).to_string()),
                ),
                ("CreatedSince", s(&since_unix(created))),
                ("ID", s(&truncate_id(i["Id"].as_str().unwrap_or("")))),
                ("Repository", s(&repo)),
                ("SharedSize", s(&h(shared))),
                ("Size", s(&human_size_prec(size as f64, 3))),
                ("Tag", s(&tag)),
                ("UniqueSize", s(&h(size - shared))),
                (HTML_ESCAPE_KEY, T::Bool(true)),
            ]));
        }
    }
    out
}

fn volume_rows(du: &Value) -> Vec<T> {
    arr(&du["Volumes"])
        .iter()
        .map(|v| {
            map(vec![
                (
                    "Links",
                    s(&v["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string()),
                ),
                ("Name", s(v["Name"].as_str().unwrap_or(""))),
                ("Size", s(&h(v["UsageData"]["Size"].as_i64().unwrap_or(0)))),
                (HTML_ESCAPE_KEY, T::Bool(true)),
            ])
        })
        .collect()
}

const HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

pub async fn df(client: Client, a: DfArgs) -> Result<i32> {
    let du: Value = client.get_json("/system/df", &[]).await?;
    let format = a.format.as_deref().unwrap_or("");
    if !a.verbose {
        let f = match format {
            "" | "table" => {
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
            }
            "json" => "{{json .}}",
            f => f,
        };
        print!(
            "{}",
            Formatter::new(f)?.render(&summary_rows(&du), HEADERS)?
        );
        return Ok(0);
    }
    let containers: Vec<T> = arr(&du["Containers"])
        .iter()
        .map(|c| {
            let mut c = c.clone();
            // The SIZE column is the rw layer alone here.
            c["SizeRootFs"] = Value::from(0);
            container_row(&c, true)
        })
        .collect();
    let img_f = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
    let ctr_f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
    let vol_f = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
    let ctr_headers: &[(&str, &str)] = &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Size", "SIZE"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Names", "NAMES"),
    ];
    let vol_headers: &[(&str, &str)] = &[
        ("Name", "VOLUME NAME"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
    ];
    let cache = arr(&du["BuildCache"]);
    let cache_size: i64 = cache
        .iter()
        .filter(|b| !b["Shared"].as_bool().unwrap_or(false))
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    print!("Images space usage:\n\n");
    print!(
        "{}",
        Formatter::new(img_f)?.render(&image_rows(&du), HEADERS)?
    );
    print!("\nContainers space usage:\n\n");
    print!(
        "{}",
        Formatter::new(ctr_f)?.render(&containers, ctr_headers)?
    );
    print!("\nLocal Volumes space usage:\n\n");
    print!(
        "{}",
        Formatter::new(vol_f)?.render(&volume_rows(&du), vol_headers)?
    );
    print!("\nBuild cache usage: {}\n\n", h(cache_size));
    println!("CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED");
    Ok(0)
}
