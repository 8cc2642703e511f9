//! Device nodes from the host for the spec: `--device HOST[:CTR[:PERMS]]` and the whole of
//! the host's /dev for `--privileged` (runc's `devices.HostDevices`, which moby uses).
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::spec::Device;

/// Directories of /dev that hold no devices for a container (runc's skip list).
const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("error gathering device information while adding custom device {path:?}")]
    Stat {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "error gathering device information while adding custom device {0:?}: not a device node"
    )]
    NotADevice(String),
}

fn node(meta: &std::fs::Metadata, ctr: &str, access: &str) -> Option<Device> {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(Device {
        path: ctr.to_owned(),
        kind,
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        access: access.to_owned(),
    })
}

/// The nodes for `--device host:ctr:access`: one device, or every device below a
/// directory (mapped under `ctr`), as Docker does.
pub fn from_path(host: &str, ctr: &str, access: &str) -> Result<Vec<Device>, DeviceError> {
    let stat_err = |source| DeviceError::Stat {
        path: host.to_owned(),
        source,
    };
    let meta = std::fs::metadata(host).map_err(stat_err)?;
    if meta.is_dir() {
        let mut out = Vec::new();
        walk(Path::new(host), &mut |p, m| {
            let rel = p.strip_prefix(host).unwrap_or(p);
            let dst = Path::new(ctr).join(rel);
            if let Some(d) = node(m, &dst.to_string_lossy(), access) {
                out.push(d);
            }
        });
        return Ok(out);
    }
    node(&meta, ctr, access)
        .map(|d| vec![d])
        .ok_or_else(|| DeviceError::NotADevice(host.to_owned()))
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            let name = e.file_name();
            if !SKIP_DIRS.iter().any(|s| name == *s) {
                walk(&p, f);
            }
        } else {
            f(&p, &m);
        }
    }
}

/// Every device node under the host's /dev (for `--privileged`), except /dev/console
/// (the runtime sets up the container's own).
pub fn host_devices() -> Vec<Device> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut |p, m| {
        if p == Path::new("/dev/console") {
            return;
        }
        if let Some(d) = node(m, &p.to_string_lossy(), "rwm") {
            out.push(d);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_device() {
        let d = from_path("/dev/null", "/dev/mynull", "rw").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].kind, d[0].major, d[0].minor), ('c', 1, 3));
        assert_eq!(d[0].path, "/dev/mynull");
        assert!(from_path("/etc/hostname", "/x", "rwm").is_err());
        assert!(from_path("/dev/nosuch-device", "/x", "rwm").is_err());
        assert!(host_devices().iter().any(|d| d.path == "/dev/null"));
    }
}
