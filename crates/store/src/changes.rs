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
/// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
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
