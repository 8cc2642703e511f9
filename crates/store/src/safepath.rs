//! Path resolution that never leaves a root: `openat2(RESOLVE_IN_ROOT)`. Used for layer
//! unpacking and for everything berthd reads or creates inside a container's rootfs.
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens a directory by host path (`O_PATH`).
pub fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(root.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(rootfd, rel, flags, RESOLVE_IN_ROOT)`: `rel` is resolved as if `rootfd` were `/`.
pub fn openat_in_root(
    rootfd: &OwnedFd,
    rel: &str,
    flags: i32,
    mode: u32,
) -> std::io::Result<OwnedFd> {
    let rel = rel.trim_start_matches('/');
    let c = CString::new(if rel.is_empty() { "." } else { rel })?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // RESOLVE_IN_ROOT fails with EAGAIN when a rename raced with the lookup: retry.
    let mut attempts = 0;
    loop {
        // SAFETY: valid dirfd, NUL-terminated path and a correctly sized `open_how`.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                rootfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: `fd` is a fresh descriptor returned by openat2, owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = std::io::Error::last_os_error();
        attempts += 1;
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) || attempts >= 128 {
            return Err(e);
        }
    }
}

/// Opens `rel` for reading inside `root`.
pub fn open_in_root(root: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    let rootfd = open_root(root)?;
    Ok(std::fs::File::from(openat_in_root(
        &rootfd,
        rel,
        libc::O_RDONLY,
        0,
    )?))
}

/// Reads a whole file inside `root`; `None` if it does not exist.
pub fn read_in_root(root: &Path, rel: &str) -> std::io::Result<Option<String>> {
    match open_in_root(root, rel) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates directory `rel` and its parents inside the root (mode 0755, owned by uid:gid
/// when created); returns an `O_PATH` fd of it.
pub fn mkdir_all_at(rootfd: &OwnedFd, rel: &str, uid: u32, gid: u32) -> std::io::Result<OwnedFd> {
    let mut cur = openat_in_root(rootfd, "", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let mut acc = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "path contains ..",
            ));
        }
        let name = CString::new(comp)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        let r = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) };
        if r == 0 {
            // SAFETY: as above; AT_SYMLINK_NOFOLLOW on the entry just made.
            let r = unsafe {
                libc::fchownat(
                    cur.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        // The component may be a symlink: re-resolve the whole path inside the root.
        acc.push('/');
        acc.push_str(comp);
        cur = openat_in_root(rootfd, &acc, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    }
    Ok(cur)
}

/// Creates directory `rel` (and parents) inside `root`.
pub fn mkdir_all_in_root(root: &Path, rel: &str, uid: u32, gid: u32) -> std::io::Result<()> {
    let rootfd = open_root(root)?;
    mkdir_all_at(&rootfd, rel, uid, gid).map(|_| ())
}

/// The file type bits of a `stat`.
pub fn file_type(st: &nix::sys::stat::FileStat) -> nix::sys::stat::SFlag {
    use nix::sys::stat::SFlag;
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// One directory's entries read through `dirfd` (names sorted bytewise, as Go's
/// `filepath.Walk` visits them), each with its `lstat` (links are never followed).
pub fn dir_entries(dirfd: &OwnedFd) -> std::io::Result<Vec<(Vec<u8>, nix::sys::stat::FileStat)>> {
    let dup = dirfd.try_clone()?;
    let mut dir = nix::dir::Dir::from_fd(dup.as_raw_fd()).map_err(std::io::Error::from)?;
    // `Dir` owns the descriptor now.
    std::mem::forget(dup);
    let mut out = Vec::new();
    for e in dir.iter() {
        let e = e.map_err(std::io::Error::from)?;
        let name = e.file_name().to_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        let st = nix::sys::stat::fstatat(
            Some(dirfd.as_raw_fd()),
            e.file_name(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(std::io::Error::from)?;
        out.push((name, st));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_escapes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(d.path().join("secret"), "host").unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), None);
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("dots")).unwrap();
        mkdir_all_in_root(&root, "/up/made/deeper", 0, 0).unwrap();
        mkdir_all_in_root(&root, "/dots/other", 0, 0).unwrap();
        assert!(root.join("made/deeper").is_dir());
        assert!(root.join("other").is_dir());
        assert!(!d.path().join("other").exists());
    }
}
