//! The tar of a container's rw layer (`docker commit`): the overlay upper directory as a
//! layer diff, with overlayfs whiteouts turned back into AUFS ones (a 0/0 character device
//! becomes an empty `.wh.<name>`, `trusted.overlay.opaque=y` on a directory adds
//! `<dir>/.wh..wh..opq`), hard links kept as links, xattrs as PAX records.
//!
//! The upper directory belongs to the container (hostile): every entry is opened relative to
//! its parent's descriptor with `O_NOFOLLOW` (through `openat2(RESOLVE_IN_ROOT)`), so a link
//! swapped in during the walk never leads outside the directory.
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{FileStat, SFlag};

use crate::safepath::{dir_entries as entries, file_type, open_root, openat_in_root};

/// The extended attributes of an open file (not `trusted.overlay.*`, overlay's own).
fn xattrs(fd: &OwnedFd) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    // SAFETY: valid fd and buffer of the given length.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return vec![];
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(v) = getxattr(fd, name) {
            out.push((String::from_utf8_lossy(name).into_owned(), v));
        }
    }
    out
}

fn getxattr(fd: &OwnedFd, name: &[u8]) -> Option<Vec<u8>> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: valid fd, NUL-terminated name, buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

struct Walk<W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written → their path.
    links: HashMap<(u64, u64), String>,
}

/// Writes the diff tar of the overlay upper directory `upper` to `w`.
pub fn write_diff_tar(upper: &Path, w: impl Write) -> std::io::Result<()> {
    let root = open_root(upper)?;
    let mut walk = Walk {
        b: tar::Builder::new(w),
        links: HashMap::new(),
    };
    walk.b.mode(tar::HeaderMode::Complete);
    walk.dir(&root, "")?;
    walk.b.finish()
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

impl<W: Write> Walk<W> {
    fn pax(&mut self, fd: &OwnedFd) -> std::io::Result<()> {
        let x = xattrs(fd);
        if x.is_empty() {
            return Ok(());
        }
        let recs: Vec<(String, Vec<u8>)> = x
            .into_iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        self.b
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    fn dir(&mut self, root: &OwnedFd, rel: &str) -> std::io::Result<()> {
        let dirfd = openat_in_root(
            root,
            if rel.is_empty() { "." } else { rel },
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        for (name, st) in entries(&dirfd)? {
            let name_s = String::from_utf8_lossy(&name).into_owned();
            let path = if rel.is_empty() {
                name_s.clone()
            } else {
                format!("{rel}/{name_s}")
            };
            match file_type(&st) {
                SFlag::S_IFDIR => {
                    let fd = openat_in_root(
                        root,
                        &path,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    )?;
                    self.pax(&fd)?;
                    let mut h = header(&st, tar::EntryType::Directory);
                    self.b
                        .append_data(&mut h, format!("{path}/"), std::io::empty())?;
                    if getxattr(&fd, b"trusted.overlay.opaque").as_deref() == Some(b"y") {
                        let mut h = header(&st, tar::EntryType::Regular);
                        h.set_mode(0o644);
                        self.b.append_data(
                            &mut h,
                            format!("{path}/.wh..wh..opq"),
                            std::io::empty(),
                        )?;
                    }
                    self.dir(root, &path)?;
                }
                SFlag::S_IFCHR if st.st_rdev == 0 => {
                    // overlayfs whiteout → AUFS whiteout.
                    let mut h = header(&st, tar::EntryType::Regular);
                    h.set_mode(0o600);
                    let wh = if rel.is_empty() {
                        format!(".wh.{name_s}")
                    } else {
                        format!("{rel}/.wh.{name_s}")
                    };
                    self.b.append_data(&mut h, wh, std::io::empty())?;
                }
                SFlag::S_IFREG => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&key).cloned() {
                            let mut h = header(&st, tar::EntryType::Link);
                            self.b.append_link(&mut h, &path, &first)?;
                            continue;
                        }
                        self.links.insert(key, path.clone());
                    }
                    let fd = openat_in_root(root, &path, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
                    self.pax(&fd)?;
                    let f = std::fs::File::from(fd);
                    let mut h = header(&st, tar::EntryType::Regular);
                    let n = st.st_size as u64;
                    h.set_size(n);
                    // A file that shrinks under us is padded with zeros; one that grows is cut
                    // at the size in the header.
                    let data = std::io::Read::take(
                        std::io::Read::chain(std::io::Read::take(f, n), std::io::repeat(0)),
                        n,
                    );
                    // Large reads: the tar builder copies from a buffered reader's buffer.
                    let data = std::io::BufReader::with_capacity(
                        n.clamp(8 * 1024, 1 << 20) as usize,
                        data,
                    );
                    self.b.append_data(&mut h, &path, data)?;
                }
                SFlag::S_IFLNK => {
                    let target =
                        nix::fcntl::readlinkat(Some(dirfd.as_fd().as_raw_fd()), name.as_slice())
                            .map_err(std::io::Error::from)?;
                    let mut h = header(&st, tar::EntryType::Symlink);
                    let target = target.as_bytes();
                    if target.len() < 100 {
                        h.set_link_name_literal(target)?;
                        self.b.append_data(&mut h, &path, std::io::empty())?;
                    } else {
                        self.b.append_link(
                            &mut h,
                            &path,
                            Path::new(std::ffi::OsStr::from_bytes(target)),
                        )?;
                    }
                }
                t @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
                    let kind = match t {
                        SFlag::S_IFCHR => tar::EntryType::Char,
                        SFlag::S_IFBLK => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    };
                    let mut h = header(&st, kind);
                    if kind != tar::EntryType::Fifo {
                        h.set_device_major(libc::major(st.st_rdev))?;
                        h.set_device_minor(libc::minor(st.st_rdev))?;
                    }
                    self.b.append_data(&mut h, &path, std::io::empty())?;
                }
                _ => {} // sockets are not archived (as Docker)
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_links_and_files() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/new"), "n").unwrap();
        std::fs::hard_link(up.join("etc/new"), up.join("etc/new2")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", up.join("esc")).unwrap();
        let wh = up.join("etc/gone");
        nix::sys::stat::mknod(&wh, SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).unwrap();
        let mut out = Vec::new();
        write_diff_tar(up, &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut got = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            got.push((
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
            ));
        }
        use tar::EntryType::*;
        assert_eq!(
            got,
            [
                ("esc".to_owned(), Symlink),
                ("etc/".into(), Directory),
                ("etc/.wh.gone".into(), Regular),
                ("etc/new".into(), Regular),
                ("etc/new2".into(), Link),
            ]
        );
    }
}
