//! `docker import -c` / `commit -c`: Dockerfile instructions applied to an image config.
use berth_oci::image::Config;

use crate::error::StoreError;

fn json_or_shell(rest: &str, shell_form: bool) -> Vec<String> {
    if rest.trim_start().starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest.trim()) {
            return v;
        }
    }
    if shell_form {
        vec!["/bin/sh".into(), "-c".into(), rest.trim().to_owned()]
    } else {
        rest.split_whitespace().map(str::to_owned).collect()
    }
}

/// Go's `time.ParseDuration` for Dockerfile flags (`30s`, `1m30s`, `500ms`), in ns.
fn go_duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s;
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    Some(total as i64)
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D]
/// [--retries=N] CMD …` or `HEALTHCHECK NONE`, as the image config's `Healthcheck`.
fn healthcheck(rest: &str) -> Result<serde_json::Value, StoreError> {
    let mut rest = rest.trim();
    let mut hc = serde_json::Map::new();
    while let Some(flag) = rest.strip_prefix("--") {
        let (f, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (name, value) = f
            .split_once('=')
            .ok_or_else(|| malformed(rest, "HEALTHCHECK flags take --name=value"))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(malformed(rest, "unknown HEALTHCHECK flag")),
        };
        let v = if key == "Retries" {
            value
                .parse::<i64>()
                .map_err(|_| malformed(rest, "--retries must be a number"))?
        } else {
            go_duration_ns(value).ok_or_else(|| malformed(rest, "invalid HEALTHCHECK duration"))?
        };
        hc.insert(key.into(), serde_json::json!(v));
        rest = after.trim_start();
    }
    let (kind, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if cmd.trim().is_empty() => {
            return Ok(serde_json::json!({"Test": ["NONE"]}));
        }
        "CMD" if !cmd.trim().is_empty() => {
            let test: Vec<String> = if cmd.trim_start().starts_with('[') {
                let args: Vec<String> = serde_json::from_str(cmd.trim())
                    .map_err(|_| malformed(rest, "invalid JSON command"))?;
                std::iter::once("CMD".to_owned()).chain(args).collect()
            } else {
                vec!["CMD-SHELL".into(), cmd.trim().to_owned()]
            };
            hc.insert("Test".into(), serde_json::json!(test));
        }
        _ => return Err(malformed(rest, "HEALTHCHECK takes CMD or NONE")),
    }
    Ok(serde_json::Value::Object(hc))
}

fn malformed(change: &str, reason: &'static str) -> StoreError {
    StoreError::MalformedChange {
        change: change.to_owned(),
        reason,
    }
}

/// `K=V K2="V 2"` or the legacy `K V` form.
fn pairs(rest: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rest = rest.trim();
    if !rest.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| malformed(rest, "expected KEY=VALUE or KEY VALUE"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(malformed(rest, "expected KEY=VALUE"));
        }
        let mut val = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => break,
                _ => val.push(c),
            }
            chars.next();
        }
        out.push((key, val));
    }
    Ok(out)
}

/// Applies `changes` in order; Docker's commit commands only (CMD, ENTRYPOINT, ENV,
/// EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
pub fn apply(cfg: &mut Config, changes: &[String]) -> Result<(), StoreError> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (ins, rest) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        match ins.to_ascii_uppercase().as_str() {
            "CMD" => cfg.cmd = Some(json_or_shell(rest, true)),
            "ENTRYPOINT" => cfg.entrypoint = Some(json_or_shell(rest, true)),
            "ENV" => {
                for (k, v) in pairs(rest)? {
                    cfg.env
                        .retain(|e| e.split_once('=').map(|(a, _)| a) != Some(k.as_str()));
                    cfg.env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                for (k, v) in pairs(rest)? {
                    cfg.labels.insert(k, v);
                }
            }
            "WORKDIR" => cfg.working_dir = Some(rest.trim().to_owned()),
            "USER" => cfg.user = Some(rest.trim().to_owned()),
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_owned()
                    } else {
                        format!("{p}/tcp")
                    };
                    cfg.exposed_ports.insert(p, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                for v in json_or_shell(rest, false) {
                    cfg.volumes.insert(v, serde_json::json!({}));
                }
            }
            "STOPSIGNAL" => cfg.stop_signal = Some(rest.trim().to_owned()),
            "HEALTHCHECK" => cfg.healthcheck = Some(healthcheck(rest)?),
            "ONBUILD" => cfg.on_build.push(rest.trim().to_owned()),
            _ => {
                return Err(StoreError::InvalidChange {
                    instruction: ins.to_ascii_lowercase(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_changes() {
        let mut c = Config::default();
        apply(
            &mut c,
            &["HEALTHCHECK --interval=1s --retries=2 CMD test -e /tmp/ok".into()],
        )
        .unwrap();
        assert_eq!(
            c.healthcheck.clone().unwrap(),
            serde_json::json!({"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 1_000_000_000i64, "Retries": 2})
        );
        apply(&mut c, &["HEALTHCHECK CMD [\"true\"]".into()]).unwrap();
        assert_eq!(
            c.healthcheck.clone().unwrap()["Test"],
            serde_json::json!(["CMD", "true"])
        );
        apply(&mut c, &["HEALTHCHECK NONE".into()]).unwrap();
        assert_eq!(
            c.healthcheck.clone().unwrap()["Test"],
            serde_json::json!(["NONE"])
        );
        assert!(apply(&mut c, &["HEALTHCHECK --interval=x CMD true".into()]).is_err());
        assert!(apply(&mut c, &["HEALTHCHECK".into()]).is_err());
    }

    #[test]
    fn applies_dockerfile_changes() {
        let mut c = Config::default();
        apply(
            &mut c,
            &[
                "CMD [\"sh\",\"-c\",\"echo hi\"]".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3".into(),
                "EXPOSE 80".into(),
                "WORKDIR /app".into(),
                "ENTRYPOINT echo x".into(),
                "LABEL k=v".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.env, vec!["A=1", "B=two words", "C=3"]);
        assert!(c.exposed_ports.contains_key("80/tcp"));
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "echo x"]);
        assert_eq!(c.labels["k"], "v");
        let e = apply(&mut Config::default(), &["FROB x".into()]).unwrap_err();
        assert_eq!(e.to_string(), "frob is not a valid change command");
        assert!(apply(&mut Config::default(), &["ENV =x".into()]).is_err());
    }
}
