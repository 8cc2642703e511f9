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

/// Docker's policy names (what the typed models accept).
fn is_docker_policy(name: &str) -> bool {
    matches!(name, "" | "no" | "always" | "unless-stopped" | "on-failure")
}

/// A create body (`Labels` at the top, `HostConfig.RestartPolicy`): see [`carry`]. An
/// unknown name is refused with Docker's message.
pub fn carry_in_create_body(body: &mut Value) -> Result<(), crate::ApiError> {
    if let Some(name) = body
        .pointer("/HostConfig/RestartPolicy/Name")
        .and_then(Value::as_str)
    {
        if !is_docker_policy(name) && !is_berth_policy(name) {
            return Err(crate::ApiError::invalid(format!(
                "invalid restart policy '{name}'"
            )));
        }
    }
    let Some(obj) = body.as_object_mut() else {
        return Ok(());
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
    Ok(())
}

/// An inspect answer, serialized (key order kept): shows the label's policy as
/// `HostConfig.RestartPolicy` in place of the `no` that carries it.
pub fn show_in_inspect(
    json: String,
    labels: Option<&std::collections::HashMap<String, String>>,
) -> String {
    let Some(label) = labels.and_then(|l| l.get(POLICY_LABEL)) else {
        return json;
    };
    let (name, max) = match label.split_once(':') {
        Some((n, m)) => (n, m.parse::<i64>().unwrap_or(0)),
        None => (label.as_str(), 0),
    };
    if !is_berth_policy(name) {
        return json;
    }
    json.replacen(
        r#""RestartPolicy":{"Name":"no","MaximumRetryCount":0}"#,
        &format!(r#""RestartPolicy":{{"Name":"{name}","MaximumRetryCount":{max}}}"#),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut body = serde_json::json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "on-unhealthy", "MaximumRetryCount": 2}}});
        carry_in_create_body(&mut body).unwrap();
        assert_eq!(body["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(body["Labels"][POLICY_LABEL], "on-unhealthy:2");
        let labels: std::collections::HashMap<String, String> =
            serde_json::from_value(body["Labels"].clone()).unwrap();
        let inspect =
            r#"{"HostConfig":{"RestartPolicy":{"Name":"no","MaximumRetryCount":0}},"Config":{}}"#;
        let shown = show_in_inspect(inspect.to_owned(), Some(&labels));
        assert_eq!(
            shown,
            r#"{"HostConfig":{"RestartPolicy":{"Name":"on-unhealthy","MaximumRetryCount":2}},"Config":{}}"#
        );
        assert_eq!(show_in_inspect(inspect.to_owned(), None), inspect);
        let mut other = serde_json::json!({"HostConfig": {"RestartPolicy": {"Name": "always"}}});
        carry_in_create_body(&mut other).unwrap();
        assert!(other.get("Labels").is_none());
        let mut bad = serde_json::json!({"HostConfig": {"RestartPolicy": {"Name": "bogus"}}});
        assert_eq!(
            carry_in_create_body(&mut bad).unwrap_err().message,
            "invalid restart policy 'bogus'"
        );
    }
}
