//! `docker image prune` and `docker container prune` with Docker's filters (`dangling`,
//! `until`, `label`, `label!`); reclaimed bytes are measured on disk as things are deleted.
use std::collections::{BTreeMap, HashSet};

use berth_api::{ApiError, ApiResult, Filters};
use berth_store::ImageDelete;
use serde_json::json;

use super::{join_err, Storage};
use crate::events::Events;

/// Go duration (`24h`, `1h30m`, `10m`, `90s`, `500ms`) in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        let v: f64 = num.parse().ok()?;
        let u = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(u);
        let mult = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += v * mult;
        rest = next;
    }
    Some(total)
}

/// Docker's `until`: a duration before now, unix seconds (with fraction) or RFC 3339.
/// Returns unix seconds.
pub(crate) fn parse_until(s: &str) -> Result<f64, ApiError> {
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    if let Some(d) = go_duration(s) {
        return Ok(now - d);
    }
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis() as f64 / 1000.0);
    }
    if let Ok(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(t
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp() as f64);
    }
    Err(ApiError::invalid(format!(
        "failed to parse value as time or duration: \"{s}\""
    )))
}

fn check_keys(f: &Filters, allowed: &[&str]) -> Result<(), ApiError> {
    for k in f.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!("Invalid filter '{k}'")));
        }
    }
    Ok(())
}

/// `label=k`, `label=k=v` all match; `label!=…` none match.
pub(crate) fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    let one = |spec: &str| match spec.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(spec),
    };
    f.get("label").is_none_or(|vs| vs.iter().all(|v| one(v)))
        && f.get("label!").is_none_or(|vs| !vs.iter().any(|v| one(v)))
}

fn until_of(f: &Filters) -> Result<Option<f64>, ApiError> {
    match f.get("until").map(|v| v.as_slice()) {
        None | Some([]) => Ok(None),
        Some([one]) => parse_until(one).map(Some),
        Some(_) => Err(ApiError::invalid("more than one until filter specified")),
    }
}

fn rfc3339_secs(s: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// Publishes Docker's `untag`/`delete` image events for `rmi`/prune records; `images` are
/// the image IDs that existed before (layer deletions are not events).
pub(crate) fn delete_events(events: &Events, records: &[ImageDelete], images: &HashSet<String>) {
    let mut out = Vec::new();
    let mut cur = String::new();
    for r in records.iter().rev() {
        match r {
            ImageDelete::Deleted(id) if images.contains(id) => {
                cur = id.clone();
                out.push(("delete", id.clone()));
            }
            ImageDelete::Deleted(_) => {}
            ImageDelete::Untagged(_) => out.push(("untag", cur.clone())),
        }
    }
    for (action, id) in out.into_iter().rev() {
        events.publish(
            "image",
            action,
            &id,
            [("name".to_owned(), id.clone())].into(),
        );
    }
}

pub(crate) fn delete_json(records: &[ImageDelete]) -> Vec<serde_json::Value> {
    records
        .iter()
        .map(|r| match r {
            ImageDelete::Untagged(t) => json!({ "Untagged": t }),
            ImageDelete::Deleted(d) => json!({ "Deleted": d }),
        })
        .collect()
}

impl Storage {
    pub(crate) async fn prune_images_filtered(&self, f: Filters) -> ApiResult<serde_json::Value> {
        check_keys(&f, &["dangling", "until", "label", "label!"])?;
        let all = match f
            .get("dangling")
            .and_then(|v| v.first())
            .map(String::as_str)
        {
            None => false,
            Some("true" | "1") => false,
            Some("false" | "0") => true,
            Some(v) => return Err(ApiError::invalid(format!("invalid filter 'dangling={v}'"))),
        };
        let until = until_of(&f)?;
        let store = self.store.clone();
        let containers = self.containers.clone();
        let (records, freed, before) = tokio::task::spawn_blocking(move || {
            let before: HashSet<String> = store
                .images()
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.id)
                .collect();
            let candidate = |img: &berth_store::Image| {
                until.is_none_or(|u| rfc3339_secs(&img.created) < u)
                    && labels_match(&f, &img.config.config.labels)
            };
            let (r, freed) = store.prune_images(all, &candidate, &|id| containers.image_user(id));
            (r, freed, before)
        })
        .await
        .map_err(join_err)?;
        delete_events(&self.events, &records, &before);
        self.events.publish(
            "image",
            "prune",
            "",
            [("reclaimed".to_owned(), freed.to_string())].into(),
        );
        let deleted = delete_json(&records);
        Ok(json!({
            "ImagesDeleted": if deleted.is_empty() { serde_json::Value::Null } else { deleted.into() },
            "SpaceReclaimed": freed,
        }))
    }

    pub(crate) async fn prune_containers_filtered(
        &self,
        f: Filters,
    ) -> ApiResult<serde_json::Value> {
        check_keys(&f, &["until", "label", "label!"])?;
        let until = until_of(&f)?;
        let mut deleted = Vec::new();
        let mut freed = 0u64;
        for c in self.containers.all() {
            let rec = c.snapshot();
            if rec.state.status.is_running()
                || rec.state.status == crate::container::Status::Removing
            {
                continue;
            }
            if until.is_some_and(|u| rfc3339_secs(&rec.created) >= u) {
                continue;
            }
            let labels: BTreeMap<String, String> = rec
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            if !labels_match(&f, &labels) {
                continue;
            }
            let dir = self.containers.paths.container_dir(&rec.id);
            let size = tokio::task::spawn_blocking(move || berth_store::disk_usage(&dir))
                .await
                .map_err(join_err)?;
            match self.containers.remove_container(&rec.id, false).await {
                Ok(()) => {
                    deleted.push(rec.id.clone());
                    freed += size;
                }
                Err(e) => tracing::warn!(id = %rec.id, error = %e.message, "prune: removing"),
            }
        }
        self.events.publish(
            "container",
            "prune",
            "",
            [("reclaimed".to_owned(), freed.to_string())].into(),
        );
        Ok(json!({
            "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { deleted.into() },
            "SpaceReclaimed": freed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(go_duration("24h"), Some(86400.0));
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("10x"), None);
        assert!(parse_until("10m").unwrap() < chrono::Utc::now().timestamp() as f64);
        assert_eq!(parse_until("1000").unwrap(), 1000.0);
        assert_eq!(parse_until("1970-01-01T00:00:10Z").unwrap(), 10.0);
        assert!(parse_until("nope").is_err());
    }

    #[test]
    fn label_filters() {
        let mut l = BTreeMap::new();
        l.insert("a".to_owned(), "1".to_owned());
        let f = |k: &str, v: &str| -> Filters { [(k.to_owned(), vec![v.to_owned()])].into() };
        assert!(labels_match(&f("label", "a"), &l));
        assert!(labels_match(&f("label", "a=1"), &l));
        assert!(!labels_match(&f("label", "a=2"), &l));
        assert!(!labels_match(&f("label!", "a"), &l));
        assert!(labels_match(&f("label!", "b"), &l));
    }
}
