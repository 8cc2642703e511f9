//! Go templates with docker/cli's helper functions (`templates` package): `json`,
//! `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`, plus docker's
//! `table` directive and header rendering.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use gotmpl::{FuncMap, MissingKey, Template, TemplateError, Value};

use super::json;
use super::tabwriter::TabWriter;

/// Hidden row key holding the labels map used by `{{.Label "key"}}`.
pub const LABELS_KEY: &str = "\0labels";
/// Hidden key marking a header context.
const HEADER_KEY: &str = "\0header";

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        Some(Value::Uint(u)) => *u as i64,
        Some(Value::Float(f)) => *f as i64,
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn arg(args: &[Value], i: usize, name: &str) -> gotmpl::Result<Value> {
    args.get(i)
        .cloned()
        .ok_or_else(|| TemplateError::Exec(format!("wrong number of args for {name}")))
}

fn func(
    f: impl Fn(&[Value]) -> gotmpl::Result<Value> + Send + Sync + 'static,
) -> gotmpl::ValueFunc {
    Arc::new(f)
}

/// Go's deprecated `strings.Title`: upper-case the first letter of each word.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let is_word = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_word && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = is_word;
    }
    out
}

fn basic_functions() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "json".into(),
        func(|a| Ok(Value::String(json::to_json(&arg(a, 0, "json")?).into()))),
    );
    m.insert(
        "split".into(),
        func(|a| {
            let src = s(&arg(a, 0, "split")?);
            let sep = s(&arg(a, 1, "split")?);
            let parts: Vec<Value> = if sep.is_empty() {
                src.chars()
                    .map(|c| Value::String(c.to_string().into()))
                    .collect()
            } else {
                src.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect()
            };
            Ok(Value::List(parts.into()))
        }),
    );
    m.insert(
        "join".into(),
        func(|a| {
            let list = arg(a, 0, "join")?;
            let sep = s(&arg(a, 1, "join")?);
            let joined = match &list {
                Value::List(l) => l.iter().map(s).collect::<Vec<_>>().join(&sep),
                Value::Nil => String::new(),
                other => {
                    return Err(TemplateError::Exec(format!(
                        "wrong type for value; expected []string; got {}",
                        other.type_name()
                    )))
                }
            };
            Ok(Value::String(joined.into()))
        }),
    );
    m.insert(
        "title".into(),
        func(|a| Ok(Value::String(title(&s(&arg(a, 0, "title")?)).into()))),
    );
    m.insert(
        "lower".into(),
        func(|a| Ok(Value::String(s(&arg(a, 0, "lower")?).to_lowercase().into()))),
    );
    m.insert(
        "upper".into(),
        func(|a| Ok(Value::String(s(&arg(a, 0, "upper")?).to_uppercase().into()))),
    );
    m.insert(
        "pad".into(),
        func(|a| {
            let src = s(&arg(a, 0, "pad")?);
            if src.is_empty() {
                return Ok(Value::String("".into()));
            }
            let pre = int(a.get(1)).max(0) as usize;
            let suf = int(a.get(2)).max(0) as usize;
            Ok(Value::String(
                format!("{}{src}{}", " ".repeat(pre), " ".repeat(suf)).into(),
            ))
        }),
    );
    m.insert(
        "truncate".into(),
        func(|a| {
            let src = s(&arg(a, 0, "truncate")?);
            let n = int(a.get(1)).max(0) as usize;
            Ok(Value::String(
                src.chars().take(n).collect::<String>().into(),
            ))
        }),
    );
    m.insert(
        "label".into(),
        func(|a| {
            let row = arg(a, 0, "Label")?;
            let key = s(&arg(a, 1, "Label")?);
            if row.field(HEADER_KEY).is_some() {
                let last = key.rsplit('.').next().unwrap_or("");
                return Ok(Value::String(last.replace(['-', '_'], " ").into()));
            }
            Ok(row
                .field(LABELS_KEY)
                .and_then(|m| m.field(&key))
                .cloned()
                .unwrap_or(Value::String("".into())))
        }),
    );
    m
}

fn header_functions() -> FuncMap {
    let mut m = basic_functions();
    for name in [
        "json", "split", "join", "title", "lower", "upper", "truncate",
    ] {
        m.insert(
            name.into(),
            func(|a| Ok(Value::String(a.first().map(s).unwrap_or_default().into()))),
        );
    }
    m
}

/// Rewrite docker's method call `.Label "k"` into the function call `label . "k"`,
/// since Go template methods with arguments do not exist on plain maps.
fn rewrite_methods(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(pos) = rest.find(".Label ") {
        let prev = rest[..pos].chars().last();
        let standalone =
            !matches!(prev, Some(c) if c.is_alphanumeric() || c == '_' || c == '$' || c == ')');
        out.push_str(&rest[..pos]);
        if standalone {
            out.push_str("label . ");
        } else {
            out.push_str(".Label ");
        }
        rest = &rest[pos + ".Label ".len()..];
    }
    out.push_str(rest);
    out
}

/// Bring gotmpl's messages closer to Go's (`template: :1:2: ...`, quoted keys).
fn go_error(msg: &str) -> String {
    let mut m = msg.to_string();
    if let Some(rest) = m.strip_prefix("template: ") {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            m = format!("template: :{rest}");
        }
    }
    if let Some(p) = m.find("map has no entry for key: ") {
        let key = m[p + "map has no entry for key: ".len()..].to_string();
        m = format!("{}map has no entry for key \"{key}\"", &m[..p]);
    }
    m
}

/// Parse a template with docker's basic functions.
pub fn parse(src: &str) -> Result<Template> {
    Template::new("")
        .funcs(basic_functions())
        .missing_key(MissingKey::Error)
        .parse(&rewrite_methods(src))
        .map_err(|e| anyhow::anyhow!("template parsing error: {}", go_error(&e.to_string())))
}

/// Execute `tmpl` on `data`.
pub fn execute(tmpl: &Template, data: &Value) -> Result<String> {
    tmpl.execute_to_string(data)
        .map_err(|e| anyhow::anyhow!("{}", go_error(&e.to_string())))
}

/// docker/cli `formatter.Context`: a format string (`table ...`, or raw template),
/// rows rendered one per line, a table header from the same template, tab alignment.
pub struct Formatter {
    table: bool,
    tmpl: Template,
    header_tmpl: Option<Template>,
}

impl Formatter {
    pub fn new(format: &str) -> Result<Self> {
        let table = format.starts_with("table");
        let mut f = if table {
            &format["table".len()..]
        } else {
            format
        };
        f = f.trim_matches(' ');
        let f = f.replace("\\t", "\t").replace("\\n", "\n");
        let tmpl = parse(&f)?;
        let header_tmpl = if table {
            Template::new("")
                .funcs(header_functions())
                .parse(&rewrite_methods(&f))
                .ok()
        } else {
            None
        };
        Ok(Formatter {
            table,
            tmpl,
            header_tmpl,
        })
    }

    /// Render rows; `header` maps field names to column titles.
    pub fn render(&self, rows: &[Value], header: &[(&str, &str)]) -> Result<String> {
        let mut body = String::new();
        for row in rows {
            body.push_str(&execute(&self.tmpl, row).context("failed to execute template")?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let mut hdr: Vec<(std::sync::Arc<str>, Value)> = header
            .iter()
            .map(|(k, v)| (std::sync::Arc::<str>::from(*k), Value::String((*v).into())))
            .collect();
        hdr.push((HEADER_KEY.into(), Value::Bool(true)));
        let hdr = json::ordered_map(hdr);
        let mut text = self
            .header_tmpl
            .as_ref()
            .and_then(|t| t.execute_to_string(&hdr).ok())
            .unwrap_or_default();
        text.push('\n');
        text.push_str(&body);
        Ok(TabWriter::docker().format(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json::ordered_map;

    fn row(pairs: &[(&str, &str)]) -> Value {
        ordered_map(
            pairs
                .iter()
                .map(|(k, v)| (Arc::<str>::from(*k), Value::String((*v).into())))
                .collect(),
        )
    }

    #[test]
    fn helpers() {
        let t = parse(r#"{{upper .A}} {{lower .A}} {{title "hello wide world"}} {{join (split .B ",") "|"}} [{{pad .A 1 2}}] {{truncate .A 3}} {{json .}}"#).unwrap();
        let out = execute(&t, &row(&[("A", "Abcdef"), ("B", "x,y")])).unwrap();
        assert_eq!(
            out,
            r#"ABCDEF abcdef Hello Wide World x|y [ Abcdef  ] Abc {"A":"Abcdef","B":"x,y"}"#
        );
    }

    #[test]
    fn table_with_label_and_header() {
        let labels = vec![(Arc::<str>::from("com.x.role"), Value::String("web".into()))];
        let r = ordered_map(vec![
            ("ID".into(), Value::String("abc".into())),
            (LABELS_KEY.into(), ordered_map(labels)),
        ]);
        let f = Formatter::new(r#"table {{.ID}}\t{{.Label "com.x.role"}}"#).unwrap();
        let out = f.render(&[r], &[("ID", "CONTAINER ID")]).unwrap();
        assert_eq!(out, "CONTAINER ID   role\nabc            web\n");
    }

    #[test]
    fn raw_format_lines() {
        let f = Formatter::new("{{.ID}}").unwrap();
        let out = f
            .render(&[row(&[("ID", "a")]), row(&[("ID", "b")])], &[])
            .unwrap();
        assert_eq!(out, "a\nb\n");
    }

    #[test]
    fn empty_table_prints_header() {
        let f = Formatter::new("table {{.ID}}\t{{.Names}}").unwrap();
        let out = f
            .render(&[], &[("ID", "CONTAINER ID"), ("Names", "NAMES")])
            .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\n");
    }
}
