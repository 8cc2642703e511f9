//! `docker cp`: `HEAD/GET/PUT /containers/{id}/archive`.
//!
//! Everything happens on a dedicated thread holding a descriptor of the container's root
//! *as the container sees it*, volumes and binds included:
//! - running: `/proc/<pid>/root` (the container's own mount namespace);
//! - stopped: the thread leaves berthd's mount namespace (`unshare(CLONE_NEWNS | CLONE_FS)`,
//!   `/` made a slave so nothing propagates back), mounts the rootfs and the container's
//!   volumes and binds there, under the container's operation lock so it cannot start
//!   meanwhile; the mounts die with the thread and never show in the host's /proc/mounts.
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)` from that descriptor (see
//! [`crate::tarfs`]), so no symlink in the container leads outside it.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::{
    ApiError, ApiResult, ArchiveBackend, BoxStream, ErrorKind, ExtractOptions, PathStat,
};
use berth_store::safepath::{mkdir_all_at, openat_in_root};
use bytes::Bytes;
use futures_util::StreamExt;
use nix::sys::stat::{FileStat, SFlag};

use super::{Containers, Ctr, Record, Status};
use crate::tarfs::{self, clean_abs, split_path, ExtractError};

/// Go's `os.FileMode` bits for a unix mode (what `ContainerPathStat.mode` carries).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= 1 << 31,
        libc::S_IFLNK => m |= 1 << 27,
        libc::S_IFIFO => m |= 1 << 25,
        libc::S_IFSOCK => m |= 1 << 24,
        libc::S_IFBLK => m |= 1 << 26,
        libc::S_IFCHR => m |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if st_mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

fn mtime(st: &FileStat) -> String {
    chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Resolves `path` inside the root as the kernel would from inside the container
/// (symlinks followed, `..` stopping at `/`), returning the resolved absolute path. With
/// `follow_last` false the final component is left as it is.
pub fn resolve_path(rootfd: &OwnedFd, path: &str, follow_last: bool) -> std::io::Result<String> {
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .rev()
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        if comp == ".." {
            cur.pop();
            continue;
        }
        let last = todo.is_empty();
        let here = format!("/{}", cur.join("/"));
        let dir = openat_in_root(rootfd, &here, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let c = std::ffi::CString::new(comp.as_bytes())?;
        let st = match nix::sys::stat::fstatat(
            Some(dir.as_raw_fd()),
            c.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) if last => {
                cur.push(comp);
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        if is_link && (!last || follow_last) {
            links += 1;
            if links > 255 {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), c.as_c_str())?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                cur.clear();
            }
            for t in target
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .rev()
            {
                todo.push(t.to_owned());
            }
            continue;
        }
        cur.push(comp);
    }
    Ok(format!("/{}", cur.join("/")))
}

fn not_found(path: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("Could not find the file {path} in container {key}"))
}

fn io_api(e: std::io::Error, path: &str, key: &str) -> ApiError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => not_found(path, key),
        Some(libc::EROFS) => ApiError::new(
            ErrorKind::Forbidden,
            "container rootfs is marked read-only".to_owned(),
        ),
        _ => ApiError::internal(format!("{path}: {e}")),
    }
}

/// Whether the path asks to follow its last component (`/dir/`, `/dir/.`).
fn wants_contents(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The stat of `path` as Docker reports it: the final link is not followed unless the
/// path ends in `/` or `/.`; `linkTarget` is where a link resolves inside the container.
fn stat_path(rootfd: &OwnedFd, path: &str) -> std::io::Result<(PathStat, String, FileStat)> {
    let abs = clean_abs(path);
    let follow = wants_contents(path);
    let resolved = resolve_path(rootfd, &abs, follow)?;
    let (_, _, st) = tarfs::lstat_in_root(rootfd, &resolved)?;
    let name = if abs == "/" {
        "/".to_owned()
    } else {
        split_path(&abs).1
    };
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        resolve_path(rootfd, &resolved, true)?
    } else {
        String::new()
    };
    Ok((
        PathStat {
            name,
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: mtime(&st),
            link_target,
        },
        resolved,
        st,
    ))
}

/// Mounts `src` on `rel` inside the root (the mount point made inside the root, a file
/// for a file source), read-only when asked.
fn bind_inside(
    rootfd: &OwnedFd,
    src: &std::path::Path,
    rel: &str,
    ro: bool,
) -> std::io::Result<()> {
    let target = if src.is_dir() {
        mkdir_all_at(rootfd, rel, 0, 0)?
    } else {
        let (parent, base) = split_path(&clean_abs(rel));
        let pfd = mkdir_all_at(rootfd, &parent, 0, 0)?;
        let c = std::ffi::CString::new(base)?;
        // SAFETY: valid dirfd and name; O_NOFOLLOW never creates through a link.
        let fd = unsafe {
            libc::openat(
                pfd.as_raw_fd(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let tgt = format!("/proc/self/fd/{}", target.as_raw_fd());
    let csrc = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())?;
    let ctgt = std::ffi::CString::new(tgt)?;
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe {
        libc::mount(
            csrc.as_ptr(),
            ctgt.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if ro {
        // The remount must name the new mount: reopen the path, which now crosses into it.
        let top = openat_in_root(rootfd, rel, libc::O_PATH, 0)?;
        let ctgt = std::ffi::CString::new(format!("/proc/self/fd/{}", top.as_raw_fd()))?;
        // SAFETY: as above.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                ctgt.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What a cp thread needs to build the container's view.
struct View {
    running_pid: Option<u32>,
    rec: Record,
    mount_target: PathBuf,
    store: Arc<berth_store::Store>,
    volumes: Arc<crate::volumes::Volumes>,
    rw: PathBuf,
    /// Where berthd mounted a running container's rootfs.
    bundle_rootfs: PathBuf,
}

impl View {
    /// Runs on the cp thread: the root descriptor of the container's view.
    fn open(&self) -> Result<OwnedFd, ApiError> {
        if let Some(pid) = self.running_pid {
            let fd = berth_store::safepath::open_root(std::path::Path::new(&format!(
                "/proc/{pid}/root"
            )))
            .map_err(|e| ApiError::internal(format!("opening the container's root: {e}")))?;
            // The pid must still be the container's: its root is the rootfs berthd mounted
            // (a reused pid would hand us another process's root, maybe the host's).
            let same = match (
                nix::sys::stat::fstat(fd.as_raw_fd()),
                nix::sys::stat::stat(&self.bundle_rootfs),
            ) {
                (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
                _ => false,
            };
            if !same {
                return Err(ApiError::conflict(format!(
                    "container {} is not running",
                    self.rec.id
                )));
            }
            return Ok(fd);
        }
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            ApiError::internal(format!("preparing the container's filesystem: {what}: {e}"))
        };
        // SAFETY: plain syscalls on this thread only; it never returns to a pool.
        if unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS) } != 0 {
            return Err(fail("unshare", &std::io::Error::last_os_error()));
        }
        let root = std::ffi::CString::new("/").expect("no NUL");
        // SAFETY: valid string; changes propagation in this new namespace only.
        if unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            )
        } != 0
        {
            return Err(fail("making / a slave", &std::io::Error::last_os_error()));
        }
        std::fs::create_dir_all(&self.mount_target).map_err(|e| fail("mount point", &e))?;
        self.store
            .prepare_held_rootfs(&self.rec.id, &self.rw)
            .map_err(|e| fail("rootfs", &e))?
            .mount(&self.mount_target)
            .map_err(|e| fail("mounting the rootfs", &e))?;
        let rootfd = berth_store::safepath::open_root(&self.mount_target)
            .map_err(|e| fail("opening the rootfs", &e))?;
        for m in &self.rec.mount_points {
            let src = match m.typ.as_str() {
                "volume" => self.volumes.data_dir(&m.name),
                "bind" => PathBuf::from(&m.source),
                _ => continue, // tmpfs mounts do not exist while stopped
            };
            if !src.exists() {
                continue;
            }
            bind_inside(&rootfd, &src, &m.destination, !m.rw)
                .map_err(|e| fail(&format!("mounting {}", m.destination), &e))?;
        }
        Ok(rootfd)
    }
}

/// Where `resolved` is mounted from in the container: `(read-only, in a volume or bind)`.
fn mount_of(rec: &Record, resolved: &str) -> (bool, bool) {
    let mut best: Option<&crate::volumes::mounts::MountPoint> = None;
    for m in &rec.mount_points {
        let d = m.destination.trim_end_matches('/');
        if (resolved == d || resolved.starts_with(&format!("{d}/")))
            && best.is_none_or(|b| b.destination.len() < m.destination.len())
        {
            best = Some(m);
        }
    }
    match best {
        Some(m) => (!m.rw, true),
        None => (rec.host_config.readonly_rootfs.unwrap_or(false), false),
    }
}

impl Containers {
    /// Runs `f` on a dedicated thread with the root of the container's view.
    async fn with_view<T: Send + 'static>(
        self: &Arc<Self>,
        key: &str,
        f: impl FnOnce(&OwnedFd, &Record) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let c: Arc<Ctr> = self.get(key)?;
        if matches!(c.status(), Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "container {} is marked for removal",
                c.id
            )));
        }
        // A stopped container must not start while its rootfs is mounted for us; a running
        // one keeps running (its own root is used).
        let op = if c.status().is_running() {
            None
        } else {
            Some(c.op.lock().await)
        };
        let rec = c.snapshot();
        let running = rec.state.status.is_running() && rec.state.pid > 0;
        let view = View {
            running_pid: running.then_some(rec.state.pid),
            mount_target: self.paths.exec_root.join("c").join(format!(
                ".cp-{}-{:08x}",
                c.id,
                rand::random::<u32>()
            )),
            rw: self.paths.container_dir(&c.id).join("rw"),
            bundle_rootfs: self.paths.bundle(&c.id).join("rootfs"),
            rec,
            store: self.store.clone(),
            volumes: self.volumes.clone(),
        };
        let target = view.mount_target.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("berth-cp".into())
            .spawn(move || {
                let res = view.open().and_then(|fd| {
                    let r = f(&fd, &view.rec);
                    drop(fd);
                    r
                });
                if view.running_pid.is_none() {
                    let _ = berth_store::unmount(&view.mount_target);
                }
                let _ = tx.send(res);
            })
            .map_err(|e| ApiError::internal(format!("starting the copy thread: {e}")))?;
        let res = rx
            .await
            .map_err(|_| ApiError::internal("the copy thread failed"))?;
        drop(op);
        if !running {
            // The mount lived in the thread's namespace only; the directory is ours.
            for _ in 0..50 {
                match std::fs::remove_dir(&target) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await
                    }
                    _ => break,
                }
            }
        }
        res
    }

    pub async fn archive_stat(self: &Arc<Self>, key: &str, path: &str) -> ApiResult<PathStat> {
        let (k, p) = (key.to_owned(), path.to_owned());
        self.with_view(key, move |root, _| {
            stat_path(root, &p)
                .map(|s| s.0)
                .map_err(|e| io_api(e, &p, &k))
        })
        .await
    }

    pub async fn archive_get(
        self: &Arc<Self>,
        key: &str,
        path: &str,
    ) -> ApiResult<(PathStat, BoxStream<std::io::Result<Bytes>>)> {
        let (k, p) = (key.to_owned(), path.to_owned());
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel::<Result<PathStat, ApiError>>();
        // Whoever fails first tells the caller: the stat inside the view, or the view itself.
        let stat_tx = Arc::new(std::sync::Mutex::new(Some(stat_tx)));
        let stat_tx2 = stat_tx.clone();
        let send_stat = move |r: Result<PathStat, ApiError>| {
            if let Some(tx) = stat_tx2.lock().expect("stat lock").take() {
                let _ = tx.send(r);
            }
        };
        let send_stat2 = send_stat.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let this = self.clone();
        let key2 = key.to_owned();
        let c = self.get(key)?;
        tokio::spawn(async move {
            let err_tx = tx.clone();
            let res = this
                .with_view(&key2, move |root, _| {
                    let (stat, resolved, _) = match stat_path(root, &p) {
                        Ok(s) => s,
                        Err(e) => {
                            send_stat2(Err(io_api(e, &p, &k)));
                            return Ok(());
                        }
                    };
                    send_stat2(Ok(stat));
                    // Docker's rebase: entries start with the name the user asked for.
                    let abs = clean_abs(&p);
                    let rebase = if (wants_contents(&p) && p.ends_with('.')) || abs == "/" {
                        ".".to_owned()
                    } else {
                        split_path(&abs).1
                    };
                    let mut w = ChannelWriter {
                        tx,
                        buf: Vec::new(),
                    };
                    tarfs::archive_path(root, &resolved, &rebase, &mut w)
                        .and_then(|_| std::io::Write::flush(&mut w))
                        .map_err(|e| ApiError::internal(format!("archiving {p}: {e}")))
                })
                .await;
            if let Err(e) = res {
                let msg = e.message.clone();
                send_stat(Err(e));
                let _ = err_tx.send(Err(std::io::Error::other(msg))).await;
            }
        });
        let stat = match stat_rx.await {
            Ok(r) => r?,
            Err(_) => return Err(ApiError::internal("archiving failed")),
        };
        self.emit(&c, "archive-path", &[]);
        Ok((stat, super::logs::tokio_stream_from(rx)))
    }

    pub async fn archive_put(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        opts: ExtractOptions,
        body: BoxStream<std::io::Result<Bytes>>,
    ) -> ApiResult<()> {
        // The body goes through a pump: when the copy stops reading (an error), the rest of
        // a small upload is still drained, so the client reads the answer instead of a
        // broken pipe (Go's server does the same).
        let (btx, brx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let pump = tokio::spawn(async move {
            let mut body = body;
            let mut tx = Some(btx);
            let mut drained = 0usize;
            while let Some(chunk) = body.next().await {
                if let Some(t) = &tx {
                    if t.send(chunk).await.is_err() {
                        tx = None;
                    }
                } else {
                    drained += chunk.map(|c| c.len()).unwrap_or(0);
                    if drained > DRAIN_LIMIT {
                        break;
                    }
                }
            }
        });
        let res = self.archive_put_inner(key, path, opts, brx).await;
        let _ = pump.await;
        res
    }

    async fn archive_put_inner(
        self: &Arc<Self>,
        key: &str,
        path: &str,
        opts: ExtractOptions,
        body: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    ) -> ApiResult<()> {
        let c = self.get(key)?;
        let (k, p) = (key.to_owned(), path.to_owned());
        let reader = tokio_util::io::StreamReader::new(super::logs::tokio_stream_from(body));
        let reader = tokio_util::io::SyncIoBridge::new(reader);
        let spool = self.paths.data_root.clone();
        self.with_view(key, move |root, rec| {
            let abs = clean_abs(&p);
            let resolved = resolve_path(root, &abs, true).map_err(|e| io_api(e, &p, &k))?;
            let (_, _, st) =
                tarfs::lstat_in_root(root, &resolved).map_err(|e| io_api(e, &p, &k))?;
            if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFDIR {
                return Err(ApiError::invalid("extraction point is not a directory"));
            }
            let (ro, in_mount) = mount_of(rec, &resolved);
            if ro {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    if in_mount {
                        "mounted volume is marked read-only"
                    } else {
                        "container rootfs is marked read-only"
                    },
                ));
            }
            let chown = if opts.copy_uid_gid {
                let user = rec.config.user.clone().unwrap_or_default();
                if user.is_empty() {
                    None
                } else {
                    let rootp = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
                    let u = crate::user::resolve(&rootp, &user, &[])
                        .map_err(|e| ApiError::invalid(e.to_string()))?;
                    Some((u.uid, u.gid))
                }
            } else {
                None
            };
            tarfs::extract(
                reader,
                root,
                &resolved,
                &spool,
                tarfs::ExtractOpts {
                    no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
                    chown,
                },
            )
            .map_err(|e| match e {
                ExtractError::Invalid(m) => ApiError::invalid(m),
                ExtractError::Io(e) => io_api(e, &p, &k),
            })
        })
        .await?;
        self.emit(&c, "extract-to-dir", &[]);
        Ok(())
    }
}

/// How much of an upload is read and dropped after a refusal.
const DRAIN_LIMIT: usize = 4 << 20;

/// A `Write` that hands 64 KiB chunks to an async body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// Removes the mount-point directories of copies cut short by a crash (their mounts lived in
/// the copy thread's namespace and died with it).
pub fn remove_stale_copy_dirs(paths: &crate::paths::Paths) {
    let dir = paths.exec_root.join("c");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(".cp-") {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The API face of `docker cp`.
pub struct ArchiveApi(pub Arc<Containers>);

#[async_trait::async_trait]
impl ArchiveBackend for ArchiveApi {
    async fn stat(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        self.0.archive_stat(id, path).await
    }
    async fn get(
        &self,
        id: &str,
        path: &str,
    ) -> ApiResult<(PathStat, BoxStream<std::io::Result<Bytes>>)> {
        self.0.archive_get(id, path).await
    }
    async fn put(
        &self,
        id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BoxStream<std::io::Result<Bytes>>,
    ) -> ApiResult<()> {
        self.0.archive_put(id, path, opts, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_go() {
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 420);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), 2147484141);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), 134218239);
    }

    #[test]
    fn resolves_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("dots")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        let fd = berth_store::safepath::open_root(root).unwrap();
        assert_eq!(resolve_path(&fd, "/up/up/etc", true).unwrap(), "/etc");
        assert_eq!(resolve_path(&fd, "/dots", true).unwrap(), "/etc");
        assert_eq!(resolve_path(&fd, "/etclink", false).unwrap(), "/etclink");
        assert_eq!(resolve_path(&fd, "/etclink/x", true).unwrap(), "/etc/x");
        assert_eq!(resolve_path(&fd, "/../../..", true).unwrap(), "/");
    }
}
