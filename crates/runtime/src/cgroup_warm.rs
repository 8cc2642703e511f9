//! Keeps the kernel's cgroup migration lock warm while containers are being started.
//!
//! Moving a process into a cgroup (writing its PID to `cgroup.procs`, which libcontainer
//! does for every container init and every exec) takes the global
//! `cgroup_threadgroup_rwsem` for writing. That per-cpu rwsem first waits for an RCU grace
//! period (`rcu_sync_enter`) unless another writer held it within the last grace period or
//! two. Measured on this kind of host (cgroup v1, 2 CPUs): 6–20 ms for the first write,
//! under 0.2 ms for one that follows another within ~10 ms. That wait was the largest
//! single part of `run --rm true`.
//!
//! [`kick`] (on container create, before a spawn and before an exec) wakes one thread
//! that writes `0` (itself, i.e. berthd's own thread group) into the `cgroup.procs` of the
//! cgroup berthd is already in: a migration to where it already is, changing nothing, but
//! starting the grace period at once and then keeping it passed, one such write every few
//! milliseconds, until [`HOLD`] after the last kick. The container's own migration then
//! finds the lock in its cheap state, and the grace period has run in parallel with the
//! rest of create/start instead of in front of the container. Best effort: any error
//! (no cgroupfs, read-only, not root) just ends the warming; nothing depends on it.
//!
//! Only on cgroup v2 hosts. On v1 and hybrid hosts libcgroups' v1 manager (patched,
//! `vendor/libcgroups`) moves the single-threaded intermediate process by writing `0` to
//! `tasks`, which the kernel does without this lock; there warming would only get in the
//! way, since each warming write holds `cgroup_mutex` while it waits for the grace period
//! and every migration needs that mutex (measured: `run --rm true` 17.1 ms without
//! warming, 28.2 ms with it).
//!
//! `BERTH_CGROUP_WARM=0` turns it off (to measure what it saves).
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// How long the lock is kept warm after the last kick: covers a client's create → attach →
/// start round trips and a `run` that follows the previous one.
const HOLD: Duration = Duration::from_millis(300);
/// The interval between two warming writes, well inside the ~2 grace periods after which
/// the kernel returns the rwsem to its fast-reader (slow-writer) state.
const EVERY: Duration = Duration::from_millis(5);

static WARMER: std::sync::OnceLock<Option<SyncSender<()>>> = std::sync::OnceLock::new();

/// Wakes the warming thread (started on first use); never blocks.
pub fn kick() {
    let tx = WARMER.get_or_init(|| {
        if std::env::var_os("BERTH_CGROUP_WARM").is_some_and(|v| v == "0") {
            return None;
        }
        // The unified hierarchy only (see the module doc).
        if !crate::cgroup_unified() {
            return None;
        }
        let path = own_procs_file()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("cgroup-warm".into())
            .spawn(move || warm(path, rx))
            .ok()?;
        Some(tx)
    });
    if let Some(tx) = tx {
        // Full: a kick is already pending. Disconnected: warming ended on an error.
        let _ = tx.try_send(());
    }
}

fn warm(path: PathBuf, rx: Receiver<()>) {
    let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else {
        tracing::debug!(path = %path.display(), "cgroup warming off: cannot open");
        return;
    };
    while rx.recv().is_ok() {
        let mut until = Instant::now() + HOLD;
        loop {
            if let Err(e) = f.write_all(b"0") {
                tracing::debug!(path = %path.display(), error = %e, "cgroup warming off");
                return;
            }
            match rx.recv_timeout(EVERY) {
                Ok(()) => until = Instant::now() + HOLD,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= until {
                break;
            }
        }
    }
}

/// The `cgroup.procs` of this process's own cgroup in the first mounted hierarchy found
/// (v1 or v2: the lock is shared by all of them).
fn own_procs_file() -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    procs_file(&cgroups, &mountinfo).filter(|p| p.exists())
}

/// Pure part of [`own_procs_file`]: joins a mount of a hierarchy with this process's path
/// in it. Only mounts of a hierarchy's root (`/` as the mount's root) are used.
fn procs_file(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    for m in mountinfo.lines() {
        let Some((left, right)) = m.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 5 || r.len() < 3 || f[3] != "/" {
            continue;
        }
        let mount_point = f[4];
        let path = match r[0] {
            "cgroup2" => cgroups.lines().find_map(|l| l.strip_prefix("0::")),
            "cgroup" => {
                let opts: Vec<&str> = r[2].split(',').collect();
                cgroups.lines().find_map(|l| {
                    let mut it = l.splitn(3, ':');
                    let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                    let named = ctrls.split(',').any(|c| !c.is_empty() && opts.contains(&c));
                    named.then_some(path)
                })
            }
            _ => None,
        };
        if let Some(p) = path {
            let rel = p.trim_start_matches('/');
            let mut out = PathBuf::from(mount_point);
            if !rel.is_empty() {
                out.push(rel);
            }
            return Some(out.join("cgroup.procs"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::procs_file;
    use std::path::PathBuf;

    const MOUNTS: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn picks_the_first_hierarchy_with_a_path() {
        let cg = "8:pids:/a/b\n4:memory:/m\n0::/u\n";
        assert_eq!(
            procs_file(cg, MOUNTS),
            Some(PathBuf::from("/sys/fs/cgroup/unified/u/cgroup.procs"))
        );
    }

    #[test]
    fn v1_controller_and_root_path() {
        let cg = "8:pids:/\n";
        assert_eq!(
            procs_file(cg, MOUNTS),
            Some(PathBuf::from("/sys/fs/cgroup/pids/cgroup.procs"))
        );
    }

    #[test]
    fn bind_mounts_of_a_sub_cgroup_are_skipped() {
        let m = "40 25 0:27 /sub /mnt/pids rw - cgroup cgroup rw,pids\n";
        assert_eq!(procs_file("8:pids:/sub\n", m), None);
    }
}
