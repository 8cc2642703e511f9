use std::fs;
use std::path::Path;

use nix::unistd::Pid;

use crate::common::{self, CGROUP_PROCS, ControllerOpt, WrapIoResult, WrappedIoError};

/// berth: the PID that stands for "the calling thread, which is the only thread of its
/// process" in [`Controller::add_task`]. Only `Manager::add_task` passes it, after checking.
pub(super) const ONLY_THREAD: Pid = Pid::from_raw(0);

/// berth: writes `pid` to the cgroup's `cgroup.procs`, or, for [`ONLY_THREAD`], `0` to its
/// `tasks`. For a process with one thread both move the same task, but the kernel moves
/// the calling thread (`0` written to `tasks`) without write-locking the global
/// `cgroup_threadgroup_rwsem` (see `cgroup_procs_write_start`), and that lock, when no
/// one has taken it lately, first waits for an RCU grace period: 5-15 ms per container
/// start on a cgroup v1 host.
pub(super) fn write_task(pid: Pid, cgroup_path: &Path) -> Result<(), WrappedIoError> {
    if pid == ONLY_THREAD {
        common::write_cgroup_file(cgroup_path.join("tasks"), 0)
    } else {
        common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), pid)
    }
}

pub(super) trait Controller {
    type Error: From<WrappedIoError>;
    type Resource;

    /// Adds a new task specified by its pid to the cgroup
    /// (berth: or the calling thread, for [`ONLY_THREAD`]; see [`write_task`])
    fn add_task(pid: Pid, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        write_task(pid, cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}
