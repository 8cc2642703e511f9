//! `--mount` (docker's CSV syntax, with its error messages), `--tmpfs` and
//! `--volumes-from` for `run` / `create`.
use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

/// go-units `RAMInBytes`: `64m`, `1g`, `512` (binary multiples).
fn ram_in_bytes(s: &str) -> Option<i64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l.strip_suffix('b').unwrap_or(&l);
    let (num, mult) = match l.chars().last()? {
        'k' => (&l[..l.len() - 1], 1i64 << 10),
        'm' => (&l[..l.len() - 1], 1 << 20),
        'g' => (&l[..l.len() - 1], 1 << 30),
        't' => (&l[..l.len() - 1], 1 << 40),
        _ => (l, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as i64)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => bail!("invalid value for {key}: {v}"),
    }
}

/// One `--mount` value as the API's `Mount` object.
pub fn parse_mount(spec: &str) -> Result<Value> {
    let err = |m: String| anyhow::anyhow!("invalid argument \"{spec}\" for \"--mount\" flag: {m}");
    let mut typ = "volume".to_owned();
    let mut m = Map::new();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    let mut vol_labels = Map::new();
    let mut driver_opts = Map::new();
    let mut driver_name: Option<String> = None;
    for field in spec.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let val = match (key.as_str(), val) {
            (
                "readonly"
                | "ro"
                | "volume-nocopy"
                | "bind-nonrecursive"
                | "bind-create-mountpoint",
                None,
            ) => "true".to_owned(),
            (_, None) => {
                return Err(err(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            (_, Some(v)) => v,
        };
        match key.as_str() {
            "type" => typ = val,
            "source" | "src" => {
                m.insert("Source".into(), json!(val));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val));
            }
            "readonly" | "ro" => {
                m.insert(
                    "ReadOnly".into(),
                    json!(parse_bool(&key, &val).map_err(|e| err(e.to_string()))?),
                );
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(val));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val.to_ascii_lowercase()));
            }
            "bind-nonrecursive" => {
                bind.insert(
                    "NonRecursive".into(),
                    json!(parse_bool(&key, &val).map_err(|e| err(e.to_string()))?),
                );
            }
            "bind-create-mountpoint" => {
                bind.insert(
                    "CreateMountpoint".into(),
                    json!(parse_bool(&key, &val).map_err(|e| err(e.to_string()))?),
                );
            }
            "volume-nocopy" => {
                vol.insert(
                    "NoCopy".into(),
                    json!(parse_bool(&key, &val).map_err(|e| err(e.to_string()))?),
                );
            }
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                vol_labels.insert(k.into(), json!(v));
            }
            "volume-driver" => driver_name = Some(val),
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                driver_opts.insert(k.into(), json!(v));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(val));
            }
            "tmpfs-size" => {
                let n = ram_in_bytes(&val)
                    .ok_or_else(|| err(format!("invalid value for {key}: {val}")))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let n = i64::from_str_radix(&val, 8)
                    .map_err(|_| err(format!("invalid value for {key}: {val}")))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            _ => return Err(err(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if !m.contains_key("Target") {
        return Err(err("target is required".into()));
    }
    if !vol_labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(vol_labels));
    }
    if driver_name.is_some() || !driver_opts.is_empty() {
        let mut dc = Map::new();
        if let Some(n) = driver_name {
            dc.insert("Name".into(), json!(n));
        }
        if !driver_opts.is_empty() {
            dc.insert("Options".into(), Value::Object(driver_opts));
        }
        vol.insert("DriverConfig".into(), Value::Object(dc));
    }
    if !bind.is_empty() {
        if typ != "bind" {
            return Err(err(format!(
                "cannot mix 'bind-*' options with mount type '{typ}'"
            )));
        }
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        if typ != "volume" {
            return Err(err(format!(
                "cannot mix 'volume-*' options with mount type '{typ}'"
            )));
        }
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        if typ != "tmpfs" {
            return Err(err(format!(
                "cannot mix 'tmpfs-*' options with mount type '{typ}'"
            )));
        }
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    m.insert("Type".into(), json!(typ));
    Ok(Value::Object(m))
}

/// `--tmpfs /path[:opts]` entries as `HostConfig.Tmpfs`.
pub fn tmpfs_map(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|t| match t.split_once(':') {
            Some((d, o)) => (d.to_owned(), json!(o)),
            None => (t.clone(), json!("")),
        })
        .collect()
}

/// Adds `Mounts`, `Tmpfs` and `VolumesFrom` to a host config.
pub fn apply(
    host: &mut Map<String, Value>,
    mount: &[String],
    tmpfs: &[String],
    volumes_from: &[String],
) -> Result<()> {
    if !mount.is_empty() {
        let ms: Vec<Value> = mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<_>>()?;
        host.insert("Mounts".into(), Value::Array(ms));
    }
    if !tmpfs.is_empty() {
        host.insert("Tmpfs".into(), Value::Object(tmpfs_map(tmpfs)));
    }
    if !volumes_from.is_empty() {
        host.insert("VolumesFrom".into(), json!(volumes_from));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_like_docker() {
        let m = parse_mount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(m["Type"], "bind");
        assert_eq!(m["ReadOnly"], true);
        assert_eq!(m["BindOptions"]["Propagation"], "rslave");
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m").unwrap();
        assert_eq!(m["TmpfsOptions"]["SizeBytes"], 1048576);
        assert_eq!(parse_mount("src=v,dst=/x").unwrap()["Type"], "volume");
        for (spec, want) in [
            ("type=volume", "target is required"),
            (
                "type=volume,src=v1,dst=/x,foo=bar",
                "unexpected key 'foo' in 'foo=bar'",
            ),
            ("dst=/x,readonly=maybe", "invalid value for readonly: maybe"),
            (
                "type=tmpfs,dst=/x,tmpfs-size=abc",
                "invalid value for tmpfs-size: abc",
            ),
            (
                "src=/tmp,dst=/x,bind-nonrecursive",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "dst=/x,novalue",
                "invalid field 'novalue' must be a key=value pair",
            ),
        ] {
            let e = parse_mount(spec).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("invalid argument \"{spec}\" for \"--mount\" flag: {want}")
            );
        }
    }
}
