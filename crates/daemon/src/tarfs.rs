//! Tar in and out of a hostile tree (`docker cp`, volume population).
//!
//! Every path is resolved inside a root descriptor: the start of a walk with
//! `openat2(RESOLVE_IN_ROOT)`, each child with `openat(dirfd, name, O_NOFOLLOW)`, so a link
//! the container plants — or swaps in while we walk — is archived as a link and never
//! followed out. Extraction is two passes over a spooled copy of the (decompressed) archive:
//! first every header is checked (names, link targets, total size against the free space),
//! so a hostile archive is refused before anything is written; then entries are created
//! through the root descriptor (parents with `mkdir_all_at`, files with `O_NOFOLLOW`,
//! hard links by descriptor).
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use berth_store::safepath::{mkdir_all_at, openat_in_root};
use nix::sys::stat::{FileStat, SFlag};

fn cstr(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in name"))
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

use berth_store::safepath::file_type;

/// `openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC)`.
fn open_child(dirfd: &OwnedFd, name: &[u8], flags: i32) -> std::io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid dirfd and NUL-terminated name; the mode (used with O_CREAT) is always
    // passed; the result is checked.
    let fd = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(last_err());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lstat_at(dirfd: &OwnedFd, name: &[u8]) -> std::io::Result<FileStat> {
    let c = cstr(name)?;
    nix::sys::stat::fstatat(
        Some(dirfd.as_raw_fd()),
        c.as_c_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(std::io::Error::from)
}

fn fstat(fd: &OwnedFd) -> std::io::Result<FileStat> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map_err(std::io::Error::from)
}

fn readlink_at(dirfd: &OwnedFd, name: &[u8]) -> std::io::Result<Vec<u8>> {
    let c = cstr(name)?;
    nix::fcntl::readlinkat(Some(dirfd.as_raw_fd()), c.as_c_str())
        .map(|s| s.as_bytes().to_vec())
        .map_err(std::io::Error::from)
}

/// Splits a cleaned container path into (parent, base): `/a/b` → (`/a`, `b`).
pub fn split_path(path: &str) -> (String, String) {
    let p = path.trim_end_matches('/');
    match p.rfind('/') {
        Some(i) => (
            if i == 0 {
                "/".into()
            } else {
                p[..i].to_owned()
            },
            p[i + 1..].to_owned(),
        ),
        None => ("/".into(), p.to_owned()),
    }
}

/// Lexically cleans `p` as Go's `filepath.Clean` of an absolute path (`..` stops at `/`).
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The entry for `rel` inside the root, not following a final link: its parent directory
/// descriptor, its name and its `lstat`.
pub fn lstat_in_root(rootfd: &OwnedFd, rel: &str) -> std::io::Result<(OwnedFd, Vec<u8>, FileStat)> {
    let clean = clean_abs(rel);
    let (parent, base) = split_path(&clean);
    let pfd = openat_in_root(rootfd, &parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    if base.is_empty() {
        // The root itself.
        let st = fstat(&pfd)?;
        return Ok((pfd, b".".to_vec(), st));
    }
    let st = lstat_at(&pfd, base.as_bytes())?;
    Ok((pfd, base.into_bytes(), st))
}

/// Mount types never archived from a running container's view (pseudo filesystems).
fn pseudo_fs(fd: &OwnedFd) -> bool {
    // SAFETY: zeroed statfs is a valid out-parameter; fd is valid.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut s) } != 0 {
        return false;
    }
    matches!(
        s.f_type,
        libc::PROC_SUPER_MAGIC
            | libc::SYSFS_MAGIC
            | libc::CGROUP_SUPER_MAGIC
            | libc::CGROUP2_SUPER_MAGIC
            | libc::DEVPTS_SUPER_MAGIC
            | 0x1980_0202 // mqueue
    )
}

fn header(st: &FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

struct Archiver<W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) of files with several links → the first name archived.
    links: HashMap<(u64, u64), String>,
}

/// Archives the entry `name` of directory `dirfd` as `tar_name` (recursively for a
/// directory). A final symlink is archived as a link.
fn archive_entry<W: Write>(
    a: &mut Archiver<W>,
    dirfd: &OwnedFd,
    name: &[u8],
    st: &FileStat,
    tar_name: &str,
) -> std::io::Result<()> {
    match file_type(st) {
        SFlag::S_IFDIR => {
            let fd = if name == b"." {
                openat_in_root(dirfd, ".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?
            } else {
                open_child(dirfd, name, libc::O_RDONLY | libc::O_DIRECTORY)?
            };
            let st = fstat(&fd)?;
            let mut h = header(&st, tar::EntryType::Directory);
            let dname = format!("{}/", tar_name.trim_end_matches('/'));
            a.b.append_data(&mut h, &dname, std::io::empty())?;
            if pseudo_fs(&fd) {
                return Ok(());
            }
            let mut names = Vec::new();
            {
                let dup = fd.try_clone()?;
                let mut dir =
                    nix::dir::Dir::from_fd(dup.as_raw_fd()).map_err(std::io::Error::from)?;
                std::mem::forget(dup); // owned by `dir` now
                for e in dir.iter() {
                    let e = e.map_err(std::io::Error::from)?;
                    let n = e.file_name().to_bytes();
                    if n != b"." && n != b".." {
                        names.push(n.to_vec());
                    }
                }
            }
            names.sort();
            for n in names {
                let Ok(cst) = lstat_at(&fd, &n) else {
                    continue; // gone meanwhile
                };
                let child = format!(
                    "{}/{}",
                    tar_name.trim_end_matches('/'),
                    String::from_utf8_lossy(&n)
                );
                match archive_entry(a, &fd, &n, &cst, &child) {
                    Ok(()) => {}
                    // Swapped or removed under us: skip it, as tar does.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR | libc::ENXIO)
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        SFlag::S_IFREG => {
            let fd = open_child(dirfd, name, libc::O_RDONLY | libc::O_NONBLOCK)?;
            let st = fstat(&fd)?;
            if file_type(&st) != SFlag::S_IFREG {
                return Err(std::io::Error::from_raw_os_error(libc::ENXIO));
            }
            if st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = a.links.get(&key) {
                    let mut h = header(&st, tar::EntryType::Link);
                    let first = first.clone();
                    a.b.append_link(&mut h, tar_name, &first)?;
                    return Ok(());
                }
                a.links.insert(key, tar_name.to_owned());
            }
            let mut h = header(&st, tar::EntryType::Regular);
            let n = st.st_size.max(0) as u64;
            h.set_size(n);
            // A file that shrinks under us is padded with zeros; one that grows is cut.
            let f = std::fs::File::from(fd);
            let data = f.take(n).chain(std::io::repeat(0)).take(n);
            a.b.append_data(&mut h, tar_name, data)?;
        }
        SFlag::S_IFLNK => {
            let target = readlink_at(dirfd, name)?;
            let mut h = header(st, tar::EntryType::Symlink);
            if target.len() < 100 {
                h.set_link_name_literal(&target)?;
                a.b.append_data(&mut h, tar_name, std::io::empty())?;
            } else {
                a.b.append_link(
                    &mut h,
                    tar_name,
                    Path::new(std::ffi::OsStr::from_bytes(&target)),
                )?;
            }
        }
        t @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
            let kind = match t {
                SFlag::S_IFCHR => tar::EntryType::Char,
                SFlag::S_IFBLK => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            };
            let mut h = header(st, kind);
            if kind != tar::EntryType::Fifo {
                h.set_device_major(libc::major(st.st_rdev))?;
                h.set_device_minor(libc::minor(st.st_rdev))?;
            }
            a.b.append_data(&mut h, tar_name, std::io::empty())?;
        }
        _ => {} // sockets are not archived
    }
    Ok(())
}

/// Archives `rel` inside the root (its final component not followed) as Docker's
/// `TarResourceRebase`: a directory's entries start with `rebase/`, a file is `rebase`.
pub fn archive_path(
    rootfd: &OwnedFd,
    rel: &str,
    rebase: &str,
    w: impl Write,
) -> std::io::Result<()> {
    let (pfd, name, st) = lstat_in_root(rootfd, rel)?;
    let mut a = Archiver {
        b: tar::Builder::new(w),
        links: HashMap::new(),
    };
    a.b.mode(tar::HeaderMode::Complete);
    // For the root itself `pfd` is the root and `name` is ".".
    archive_entry(&mut a, &pfd, &name, &st, rebase)?;
    a.b.into_inner()?.flush()
}

/// Why an archive was refused (400) or could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn invalid(msg: impl Into<String>) -> ExtractError {
    ExtractError::Invalid(msg.into())
}

/// Options for [`extract`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOpts {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry (`docker cp -a` with a container user); else the archive's.
    pub chown: Option<(u32, u32)>,
}

/// A tar entry name made relative and clean; `None` when it leaves the extraction
/// directory. Absolute names are refused by the caller.
fn clean_rel(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Free bytes of the filesystem of `fd` for an unprivileged writer... root may use the
/// reserve, so `f_bfree`.
fn free_bytes(fd: &OwnedFd) -> u64 {
    // SAFETY: zeroed statvfs is a valid out-parameter; fd is valid.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut s) } != 0 {
        return u64::MAX;
    }
    (s.f_bfree as u64).saturating_mul(s.f_frsize as u64)
}

fn free_inodes(fd: &OwnedFd) -> u64 {
    // SAFETY: zeroed statvfs is a valid out-parameter; fd is valid.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut s) } != 0 || s.f_files == 0 {
        return u64::MAX; // filesystems without inode accounting
    }
    s.f_ffree as u64
}

/// Copies `r` (decompressing gzip) into an unnamed temporary file in `spool_dir`, at most
/// `limit` bytes.
fn spool(r: impl Read, spool_dir: &Path, limit: u64) -> Result<std::fs::File, ExtractError> {
    let c = cstr(spool_dir.as_os_str().as_bytes())?;
    // SAFETY: valid path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(last_err().into());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut r = std::io::BufReader::with_capacity(256 * 1024, r);
    let head = {
        let buf = std::io::BufRead::fill_buf(&mut r)?;
        buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b
    };
    let mut src: Box<dyn Read> = if head {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let n = std::io::copy(&mut (&mut src).take(limit.saturating_add(1)), &mut f)
        .map_err(|e| invalid(format!("reading the archive: {e}")))?;
    if n > limit {
        return Err(invalid(format!(
            "archive too large: it expands beyond the {limit} bytes free at the destination"
        )));
    }
    f.rewind()?;
    Ok(f)
}

/// One checked entry.
struct Checked {
    path: String,
    kind: tar::EntryType,
    link: Option<String>,
}

/// Checks every header: names stay inside, hard links point inside, relative symlinks
/// do not climb out (moby's rules), sizes fit.
fn check(f: &mut std::fs::File) -> Result<Vec<Checked>, ExtractError> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(&mut *f);
    let entries = a
        .entries()
        .map_err(|e| invalid(format!("invalid tar archive: {e}")))?;
    for e in entries {
        let e = e.map_err(|e| invalid(format!("invalid tar archive: {e}")))?;
        let raw = e.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        if name.starts_with('/') {
            return Err(invalid(format!(
                "refusing archive entry {name:?}: absolute name"
            )));
        }
        let path = clean_rel(&name).ok_or_else(|| {
            invalid(format!(
                "refusing archive entry {name:?}: it is outside of the destination"
            ))
        })?;
        let kind = e.header().entry_type();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        match kind {
            tar::EntryType::Link => {
                let l = link.clone().unwrap_or_default();
                let ok = !l.starts_with('/') && clean_rel(&l).is_some_and(|t| !t.is_empty());
                if !ok {
                    return Err(invalid(format!("refusing archive entry {name:?}: hard link to {l:?} outside of the destination")));
                }
            }
            tar::EntryType::Symlink => {
                let l = link.clone().unwrap_or_default();
                if !l.starts_with('/') {
                    let (parent, _) = split_path(&format!("/{path}"));
                    let joined = format!("{}/{l}", parent.trim_start_matches('/'));
                    if clean_rel(&joined).is_none() {
                        return Err(invalid(format!("refusing archive entry {name:?}: symlink to {l:?} outside of the destination")));
                    }
                }
            }
            _ => {}
        }
        out.push(Checked { path, kind, link });
    }
    Ok(out)
}

fn set_times_fd(fd: &OwnedFd, mtime: u64) {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd and a two-element timespec array.
    unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) };
}

fn set_times_at(dirfd: &OwnedFd, name: &CString, mtime: u64) {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid dirfd, name and timespec array.
    unsafe {
        libc::utimensat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

/// Extracts the archive read from `r` into directory `dest` inside the root. `spool_dir`
/// holds the temporary copy. Nothing is written when a header is refused.
pub fn extract(
    r: impl Read,
    rootfd: &OwnedFd,
    dest: &str,
    spool_dir: &Path,
    opts: ExtractOpts,
) -> Result<(), ExtractError> {
    let destfd = openat_in_root(rootfd, dest, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let limit = free_bytes(&destfd).min(free_bytes(&berth_store::safepath::open_root(spool_dir)?));
    let mut f = spool(r, spool_dir, limit)?;
    let checked = check(&mut f)?;
    let total: u64 = {
        f.rewind()?;
        let mut a = tar::Archive::new(&mut f);
        let mut t = 0u64;
        for e in a.entries().map_err(|e| invalid(e.to_string()))? {
            let e = e.map_err(|e| invalid(e.to_string()))?;
            t = t.saturating_add(e.header().size().unwrap_or(0));
        }
        t
    };
    if checked.len() as u64 > free_inodes(&destfd) {
        return Err(invalid(format!(
            "archive too large: {} entries, more than the destination has free inodes",
            checked.len()
        )));
    }
    if total > free_bytes(&destfd) {
        return Err(invalid(format!(
            "archive too large: {total} bytes of files, more than the destination has free"
        )));
    }
    f.rewind()?;
    let dest = clean_abs(dest);
    let mut a = tar::Archive::new(&mut f);
    let mut dir_times: Vec<(String, u64)> = Vec::new();
    for (e, c) in a.entries()?.zip(checked) {
        let mut e = e?;
        if c.path.is_empty() {
            // The extraction directory itself (`./`).
            continue;
        }
        let full = format!("{}/{}", dest.trim_end_matches('/'), c.path);
        let (parent, base) = split_path(&full);
        let pfd = mkdir_all_at(rootfd, &parent, 0, 0)?;
        let pfd = openat_in_root(&pfd, ".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let cbase = cstr(base.as_bytes())?;
        let h = e.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = opts
            .chown
            .unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
        let mtime = h.mtime().unwrap_or(0);
        let existing = lstat_at(&pfd, base.as_bytes()).ok();
        let is_dir_entry = c.kind == tar::EntryType::Directory;
        if let Some(st) = &existing {
            let is_dir = file_type(st) == SFlag::S_IFDIR;
            if is_dir && !is_dir_entry {
                return Err(invalid(format!(
                    "cannot overwrite directory {full:?} with non-directory {:?}",
                    c.path
                )));
            }
            if !is_dir && is_dir_entry && opts.no_overwrite_dir_non_dir {
                return Err(invalid(format!(
                    "cannot overwrite non-directory {full:?} with directory {:?}",
                    c.path
                )));
            }
            if !(is_dir && is_dir_entry) {
                // SAFETY: valid dirfd and name; removes the entry itself, never a target.
                if unsafe { libc::unlinkat(pfd.as_raw_fd(), cbase.as_ptr(), 0) } != 0 {
                    return Err(last_err().into());
                }
            }
        }
        match c.kind {
            tar::EntryType::Directory => {
                if existing
                    .as_ref()
                    .is_none_or(|s| file_type(s) != SFlag::S_IFDIR)
                {
                    // SAFETY: valid dirfd and name.
                    if unsafe { libc::mkdirat(pfd.as_raw_fd(), cbase.as_ptr(), 0o700) } != 0 {
                        return Err(last_err().into());
                    }
                }
                let fd = open_child(&pfd, base.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY)?;
                // SAFETY: valid fd.
                unsafe {
                    libc::fchown(fd.as_raw_fd(), uid, gid);
                    libc::fchmod(fd.as_raw_fd(), mode);
                }
                dir_times.push((full.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = open_child(
                    &pfd,
                    base.as_bytes(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                )?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(&mut e, &mut file)?;
                let fd = OwnedFd::from(file);
                // SAFETY: valid fd; chown before chmod so setuid bits survive.
                unsafe {
                    libc::fchown(fd.as_raw_fd(), uid, gid);
                    libc::fchmod(fd.as_raw_fd(), mode);
                }
                set_times_fd(&fd, mtime);
            }
            tar::EntryType::Symlink => {
                let target = cstr(c.link.unwrap_or_default().as_bytes())?;
                // SAFETY: valid strings and dirfd.
                if unsafe { libc::symlinkat(target.as_ptr(), pfd.as_raw_fd(), cbase.as_ptr()) } != 0
                {
                    return Err(last_err().into());
                }
                // SAFETY: as above; AT_SYMLINK_NOFOLLOW changes the link itself.
                unsafe {
                    libc::fchownat(
                        pfd.as_raw_fd(),
                        cbase.as_ptr(),
                        uid,
                        gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                set_times_at(&pfd, &cbase, mtime);
            }
            tar::EntryType::Link => {
                let target = format!(
                    "{}/{}",
                    dest.trim_end_matches('/'),
                    clean_rel(&c.link.unwrap_or_default()).unwrap_or_default()
                );
                let tfd = openat_in_root(rootfd, &target, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
                let empty = cstr(b"")?;
                // SAFETY: valid descriptors and names; AT_EMPTY_PATH links the inode of `tfd`.
                if unsafe {
                    libc::linkat(
                        tfd.as_raw_fd(),
                        empty.as_ptr(),
                        pfd.as_raw_fd(),
                        cbase.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                } != 0
                {
                    return Err(last_err().into());
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (kind, dev) = match c.kind {
                    tar::EntryType::Char => (
                        libc::S_IFCHR,
                        libc::makedev(
                            h.device_major().ok().flatten().unwrap_or(0),
                            h.device_minor().ok().flatten().unwrap_or(0),
                        ),
                    ),
                    tar::EntryType::Block => (
                        libc::S_IFBLK,
                        libc::makedev(
                            h.device_major().ok().flatten().unwrap_or(0),
                            h.device_minor().ok().flatten().unwrap_or(0),
                        ),
                    ),
                    _ => (libc::S_IFIFO, 0),
                };
                // SAFETY: valid dirfd and name.
                if unsafe { libc::mknodat(pfd.as_raw_fd(), cbase.as_ptr(), kind | mode, dev) } != 0
                {
                    return Err(last_err().into());
                }
                // SAFETY: as above.
                unsafe {
                    libc::fchownat(
                        pfd.as_raw_fd(),
                        cbase.as_ptr(),
                        uid,
                        gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                set_times_at(&pfd, &cbase, mtime);
            }
            _ => {} // pax/GNU metadata is consumed by the tar reader; others are skipped
        }
    }
    // Directory times last: creating their entries changed them.
    for (d, mtime) in dir_times.into_iter().rev() {
        if let Ok(fd) = openat_in_root(
            rootfd,
            &d,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        ) {
            set_times_fd(&fd, mtime);
        }
    }
    Ok(())
}

/// Copies directory `src` inside `src_root` into the (empty) directory `dst` inside
/// `dst_root`, keeping owners, modes, times and links; `dst` takes `src`'s owner and mode
/// (Docker's volume population).
pub fn copy_tree(
    src_root: &OwnedFd,
    src: &str,
    dst_root: &OwnedFd,
    dst: &str,
    spool_dir: &Path,
) -> Result<(), ExtractError> {
    let (mut rd, wr) = std::io::pipe()?;
    let src_root2 = src_root.try_clone()?;
    let src2 = src.to_owned();
    let writer = std::thread::spawn(move || archive_path(&src_root2, &src2, ".", wr));
    let res = extract(&mut rd, dst_root, dst, spool_dir, ExtractOpts::default());
    drop(rd);
    let w = writer
        .join()
        .map_err(|_| invalid("archiving thread panicked"))?;
    res?;
    w?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::safepath::open_root;

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    h.set_link_name_literal(data).unwrap();
                    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn hostile_archives_are_refused_before_writing() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        let rootfd = open_root(&root).unwrap();
        use tar::EntryType as E;
        for (entries, want) in [
            (
                vec![("ok", E::Regular, "x"), ("../../escape", E::Regular, "p")],
                "outside",
            ),
            (
                vec![("ok", E::Regular, "x"), ("/abs", E::Regular, "p")],
                "absolute",
            ),
            (vec![("h", E::Link, "../../etc/passwd")], "hard link"),
            (vec![("l", E::Symlink, "../../..")], "symlink"),
        ] {
            let tar = tar_of(&entries);
            let err =
                extract(&tar[..], &rootfd, "/d", t.path(), ExtractOpts::default()).unwrap_err();
            assert!(matches!(err, ExtractError::Invalid(_)), "{err}");
            assert!(err.to_string().contains(want), "{err}");
            assert!(!root.join("d/ok").exists());
        }
        assert!(!t.path().join("escape").exists());
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..8 {
            std::io::Write::write_all(&mut gz, &zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = spool(&bomb[..], t.path(), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("archive too large"), "{err}");
        // Under the limit it is decompressed.
        let f = spool(&bomb[..], t.path(), 16 << 20).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 8 << 20);
    }

    #[test]
    fn extract_through_links_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        // A container link to the host's root: writing through it lands in the container.
        std::os::unix::fs::symlink("/", root.join("d/up")).unwrap();
        let rootfd = open_root(&root).unwrap();
        use tar::EntryType as E;
        let tar = tar_of(&[
            ("up/tmp/x", E::Regular, "inside"),
            ("l", E::Symlink, "/"),
            ("l/y", E::Regular, "y"),
            ("dir/", E::Directory, ""),
            ("dir/f", E::Regular, "f"),
            ("dir/hl", E::Link, "dir/f"),
        ]);
        extract(&tar[..], &rootfd, "/d", t.path(), ExtractOpts::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("tmp/x")).unwrap(),
            "inside"
        );
        assert_eq!(std::fs::read_to_string(root.join("y")).unwrap(), "y");
        assert_eq!(std::fs::read_to_string(root.join("d/dir/hl")).unwrap(), "f");
        assert!(!Path::new("/y").exists() || std::fs::read_to_string("/y").unwrap() != "y");
    }

    #[test]
    fn archive_rebases_and_keeps_links() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/sub/f"), "1").unwrap();
        std::os::unix::fs::symlink("/", root.join("etc/up")).unwrap();
        let rootfd = open_root(&root).unwrap();
        let mut out = Vec::new();
        archive_path(&rootfd, "/etc", "etc", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["etc/", "etc/sub/", "etc/sub/f", "etc/up"]);
        // A path through a link to / resolves inside the root.
        let mut out = Vec::new();
        archive_path(&rootfd, "/etc/up/etc/sub/f", "f", &mut out).unwrap();
        assert!(!out.is_empty());
    }
}
