//! Image verbs: `images`, `rmi`, `tag`, `history`, `import`.

use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use gotmpl::Value as T;
use hyper::Method;
use serde_json::Value;

use super::ps::{filters_json, go_time_string};
use super::{status, Failures};
use crate::client::Client;
use crate::format::json::{ordered_map, HTML_ESCAPE_KEY};
use crate::format::units::{ellipsis, human_size_prec, since_unix, truncate_id};
use crate::format::Formatter;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct HistoryArgs {
    #[arg(long, action = clap::ArgAction::Help, help = "Print usage")]
    pub help: Option<bool>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

fn s(v: &str) -> T {
    T::String(v.into())
}

/// Split `name[:tag]` (the tag is after the last '/').
pub fn split_tag(r: &str) -> (String, Option<String>) {
    let slash = r.rfind('/').map_or(0, |p| p + 1);
    match r[slash..].rfind(':') {
        Some(p) => (
            r[..slash + p].to_string(),
            Some(r[slash + p + 1..].to_string()),
        ),
        None => (r.to_string(), None),
    }
}

/// Docker's `FamiliarName`: drop `docker.io/` and `library/`.
pub fn familiar(name: &str) -> String {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    let n = n
        .strip_prefix("library/")
        .filter(|r| !r.contains('/'))
        .unwrap_or(n);
    n.to_string()
}

/// Docker's `ParseNormalizedNamed(..).Name()`: `busybox` -> `docker.io/library/busybox`.
pub fn normalize_name(name: &str) -> Result<String> {
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if name.is_empty() || name.chars().any(|c| c.is_ascii_uppercase()) {
        let path = if has_domain {
            name.split_once('/').map_or(name, |(_, p)| p).to_string()
        } else if name.contains('/') {
            name.to_string()
        } else {
            format!("library/{name}")
        };
        bail!("invalid reference format: repository name ({path}) must be lowercase");
    }
    Ok(if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    })
}

fn image_rows(img: &Value, trunc: bool, digests: bool) -> Vec<T> {
    let id_full = img["Id"].as_str().unwrap_or("");
    let id = if trunc {
        truncate_id(id_full)
    } else {
        id_full.to_string()
    };
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let repo_digests: Vec<&str> = img["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>@<none>")
        .collect();
    let mut entries: Vec<(String, String, String)> = Vec::new();
    if tags.is_empty() && repo_digests.is_empty() {
        entries.push(("<none>".into(), "<none>".into(), "<none>".into()));
    } else {
        let mut repos: Vec<(String, Vec<String>)> = Vec::new();
        for t in &tags {
            let (name, tag) = split_tag(t);
            let name = familiar(&name);
            let tag = tag.unwrap_or_else(|| "latest".into());
            match repos.iter_mut().find(|(r, _)| *r == name) {
                Some((_, v)) => v.push(tag),
                None => repos.push((name, vec![tag])),
            }
        }
        let mut dig: Vec<(String, Vec<String>)> = Vec::new();
        for d in &repo_digests {
            if let Some((name, dg)) = d.split_once('@') {
                let name = familiar(name);
                match dig.iter_mut().find(|(r, _)| *r == name) {
                    Some((_, v)) => v.push(dg.to_string()),
                    None => dig.push((name, vec![dg.to_string()])),
                }
            }
        }
        for (repo, tags) in &repos {
            let ds = dig
                .iter()
                .position(|(r, _)| r == repo)
                .map(|i| dig.remove(i).1)
                .unwrap_or_default();
            for tag in tags {
                if ds.is_empty() || !digests {
                    entries.push((repo.clone(), tag.clone(), "<none>".into()));
                } else {
                    for d in &ds {
                        entries.push((repo.clone(), tag.clone(), d.clone()));
                    }
                }
            }
        }
        for (repo, ds) in dig {
            if digests {
                for d in ds {
                    entries.push((repo.clone(), "<none>".into(), d));
                }
            } else {
                entries.push((repo, "<none>".into(), String::new()));
            }
        }
    }
    let human = |v: &Value| -> String {
        match v.as_i64() {
            Some(n) if n >= 0 => human_size_prec(n as f64, 3),
            _ => "N/A".into(),
        }
    };
    entries
        .into_iter()
        .map(|(repo, tag, digest)| {
            let fields: Vec<(&str, T)> = vec![
                (
                    "Containers",
                    s(&match img["Containers"].as_i64() {
                        Some(n) if n >= 0 => n.to_string(),
                        _ => "N/A".into(),
                    }),
                ),
                ("CreatedAt", s(&go_time_string(created))),
                (
                    "CreatedSince",
                    s(&if created == 0 {
                        "N/A".into()
                    } else {
                        since_unix(created)
                    }),
                ),
                ("Digest", s(&digest)),
                ("ID", s(&id)),
                ("Repository", s(&repo)),
                ("SharedSize", s(&human(&img["SharedSize"]))),
                ("Size", s(&human_size_prec(size as f64, 3))),
                ("Tag", s(&tag)),
                (
                    "UniqueSize",
                    s(&match (img["Size"].as_i64(), img["SharedSize"].as_i64()) {
                        (Some(sz), Some(sh)) if sh >= 0 => human_size_prec((sz - sh) as f64, 3),
                        _ => "N/A".into(),
                    }),
                ),
                ("VirtualSize", s(&human_size_prec(size as f64, 4))),
                (HTML_ESCAPE_KEY, T::Bool(true)),
            ];
            ordered_map(
                fields
                    .into_iter()
                    .map(|(k, v)| (Arc::<str>::from(k), v))
                    .collect(),
            )
        })
        .collect()
}

pub async fn images(client: Client, a: ImagesArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if !filters.is_empty() {
        q.push(("filters", filters_json(&filters)?));
    }
    let list: Vec<Value> = client.get_json("/images/json", &q).await?;
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" if a.quiet => "{{.ID}}".to_string(),
        "" | "table" if a.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .to_string()
        }
        "" | "table" => {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".to_string()
        }
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let rows: Vec<T> = list
        .iter()
        .flat_map(|i| image_rows(i, !a.no_trunc, a.digests))
        .collect();
    print!("{}", Formatter::new(&format)?.render(&rows, IMAGE_HEADERS)?);
    Ok(0)
}

pub async fn rmi(client: Client, a: RmiArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let mut failures = Failures::default();
    for name in &a.images {
        match client
            .request(Method::DELETE, &format!("/images/{name}"), &q, None)
            .await
        {
            Ok(body) => {
                let items: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                for it in items {
                    if let Some(u) = it["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

pub async fn tag(client: Client, a: TagArgs) -> Result<i32> {
    let (name, tag) = split_tag(&a.target);
    let repo = normalize_name(&name).map_err(|e| {
        status(
            1,
            Some(format!(
                "Error parsing reference: \"{}\" is not a valid repository/tag: {e}",
                a.target
            )),
        )
    })?;
    let mut q = vec![("repo", repo)];
    q.push(("tag", tag.unwrap_or_else(|| "latest".into())));
    client
        .post(&format!("/images/{}/tag", a.source), &q)
        .await?;
    Ok(0)
}

pub async fn history(client: Client, a: HistoryArgs) -> Result<i32> {
    let list: Vec<Value> = client
        .get_json(&format!("/images/{}/history", a.image), &[])
        .await?;
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" if a.quiet => "{{.ID}}".to_string(),
        "" | "table" => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let trunc = !a.no_trunc;
    let rows: Vec<T> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let created_at = chrono::DateTime::from_timestamp(created, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                })
                .unwrap_or_default();
            let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let size = h["Size"].as_i64().unwrap_or(0);
            let fields: Vec<(&str, T)> = vec![
                ("Comment", s(h["Comment"].as_str().unwrap_or(""))),
                ("CreatedAt", s(&created_at)),
                (
                    "CreatedBy",
                    s(&if trunc {
                        ellipsis(&created_by, 45)
                    } else {
                        created_by.clone()
                    }),
                ),
                (
                    "CreatedSince",
                    s(&if a.human {
                        since_unix(created)
                    } else {
                        created_at.clone()
                    }),
                ),
                (
                    "ID",
                    s(&if trunc {
                        truncate_id(id)
                    } else {
                        id.to_string()
                    }),
                ),
                (
                    "Size",
                    s(&if a.human {
                        human_size_prec(size as f64, 3)
                    } else {
                        size.to_string()
                    }),
                ),
                (HTML_ESCAPE_KEY, T::Bool(true)),
            ];
            ordered_map(
                fields
                    .into_iter()
                    .map(|(k, v)| (Arc::<str>::from(k), v))
                    .collect(),
            )
        })
        .collect();
    let headers = [
        ("ID", "IMAGE"),
        (
            "CreatedSince",
            if a.human { "CREATED" } else { "CREATED AT" },
        ),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print!("{}", Formatter::new(&format)?.render(&rows, &headers)?);
    Ok(0)
}

pub async fn import(client: Client, a: ImportArgs) -> Result<i32> {
    use http_body_util::BodyExt;
    let mut q: Vec<(&str, String)> = Vec::new();
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let body = if a.source == "-" {
        q.push(("fromSrc", "-".into()));
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Some((buf, "application/x-tar"))
    } else if is_url {
        q.push(("fromSrc", a.source.clone()));
        None
    } else {
        q.push(("fromSrc", "-".into()));
        let buf = std::fs::read(&a.source).with_context(|| format!("open {}", a.source))?;
        Some((buf, "application/x-tar"))
    };
    if let Some(r) = &a.reference {
        normalize_name(&split_tag(r).0).map_err(|e| status(1, Some(e.to_string())))?;
        q.push(("repo", r.clone()));
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let resp = client
        .stream(Method::POST, "/images/create", &q, body)
        .await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or_default();
        if let Some(err) = v["error"].as_str() {
            return Err(status(1, Some(err.to_string())));
        }
        if let Some(st) = v["status"].as_str() {
            println!("{st}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_tag("localhost:5000/a:1"),
            ("localhost:5000/a".into(), Some("1".into()))
        );
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), None)
        );
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar("docker.io/me/app"), "me/app");
        assert_eq!(
            normalize_name("busybox").unwrap(),
            "docker.io/library/busybox"
        );
        assert_eq!(normalize_name("me/app").unwrap(), "docker.io/me/app");
        assert_eq!(
            normalize_name("localhost:5000/a").unwrap(),
            "localhost:5000/a"
        );
        assert!(normalize_name("Busy").is_err());
    }

    #[test]
    fn rows_per_tag_and_dangling() {
        let img = serde_json::json!({
            "Id": "sha256:09ac58b48f8fb95902930530cc6744aa59ac1f7e5102e48b8f96418f844186ce",
            "RepoTags": ["busybox:latest", "busybox:1", "other:x"], "RepoDigests": [],
            "Created": 0, "Size": 1982340
        });
        let rows = image_rows(&img, true, false);
        let f = Formatter::new(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
        )
        .unwrap();
        assert_eq!(
            f.render(&rows, IMAGE_HEADERS).unwrap(),
            "REPOSITORY   TAG       IMAGE ID       CREATED   SIZE\n\
             busybox      latest    09ac58b48f8f   N/A       1.98MB\n\
             busybox      1         09ac58b48f8f   N/A       1.98MB\n\
             other        x         09ac58b48f8f   N/A       1.98MB\n"
        );
        let dangling = serde_json::json!({"Id": "sha256:ab", "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"], "Created": 1, "Size": 0});
        let rows = image_rows(&dangling, true, false);
        assert_eq!(rows[0].field("Repository").unwrap().to_string(), "<none>");
        assert_eq!(rows[0].field("Tag").unwrap().to_string(), "<none>");
    }
}
