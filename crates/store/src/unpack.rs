//! Safe layer unpacking: every entry lands inside the root, whatever the tar says.
//!
//! - Names are cleaned like Docker (`Clean("/" + name)`), so `../../x` and `/x` both mean
//!   `<root>/x`.
//! - Parents are resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink planted by an earlier
//!   entry (`a -> /`, `a -> ../../..`) is followed *inside* the root, as if chrooted.
//! - The final component is always created with `*at` calls on the parent fd, never
//!   following it (`O_EXCL|O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`); whatever was there (a
//!   symlink included) is removed first, fd-relative.
//! - Hardlink targets are cleaned and resolved inside the root, and linked without
//!   following a final symlink.
//! - AUFS whiteouts become overlayfs ones: `.wh.<name>` → a 0/0 character device,
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory; other `.wh..wh.` meta
//!   entries are skipped. `trusted.overlay.*` xattrs from the archive are dropped.
//! - Ownership, mode (after chown, so set-id bits survive), xattrs and mtimes (nanosecond
//!   PAX times, `AT_SYMLINK_NOFOLLOW`) are applied; directories get theirs last.
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::safepath::{mkdir_all_at, open_root, openat_in_root};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the archive")]
    Read(#[source] std::io::Error),
    #[error("opening the unpack root")]
    Root(#[source] std::io::Error),
    #[error("unpacking {path:?}")]
    Entry {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl UnpackError {
    /// True when the host, not the archive, is at fault (disk full, I/O error, read-only):
    /// those are internal errors, everything else is a bad archive.
    pub fn is_host_error(&self) -> bool {
        let e = match self {
            UnpackError::Root(_) => return true,
            UnpackError::Read(e) | UnpackError::Entry { source: e, .. } => e,
        };
        matches!(
            e.raw_os_error(),
            Some(
                libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS | libc::ENOMEM | libc::EMFILE
            )
        )
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const OPAQUE: &str = ".wh..wh..opq";
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

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

/// `io::copy` with a buffer sized to the file (8 KiB to 1 MiB): big layers move in few,
/// large reads and writes instead of 8 KiB ones.
fn copy_big(r: &mut dyn Read, w: &mut std::fs::File, size: u64) -> std::io::Result<u64> {
    use std::io::Write;
    let mut buf = vec![0u8; size.clamp(8 * 1024, 1 << 20) as usize];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Files at least this large have their writeback started as soon as they are written.
const WRITEBACK_FROM: u64 = 256 << 10;

/// Starts writing `len` bytes at `offset` of `fd` back to disk (`len` 0: to the end) and
/// returns without waiting: a layer is flushed as a whole (`syncfs`) before it is published,
/// and by then most of it is on disk, written while the rest unpacked, instead of all of it
/// waiting for that flush (the kernel's own writeback would start only at gigabytes of
/// dirty pages). Advisory: an error changes nothing.
pub(crate) fn start_writeback(fd: std::os::fd::RawFd, offset: u64, len: u64) {
    // SAFETY: plain syscall on a descriptor the caller holds open.
    unsafe {
        libc::sync_file_range(
            fd,
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_owned())
}

fn cstr(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| invalid("NUL byte in name"))
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn split_parent(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Opens `name` in `dir` as a directory without following a symlink.
fn open_dir_at(dir: i32, name: &CString) -> std::io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid dirfd and NUL-terminated name; the result is checked.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    check(fd)?;
    // SAFETY: a fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Names in a directory fd, without `.` and `..`.
fn dir_names(dir: &OwnedFd) -> std::io::Result<Vec<CString>> {
    let dup = dir.try_clone()?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(std::io::Error::from)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e.map_err(std::io::Error::from)?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

/// Removes `parent/name`, recursively for directories, fd-relative and without following
/// symlinks; iterative, so a deeply nested hostile tree cannot exhaust the stack.
pub(crate) fn remove_all_at(parent: &OwnedFd, name: &CString) -> std::io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    if unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => return Ok(()),
        Some(libc::EISDIR) => {}
        _ => return Err(e),
    }
    // Stack of (directory fd, its remaining entries); a directory is rmdir'ed from its
    // parent once empty.
    let top = open_dir_at(parent.as_raw_fd(), name)?;
    let names = dir_names(&top)?;
    let mut stack: Vec<(OwnedFd, Vec<CString>, CString)> = vec![(top, names, name.clone())];
    while let Some((dir, mut names, own)) = stack.pop() {
        let Some(n) = names.pop() else {
            let pfd = stack
                .last()
                .map_or(parent.as_raw_fd(), |(d, _, _)| d.as_raw_fd());
            // SAFETY: valid dirfd and name; AT_REMOVEDIR removes the now-empty directory.
            check(unsafe { libc::unlinkat(pfd, own.as_ptr(), libc::AT_REMOVEDIR) })?;
            continue;
        };
        // SAFETY: valid dirfd and NUL-terminated name.
        let r = unsafe { libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), 0) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            stack.push((dir, names, own));
            continue;
        }
        let child = open_dir_at(dir.as_raw_fd(), &n)?;
        let child_names = dir_names(&child)?;
        stack.push((dir, names, own));
        stack.push((child, child_names, n));
    }
    Ok(())
}

/// Sets one xattr on the inode behind an `O_PATH` (or any) fd.
fn set_xattr_fd(fd: &OwnedFd, key: &str, value: &[u8]) -> std::io::Result<()> {
    let proc = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
    let k = cstr(key.as_bytes())?;
    // SAFETY: NUL-terminated strings and a valid value slice; the magic link names the inode
    // the fd was opened on (never a symlink: callers skip those).
    check(unsafe {
        libc::setxattr(
            proc.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// PAX `mtime`/`atime` values (`seconds[.fraction]`) as timespecs.
fn pax_time(v: &str) -> Option<libc::timespec> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).filter(char::is_ascii_digit).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec: i64 = digits.parse().ok()?;
    Some(libc::timespec {
        tv_sec,
        tv_nsec: if tv_sec < 0 { 0 } else { tv_nsec },
    })
}

/// The metadata of one entry, read before its data.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: libc::timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of(entry: &mut tar::Entry<'_, &mut dyn Read>) -> Meta {
        let hdr = entry.header();
        let mut m = Meta {
            mode: hdr.mode().unwrap_or(0o644) & 0o7777,
            uid: hdr.uid().unwrap_or(0) as u32,
            gid: hdr.gid().unwrap_or(0) as u32,
            mtime: libc::timespec {
                tv_sec: hdr.mtime().unwrap_or(0) as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let Ok(key) = ext.key() else { continue };
                match key {
                    "mtime" => {
                        if let Some(t) = ext.value().ok().and_then(pax_time) {
                            m.mtime = t;
                        }
                    }
                    "uid" => {
                        m.uid = ext
                            .value()
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(m.uid)
                    }
                    "gid" => {
                        m.gid = ext
                            .value()
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(m.gid)
                    }
                    k => {
                        if let Some(x) = k.strip_prefix(XATTR_PAX_PREFIX) {
                            // Overlay's own attributes would change how the layer stacks.
                            if !x.starts_with("trusted.overlay.") {
                                m.xattrs.push((x.to_owned(), ext.value_bytes().to_vec()));
                            }
                        }
                    }
                }
            }
        }
        m
    }
}

/// Applies xattrs, ignoring what the filesystem refuses (as Docker does).
fn apply_xattrs(fd: &OwnedFd, xattrs: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    for (k, v) in xattrs {
        if let Err(e) = set_xattr_fd(fd, k, v) {
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOTSUP | libc::EPERM | libc::EINVAL)
            ) {
                return Err(e);
            }
            tracing::debug!(key = %k, error = %e, "ignoring xattr");
        }
    }
    Ok(())
}

fn set_times_at(pfd: i32, name: &CString, t: libc::timespec) -> std::io::Result<()> {
    let ts = [t, t];
    // SAFETY: valid dirfd/name and a two-element timespec array; AT_SYMLINK_NOFOLLOW.
    check(unsafe { libc::utimensat(pfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// Unpacking state for one layer.
struct Unpacker {
    rootfd: OwnedFd,
    /// The last parent directory opened, reused while entries stay in one directory.
    cached: Option<(String, OwnedFd)>,
    /// Directories, fixed up (mode, owner, mtime) at the end.
    dirs: Vec<(String, Meta)>,
    size: u64,
}

impl Unpacker {
    /// The parent directory of an entry, created (0755 root) if missing; resolved in root.
    fn parent(&mut self, parent_rel: &str) -> std::io::Result<&OwnedFd> {
        if self.cached.as_ref().is_none_or(|(p, _)| p != parent_rel) {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let fd = match openat_in_root(&self.rootfd, parent_rel, flags, 0) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    drop(mkdir_all_at(&self.rootfd, parent_rel, 0, 0)?);
                    openat_in_root(&self.rootfd, parent_rel, flags, 0)?
                }
                Err(e) => return Err(e),
            };
            self.cached = Some((parent_rel.to_owned(), fd));
        }
        Ok(&self.cached.as_ref().expect("just set").1)
    }

    /// Forgets the cached parent if `rel` is it or one of its ancestors (it may be replaced).
    fn invalidate(&mut self, rel: &str) {
        if let Some((p, _)) = &self.cached {
            if p == rel || p.strip_prefix(rel).is_some_and(|r| r.starts_with('/')) {
                self.cached = None;
            }
        }
    }

    fn entry(
        &mut self,
        entry: &mut tar::Entry<'_, &mut dyn Read>,
        rel: &str,
    ) -> std::io::Result<()> {
        let (parent_rel, base) = split_parent(rel);
        let kind = entry.header().entry_type();
        if base == OPAQUE {
            let parent = self.parent(parent_rel)?;
            return set_xattr_fd(parent, "trusted.overlay.opaque", b"y");
        }
        if base.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        self.invalidate(rel);
        let meta = Meta::of(entry);
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(invalid("invalid whiteout name"));
            }
            let hidden_rel = if parent_rel.is_empty() {
                hidden.to_owned()
            } else {
                format!("{parent_rel}/{hidden}")
            };
            self.invalidate(&hidden_rel);
            let name = cstr(hidden.as_bytes())?;
            let pfd = self.parent(parent_rel)?;
            remove_all_at(pfd, &name)?;
            // SAFETY: valid dirfd and name; a 0/0 char device is overlayfs' whiteout.
            check(unsafe { libc::mknodat(pfd.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, 0) })?;
            // SAFETY: valid dirfd and name; the node just made, not followed.
            check(unsafe {
                libc::fchownat(
                    pfd.as_raw_fd(),
                    name.as_ptr(),
                    meta.uid,
                    meta.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
            return Ok(());
        }
        let name = cstr(base.as_bytes())?;
        let parent = self.parent(parent_rel)?.try_clone()?;
        let pfd = parent.as_raw_fd();
        if kind.is_dir() {
            // Merge with an existing real directory; replace anything else.
            match open_dir_at(pfd, &name) {
                Ok(_) => {}
                Err(_) => {
                    remove_all_at(&parent, &name)?;
                    // SAFETY: valid dirfd and name.
                    check(unsafe { libc::mkdirat(pfd, name.as_ptr(), 0o700) })?;
                }
            }
            let dir = open_dir_at(pfd, &name)?;
            apply_xattrs(&dir, &meta.xattrs)?;
            self.dirs.push((rel.to_owned(), meta));
            return Ok(());
        }
        remove_all_at(&parent, &name)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_CLOEXEC;
                // SAFETY: valid dirfd/name; O_EXCL|O_NOFOLLOW never writes through a link.
                let fd = unsafe { libc::openat(pfd, name.as_ptr(), flags, 0o600) };
                check(fd)?;
                // SAFETY: a fresh descriptor, owned here.
                let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
                let entry_size = entry.size();
                self.size += copy_big(entry, &mut f, entry_size)?;
                if entry_size >= WRITEBACK_FROM {
                    start_writeback(fd, 0, 0);
                }
                // SAFETY: valid fd.
                check(unsafe { libc::fchown(fd, meta.uid, meta.gid) })?;
                // SAFETY: valid fd; chmod after chown so set-id bits survive.
                check(unsafe { libc::fchmod(fd, meta.mode) })?;
                apply_xattrs(&OwnedFd::from(f), &meta.xattrs)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                self.size += target.len() as u64;
                let t = cstr(&target)?;
                // SAFETY: valid strings and dirfd; the target is data, never followed here.
                check(unsafe { libc::symlinkat(t.as_ptr(), pfd, name.as_ptr()) })?;
                // SAFETY: valid dirfd/name; AT_SYMLINK_NOFOLLOW changes the link itself.
                check(unsafe {
                    libc::fchownat(
                        pfd,
                        name.as_ptr(),
                        meta.uid,
                        meta.gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let trel = clean(&target);
                if trel.is_empty() {
                    return Err(invalid("hardlink to the root directory"));
                }
                let (tp, tb) = split_parent(&trel);
                let tparent =
                    openat_in_root(&self.rootfd, tp, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                let tname = cstr(tb.as_bytes())?;
                // SAFETY: both dirfds were resolved inside the root; flags 0 = never follow.
                check(unsafe {
                    libc::linkat(tparent.as_raw_fd(), tname.as_ptr(), pfd, name.as_ptr(), 0)
                })?;
                // A link shares its target's metadata: nothing more to set.
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let hdr = entry.header();
                let dev = libc::makedev(
                    hdr.device_major().ok().flatten().unwrap_or(0),
                    hdr.device_minor().ok().flatten().unwrap_or(0),
                );
                let t = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                // SAFETY: valid dirfd and name.
                check(unsafe { libc::mknodat(pfd, name.as_ptr(), t | meta.mode, dev) })?;
                // SAFETY: valid dirfd and name; the node just made, not followed.
                check(unsafe {
                    libc::fchownat(
                        pfd,
                        name.as_ptr(),
                        meta.uid,
                        meta.gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
                // SAFETY: valid dirfd and name; the umask trimmed mknod's mode, so set it again.
                check(unsafe { libc::fchmodat(pfd, name.as_ptr(), meta.mode, 0) })?;
                let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                // SAFETY: valid dirfd and name; O_PATH never opens the device itself.
                let fd = unsafe { libc::openat(pfd, name.as_ptr(), flags) };
                check(fd)?;
                // SAFETY: a fresh descriptor, owned here.
                apply_xattrs(&unsafe { OwnedFd::from_raw_fd(fd) }, &meta.xattrs)?;
            }
            // PAX / GNU long-name headers are consumed by the tar crate; others are ignored.
            _ => return Ok(()),
        }
        set_times_at(pfd, &name, meta.mtime)
    }

    /// Directories last, deepest first: mode, owner and mtime after their content.
    fn finish_dirs(&mut self) -> std::io::Result<()> {
        for (rel, meta) in self.dirs.iter().rev() {
            let Ok(d) = openat_in_root(
                &self.rootfd,
                rel,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            ) else {
                // Replaced by a later entry.
                continue;
            };
            // SAFETY: valid fd.
            check(unsafe { libc::fchown(d.as_raw_fd(), meta.uid, meta.gid) })?;
            // SAFETY: valid fd; after chown so set-id bits survive.
            check(unsafe { libc::fchmod(d.as_raw_fd(), meta.mode) })?;
            let ts = [meta.mtime, meta.mtime];
            // SAFETY: valid fd and a two-element timespec array.
            check(unsafe { libc::futimens(d.as_raw_fd(), ts.as_ptr()) })?;
        }
        Ok(())
    }
}

/// Unpacks `reader` (an uncompressed tar) into the directory `root`, which must exist.
/// Returns the unpacked size in bytes (file data and symlink targets, hardlinks once).
pub fn unpack(reader: &mut dyn Read, root: &Path) -> Result<u64, UnpackError> {
    let rootfd = open_root(root).map_err(UnpackError::Root)?;
    let mut u = Unpacker {
        rootfd,
        cached: None,
        dirs: Vec::new(),
        size: 0,
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = clean(&raw);
        if rel.is_empty() {
            // The root itself: Docker keeps the destination's own metadata.
            continue;
        }
        u.entry(&mut entry, &rel)
            .map_err(|source| UnpackError::Entry { path: raw, source })?;
    }
    u.finish_dirs().map_err(|source| UnpackError::Entry {
        path: "/".into(),
        source,
    })?;
    Ok(u.size)
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
        assert_eq!(clean("a/../../.."), "");
    }

    #[test]
    fn pax_times() {
        let t = pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        assert_eq!(pax_time("12").unwrap().tv_nsec, 0);
        assert!(pax_time("x").is_none());
    }

    #[test]
    fn removes_deep_trees_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let mut p = d.path().join("tree");
        for i in 0..300 {
            p = p.join(format!("d{i}"));
        }
        std::fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::symlink(&outside, p.join("link")).unwrap();
        std::fs::write(p.join("f"), "y").unwrap();
        let parent = open_root(d.path()).unwrap();
        let parent = openat_in_root(&parent, "", libc::O_RDONLY | libc::O_DIRECTORY, 0).unwrap();
        remove_all_at(&parent, &CString::new("tree").unwrap()).unwrap();
        assert!(!d.path().join("tree").exists());
        assert!(outside.join("keep").exists());
        remove_all_at(&parent, &CString::new("absent").unwrap()).unwrap();
    }
}
