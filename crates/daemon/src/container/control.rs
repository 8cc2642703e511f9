//! `pause`, `unpause` (the freezer cgroup, written directly) and `rename`.
use std::path::PathBuf;
use std::time::Duration;

use berth_api::ApiError;
use berth_runtime::cgroup_unified as unified;

use super::{Containers, Ctr, Record, Status};

/// The container's cgroup path inside a hierarchy (`/berth/<id>` or `<parent>/<id>`).
pub(crate) fn cgroup_path(rec: &Record) -> String {
    match rec
        .host_config
        .cgroup_parent
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        Some(p) => format!("{}/{}", p.trim_end_matches('/'), rec.id),
        None => format!("/berth/{}", rec.id),
    }
}

/// The directory of `controller` for the container (v2: the one unified directory).
pub(crate) fn cgroup_dir(rec: &Record, controller: &str) -> PathBuf {
    let rel = cgroup_path(rec);
    let rel = rel.trim_start_matches('/');
    if unified() {
        PathBuf::from("/sys/fs/cgroup").join(rel)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller).join(rel)
    }
}

/// Freezes or thaws every process of the container and waits until the kernel says so.
pub(crate) fn set_frozen(rec: &Record, frozen: bool) -> Result<(), String> {
    let dir = cgroup_dir(rec, "freezer");
    let (file, value, done) = if unified() {
        ("cgroup.freeze", if frozen { "1" } else { "0" }, None)
    } else {
        (
            "freezer.state",
            if frozen { "FROZEN" } else { "THAWED" },
            Some(if frozen { "FROZEN" } else { "THAWED" }),
        )
    };
    let path = dir.join(file);
    for _ in 0..1000 {
        std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))?;
        match done {
            None => {
                let ev = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                if ev.lines().any(|l| l == want) {
                    return Ok(());
                }
            }
            Some(d) => {
                if std::fs::read_to_string(&path).unwrap_or_default().trim() == d {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!("timed out waiting for {}", path.display()))
}

impl Containers {
    pub async fn pause_container(&self, key: &str) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        match rec.state.status {
            Status::Paused => {
                return Err(ApiError::conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            Status::Running => {}
            _ => {
                return Err(ApiError::conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        let r2 = rec.clone();
        tokio::task::spawn_blocking(move || set_frozen(&r2, true))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(format!("Cannot pause container {}: {e}", rec.id)))?;
        self.update(&c, |r| r.state.status = Status::Paused);
        self.emit(&c, "pause", &[]);
        Ok(())
    }

    pub async fn unpause_container(&self, key: &str) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if rec.state.status != Status::Paused {
            return Err(ApiError::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.thaw(&c)
            .await
            .map_err(|e| ApiError::internal(format!("Cannot unpause container {}: {e}", rec.id)))?;
        self.emit(&c, "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container (before stop/kill/rm so signals are delivered).
    pub(crate) async fn thaw(&self, c: &Ctr) -> Result<(), String> {
        let rec = c.snapshot();
        if rec.state.status != Status::Paused {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || set_frozen(&rec, false))
            .await
            .map_err(|e| e.to_string())??;
        self.update(c, |r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running;
            }
        });
        Ok(())
    }

    pub async fn rename_container(&self, key: &str, new_name: &str) -> Result<(), ApiError> {
        let c = self.get(key)?;
        let new = new_name.strip_prefix('/').unwrap_or(new_name);
        if new.is_empty() {
            return Err(ApiError::invalid("Neither old nor new names may be empty"));
        }
        let valid = new.len() >= 2
            && new
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphanumeric())
            && new
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
        if !valid {
            return Err(ApiError::invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = c.snapshot().name;
        if old == new {
            return Err(ApiError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            // Checked and claimed under the map's write lock: of racing renames and
            // creates with one name exactly one wins.
            let map = self.map.write().expect("map lock");
            if let Some(owner) = map
                .values()
                .find(|o| o.id != c.id && o.rec.lock().expect("record lock").name == new)
            {
                return Err(ApiError::conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    owner.id
                )));
            }
            c.rec.lock().expect("record lock").name = new.to_owned();
        }
        self.update(&c, |r| r.name = new.to_owned());
        self.net.renamed(&c.id, new);
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
