//! Query-string helpers with Docker's conventions (`1`/`true` booleans, JSON `filters`).
use std::collections::HashMap;

use crate::backend::Filters;
use crate::error::ApiError;

pub type Query = HashMap<String, String>;

pub fn flag(q: &Query, key: &str) -> bool {
    matches!(
        q.get(key).map(|s| s.to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes")
    )
}

pub fn flag_or(q: &Query, key: &str, default: bool) -> bool {
    match q.get(key) {
        None => default,
        Some(_) => flag(q, key),
    }
}

pub fn opt_str(q: &Query, key: &str) -> Option<String> {
    q.get(key).filter(|s| !s.is_empty()).cloned()
}

pub fn opt_int(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("invalid value for {key}: {s:?}"))),
    }
}

/// Decodes `filters`: `{"name":{"foo":true}}` (current) or `{"name":["foo"]}` (old).
pub fn filters(q: &Query) -> Result<Filters, ApiError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(Filters::new());
    };
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("invalid filter: not an object"))?;
    let mut out = Filters::new();
    for (k, v) in obj {
        let vals: Vec<String> = match v {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err(ApiError::invalid(format!("invalid filter '{k}'"))),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

/// Parses a Docker timestamp parameter (`since`/`until`): unix seconds with optional
/// fraction, or RFC 3339. Returns unix nanoseconds; 0 for absent.
pub fn timestamp_nanos(q: &Query, key: &str) -> Result<i64, ApiError> {
    let Some(s) = q.get(key).filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    parse_timestamp(s).ok_or_else(|| ApiError::invalid(format!("invalid value for {key}: {s:?}")))
}

pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Some((secs, frac)) = s.split_once('.') {
        let secs: i64 = secs.parse().ok()?;
        let mut f = frac.to_owned();
        f.truncate(9);
        while f.len() < 9 {
            f.push('0');
        }
        let nanos: i64 = f.parse().ok()?;
        return Some(secs * 1_000_000_000 + nanos);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs * 1_000_000_000);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_both_forms() {
        let mut q = Query::new();
        q.insert(
            "filters".into(),
            r#"{"name":{"foo":true},"status":["exited"]}"#.into(),
        );
        let f = filters(&q).unwrap();
        assert_eq!(f["name"], vec!["foo"]);
        assert_eq!(f["status"], vec!["exited"]);
        q.insert("filters".into(), "{bad".into());
        assert!(filters(&q).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("10"), Some(10_000_000_000));
        assert_eq!(parse_timestamp("10.5"), Some(10_500_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(parse_timestamp("x"), None);
    }

    #[test]
    fn flags() {
        let mut q = Query::new();
        q.insert("a".into(), "1".into());
        q.insert("b".into(), "True".into());
        q.insert("c".into(), "0".into());
        assert!(flag(&q, "a") && flag(&q, "b") && !flag(&q, "c") && !flag(&q, "d"));
        assert!(flag_or(&q, "d", true));
    }
}
