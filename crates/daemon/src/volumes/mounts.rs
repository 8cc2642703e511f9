//! A container's mounts: `-v` binds and volumes, `--mount`, `--tmpfs`, `--volumes-from`
//! and the image's `VOLUME`s, resolved at create into [`MountPoint`]s (persisted in the
//! container record), turned into OCI mounts at start, shown as `Mounts` by inspect.
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::models::{Mount, MountBindOptionsPropagationEnum, MountTypeEnum};
use berth_api::{ApiError, VolumeCreateOptions};
use berth_runtime::spec;
use serde::{Deserialize, Serialize};

use super::Volumes;

/// One mount of a container, as Docker's `MountPoint` plus what start needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path: the bind source or the volume's `_data`.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// Created for this container (image `VOLUME`, `-v /path`, `--mount` without source).
    #[serde(default)]
    pub anonymous: bool,
    /// Copy the image's content into an empty volume at start (not `nocopy`).
    #[serde(default)]
    pub copy_data: bool,
    /// `-v` binds create a missing host directory; `--mount` refuses it.
    #[serde(default)]
    pub create_source: bool,
    #[serde(default)]
    pub non_recursive: bool,
    /// tmpfs data (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs_options: String,
    /// `--mount volume-subpath=`: mount this directory of the volume.
    #[serde(default)]
    pub subpath: String,
}

impl MountPoint {
    /// Docker's `MountPoint` for inspect.
    pub fn to_api(&self) -> berth_api::models::MountPoint {
        let typ = match self.typ.as_str() {
            "volume" => berth_api::models::MountPointTypeEnum::VOLUME,
            "tmpfs" => berth_api::models::MountPointTypeEnum::TMPFS,
            _ => berth_api::models::MountPointTypeEnum::BIND,
        };
        let volume = self.typ == "volume";
        berth_api::models::MountPoint {
            typ: Some(typ),
            name: volume.then(|| self.name.clone()),
            source: Some(self.source.clone()),
            destination: Some(self.destination.clone()),
            driver: volume.then(|| "local".to_owned()),
            mode: Some(self.mode.clone()),
            rw: Some(self.rw),
            propagation: Some(self.propagation.clone()),
        }
    }
}

fn spec_err(spec: &str, typ: &str, msg: &str) -> ApiError {
    ApiError::invalid(format!(
        "invalid volume specification: '{spec}': invalid mount config for type \"{typ}\": {msg}"
    ))
}

fn mount_err(typ: &str, msg: &str) -> ApiError {
    ApiError::invalid(format!("invalid mount config for type \"{typ}\": {msg}"))
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A parsed `-v`/`Binds` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BindSpec {
    /// Absolute host path (bind), a volume name, or empty (anonymous volume).
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    pub nocopy: bool,
}

impl BindSpec {
    pub fn is_bind(&self) -> bool {
        self.source.starts_with('/')
    }
}

/// Parses `src:dst[:mode]` (or `dst` alone) as Docker's linux parser.
pub fn parse_bind(raw: &str) -> Result<BindSpec, ApiError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let invalid = || ApiError::invalid(format!("invalid volume specification: '{raw}'"));
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => {
            if valid_mode(d) && !d.starts_with('/') {
                return Err(invalid());
            }
            (*s, *d, "")
        }
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if dst.is_empty() || src.is_empty() && parts.len() > 1 {
        return Err(invalid());
    }
    let bind = src.starts_with('/');
    let typ = if bind { "bind" } else { "volume" };
    if !dst.starts_with('/') {
        return Err(spec_err(
            raw,
            typ,
            &format!("invalid mount path: '{dst}' mount path must be absolute"),
        ));
    }
    let dst = super::super::tarfs::clean_abs(dst);
    if dst == "/" {
        return Err(spec_err(
            raw,
            typ,
            "invalid specification: destination can't be '/'",
        ));
    }
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    let (mut rwset, mut label) = (false, false);
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if !rwset => {
                rwset = true;
                rw = o == "rw";
            }
            "z" | "Z" if !label => label = true,
            "nocopy" if !bind && !nocopy => nocopy = true,
            p if PROPAGATIONS.contains(&p) && propagation.is_empty() => propagation = p.into(),
            "consistent" | "cached" | "delegated" => {}
            _ => return Err(ApiError::invalid(format!("invalid mode: {mode}"))),
        }
    }
    if !bind && !propagation.is_empty() {
        return Err(ApiError::invalid(format!("invalid mode: {mode}")));
    }
    let mode_shown = if mode.is_empty() && !bind && !src.is_empty() {
        "z".to_owned()
    } else {
        mode.to_owned()
    };
    Ok(BindSpec {
        source: if bind {
            super::super::tarfs::clean_abs(src)
        } else {
            src.to_owned()
        },
        destination: dst,
        mode: mode_shown,
        rw,
        propagation: if bind && propagation.is_empty() {
            "rprivate".into()
        } else {
            propagation
        },
        nocopy,
    })
}

fn valid_mode(m: &str) -> bool {
    !m.is_empty()
        && m.split(',').all(|o| {
            matches!(
                o,
                "ro" | "rw" | "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated"
            ) || PROPAGATIONS.contains(&o)
        })
}

/// What create asks for, from the request.
pub struct MountRequest<'a> {
    pub binds: &'a [String],
    pub mounts: &'a [Mount],
    /// `Config.Volumes` keys (image `VOLUME`s and `-v /path`).
    pub anonymous: Vec<String>,
    /// Mount points of each `--volumes-from` container with its `ro`/`rw` suffix.
    pub volumes_from: Vec<(Vec<MountPoint>, String)>,
    pub tmpfs: &'a HashMap<String, String>,
}

/// Checks `--mount` entries as dockerd does (before anything is created).
fn check_mount(m: &Mount) -> Result<(), ApiError> {
    let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let target = m.target.clone().unwrap_or_default();
    let src = m.source.clone().unwrap_or_default();
    match m.typ {
        Some(MountTypeEnum::BIND | MountTypeEnum::VOLUME | MountTypeEnum::TMPFS) => {}
        _ => return Err(mount_err(&typ, "mount type unknown")),
    }
    if target.is_empty() {
        return Err(mount_err(&typ, "field Target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(mount_err(
            &typ,
            &format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    if super::super::tarfs::clean_abs(&target) == "/" {
        return Err(mount_err(
            &typ,
            "invalid specification: destination can't be '/'",
        ));
    }
    match m.typ {
        Some(MountTypeEnum::BIND) => {
            if src.is_empty() {
                return Err(mount_err(&typ, "field Source must not be empty"));
            }
            if !src.starts_with('/') {
                return Err(mount_err(
                    &typ,
                    &format!("invalid mount path: '{src}' mount path must be absolute"),
                ));
            }
            if m.volume_options.is_some() {
                return Err(mount_err(&typ, "field VolumeOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(mount_err(&typ, "field TmpfsOptions must not be specified"));
            }
            let create = m
                .bind_options
                .as_ref()
                .and_then(|b| b.create_mountpoint)
                .unwrap_or(false);
            if !create && !Path::new(&src).exists() {
                return Err(mount_err(
                    &typ,
                    &format!("bind source path does not exist: {src}"),
                ));
            }
        }
        Some(MountTypeEnum::VOLUME) => {
            if m.bind_options.is_some() {
                return Err(mount_err(&typ, "field BindOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(mount_err(&typ, "field TmpfsOptions must not be specified"));
            }
            let sub = m
                .volume_options
                .as_ref()
                .and_then(|v| v.subpath.clone())
                .unwrap_or_default();
            if sub.starts_with('/') || sub.split('/').any(|c| c == "..") {
                return Err(mount_err(
                    &typ,
                    &format!("subpath must be a relative path within the volume: {sub}"),
                ));
            }
            if !src.is_empty() && !super::valid_name(&src) {
                return Err(ApiError::invalid(format!(
                    "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )));
            }
        }
        _ => {
            if !src.is_empty() {
                return Err(mount_err(&typ, "field Source must not be specified"));
            }
            if m.bind_options.is_some() {
                return Err(mount_err(&typ, "field BindOptions must not be specified"));
            }
            if m.volume_options.is_some() {
                return Err(mount_err(&typ, "field VolumeOptions must not be specified"));
            }
            if m.read_only.unwrap_or(false) {
                // Allowed by Docker; nothing to check.
            }
        }
    }
    Ok(())
}

fn tmpfs_data(m: &Mount) -> String {
    let mut o = Vec::new();
    if let Some(t) = &m.tmpfs_options {
        if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
            o.push(format!("size={s}"));
        }
        if let Some(mode) = t.mode.filter(|m| *m > 0) {
            o.push(format!("mode={mode:o}"));
        }
        for kv in t.options.clone().unwrap_or_default() {
            o.push(kv.join("="));
        }
    }
    o.join(",")
}

impl Volumes {
    /// Resolves a create request's mounts, creating the volumes it names (named ones that do
    /// not exist yet and anonymous ones). Returns the mount points sorted by destination and
    /// the volumes created, for the caller to remove if the create fails later.
    pub fn resolve(
        self: &Arc<Self>,
        req: MountRequest<'_>,
    ) -> Result<(Vec<MountPoint>, Vec<String>, super::PendingUse), ApiError> {
        // Validate everything first: a bad entry leaves nothing behind.
        let binds: Vec<BindSpec> = req
            .binds
            .iter()
            .map(|b| parse_bind(b))
            .collect::<Result<_, _>>()?;
        for m in req.mounts {
            check_mount(m)?;
        }
        for dst in req.tmpfs.keys() {
            if !dst.starts_with('/') {
                return Err(mount_err(
                    "tmpfs",
                    &format!("invalid mount path: '{dst}' mount path must be absolute"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in binds.iter().map(|b| b.destination.clone()).chain(
            req.mounts
                .iter()
                .map(|m| super::super::tarfs::clean_abs(m.target.as_deref().unwrap_or(""))),
        ) {
            if !seen.insert(d.clone()) {
                return Err(ApiError::invalid(format!("Duplicate mount point: {d}")));
            }
        }
        for (i, b) in binds.iter().enumerate() {
            if !b.is_bind() && !b.source.is_empty() && !super::valid_name(&b.source) {
                let _ = i;
                return Err(ApiError::invalid(format!(
                    "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
                    b.source
                )));
            }
        }

        let _op = self.op.lock().expect("volumes op lock");
        let mut created = Vec::new();
        let mut by_dest: BTreeMap<String, MountPoint> = BTreeMap::new();
        let res = (|| -> Result<(), ApiError> {
            let volume = |name: &str,
                          created: &mut Vec<String>,
                          extra: Option<&Mount>|
             -> Result<(String, String, bool), ApiError> {
                let existed = !name.is_empty() && self.get(name).is_some();
                // `--mount` may carry the new volume's labels, driver and options.
                let vo = extra
                    .and_then(|m| m.volume_options.clone())
                    .unwrap_or_default();
                let dc = vo.driver_config.clone().unwrap_or_default();
                let v = self.create_locked(
                    VolumeCreateOptions {
                        name: name.to_owned(),
                        driver: dc.name.clone().unwrap_or_default(),
                        driver_opts: dc.options.clone().unwrap_or_default(),
                        labels: vo.labels.clone().unwrap_or_default(),
                    },
                    name.is_empty(),
                )?;
                if !existed {
                    created.push(v.name.clone());
                }
                Ok((
                    v.name.clone(),
                    self.data_dir(&v.name).display().to_string(),
                    v.anonymous,
                ))
            };
            for (mps, mode) in &req.volumes_from {
                for m in mps {
                    let mut cp = m.clone();
                    cp.rw = m.rw && mode != "ro";
                    cp.mode = String::new();
                    cp.copy_data = false;
                    cp.anonymous = false; // owned by the container it came from
                    by_dest.insert(cp.destination.clone(), cp);
                }
            }
            for b in &binds {
                let mp = if b.is_bind() {
                    MountPoint {
                        typ: "bind".into(),
                        source: b.source.clone(),
                        destination: b.destination.clone(),
                        mode: b.mode.clone(),
                        rw: b.rw,
                        propagation: b.propagation.clone(),
                        create_source: true,
                        ..Default::default()
                    }
                } else {
                    let (name, source, anon) = volume(&b.source, &mut created, None)?;
                    MountPoint {
                        typ: "volume".into(),
                        name,
                        source,
                        destination: b.destination.clone(),
                        mode: b.mode.clone(),
                        rw: b.rw,
                        anonymous: anon && b.source.is_empty(),
                        copy_data: !b.nocopy,
                        ..Default::default()
                    }
                };
                by_dest.insert(mp.destination.clone(), mp);
            }
            for m in req.mounts {
                let dst = super::super::tarfs::clean_abs(m.target.as_deref().unwrap_or(""));
                let rw = !m.read_only.unwrap_or(false);
                let src = m.source.clone().unwrap_or_default();
                let mp = match m.typ {
                    Some(MountTypeEnum::BIND) => {
                        let bo = m.bind_options.clone().unwrap_or_default();
                        MountPoint {
                            typ: "bind".into(),
                            source: super::super::tarfs::clean_abs(&src),
                            destination: dst,
                            rw,
                            propagation: match bo.propagation {
                                Some(p) if p != MountBindOptionsPropagationEnum::EMPTY => {
                                    p.to_string()
                                }
                                _ => "rprivate".into(),
                            },
                            create_source: bo.create_mountpoint.unwrap_or(false),
                            non_recursive: bo.non_recursive.unwrap_or(false),
                            ..Default::default()
                        }
                    }
                    Some(MountTypeEnum::VOLUME) => {
                        let nocopy = m
                            .volume_options
                            .as_ref()
                            .and_then(|v| v.no_copy)
                            .unwrap_or(false);
                        let (name, source, _) = volume(&src, &mut created, Some(m))?;
                        MountPoint {
                            typ: "volume".into(),
                            name,
                            source,
                            subpath: m
                                .volume_options
                                .as_ref()
                                .and_then(|v| v.subpath.clone())
                                .unwrap_or_default(),
                            destination: dst,
                            mode: if src.is_empty() {
                                String::new()
                            } else {
                                "z".into()
                            },
                            rw,
                            anonymous: src.is_empty(),
                            copy_data: !nocopy,
                            ..Default::default()
                        }
                    }
                    _ => MountPoint {
                        typ: "tmpfs".into(),
                        destination: dst,
                        rw,
                        tmpfs_options: tmpfs_data(m),
                        ..Default::default()
                    },
                };
                by_dest.insert(mp.destination.clone(), mp);
            }
            for d in &req.anonymous {
                let d = super::super::tarfs::clean_abs(d);
                if by_dest.contains_key(&d) || req.tmpfs.contains_key(&d) || d == "/" {
                    continue;
                }
                let (name, source, _) = volume("", &mut created, None)?;
                by_dest.insert(
                    d.clone(),
                    MountPoint {
                        typ: "volume".into(),
                        name,
                        source,
                        destination: d,
                        rw: true,
                        anonymous: true,
                        copy_data: true,
                        ..Default::default()
                    },
                );
            }
            Ok(())
        })();
        if let Err(e) = res {
            for n in &created {
                let _ = self.remove_locked(n);
            }
            return Err(e);
        }
        let mps: Vec<MountPoint> = by_dest.into_values().collect();
        let names = mps
            .iter()
            .filter(|m| m.typ == "volume")
            .map(|m| m.name.clone())
            .collect();
        let pending = self.hold_pending(names);
        Ok((mps, created, pending))
    }

    /// At start: mounts the volumes that need a filesystem (driver options), populates
    /// empty volumes from the image (once they hold something, never again) and returns the
    /// OCI mounts, parents before children. Emits `volume mount` events.
    pub fn start_mounts(
        &self,
        container_id: &str,
        mps: &[MountPoint],
        tmpfs: &HashMap<String, String>,
        rootfs: &Path,
        spool_dir: &Path,
    ) -> Result<Vec<spec::Mount>, ApiError> {
        let mut out = Vec::new();
        let rootfd: Option<OwnedFd> = berth_store::safepath::open_root(rootfs).ok();
        for m in mps {
            match m.typ.as_str() {
                "volume" => {
                    let Some(v) = self.get(&m.name) else {
                        return Err(ApiError::not_found(format!(
                            "error while mounting volume '{}': no such volume: {}",
                            m.source, m.name
                        )));
                    };
                    let data = self.data_dir(&v.name);
                    if super::local::needs_mount(&v.options) {
                        let _op = self.op.lock().expect("volumes op lock");
                        if !super::local::is_mounted(&data) {
                            super::local::mount(&v.options, &data).map_err(|e| {
                                ApiError::internal(format!(
                                    "error while mounting volume '{}': {e}",
                                    data.display()
                                ))
                            })?;
                        }
                    }
                    if m.copy_data && m.subpath.is_empty() {
                        if let Some(rfd) = &rootfd {
                            populate(rfd, &m.destination, &data, spool_dir)?;
                        }
                    }
                    let data = if m.subpath.is_empty() {
                        data
                    } else {
                        subpath_dir(&data, &m.subpath).map_err(|e| {
                            ApiError::invalid(format!(
                                "error while mounting volume '{}' with subpath '{}': {e}",
                                m.name, m.subpath
                            ))
                        })?
                    };
                    self.emit(
                        "mount",
                        &v.name,
                        &[
                            ("container", container_id.to_owned()),
                            ("destination", m.destination.clone()),
                            ("propagation", m.propagation.clone()),
                            ("read/write", m.rw.to_string()),
                        ],
                    );
                    out.push(bind_mount(&data, m));
                }
                "bind" => {
                    let src = PathBuf::from(&m.source);
                    if !src.exists() {
                        if m.create_source {
                            std::fs::create_dir_all(&src).map_err(|e| {
                                ApiError::internal(format!(
                                    "error while creating mount source path '{}': {e}",
                                    src.display()
                                ))
                            })?;
                        } else {
                            return Err(mount_err(
                                "bind",
                                &format!("bind source path does not exist: {}", src.display()),
                            ));
                        }
                    }
                    out.push(bind_mount(&src, m));
                }
                _ => out.push(tmpfs_mount(&m.destination, m.rw, &m.tmpfs_options)),
            }
        }
        for (dst, opts) in tmpfs {
            if mps.iter().any(|m| &m.destination == dst) {
                continue;
            }
            out.push(tmpfs_mount(dst, true, opts));
        }
        out.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
        Ok(out)
    }
}

/// A volume's subdirectory: every component a real directory (no link the volume's other
/// users could plant), checked component by component from the volume root.
fn subpath_dir(data: &Path, sub: &str) -> std::io::Result<PathBuf> {
    let mut p = data.to_owned();
    for c in sub.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "path contains ..",
            ));
        }
        p.push(c);
        let m = std::fs::symlink_metadata(&p)?;
        if !m.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory (or a symbolic link)",
            ));
        }
    }
    Ok(p)
}

fn bind_mount(src: &Path, m: &MountPoint) -> spec::Mount {
    let mut o = vec![if m.non_recursive { "bind" } else { "rbind" }.to_owned()];
    o.push(if m.propagation.is_empty() {
        "rprivate".to_owned()
    } else {
        m.propagation.clone()
    });
    if !m.rw {
        o.push("ro".into());
    }
    spec::Mount {
        destination: m.destination.clone(),
        typ: "bind".into(),
        source: src.display().to_string(),
        options: o,
    }
}

/// Docker's tmpfs defaults (`noexec,nosuid,nodev`), overridden by the user's options.
fn tmpfs_mount(dst: &str, rw: bool, data: &str) -> spec::Mount {
    let mut flags: Vec<(String, String)> = vec![
        ("exec".into(), "noexec".into()),
        ("suid".into(), "nosuid".into()),
        ("dev".into(), "nodev".into()),
    ];
    let mut rest = Vec::new();
    let mut ro = !rw;
    for o in data.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev" => {
                let key = o.trim_start_matches("no");
                if let Some(f) = flags.iter_mut().find(|f| f.0 == key) {
                    f.1 = o.to_owned();
                }
            }
            other => rest.push(other.to_owned()),
        }
    }
    let mut options = vec![if ro { "ro" } else { "rw" }.to_owned()];
    options.extend(flags.into_iter().map(|f| f.1));
    options.extend(rest);
    spec::Mount {
        destination: dst.to_owned(),
        typ: "tmpfs".into(),
        source: "tmpfs".into(),
        options,
    }
}

/// Copies the image's content at `dest` into the volume when the volume is empty (moby's
/// `copyExistingContents`), and gives the volume root the owner and mode of the image's
/// directory.
fn populate(rootfd: &OwnedFd, dest: &str, data: &Path, spool_dir: &Path) -> Result<(), ApiError> {
    let empty = std::fs::read_dir(data)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let src = match berth_store::safepath::openat_in_root(
        rootfd,
        dest,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    ) {
        Ok(fd) => fd,
        Err(_) => return Ok(()), // nothing in the image there (or not a directory)
    };
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&src))
        .map_err(|e| ApiError::internal(format!("populating volume: {e}")))?;
    let dst_root = berth_store::safepath::open_root(data)
        .map_err(|e| ApiError::internal(format!("populating volume: {e}")))?;
    crate::tarfs::copy_tree(rootfd, dest, &dst_root, "/", spool_dir).map_err(|e| {
        ApiError::internal(format!("populating volume from the image at {dest}: {e}"))
    })?;
    let _ = std::os::unix::fs::chown(data, Some(st.st_uid), Some(st.st_gid));
    let _ = std::fs::set_permissions(
        data,
        std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_like_docker() {
        let b = parse_bind("/h:/c:ro").unwrap();
        assert!(b.is_bind() && !b.rw && b.mode == "ro" && b.propagation == "rprivate");
        let v = parse_bind("vol:/data").unwrap();
        assert!(!v.is_bind() && v.rw && v.mode == "z" && v.propagation.is_empty());
        let v = parse_bind("vol:/data:nocopy").unwrap();
        assert!(v.nocopy);
        assert_eq!(parse_bind("/data").unwrap().source, "");
        assert!(parse_bind("/h:rel")
            .unwrap_err()
            .message
            .contains("must be absolute"));
        assert_eq!(
            parse_bind("/h:/c:bogus").unwrap_err().message,
            "invalid mode: bogus"
        );
        assert!(parse_bind("/h:/")
            .unwrap_err()
            .message
            .contains("destination can't be '/'"));
        assert!(parse_bind("/h:/c:nocopy").is_err());
        assert!(parse_bind("a:b:c:d").is_err());
    }

    #[test]
    fn tmpfs_options() {
        let m = tmpfs_mount("/run", true, "size=64m,exec");
        assert_eq!(m.options, ["rw", "exec", "nosuid", "nodev", "size=64m"]);
    }
}
