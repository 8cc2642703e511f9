//! Safe layer unpacking: every entry lands inside the root, whatever the tar says.
//!
//! Names are cleaned like Docker (`Clean("/" + name)`), so `../../x` and `/x` both mean
//! `<root>/x`; parents are resolved with `RESOLVE_IN_ROOT`, so a symlink planted by an
//! earlier entry (`a -> /`) is followed *inside* the root; the final component is always
//! created with `*at` calls on the parent fd without following it; hardlink targets are
//! resolved inside the root too. AUFS whiteouts become overlayfs whiteouts.
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::safepath::{mkdir_all_at, openat_in_root};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("invalid tar archive")]
    Tar(#[source] std::io::Error),
    #[error("unpacking {path}")]
    Entry {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Cleans a tar entry name to a root-relative path without `..` (empty = the root).
pub fn clean(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in name"))
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Removes whatever is at `parent/name` (recursively for directories).
fn remove_at(parent: &OwnedFd, rootfd: &OwnedFd, rel: &str, name: &CString) -> std::io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    if unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(()),
        Some(libc::EISDIR) | Some(libc::EPERM) => {
            let dir = openat_in_root(rootfd, rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
            let path = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
            // The directory was opened inside the root without following links.
            std::fs::remove_dir_all(path)
        }
        _ => Err(e),
    }
}

/// Unpacks `reader` (an uncompressed tar) into `root`. Returns the unpacked size in bytes.
pub fn unpack(reader: &mut dyn Read, root: &std::path::Path) -> Result<u64, UnpackError> {
    let rootfd = crate::safepath::open_root(root).map_err(UnpackError::Tar)?;
    let mut archive = tar::Archive::new(reader);
    let mut size = 0u64;
    let mut dirs: Vec<(String, tar::Header)> = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = clean(&raw);
        if rel.is_empty() {
            continue;
        }
        let wrap = |source: std::io::Error| UnpackError::Entry { path: raw.clone(), source };
        let (parent_rel, base) = match rel.rsplit_once('/') {
            Some((p, b)) => (p.to_owned(), b.to_owned()),
            None => (String::new(), rel.clone()),
        };
        let parent = mkdir_all_at(&rootfd, &parent_rel, 0, 0).map_err(wrap)?;
        // Re-open as a real directory fd for *at calls.
        let parent = openat_in_root(&rootfd, &parent_rel, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(wrap).map(|p| { drop(parent); p })?;
        if base == OPAQUE {
            let n = cstr("trusted.overlay.opaque").map_err(wrap)?;
            // SAFETY: valid fd, NUL-terminated attribute name, a 1-byte value.
            check(unsafe { libc::fsetxattr(parent.as_raw_fd(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) }).map_err(wrap)?;
            continue;
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            let name = cstr(hidden).map_err(wrap)?;
            let target_rel = if parent_rel.is_empty() { hidden.to_owned() } else { format!("{parent_rel}/{hidden}") };
            remove_at(&parent, &rootfd, &target_rel, &name).map_err(wrap)?;
            // SAFETY: valid dirfd and name; a 0/0 char device is overlayfs' whiteout.
            check(unsafe { libc::mknodat(parent.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, 0) }).map_err(wrap)?;
            continue;
        }
        let name = cstr(&base).map_err(wrap)?;
        let hdr = entry.header().clone();
        let kind = hdr.entry_type();
        let mode = hdr.mode().unwrap_or(0o644) & 0o7777;
        let uid = hdr.uid().unwrap_or(0) as u32;
        let gid = hdr.gid().unwrap_or(0) as u32;
        let pfd = parent.as_raw_fd();
        // An existing non-directory (or a directory replaced by a non-directory) goes.
        if !(kind.is_dir()) {
            remove_at(&parent, &rootfd, &rel, &name).map_err(wrap)?;
        }
        match kind {
            tar::EntryType::Directory => {
                // SAFETY: valid dirfd and name.
                let r = unsafe { libc::mkdirat(pfd, name.as_ptr(), 0o700) };
                if r < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(wrap(e));
                    }
                    // Exists: must be a real directory, else replace it.
                    if openat_in_root(&rootfd, &rel, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).is_err() {
                        remove_at(&parent, &rootfd, &rel, &name).map_err(wrap)?;
                        // SAFETY: as above.
                        check(unsafe { libc::mkdirat(pfd, name.as_ptr(), 0o700) }).map_err(wrap)?;
                    }
                }
                dirs.push((rel.clone(), hdr.clone()));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                // SAFETY: valid dirfd/name; O_EXCL|O_NOFOLLOW never writes through a link.
                let fd = unsafe { libc::openat(pfd, name.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o600) };
                check(fd).map_err(wrap)?;
                // SAFETY: fresh fd owned here.
                let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                size += std::io::copy(&mut entry, &mut f).map_err(wrap)?;
                // SAFETY: valid fd.
                check(unsafe { libc::fchown(fd, uid, gid) }).map_err(wrap)?;
                // SAFETY: valid fd; chmod after chown so setuid bits survive.
                check(unsafe { libc::fchmod(fd, mode) }).map_err(wrap)?;
                if let Ok(Some(exts)) = entry.pax_extensions() {
                    for ext in exts.flatten() {
                        if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                            if let Ok(k) = cstr(key) {
                                let v = ext.value_bytes();
                                // SAFETY: valid fd, NUL-terminated name, value slice.
                                unsafe { libc::fsetxattr(fd, k.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
                            }
                        }
                    }
                }
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default();
                let t = CString::new(target).map_err(|_| wrap(std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in link target")))?;
                // SAFETY: valid strings and dirfd; the target is stored as data, never followed here.
                check(unsafe { libc::symlinkat(t.as_ptr(), pfd, name.as_ptr()) }).map_err(wrap)?;
                // SAFETY: valid dirfd/name; AT_SYMLINK_NOFOLLOW changes the link itself.
                check(unsafe { libc::fchownat(pfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map_err(wrap)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let trel = clean(&target);
                if trel.is_empty() {
                    return Err(wrap(std::io::Error::new(std::io::ErrorKind::InvalidInput, "hardlink to the root")));
                }
                let (tp, tb) = match trel.rsplit_once('/') {
                    Some((p, b)) => (p.to_owned(), b.to_owned()),
                    None => (String::new(), trel.clone()),
                };
                let tparent = openat_in_root(&rootfd, &tp, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(wrap)?;
                let tname = cstr(&tb).map_err(wrap)?;
                // SAFETY: both dirfds were resolved inside the root; flags 0 = never follow.
                check(unsafe { libc::linkat(tparent.as_raw_fd(), tname.as_ptr(), pfd, name.as_ptr(), 0) }).map_err(wrap)?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let dev = libc::makedev(hdr.device_major().ok().flatten().unwrap_or(0), hdr.device_minor().ok().flatten().unwrap_or(0));
                let t = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                // SAFETY: valid dirfd and name.
                check(unsafe { libc::mknodat(pfd, name.as_ptr(), t | mode, dev) }).map_err(wrap)?;
                // SAFETY: as above.
                check(unsafe { libc::fchownat(pfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map_err(wrap)?;
            }
            // PAX/GNU long-name headers are consumed by the tar crate; others are ignored.
            _ => continue,
        }
        set_mtime(pfd, &name, &hdr);
    }
    // Directories last: their mode, owner and mtime after their content was written.
    for (rel, hdr) in dirs.iter().rev() {
        if let Ok(d) = openat_in_root(&rootfd, rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
            let mode = hdr.mode().unwrap_or(0o755) & 0o7777;
            // SAFETY: valid fd.
            unsafe {
                libc::fchown(d.as_raw_fd(), hdr.uid().unwrap_or(0) as u32, hdr.gid().unwrap_or(0) as u32);
                libc::fchmod(d.as_raw_fd(), mode);
            }
            let mt = hdr.mtime().unwrap_or(0) as i64;
            let ts = [libc::timespec { tv_sec: mt, tv_nsec: 0 }, libc::timespec { tv_sec: mt, tv_nsec: 0 }];
            // SAFETY: valid fd and a two-element timespec array.
            unsafe { libc::futimens(d.as_raw_fd(), ts.as_ptr()) };
        }
    }
    Ok(size)
}

fn set_mtime(pfd: i32, name: &CString, hdr: &tar::Header) {
    let mt = hdr.mtime().unwrap_or(0) as i64;
    let ts = [libc::timespec { tv_sec: mt, tv_nsec: 0 }, libc::timespec { tv_sec: mt, tv_nsec: 0 }];
    // SAFETY: valid dirfd/name and timespec array; AT_SYMLINK_NOFOLLOW.
    unsafe { libc::utimensat(pfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names() {
        assert_eq!(clean("../../etc/x"), "etc/x");
        assert_eq!(clean("/abs/y"), "abs/y");
        assert_eq!(clean("./a/./b/../c"), "a/c");
        assert_eq!(clean("./"), "");
    }
}
