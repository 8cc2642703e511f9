//! berth's own restart policy names (`on-unhealthy[:N]`) on Docker's typed wire.
//!
//! Docker's models only know `no`, `always`, `unless-stopped` and `on-failure`. A create
//! body naming `on-unhealthy` is rewritten before it is parsed: the name becomes `no` and
//! the policy is kept in the label [`POLICY_LABEL`]; inspect shows it back under
//! `HostConfig.RestartPolicy`.
use serde_json::{Map, Value};

/// Label that carries berth's own restart policy (`on-unhealthy` or `on-unhealthy:N`).
pub const POLICY_LABEL: &str = "berth.restart-policy";

/// Whether `name` is one of berth's own policy names.
pub fn is_berth_policy(name: &str) -> bool {
    name == "on-unhealthy"
}

/// Rewrites `{"Name": "on-unhealthy", "MaximumRetryCount": N}` to `{"Name": "no", ...}`
/// and records the policy in `labels`. Returns whether it did.
pub fn carry(policy: Option<&mut Value>, labels: &mut Map<String, Value>) -> bool {
    let Some(p) = policy.and_then(Value::as_object_mut) else {
        return false;
    };
    let name = p.get("Name").and_then(Value::as_str).unwrap_or("");
    if !is_berth_policy(name) {
        return false;
    }
    let max = p
        .get("MaximumRetryCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let v = if max != 0 {
        format!("{name}:{max}")
    } else {
        name.to_owned()
    };
    labels.insert(POLICY_LABEL.to_owned(), Value::String(v));
    p.insert("Name".into(), Value::String("no".into()));
    p.insert("MaximumRetryCount".into(), Value::from(0));
    true
}

/// A create body (`Labels` at the top, `HostConfig.RestartPolicy`): see [`carry`].
pub fn carry_in_create_body(body: &mut Value) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let mut labels = match obj.get("Labels") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let policy = obj
        .get_mut("HostConfig")
        .and_then(|h| h.get_mut("RestartPolicy"));
    if carry(policy, &mut labels) {
        obj.insert("Labels".into(), Value::Object(labels));
    }
}

/// An inspect answer: shows the label's policy as `HostConfig.RestartPolicy`.
pub fn show_in_inspect(v: &mut Value) {
    let Some(label) = v
        .pointer(&format!("/Config/Labels/{POLICY_LABEL}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let (name, max) = match label.split_once(':') {
        Some((n, m)) => (n.to_owned(), m.parse::<i64>().unwrap_or(0)),
        None => (label.clone(), 0),
    };
    if let Some(hc) = v.get_mut("HostConfig").and_then(Value::as_object_mut) {
        hc.insert(
            "RestartPolicy".into(),
            serde_json::json!({"Name": name, "MaximumRetryCount": max}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut body = serde_json::json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "on-unhealthy", "MaximumRetryCount": 2}}});
        carry_in_create_body(&mut body);
        assert_eq!(body["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(body["Labels"][POLICY_LABEL], "on-unhealthy:2");
        let mut inspect = serde_json::json!({"Config": {"Labels": body["Labels"].clone()}, "HostConfig": {"RestartPolicy": {"Name": "no"}}});
        show_in_inspect(&mut inspect);
        assert_eq!(
            inspect["HostConfig"]["RestartPolicy"]["Name"],
            "on-unhealthy"
        );
        assert_eq!(
            inspect["HostConfig"]["RestartPolicy"]["MaximumRetryCount"],
            2
        );
        let mut other = serde_json::json!({"HostConfig": {"RestartPolicy": {"Name": "always"}}});
        carry_in_create_body(&mut other);
        assert!(other.get("Labels").is_none());
    }
}
