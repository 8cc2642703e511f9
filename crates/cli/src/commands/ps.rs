//! `ps` / `container ls`: docker's container formatter (fields, truncation, table).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use gotmpl::Value as T;
use serde_json::Value;

use crate::client::Client;
use crate::format::json::{ordered_map, HTML_ESCAPE_KEY};
use crate::format::template::LABELS_KEY;
use crate::format::units::{ellipsis, go_quote, human_size_prec, since_unix, truncate_id};
use crate::format::Formatter;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

/// `--filter k=v` flags as the API's `{"k":{"v":true}}`.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut m: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        Default::default();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .context("bad format of filter (expected name=value)")?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), Value::Bool(true));
    }
    Ok(serde_json::to_string(&m)?)
}

/// docker/cli `DisplayablePorts`.
pub fn displayable_ports(ports: &[Value]) -> String {
    struct P {
        ip: String,
        private: u64,
        public: u64,
        typ: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            typ: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.typ).cmp(&(b.private, &b.ip, b.public, &b.typ))
    });
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let form = |key: &str, first: u64, last: u64| {
        let (ip, typ) = match key.rsplit_once('/') {
            Some((ip, t)) => (ip, t),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{typ}")
    };
    for p in &ps {
        let mut key = p.typ.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let host = if p.ip.contains(':') {
                    format!("[{}]:{}", p.ip, p.public)
                } else {
                    format!("{}:{}", p.ip, p.public)
                };
                host_mappings.push(format!("{host}->{}/{}", p.private, p.typ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.typ);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for (k, f, l) in &groups {
        result.push(form(k, *f, *l));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// Go's `time.Time.String()` for a unix timestamp in local time.
pub fn go_time_string(secs: i64) -> String {
    use chrono::TimeZone;
    let Some(t) = chrono::Local.timestamp_opt(secs, 0).single() else {
        return String::new();
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000"
        && std::env::var("TZ").map_or(true, |z| z.is_empty() || z.contains("UTC"))
    {
        "UTC".to_string()
    } else {
        t.format("%Z").to_string()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

fn s(v: &str) -> T {
    T::String(v.into())
}

/// One container summary as docker's `ContainerContext`.
pub fn row(c: &Value, trunc: bool) -> T {
    let id = c["Id"].as_str().unwrap_or("");
    let mut names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            names = vec![n.clone()];
        }
    }
    let image = c["Image"].as_str().unwrap_or("");
    let image = if image.is_empty() {
        "<no image>".to_string()
    } else if trunc {
        let image_id = c["ImageID"].as_str().unwrap_or("");
        if truncate_id(image_id) == truncate_id(image) {
            truncate_id(image)
        } else {
            image
                .split_once('@')
                .map_or(image, |(name, _)| name)
                .trim_start_matches("docker.io/library/")
                .trim_start_matches("docker.io/")
                .to_string()
        }
    } else {
        image.to_string()
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    });
    let created = c["Created"].as_i64().unwrap_or(0);
    let mut labels: Vec<(String, String)> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    labels.sort();
    let labels_str = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let labels_map = ordered_map(
        labels
            .iter()
            .map(|(k, v)| (Arc::<str>::from(k.as_str()), s(v)))
            .collect(),
    );
    let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.or(m["Source"].as_str()).unwrap_or("");
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = mounts
        .iter()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size = {
        let rw = c["SizeRw"].as_i64().unwrap_or(0);
        let root = c["SizeRootFs"].as_i64().unwrap_or(0);
        let srw = human_size_prec(rw as f64, 3);
        if root > 0 {
            format!("{srw} (virtual {})", human_size_prec(root as f64, 3))
        } else {
            srw
        }
    };
    let ports = displayable_ports(c["Ports"].as_array().map_or(&[][..], |v| v.as_slice()));
    let id = if trunc {
        truncate_id(id)
    } else {
        id.to_string()
    };
    let entries: Vec<(&str, T)> = vec![
        ("Command", s(&command)),
        ("CreatedAt", s(&go_time_string(created))),
        ("ID", s(&id)),
        ("Image", s(&image)),
        ("Labels", s(&labels_str)),
        ("LocalVolumes", s(&local_volumes.to_string())),
        ("Mounts", s(&mount_names.join(","))),
        ("Names", s(&names.join(","))),
        ("Networks", s(&networks.join(","))),
        ("Platform", T::Nil),
        ("Ports", s(&ports)),
        ("RunningFor", s(&since_unix(created))),
        ("Size", s(&size)),
        ("State", s(c["State"].as_str().unwrap_or(""))),
        ("Status", s(c["Status"].as_str().unwrap_or(""))),
        (LABELS_KEY, labels_map),
        (HTML_ESCAPE_KEY, T::Bool(true)),
    ];
    ordered_map(
        entries
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k), v))
            .collect(),
    )
}

pub async fn ps(client: Client, a: PsArgs) -> Result<i32> {
    let mut format = a.format.clone().unwrap_or_default();
    if !format.is_empty() && a.quiet {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
        format.clear();
    }
    let format = match format.as_str() {
        "" | "table" => {
            if a.quiet {
                "{{.ID}}".to_string()
            } else if a.size {
                format!("{DEFAULT_TABLE}\\t{{{{.Size}}}}")
            } else {
                DEFAULT_TABLE.to_string()
            }
        }
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let compact: String = format.chars().filter(|c| !c.is_whitespace()).collect();
    let want_size = a.size || compact.contains(".Size") || compact.contains("json.}}");
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if want_size {
        q.push(("size", "1".to_string()));
    }
    if !a.filter.is_empty() {
        q.push(("filters", filters_json(&a.filter)?));
    }
    let list: Vec<Value> = client.get_json("/containers/json", &q).await?;
    let rows: Vec<T> = list.iter().map(|c| row(c, !a.no_trunc)).collect();
    let out = Formatter::new(&format)?.render(&rows, HEADERS)?;
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_like_docker() {
        let p = json!([
            {"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
            {"PrivatePort": 443, "Type": "tcp"},
            {"PrivatePort": 444, "Type": "tcp"},
            {"PrivatePort": 53, "PublicPort": 53, "IP": "127.0.0.1", "Type": "udp"}
        ]);
        assert_eq!(
            displayable_ports(p.as_array().unwrap()),
            "127.0.0.1:53->53/udp, 443-444/tcp, 0.0.0.0:8080->80/tcp"
        );
    }

    #[test]
    fn container_row() {
        let c = json!({
            "Id": "2d5bd2eaa8d1ac3140cbbf65a204a42ed9707859b377197a97f731ad57c79c0e",
            "Names": ["/c1"], "Image": "busybox", "ImageID": "sha256:09ac58b48f8f",
            "Command": "sh -c 'sleep 1000; echo done'", "Created": 0,
            "State": "exited", "Status": "Exited (0) 5 seconds ago",
            "Labels": {"b": "2", "a": "1"}, "Ports": [],
            "NetworkSettings": {"Networks": {"none": {}}}, "Mounts": []
        });
        let f = Formatter::new(
            r#"{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.Labels}}|{{.Label "a"}}|{{.Networks}}|{{.State}}"#,
        )
        .unwrap();
        let out = f.render(&[row(&c, true)], HEADERS).unwrap();
        assert_eq!(
            out,
            "2d5bd2eaa8d1|c1|busybox|\"sh -c 'sleep 1000; …\"|a=1,b=2|1|none|exited\n"
        );
        assert_eq!(
            filters_json(&["status=exited".into(), "name=x".into()]).unwrap(),
            r#"{"name":{"x":true},"status":{"exited":true}}"#
        );
    }
}
