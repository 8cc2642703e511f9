//! Compiling an OCI `linux.seccomp` section to the kernel's BPF program once, not in every
//! container.
//!
//! libcontainer compiles the profile with libseccomp inside every container's init (about
//! 10 ms for Docker's default profile on a small VM, the largest single cost of a `run`).
//! [`compile`] builds the very same libseccomp filter libcontainer builds in
//! `libcontainer::seccomp::initialize_seccomp` (same translation of actions, operators,
//! architectures and flags, the same skipped rules) but exports the generated program
//! instead of loading it; [`cached`] keeps the result in a file keyed by the digest of the
//! section (and the libseccomp version), so the next container only reads it. The shim's
//! init loads the program with `seccomp(2)` at the point libcontainer would have
//! (`crate::shim::security`). A unit test checks the exported program against the one
//! libcontainer's own code loads into the kernel, instruction for instruction.
use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

/// `SECCOMP_FILTER_FLAG_*` of `<linux/seccomp.h>`.
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// Bumped whenever the compilation or the cache file format changes.
const CACHE_VERSION: &[u8] = b"berth-seccomp-bpf-1";

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("seccomp: {0}")]
    Seccomp(#[from] libseccomp::error::SeccompError),
    #[error("seccomp: exporting the program")]
    Io(#[from] std::io::Error),
    #[error("seccomp: the exported program is malformed")]
    Malformed,
}

/// A compiled filter: `sock_filter` instructions (8 bytes each, native endianness) and the
/// `seccomp(2)` flags libseccomp's own load would pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub code: Vec<u8>,
    pub flags: u32,
}

impl Program {
    /// Number of `sock_filter` instructions.
    pub fn len(&self) -> usize {
        self.code.len() / 8
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }
}

/// Whether a profile can be precompiled: user notification (`SCMP_ACT_NOTIFY`, which needs
/// the listener descriptor libcontainer hands over) and `wait_killable_recv` stay with
/// libcontainer's own path.
pub fn precompilable(s: &LinuxSeccomp) -> bool {
    let notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    let odd_flag = s
        .flags()
        .iter()
        .flatten()
        .any(|f| *f == LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv);
    !notify && !odd_flag && s.listener_path().is_none()
}

// The translation below is libcontainer 0.7's (`libcontainer::seccomp`), kept identical.
fn translate_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn translate_action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<ScmpAction, BpfError> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.try_into().map_err(|_| BpfError::Malformed)?)
        }
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
    })
}

fn translate_op(op: LinuxSeccompOperator, datum_b: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(datum_b.unwrap_or(0)),
    }
}

/// The libseccomp filter libcontainer's `initialize_seccomp` builds, not yet loaded.
fn build_filter(s: &LinuxSeccomp) -> Result<(ScmpFilterContext, u32), BpfError> {
    let default_action = translate_action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default_action)?;
    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true)?;
                flags |= FLAG_LOG;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                ctx.set_ctl_tsync(true)?;
                flags |= FLAG_TSYNC;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true)?;
                flags |= FLAG_SPEC_ALLOW;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true)?;
            }
        };
    }
    for &arch in s.architectures().iter().flatten() {
        ctx.add_arch(translate_arch(arch))?;
    }
    ctx.set_ctl_nnp(false)?;
    for rule in s.syscalls().iter().flatten() {
        let action = translate_action(rule.action(), rule.errno_ret())?;
        if action == default_action {
            continue;
        }
        for name in rule.names() {
            // Names libseccomp does not know are skipped, as libcontainer does.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            match rule.args() {
                Some(args) => {
                    let mut cmps = Vec::with_capacity(args.len());
                    let mut seen = HashSet::new();
                    let mut duplicate = false;
                    for a in args {
                        let index = a.index() as u32;
                        duplicate |= !seen.insert(index);
                        cmps.push(ScmpArgCompare::new(
                            index,
                            translate_op(a.op(), a.value_two()),
                            a.value(),
                        ));
                    }
                    if duplicate {
                        for c in &cmps {
                            ctx.add_rule_conditional(action, sc, std::slice::from_ref(c))?;
                        }
                    } else {
                        ctx.add_rule_conditional(action, sc, &cmps)?;
                    }
                }
                None => {
                    ctx.add_rule(action, sc)?;
                }
            }
        }
    }
    Ok((ctx, flags))
}

/// Compiles the section to its BPF program.
pub fn compile(s: &LinuxSeccomp) -> Result<Program, BpfError> {
    let (ctx, flags) = build_filter(s)?;
    let mut f = memfd()?;
    ctx.export_bpf(f.as_fd())?;
    f.rewind()?;
    let mut code = Vec::new();
    f.read_to_end(&mut code)?;
    if code.is_empty() || !code.len().is_multiple_of(8) || code.len() / 8 > u16::MAX as usize {
        return Err(BpfError::Malformed);
    }
    Ok(Program { code, flags })
}

fn memfd() -> std::io::Result<std::fs::File> {
    // SAFETY: memfd_create(2) with a NUL-terminated name; the result is a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this descriptor to us.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The cache file for a section: `<dir>/<sha256 of version, libseccomp version, JSON>.bpf`.
fn cache_path(dir: &Path, s: &LinuxSeccomp) -> Option<PathBuf> {
    let json = serde_json::to_vec(s).ok()?;
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(CACHE_VERSION);
    h.update([0]);
    h.update(lib.as_bytes());
    h.update([0]);
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(&json);
    Some(dir.join(format!("{}.bpf", hex::encode(h.finalize()))))
}

/// File layout: 4 bytes flags (LE), 32 bytes sha256 of the code, the code.
fn decode(data: &[u8]) -> Option<Program> {
    if data.len() < 36 + 8 || !(data.len() - 36).is_multiple_of(8) {
        return None;
    }
    let flags = u32::from_le_bytes(data[..4].try_into().ok()?);
    let (sum, code) = data[4..].split_at(32);
    (Sha256::digest(code).as_slice() == sum).then(|| Program {
        code: code.to_vec(),
        flags,
    })
}

fn encode(p: &Program) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + p.code.len());
    out.extend_from_slice(&p.flags.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&p.code));
    out.extend_from_slice(&p.code);
    out
}

/// The program for `s`, from the cache directory `dir` when an intact entry is there,
/// else compiled and stored (temp file + rename; a damaged entry fails its checksum and is
/// compiled again, so the cache never needs an fsync).
pub fn cached(dir: &Path, s: &LinuxSeccomp) -> Result<Program, BpfError> {
    let Some(path) = cache_path(dir, s) else {
        return compile(s);
    };
    if let Some(p) = std::fs::read(&path).ok().as_deref().and_then(decode) {
        return Ok(p);
    }
    let p = compile(s)?;
    let store = || -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&encode(&p))?;
        drop(f);
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    };
    if let Err(e) = store() {
        tracing::warn!(error = %e, "caching the seccomp program");
    }
    Ok(p)
}

/// Installs the program on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`), as
/// libseccomp's `seccomp_load` does. Needs CAP_SYS_ADMIN or no_new_privs.
pub fn load(p: &Program) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(p.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: p.code.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` sock_filter instructions (8 bytes each) that outlive
    // the call; the kernel copies them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1 as libc::c_ulong, // SECCOMP_SET_MODE_FILTER
            p.flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_section() -> LinuxSeccomp {
        let caps: Vec<String> = crate::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect();
        serde_json::from_value(crate::seccomp::default_profile(&caps)).unwrap()
    }

    #[test]
    fn cache_round_trip_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let s = default_section();
        assert!(precompilable(&s));
        let p = cached(d.path(), &s).unwrap();
        assert!(p.len() > 100 && p.flags == 0);
        let files: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().unwrap().path();
        assert_eq!(cached(d.path(), &s).unwrap(), p);
        // A damaged entry is recompiled, never trusted.
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        assert_eq!(cached(d.path(), &s).unwrap(), p);
        assert_eq!(decode(&std::fs::read(&path).unwrap()), Some(p.clone()));
        // A different section has a different entry.
        let mut other = s.clone();
        other.set_default_errno_ret(Some(38));
        let q = cached(d.path(), &other).unwrap();
        assert_ne!(q, p);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn notify_is_not_precompiled() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        assert!(!precompilable(&s));
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap();
        assert!(precompilable(&s));
        assert_eq!(compile(&s).unwrap().flags, FLAG_LOG);
    }

    /// Reads filter 0 of a ptrace-stopped tracee (PTRACE_SECCOMP_GET_FILTER).
    fn filter_of(pid: libc::pid_t) -> Vec<u8> {
        const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
        // SAFETY: with a null buffer the call returns the instruction count.
        let n = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        assert!(
            n > 0,
            "PTRACE_SECCOMP_GET_FILTER: {}",
            std::io::Error::last_os_error()
        );
        let mut buf = vec![0u8; n as usize * 8];
        // SAFETY: `buf` has room for the `n` instructions the kernel reported.
        let m = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                buf.as_mut_ptr() as *mut libc::c_void,
            )
        };
        assert_eq!(m, n);
        buf
    }

    /// Loads `section` in a forked child with `install`, stops it, and returns the program
    /// the kernel holds for it.
    fn kernel_program(install: impl FnOnce() -> bool) -> Vec<u8> {
        // SAFETY: the child only installs a filter, stops itself and exits.
        match unsafe { libc::fork() } {
            0 => {
                let ok = install();
                // SAFETY: plain syscalls in the child.
                unsafe {
                    libc::raise(libc::SIGSTOP);
                    libc::_exit(i32::from(!ok));
                }
            }
            pid => {
                assert!(pid > 0);
                let mut st = 0;
                // SAFETY: waiting for our own child to stop.
                assert_eq!(unsafe { libc::waitpid(pid, &mut st, libc::WUNTRACED) }, pid);
                assert!(libc::WIFSTOPPED(st), "child did not stop: {st:#x}");
                // SAFETY: attach to the stopped child (we are its parent and root).
                let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
                assert_eq!(r, 0, "PTRACE_SEIZE: {}", std::io::Error::last_os_error());
                // SAFETY: interrupt so that the tracee is in a ptrace-stop.
                unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) };
                // SAFETY: wait for the ptrace-stop.
                unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
                let prog = filter_of(pid);
                // SAFETY: end the child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut st, libc::__WALL);
                }
                prog
            }
        }
    }

    #[test]
    fn same_program_as_libcontainer_loads() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (PTRACE_SECCOMP_GET_FILTER)");
            return;
        }
        for s in [
            default_section(),
            serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["mkdir", "nosuchcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"},
                              {"index": 0, "value": 9, "op": "SCMP_CMP_NE"}]},
                    {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
                ]
            }))
            .unwrap(),
        ] {
            let ours = compile(&s).unwrap();
            let theirs = kernel_program(|| libcontainer::seccomp::initialize_seccomp(&s).is_ok());
            assert_eq!(ours.code, theirs);
            let loaded = kernel_program(|| load(&ours).is_ok());
            assert_eq!(loaded, theirs);
        }
    }
}
