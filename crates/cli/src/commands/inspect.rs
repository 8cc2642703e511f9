//! `inspect`: raw daemon JSON, printed as docker's indented array or through a template
//! evaluated on the JSON object.

use anyhow::Result;
use clap::Args;

use super::{error_text, status};
use crate::client::{api_error, Client};
use crate::format::{json, template};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

impl TypedInspectArgs {
    pub fn with_type(self, kind: &str) -> InspectArgs {
        InspectArgs {
            format: self.format,
            size: self.size,
            kind: Some(kind.to_string()),
            names: self.names,
        }
    }
}

async fn fetch(
    client: &Client,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<bytes::Bytes> {
    let q = if size {
        vec![("size", "1".to_string())]
    } else {
        vec![]
    };
    match kind {
        Some("container") => client.get(&format!("/containers/{name}/json"), &q).await,
        Some("image") => client.get(&format!("/images/{name}/json"), &[]).await,
        Some("volume") => client.get(&format!("/volumes/{name}"), &[]).await,
        Some("network") => client.get(&format!("/networks/{name}"), &[]).await,
        Some(other) => Err(bad_type(other)),
        None => {
            for path in [
                format!("/containers/{name}/json"),
                format!("/images/{name}/json"),
                format!("/networks/{name}"),
                format!("/volumes/{name}"),
            ] {
                let q = if path.starts_with("/containers") {
                    q.clone()
                } else {
                    vec![]
                };
                match client.get(&path, &q).await {
                    Ok(b) => return Ok(b),
                    Err(e)
                        if api_error(&e).is_some_and(|x| x.is_not_found() || x.status == 400) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(anyhow::anyhow!("Error: No such object: {name}"))
        }
    }
}

fn bad_type(t: &str) -> anyhow::Error {
    status(
        1,
        Some(format!(
            "unknown type: \"{t}\": must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\""
        )),
    )
}

/// docker evaluates image templates on the raw JSON map (keys marshal sorted) and
/// container templates on the typed struct (keys in the daemon's order).
fn template_value(raw: &[u8]) -> Result<gotmpl::Value> {
    let v = json::parse(raw)?;
    let is_container = v.field("State").is_some() && v.field("HostConfig").is_some();
    if is_container {
        Ok(v)
    } else {
        Ok(json::from_serde(&serde_json::from_slice(raw)?))
    }
}

pub async fn inspect(client: Client, a: InspectArgs) -> Result<i32> {
    if let Some(k) = &a.kind {
        if !matches!(k.as_str(), "container" | "image" | "volume" | "network") {
            return Err(bad_type(k));
        }
    }
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(template::parse(f).map_err(|e| status(64, Some(error_text(&e))))?),
    };
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match fetch(&client, name, a.kind.as_deref(), a.size).await {
            Ok(b) => raws.push(b),
            Err(e) => errors.push(error_text(&e)),
        }
    }
    let mut out = String::new();
    match tmpl {
        None => {
            if raws.is_empty() {
                out.push_str("[]\n");
            } else {
                out.push('[');
                for (i, raw) in raws.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let ind = json::indent(raw, "", "    ");
                    out.push_str("\n    ");
                    out.push_str(&ind.replace('\n', "\n    "));
                }
                out.push_str("\n]\n");
            }
        }
        Some(t) => {
            for raw in &raws {
                let v = template_value(raw)?;
                match template::execute(&t, &v) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => {
                        println!("{out}");
                        return Err(status(1, Some(format!("template parsing error: {e}"))));
                    }
                }
            }
        }
    }
    print!("{out}");
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(status(1, Some(errors.join("\n"))))
    }
}
