//! `docker diff` and `docker export`: a container's filesystem as changes against its image
//! and as one tar stream.
//!
//! The container's files are hostile: everything under the rootfs and the rw layer is opened
//! with `openat2(RESOLVE_IN_ROOT)` and `O_NOFOLLOW`, directory by directory, so a symlink the
//! container plants or swaps in during the walk never leads berthd to a host file.
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::models::FilesystemChange;
use berth_api::{ApiError, BoxStream};
use berth_store::safepath::{open_root, openat_in_root};
use bytes::Bytes;
use nix::sys::stat::{FileStat, SFlag};

use super::{Containers, Status};

/// Docker's change kinds (`FilesystemChange.Kind`).
pub const MODIFIED: u8 = 0;
pub const ADDED: u8 = 1;
pub const DELETED: u8 = 2;

use berth_store::safepath::{dir_entries as entries, file_type};

fn open_dir_in(rootfd: &OwnedFd, rel: &str) -> std::io::Result<OwnedFd> {
    openat_in_root(
        rootfd,
        rel,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// `lstat` of `rel` in a lower layer, resolved inside it.
fn lower_stat(lower: &OwnedFd, rel: &str) -> Option<FileStat> {
    let fd = openat_in_root(lower, rel, libc::O_PATH | libc::O_NOFOLLOW, 0).ok()?;
    nix::sys::stat::fstat(fd.as_raw_fd()).ok()
}

/// moby's overlay `changes`: every entry of the upper dir is added, modified (it exists in a
/// lower layer) or deleted (a 0/0 character device, overlay's whiteout); directories whose
/// size, mode and mtime match the lower one are skipped, but the parent of any added or
/// deleted entry is reported modified.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> std::io::Result<Vec<(String, u8)>> {
    let root = open_root(upper)?;
    let lowers: Vec<OwnedFd> = lowers.iter().filter_map(|l| open_root(l).ok()).collect();
    let mut out = Vec::new();
    let mut changed_dirs = std::collections::HashSet::new();
    walk_changes(&root, &lowers, "", &mut out, &mut changed_dirs)?;
    Ok(out)
}

fn walk_changes(
    root: &OwnedFd,
    lowers: &[OwnedFd],
    rel: &str,
    out: &mut Vec<(String, u8)>,
    changed_dirs: &mut std::collections::HashSet<String>,
) -> std::io::Result<()> {
    let dirfd = open_dir_in(root, if rel.is_empty() { "." } else { rel })?;
    for (name, st) in entries(&dirfd)? {
        let path = format!("{rel}/{}", String::from_utf8_lossy(&name));
        let ft = file_type(&st);
        let is_dir = ft == SFlag::S_IFDIR;
        let whiteout = ft == SFlag::S_IFCHR && st.st_rdev == 0;
        let kind = if whiteout {
            DELETED
        } else {
            let mut kind = ADDED;
            let mut skip = false;
            for l in lowers {
                if let Some(ls) = lower_stat(l, &path) {
                    if is_dir
                        && file_type(&ls) == SFlag::S_IFDIR
                        && ls.st_size == st.st_size
                        && ls.st_mode == st.st_mode
                        && ls.st_mtime == st.st_mtime
                        && ls.st_mtime_nsec == st.st_mtime_nsec
                    {
                        skip = true;
                    }
                    kind = MODIFIED;
                    break;
                }
            }
            if skip {
                walk_changes(root, lowers, &path, out, changed_dirs)?;
                continue;
            }
            kind
        };
        if is_dir {
            changed_dirs.insert(path.clone());
        }
        if kind != MODIFIED && !rel.is_empty() && changed_dirs.insert(rel.to_owned()) {
            out.push((rel.to_owned(), MODIFIED));
        }
        out.push((path.clone(), kind));
        if is_dir && !whiteout {
            walk_changes(root, lowers, &path, out, changed_dirs)?;
        }
    }
    Ok(())
}

/// Writes the tree at `root` as a tar stream (paths relative, as `docker export`).
pub fn export_tar(root: &Path, w: impl Write) -> std::io::Result<()> {
    let rootfd = open_root(root)?;
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    export_dir(&rootfd, "", &mut b)?;
    b.finish()
}

fn header_for(st: &FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn export_dir<W: Write>(
    rootfd: &OwnedFd,
    rel: &str,
    b: &mut tar::Builder<W>,
) -> std::io::Result<()> {
    let dirfd = open_dir_in(rootfd, if rel.is_empty() { "." } else { rel })?;
    for (name, st) in entries(&dirfd)? {
        let path = if rel.is_empty() {
            String::from_utf8_lossy(&name).into_owned()
        } else {
            format!("{rel}/{}", String::from_utf8_lossy(&name))
        };
        match file_type(&st) {
            SFlag::S_IFDIR => {
                let mut h = header_for(&st, tar::EntryType::Directory);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
                export_dir(rootfd, &path, b)?;
            }
            SFlag::S_IFREG => {
                let f = std::fs::File::from(openat_in_root(
                    rootfd,
                    &path,
                    libc::O_RDONLY | libc::O_NOFOLLOW,
                    0,
                )?);
                let mut h = header_for(&st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                // A file that shrinks under us is padded with zeros by `take` + tar; one that
                // grows is cut at the size in the header.
                let n = st.st_size as u64;
                let data = std::io::Read::take(
                    std::io::Read::chain(std::io::Read::take(f, n), std::io::repeat(0)),
                    n,
                );
                b.append_data(&mut h, &path, data)?;
            }
            SFlag::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(Some(dirfd.as_fd().as_raw_fd()), name.as_slice())
                        .map_err(std::io::Error::from)?;
                let mut h = header_for(&st, tar::EntryType::Symlink);
                let target = target.as_bytes();
                if target.len() < 100 {
                    // Verbatim (`append_link` normalises, turning `/` into `//`).
                    h.set_link_name_literal(target)?;
                    b.append_data(&mut h, &path, std::io::empty())?;
                } else {
                    b.append_link(
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
                let mut h = header_for(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(libc::major(st.st_rdev))?;
                    h.set_device_minor(libc::minor(st.st_rdev))?;
                }
                b.append_data(&mut h, &path, std::io::empty())?;
            }
            _ => {} // sockets are not archived (as Docker)
        }
    }
    Ok(())
}

/// A `Write` that hands 64 KiB chunks to an async body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Containers {
    pub async fn container_changes(&self, key: &str) -> Result<Vec<FilesystemChange>, ApiError> {
        let c = self.get(key)?;
        let upper = self.paths.container_dir(&c.id).join("rw").join("upper");
        let lowers = self
            .store
            .held_layer_dirs(&c.id)
            .map_err(super::store_err)?;
        let list = tokio::task::spawn_blocking(move || changes(&upper, &lowers))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(format!("computing changes: {e}")))?;
        Ok(list
            .into_iter()
            .map(|(path, kind)| FilesystemChange {
                path,
                kind: kind_enum(kind),
            })
            .collect())
    }

    /// The container's filesystem as a tar stream. A stopped container's rootfs is mounted
    /// for the export (under its operation lock, so it cannot start meanwhile) and
    /// unmounted after.
    pub async fn export_container(
        self: &Arc<Self>,
        key: &str,
    ) -> Result<BoxStream<std::io::Result<Bytes>>, ApiError> {
        let c = self.get(key)?;
        if matches!(c.status(), Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "container {} is marked for removal",
                c.id
            )));
        }
        let this = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        tokio::spawn(async move {
            let _op = c.op.lock().await;
            let running = c.status().is_running();
            let bundle = this.paths.bundle(&c.id);
            let dir = this.paths.container_dir(&c.id);
            let store = this.store.clone();
            let id = c.id.clone();
            let err_tx = tx.clone();
            let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut w = ChannelWriter {
                    tx,
                    buf: Vec::new(),
                };
                if running {
                    export_tar(&bundle.join("rootfs"), &mut w)?;
                    return w.flush();
                }
                let target = bundle.with_file_name(format!(".export-{id}"));
                std::fs::create_dir_all(&target)?;
                let res = store
                    .prepare_held_rootfs(&id, &dir.join("rw"))
                    .map_err(std::io::Error::other)
                    .and_then(|m| m.mount(&target))
                    .and_then(|_| {
                        let r = export_tar(&target, &mut w).and_then(|_| w.flush());
                        let _ = berth_store::unmount(&target);
                        r
                    });
                let _ = std::fs::remove_dir(&target);
                res
            })
            .await;
            let failure = match res {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(std::io::Error::other(e.to_string())),
            };
            if let Some(e) = failure {
                tracing::warn!(error = %e, "export");
                let _ = err_tx.send(Err(e)).await;
            }
        });
        Ok(super::logs::tokio_stream_from(rx))
    }
}

fn kind_enum(kind: u8) -> berth_api::models::ChangeType {
    match kind {
        ADDED => berth_api::models::ChangeType::_1,
        DELETED => berth_api::models::ChangeType::_2,
        _ => berth_api::models::ChangeType::_0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_changes_like_moby() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for d in ["etc", "tmp", "usr/bin"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("usr/bin/tool"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        nix::sys::stat::mknod(
            &upper.join("usr/bin/tool"),
            SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", upper.join("link")).unwrap();
        // Overlay's copy-up keeps a directory's metadata: /usr is unchanged and not listed.
        let m = std::fs::metadata(lower.join("usr"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::open(upper.join("usr"))
            .unwrap()
            .set_modified(m)
            .unwrap();
        let got = changes(&upper, std::slice::from_ref(&lower)).unwrap();
        let want: Vec<(String, u8)> = vec![
            ("/etc".into(), MODIFIED),
            ("/etc/new".into(), ADDED),
            ("/etc/passwd".into(), MODIFIED),
            ("/link".into(), ADDED),
            ("/usr/bin".into(), MODIFIED),
            ("/usr/bin/tool".into(), DELETED),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn export_keeps_links_and_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "box\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/", root.join("etc/up")).unwrap();
        let mut out = Vec::new();
        export_tar(&root, &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut names = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let n = e.path().unwrap().display().to_string();
            if n == "escape" {
                assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
                assert_eq!(
                    e.link_name().unwrap().unwrap().display().to_string(),
                    "/etc/shadow"
                );
            }
            names.push(n);
        }
        assert_eq!(names, ["escape", "etc/", "etc/hostname", "etc/up"]);
    }
}
