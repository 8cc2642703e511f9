//! `berth events`: the daemon's event stream (`GET /events`), printed as docker/cli does:
//! `<time> <type> <action> <id> (<attr>=<value>, ...)` per event, or a Go template.
use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::logs::body_reader;
use super::parse_timestamp;
use super::ps::filters_json;
use crate::client::Client;
use crate::format::{json, template};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

pub async fn events(client: Client, a: EventsArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &a.since {
        q.push(("since", parse_timestamp(s)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", parse_timestamp(u)?));
    }
    if !a.filter.is_empty() {
        q.push(("filters", filters_json(&a.filter)?));
    }
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some(f) => Some(template::parse(f)?),
    };
    let resp = client.stream(Method::GET, "/events", &q, None).await?;
    let mut lines = BufReader::new(body_reader(resp.into_body())).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(&line)?;
        let text = match &tmpl {
            Some(t) => {
                let v = json::parse(line.as_bytes())?;
                template::execute(t, &v)? + "\n"
            }
            None => default_line(&ev),
        };
        out.write_all(text.as_bytes()).await?;
        out.flush().await?;
    }
    Ok(0)
}

/// docker/cli's `prettyPrintEvent`: local time with nanoseconds, type, action, actor ID,
/// then the attributes sorted by key.
fn default_line(ev: &Value) -> String {
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    let mut s = format!(
        "{} {} {} {}",
        // Go's RFC3339NanoFixed: nine digits, `Z` for UTC.
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        ev["Type"].as_str().unwrap_or(""),
        ev["Action"].as_str().unwrap_or(""),
        ev["Actor"]["ID"].as_str().unwrap_or(""),
    );
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object() {
        if !attrs.is_empty() {
            let mut kv: Vec<(&String, &Value)> = attrs.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_docker_cli() {
        let ev = serde_json::json!({
            "Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "timeNano": 1_700_000_000_123_456_789i64,
        });
        let line = default_line(&ev);
        assert!(
            line.ends_with(" container start abc (image=busybox, name=web)\n"),
            "{line}"
        );
        assert!(line.contains(".123456789"), "{line}");
    }
}
