//! The overlay mount that stacks an image's snapshots under a container's rw layer. As a
//! containerd snapshotter does, the store returns a mount description and the caller
//! mounts it where it likes ([`RootfsMount::mount`]).
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// mount(2) copies at most one page of option data: beyond this, use the new mount API.
const LEGACY_DATA_MAX: usize = 4000;

// <linux/mount.h>; not (all) in the libc crate.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// An overlay mount: `mount -t <fstype> -o <options> <source> <target>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

fn cstring(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "NUL byte in mount argument",
        )
    })
}

fn fd_result(r: libc::c_long) -> std::io::Result<OwnedFd> {
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

fn fsconfig_string(fsfd: &OwnedFd, key: &str, value: &str) -> std::io::Result<()> {
    let k = cstring(key.as_bytes())?;
    let v = cstring(value.as_bytes())?;
    // SAFETY: valid fs context fd and NUL-terminated key/value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("overlay option {key}={value}: {e}"),
        ));
    }
    Ok(())
}

impl RootfsMount {
    /// Overlay of `lower` (topmost first) under `upper`, with `work` as overlay's work dir.
    pub fn overlay(lower: &[PathBuf], upper: &Path, work: &Path) -> RootfsMount {
        let lower = lower
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("lowerdir={lower}"),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        }
    }

    /// Mounts at `target` (which must exist). Uses mount(2), or, when the options do not fit
    /// in a page (images with many layers), the fsopen/fsconfig API adding one lower dir at a
    /// time (`lowerdir+`, Linux 6.8+).
    pub fn mount(&self, target: &Path) -> std::io::Result<()> {
        if self.options.join(",").len() <= LEGACY_DATA_MAX {
            self.mount_legacy(target)
        } else {
            self.mount_fsopen(target)
        }
    }

    fn mount_legacy(&self, target: &Path) -> std::io::Result<()> {
        let src = cstring(self.source.as_bytes())?;
        let fstype = cstring(self.fstype.as_bytes())?;
        let tgt = cstring(target.as_os_str().as_bytes())?;
        let data = cstring(self.options.join(",").as_bytes())?;
        // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn mount_fsopen(&self, target: &Path) -> std::io::Result<()> {
        let fstype = cstring(self.fstype.as_bytes())?;
        // SAFETY: a NUL-terminated filesystem name; the result is checked.
        let fsfd =
            fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
        fsconfig_string(&fsfd, "source", &self.source)?;
        for opt in &self.options {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            if k == "lowerdir" {
                for dir in v.split(':') {
                    fsconfig_string(&fsfd, "lowerdir+", dir)?;
                }
            } else {
                fsconfig_string(&fsfd, k, v)?;
            }
        }
        // SAFETY: valid fs context fd; CMD_CREATE takes no key or value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: valid fs context fd; the result is checked.
        let mfd = fd_result(unsafe {
            libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, 0)
        })?;
        let empty = cstring(b"")?;
        let tgt = cstring(target.as_os_str().as_bytes())?;
        // SAFETY: valid mount fd, empty path with F_EMPTY_PATH, NUL-terminated target.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mfd.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                tgt.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Unmounts `target` (lazily, so a busy mount cannot wedge the caller), every mount stacked
/// there; Ok if nothing is mounted.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    let tgt = cstring(target.as_os_str().as_bytes())?;
    loop {
        // SAFETY: valid NUL-terminated path.
        let r = unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
                _ => Err(e),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options() {
        let m = RootfsMount::overlay(
            &["/a".into(), "/b".into()],
            Path::new("/u"),
            Path::new("/w"),
        );
        assert_eq!(m.fstype, "overlay");
        assert_eq!(
            m.options,
            vec!["index=off", "lowerdir=/a:/b", "upperdir=/u", "workdir=/w"]
        );
        let d = tempfile::tempdir().unwrap();
        unmount(d.path()).unwrap();
        unmount(&d.path().join("absent")).unwrap();
    }
}
