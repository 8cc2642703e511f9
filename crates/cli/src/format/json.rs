//! JSON as docker's CLI sees it: daemon objects become template values while keeping the
//! daemon's key order (so `{{json .Config}}` prints keys in the order dockerd sends them,
//! as Go's struct marshalling does), numbers stay integers, and raw documents are
//! re-indented like Go's `json.Indent`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use gotmpl::Value;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Keys beginning with this byte are internal to the CLI and never marshalled.
pub const HIDDEN: char = '\0';
/// A map holding this key marshals like a Go formatter context (`MarshalJSON` via
/// `json.Marshal`): `<`, `>` and `&` in strings are escaped as `\u003c` etc.
pub const HTML_ESCAPE_KEY: &str = "\0html";

type OrderedMap = Arc<BTreeMap<Arc<str>, Value>>;
/// Map address -> (the map, kept alive so the address stays unique; its key order).
type OrderRegistry = HashMap<usize, (OrderedMap, Vec<Arc<str>>)>;

thread_local! {
    /// Key order of maps built from daemon JSON, by the address of their shared map.
    static KEY_ORDER: RefCell<OrderRegistry> = RefCell::new(HashMap::new());
}

/// Build a map value whose `json` rendering keeps `keys` order.
pub fn ordered_map(entries: Vec<(Arc<str>, Value)>) -> Value {
    let keys: Vec<Arc<str>> = entries.iter().map(|(k, _)| k.clone()).collect();
    let map: OrderedMap = Arc::new(entries.into_iter().collect());
    KEY_ORDER.with(|o| {
        o.borrow_mut()
            .insert(Arc::as_ptr(&map) as usize, (map.clone(), keys))
    });
    Value::Map(map)
}

struct Ordered(Value);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered(Value::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Uint(v),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
        Ok(Ordered(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered(Value::String(v.into())))
    }
    fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
        Ok(Ordered(Value::String(v.into())))
    }
    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered(Value::Nil))
    }
    fn visit_none<E>(self) -> Result<Ordered, E> {
        Ok(Ordered(Value::Nil))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some(Ordered(e)) = seq.next_element()? {
            v.push(e);
        }
        Ok(Ordered(Value::List(v.into())))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, Ordered(v))) = map.next_entry::<String, Ordered>()? {
            entries.push((Arc::<str>::from(k), v));
        }
        Ok(Ordered(ordered_map(entries)))
    }
}

/// Parse daemon JSON into a template value, remembering object key order.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Ordered>(bytes).map(|o| o.0)
}

/// Convert a `serde_json::Value` (keys sorted) into a template value.
pub fn from_serde(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::Uint(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => ordered_map(
            o.iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), from_serde(v)))
                .collect(),
        ),
    }
}

/// Marshal a template value like Go's `json.Encoder` with `SetEscapeHTML(false)`.
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out, false);
    out
}

fn json_str(s: &str, html: bool) -> String {
    let j = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    if html {
        j.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    } else {
        j
    }
}

fn write_json(v: &Value, out: &mut String, html: bool) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(
            &serde_json::Number::from_f64(*f).map_or_else(|| "null".to_string(), |n| n.to_string()),
        ),
        Value::String(s) => out.push_str(&json_str(s, html)),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(e, out, html);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let order = KEY_ORDER.with(|o| {
                o.borrow()
                    .get(&(Arc::as_ptr(m) as usize))
                    .map(|(_, keys)| keys.clone())
            });
            let keys: Vec<Arc<str>> = order.unwrap_or_else(|| m.keys().cloned().collect());
            let html = html || m.contains_key(HTML_ESCAPE_KEY);
            out.push('{');
            let mut first = true;
            for k in keys.iter().filter(|k| !k.starts_with(HIDDEN)) {
                let Some(val) = m.get(k) else { continue };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&json_str(k, html));
                out.push(':');
                write_json(val, out, html);
            }
            out.push('}');
        }
        Value::Function(_) => out.push_str("null"),
    }
}

/// Go's `json.Indent(dst, src, prefix, indent)`: re-layout without touching tokens.
pub fn indent(src: &[u8], prefix: &str, ind: &str) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend_from_slice(prefix.as_bytes());
        for _ in 0..depth {
            out.extend_from_slice(ind.as_bytes());
        }
    };
    for &c in src {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_indent && c != b']' && c != b'}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                need_indent = true;
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => {
                out.push(c);
                out.push(b' ');
            }
            b'}' | b']' => {
                if need_indent {
                    // empty object or array
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_daemon_key_order() {
        let v = parse(br#"{"Zeta":1,"Alpha":{"b":[1,2],"a":null},"S":"<x>&"}"#).unwrap();
        assert_eq!(
            to_json(&v),
            r#"{"Zeta":1,"Alpha":{"b":[1,2],"a":null},"S":"<x>&"}"#
        );
        let Value::Map(m) = &v else { panic!() };
        assert_eq!(to_json(m.get("Alpha").unwrap()), r#"{"b":[1,2],"a":null}"#);
    }

    #[test]
    fn formatter_rows_escape_html() {
        let row = ordered_map(vec![
            (
                "P".into(),
                Value::String("0.0.0.0:80->80/tcp <none>".into()),
            ),
            (HTML_ESCAPE_KEY.into(), Value::Bool(true)),
        ]);
        assert_eq!(
            to_json(&row),
            r#"{"P":"0.0.0.0:80-\u003e80/tcp \u003cnone\u003e"}"#
        );
    }

    #[test]
    fn indent_like_go() {
        let s = indent(br#"{"a":[],"b":{},"c":[1,{"d":"x, y"}]}"#, "", "    ");
        assert_eq!(
            s,
            "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": \"x, y\"\n        }\n    ]\n}"
        );
    }
}
