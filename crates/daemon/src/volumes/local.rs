//! The local driver's mount options (`-o type=tmpfs -o device=tmpfs -o o=size=10m`,
//! `-o type=none -o o=bind -o device=/host/dir`) and mount-table helpers.
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Checks option keys as Docker's local driver does.
pub fn validate_options(opts: &HashMap<String, String>) -> Result<(), String> {
    let mut keys: Vec<&String> = opts.keys().collect();
    keys.sort();
    for k in keys {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(format!("invalid option: {k:?}"));
        }
    }
    if opts.contains_key("type") != opts.contains_key("device")
        && opts.get("type").is_none_or(|t| t != "tmpfs")
    {
        return Err("missing required option: \"device\"".into());
    }
    Ok(())
}

/// Whether the volume's options ask for a mount on `_data`.
pub fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    opts.contains_key("type") || opts.contains_key("device")
}

/// `o=` split into mount flags and the data string the filesystem gets.
fn parse_o(o: &str) -> (libc::c_ulong, String) {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "suid" => flags &= !libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "dev" => flags &= !libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "exec" => flags &= !libc::MS_NOEXEC,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "async" => flags &= !libc::MS_SYNCHRONOUS,
            "noatime" => flags |= libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "bind" => flags |= libc::MS_BIND,
            "rbind" => flags |= libc::MS_BIND | libc::MS_REC,
            other => data.push(other.to_owned()),
        }
    }
    (flags, data.join(","))
}

/// Mounts the volume's filesystem on `data` (Docker's error text on failure).
pub fn mount(opts: &BTreeMap<String, String>, data: &Path) -> Result<(), String> {
    let typ = opts.get("type").cloned().unwrap_or_default();
    let mut device = opts.get("device").cloned().unwrap_or_default();
    let (flags, mdata) = parse_o(opts.get("o").map(String::as_str).unwrap_or(""));
    if typ == "tmpfs" && device.is_empty() {
        device = "tmpfs".into();
    }
    let fail = |e: std::io::Error| {
        format!(
            "failed to mount local volume: mount {device}:{}, flags: {flags:#x}, data: {mdata}: {}",
            data.display(),
            e.to_string()
                .split(" (os error")
                .next()
                .unwrap_or("")
                .to_lowercase()
        )
    };
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let src = c(&device)?;
    let tgt = CString::new(data.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let fstype = c(if typ == "none" { "" } else { &typ })?;
    let d = c(&mdata)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            flags,
            if mdata.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr().cast()
            },
        )
    };
    if r < 0 {
        return Err(fail(std::io::Error::last_os_error()));
    }
    // A bind with `ro` needs a read-only remount to take effect.
    if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
        // SAFETY: as above.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                tgt.as_ptr(),
                std::ptr::null(),
                flags | libc::MS_REMOUNT,
                std::ptr::null(),
            )
        };
        if r < 0 {
            let e = fail(std::io::Error::last_os_error());
            let _ = berth_store::unmount(data);
            return Err(e);
        }
    }
    Ok(())
}

fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Mount points of this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .collect()
}

pub fn is_mounted(p: &Path) -> bool {
    mount_points().iter().any(|m| m == p)
}

pub fn has_mounts_under(dir: &Path) -> bool {
    mount_points().iter().any(|m| m.starts_with(dir))
}

/// Unmounts everything mounted at or under `dir`, deepest first.
pub fn unmount_all_under(dir: &Path) -> std::io::Result<()> {
    let mut ms: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    ms.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in ms {
        berth_store::unmount(&m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let m = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert!(validate_options(&m(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert!(validate_options(&m(&[("type", "tmpfs")])).is_ok());
        assert_eq!(
            validate_options(&m(&[("foo", "x")])).unwrap_err(),
            "invalid option: \"foo\""
        );
        assert_eq!(
            parse_o("size=10m,ro,uid=1"),
            (libc::MS_RDONLY, "size=10m,uid=1".to_owned())
        );
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
    }
}
