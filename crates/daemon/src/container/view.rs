//! `ps` and `inspect`: the container as the Docker API shows it.
use std::collections::HashMap;

use berth_api::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryHostConfig, ContainerSummaryNetworkSettings, ContainerSummaryStateEnum,
    DriverData, MountPoint,
};
use berth_api::{ApiError, ListOptions};

use super::{Containers, Record, Status, ZERO_TIME};

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// go-units `HumanDuration`, as Docker prints "Up 3 seconds".
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = d.num_minutes();
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (d.num_seconds() as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

fn status_text(rec: &Record) -> String {
    let now = chrono::Utc::now();
    let s = &rec.state;
    match s.status {
        Status::Running | Status::Paused => {
            let up = parse_time(&s.started_at)
                .map(|t| human_duration(now - t))
                .unwrap_or_default();
            if s.status == Status::Paused {
                format!("Up {up} (Paused)")
            } else if let Some(h) = rec.health.as_ref().filter(|h| !h.status.is_empty()) {
                format!("Up {up} ({})", h.ps_suffix())
            } else {
                format!("Up {up}")
            }
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            parse_time(&s.finished_at)
                .map(|t| human_duration(now - t))
                .unwrap_or_default()
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => {
            if s.finished_at == ZERO_TIME {
                return "Created".into();
            }
            let ago = parse_time(&s.finished_at)
                .map(|t| human_duration(now - t))
                .unwrap_or_default();
            format!("Exited ({}) {ago} ago", s.exit_code)
        }
    }
}

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn command_line(rec: &Record) -> String {
    std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mounts(rec: &Record) -> Vec<MountPoint> {
    rec.mount_points.iter().map(|m| m.to_api()).collect()
}

/// Checks filter names and values before any container is looked at, so a bad filter is an
/// error even when nothing would be listed.
fn validate_filters(filters: &HashMap<String, Vec<String>>) -> Result<(), ApiError> {
    for (key, vals) in filters {
        match key.as_str() {
            "status" => {
                for v in vals {
                    if !matches!(
                        v.as_str(),
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) {
                        return Err(ApiError::invalid(format!("Invalid filter 'status={v}'")));
                    }
                }
            }
            "exited" => {
                for v in vals {
                    v.parse::<i64>()
                        .map_err(|_| ApiError::invalid(format!("invalid filter 'exited={v}'")))?;
                }
            }
            "health" => super::health::validate_filter(vals)?,
            "id" | "name" | "label" | "ancestor" | "network" | "before" | "since" | "volume"
            | "isolation" | "is-task" | "expose" | "publish" => {}
            other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
        }
    }
    Ok(())
}

/// Whether `rec` passes the filters (already checked by [`validate_filters`]); `names` are the
/// `name` filters compiled once per listing.
fn matches_filters(
    rec: &Record,
    filters: &HashMap<String, Vec<String>>,
    names: &[regex::Regex],
) -> bool {
    for (key, vals) in filters {
        if vals.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            // A regular expression, against the name with and without its leading '/'.
            "name" => names.iter().any(|re| name_matches(re, &rec.name)),
            "status" => vals.iter().any(|v| v == rec.state.status.as_str()),
            "exited" => vals.iter().any(|v| {
                v.parse::<i64>().ok() == Some(rec.state.exit_code)
                    && rec.state.status == Status::Exited
            }),
            "label" => vals.iter().all(|v| {
                let Some(labels) = rec.config.labels.as_ref() else {
                    return false;
                };
                match v.split_once('=') {
                    Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
                    None => labels.contains_key(v.as_str()),
                }
            }),
            "ancestor" => vals.iter().any(|v| {
                rec.image == *v
                    || rec.image_id == *v
                    || rec
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.as_str())
                    || rec.image.split(':').next() == Some(v.as_str())
            }),
            "health" => vals.iter().any(|v| super::health::filter_matches(rec, v)),
            // A mount by volume name or destination (moby's `volume` filter).
            "volume" => vals.iter().any(|v| {
                rec.mount_points
                    .iter()
                    .any(|m| (m.typ == "volume" && m.name == *v) || m.destination == *v)
            }),
            // Matched by the caller against the network service.
            "network" => true,
            // before/since are applied by the caller; the rest match nothing berth has yet.
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Docker's name filter: a regular expression, against the name with and without its '/'.
fn name_matches(re: &regex::Regex, name: &str) -> bool {
    re.is_match(name) || re.is_match(&format!("/{name}"))
}

impl Containers {
    pub fn list_containers(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>, ApiError> {
        validate_filters(&opts.filters)?;
        // An invalid pattern matches nothing (as Docker's filter).
        let names: Vec<regex::Regex> = opts
            .filters
            .get("name")
            .into_iter()
            .flatten()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect();
        let mut recs: Vec<Record> = self.all().iter().map(|c| c.snapshot()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let before = opts
            .filters
            .get("before")
            .and_then(|v| v.first())
            .map(|k| self.get(k).map(|c| c.snapshot().created))
            .transpose()?;
        let since = opts
            .filters
            .get("since")
            .and_then(|v| v.first())
            .map(|k| self.get(k).map(|c| c.snapshot().created))
            .transpose()?;
        let mut out = Vec::new();
        for rec in recs {
            let explicit_status =
                opts.filters.contains_key("status") || opts.filters.contains_key("exited");
            if !opts.all
                && !explicit_status
                && opts.limit.is_none()
                && !rec.state.status.is_running()
            {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b)
                || since.as_ref().is_some_and(|s| rec.created <= *s)
            {
                continue;
            }
            if !matches_filters(&rec, &opts.filters, &names) {
                continue;
            }
            if let Some(nets) = opts.filters.get("network").filter(|v| !v.is_empty()) {
                let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
                if !self.net.attached_to(&rec.id, mode, nets) {
                    continue;
                }
            }
            out.push(self.summary(&rec));
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn summary(&self, rec: &Record) -> ContainerSummary {
        let net = rec
            .host_config
            .network_mode
            .clone()
            .unwrap_or_else(|| "none".into());
        let (net_map, ports) = self.net.summary(
            &rec.id,
            &net,
            &exposed_keys(rec),
            rec.state.status.is_running(),
        );
        ContainerSummary {
            id: Some(rec.id.clone()),
            names: Some(vec![format!("/{}", rec.name)]),
            image: Some(rec.image.clone()),
            image_id: Some(rec.image_id.clone()),
            command: Some(command_line(rec)),
            created: parse_time(&rec.created).map(|t| t.timestamp()),
            ports: Some(ports),
            labels: Some(rec.config.labels.clone().unwrap_or_default()),
            state: Some(summary_state(rec.state.status)),
            status: Some(status_text(rec)),
            host_config: Some(ContainerSummaryHostConfig {
                network_mode: Some(net.clone()),
                ..Default::default()
            }),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(net_map),
            }),
            mounts: Some(mounts(rec)),
            ..Default::default()
        }
    }

    pub fn inspect_container(&self, key: &str) -> Result<ContainerInspectResponse, ApiError> {
        let c = self.get(key)?;
        let rec = c.snapshot();
        let dir = self.paths.container_dir(&rec.id);
        let s = &rec.state;
        let net = rec
            .host_config
            .network_mode
            .clone()
            .unwrap_or_else(|| "none".into());
        let rw = dir.join("rw");
        let lower = self.store.held_layer_dirs(&rec.id).unwrap_or_default();
        let gd = HashMap::from([
            (
                "LowerDir".to_owned(),
                lower
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            (
                "UpperDir".to_owned(),
                rw.join("upper").display().to_string(),
            ),
            ("WorkDir".to_owned(), rw.join("work").display().to_string()),
            (
                "MergedDir".to_owned(),
                self.paths
                    .bundle(&rec.id)
                    .join("rootfs")
                    .display()
                    .to_string(),
            ),
        ]);
        let log_path = self.paths.log_path(&rec.id);
        Ok(ContainerInspectResponse {
            id: Some(rec.id.clone()),
            created: Some(rec.created.clone()),
            path: Some(rec.path.clone()),
            args: Some(rec.args.clone()),
            state: Some(ContainerState {
                status: Some(state_enum(s.status)),
                running: Some(s.status.is_running()),
                paused: Some(s.status == Status::Paused),
                restarting: Some(s.status == Status::Restarting),
                oom_killed: Some(s.oom_killed),
                dead: Some(s.status == Status::Dead),
                pid: Some(s.pid as i64),
                exit_code: Some(s.exit_code),
                error: Some(s.error.clone()),
                started_at: Some(s.started_at.clone()),
                finished_at: Some(s.finished_at.clone()),
                health: super::health::inspect_health(&rec),
            }),
            image: Some(rec.image_id.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(
                if rec
                    .host_config
                    .log_config
                    .as_ref()
                    .and_then(|l| l.typ.as_deref())
                    .is_some_and(|t| matches!(t, "none" | "local"))
                {
                    String::new()
                } else {
                    log_path.display().to_string()
                },
            ),
            name: Some(format!("/{}", rec.name)),
            restart_count: Some(rec.restart_count),
            driver: Some("overlayfs".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: None,
            host_config: Some(rec.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlayfs".into(),
                data: gd,
            }),
            mounts: Some(mounts(&rec)),
            config: Some(rec.config.clone()),
            network_settings: Some(self.net.container_settings(
                &rec.id,
                &net,
                &exposed_keys(&rec),
                rec.state.status.is_running(),
            )),
            ..Default::default()
        })
    }
}

/// The container's exposed ports as `port/proto` keys.
fn exposed_keys(rec: &Record) -> Vec<String> {
    let mut v: Vec<String> = rec
        .config
        .exposed_ports
        .as_ref()
        .map(|e| e.keys().cloned().collect())
        .unwrap_or_default();
    for k in rec
        .host_config
        .port_bindings
        .clone()
        .unwrap_or_default()
        .keys()
    {
        let k = if k.contains('/') {
            k.clone()
        } else {
            format!("{k}/tcp")
        };
        if !v.contains(&k) {
            v.push(k);
        }
    }
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go_units() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(59)), "59 seconds");
        assert_eq!(human_duration(d(60)), "About a minute");
        assert_eq!(human_duration(d(150)), "2 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(3 * 3600)), "3 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
    }

    #[test]
    fn name_anchors() {
        // As listing compiles them: an invalid pattern matches nothing.
        let name_matches =
            |p: &str, n: &str| regex::Regex::new(p).is_ok_and(|re| super::name_matches(&re, n));
        assert!(name_matches("^web$", "web"));
        assert!(name_matches("^/web$", "web"));
        assert!(!name_matches("^web$", "web2"));
        assert!(name_matches("^we", "web2"));
        assert!(name_matches("eb", "web2"));
        assert!(name_matches("w.b[0-9]", "web2"));
        assert!(!name_matches("(", "web2"));
    }
}
