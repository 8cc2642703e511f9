//! berth-init: the `--init` process, mounted at /sbin/docker-init (see `src/lib.rs`).
//!
//! `docker-init -- CMD ARGS...` runs CMD as its only child in a process group of its own
//! (made the terminal's foreground group when stdin is a TTY), then loops: every signal it
//! receives is forwarded to the child, every exited process re-parented to it is reaped, and
//! when the child exits it exits with the child's code (128 + N when killed by signal N).
//! Built statically with std only (no crates), so it declares the few libc calls it needs.
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{exit, Command, ExitStatus};

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

/// glibc's `siginfo_t` (128 bytes; only its size matters here).
#[repr(C)]
struct SigInfo([i32; 32]);

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigemptyset(set: *mut SigSet) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigtimedwait(set: *const SigSet, info: *mut SigInfo, timeout: *const Timespec) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn tcsetpgrp(fd: i32, pgrp: i32) -> i32;
    fn getpid() -> i32;
}

const SIG_SETMASK: i32 = 2;
const SIGCHLD: i32 = 17;
const WNOHANG: i32 = 1;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;

fn full_set() -> SigSet {
    let mut s = SigSet([0; 16]);
    // SAFETY: `s` is a valid, writable sigset_t-sized buffer.
    unsafe { sigfillset(&mut s) };
    s
}

fn set_mask(s: &SigSet) {
    // SAFETY: `s` points to an initialised sigset_t; the old mask is not requested.
    unsafe { sigprocmask(SIG_SETMASK, s, std::ptr::null_mut()) };
}

/// The shell's convention for a child's status: its code, or 128 + the signal.
fn exit_code(st: i32) -> i32 {
    let st = ExitStatus::from_raw(st);
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    }
}

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("docker-init (berth-init): usage: docker-init -- COMMAND [ARGS...]");
        exit(1);
    }
    // Every signal stays pending until the loop below collects it with sigtimedwait.
    let all = full_set();
    set_mask(&all);

    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]).process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigprocmask, getpid, tcsetpgrp).
    unsafe {
        cmd.pre_exec(|| {
            // std has reset the mask; keep SIGTTOU blocked while taking the terminal.
            let all = full_set();
            set_mask(&all);
            tcsetpgrp(0, getpid());
            let mut none = SigSet([0; 16]);
            sigemptyset(&mut none);
            set_mask(&none);
            Ok(())
        })
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "[FATAL docker-init] exec {} failed: {e}",
                args[0].to_string_lossy()
            );
            exit(match e.raw_os_error() {
                Some(ENOENT) => 127,
                Some(EACCES) => 126,
                _ => 1,
            });
        }
    };
    let main_pid = child.id() as i32;
    let mut main_code: Option<i32> = None;
    loop {
        let mut info = SigInfo([0; 32]);
        let timeout = Timespec { sec: 1, nsec: 0 };
        // SAFETY: all pointers are to live, correctly sized values.
        let sig = unsafe { sigtimedwait(&all, &mut info, &timeout) };
        if sig > 0 && sig != SIGCHLD {
            // SAFETY: plain kill(2); a child that already exited makes it fail harmlessly.
            unsafe { kill(main_pid, sig) };
        }
        loop {
            let mut st = 0;
            // SAFETY: waitpid writes the status into `st`.
            let pid = unsafe { waitpid(-1, &mut st, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == main_pid {
                main_code = Some(exit_code(st));
            }
        }
        if let Some(code) = main_code {
            exit(code);
        }
    }
}
