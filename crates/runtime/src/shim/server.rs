//! The shim's state and its single-threaded `poll(2)` event loop: SIGCHLD (self-pipe) and
//! reaping, control connections, stdio pumping into the json-file log and attached streams,
//! and the end of the container (exit.json, waiters, libcontainer delete).
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use super::conn::{Pending, Progress, Stream, Target};
use super::executor::ShimExecutor;
use super::log::JsonLog;
use super::stdio::{ProcIo, Stdio};
use super::{
    create_error, error_chain, now, pipe, report, set_nonblocking, write_atomic, ShimError,
};
use crate::protocol::{ExitStatus, Response, ShimConfig};

/// Output still arriving this long after init exited is abandoned (a leaked descriptor).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// After the exit is recorded, attached clients get this long to take their last bytes.
const LINGER: Duration = Duration::from_secs(1);
/// Memory is trimmed after this long without events (see `memory::shrink`).
const TRIM_IDLE: Duration = Duration::from_millis(300);
/// A connection must send its request line within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

static SIGCHLD_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the wake-up byte.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
}

extern "C" fn on_ignored(_: libc::c_int) {}

/// SIGCHLD wakes the loop through a self-pipe. SIGTERM/SIGINT/SIGHUP (berthd's process
/// group, a terminal) and SIGPIPE get a no-op handler rather than SIG_IGN, which the
/// container processes would inherit across exec.
fn install_signals() -> std::io::Result<OwnedFd> {
    let (r, w) = pipe()?;
    set_nonblocking(r.as_raw_fd());
    set_nonblocking(w.as_raw_fd());
    // The write end lives as long as the process: the handler uses it.
    SIGCHLD_FD.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::Relaxed);
    // SAFETY: installs plain C handlers that only call async-signal-safe functions; the
    // sigaction structs are fully initialised (zeroed, then the fields we use).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = on_ignored as *const () as usize;
        ign.sa_flags = libc::SA_RESTART;
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            libc::sigaction(s, &ign, std::ptr::null_mut());
        }
    }
    Ok(r)
}

/// An exec process started on this shim.
pub struct ExecEntry {
    pub pid: i32,
    pub io: ProcIo,
    pub exit: Option<ExitStatus>,
}

pub struct Shim {
    pub cfg: ShimConfig,
    pub bundle: PathBuf,
    pub container: Container,
    pub init_pid: i32,
    /// argv[0] of init (for error messages).
    pub init_argv0: String,
    /// The `process` section of the spec libcontainer runs: the template of exec processes.
    pub init_process: serde_json::Value,
    /// The executor of init, also given to exec processes.
    pub executor: ShimExecutor,
    cgroup_path: String,
    pub init_exit: Option<ExitStatus>,
    exited_at: Option<Instant>,
    pub io: ProcIo,
    log: Option<JsonLog>,
    listener: Option<UnixListener>,
    pending: Vec<Pending>,
    pub streams: Vec<Stream>,
    pub waiters: Vec<UnixStream>,
    pub execs: HashMap<String, ExecEntry>,
    pub exec_seq: u32,
    sigchld: OwnedFd,
    /// Set once the exit is recorded and the container deleted; the loop only lingers.
    finished_at: Option<Instant>,
    /// A request ran code the idle loop does not need: trim memory once idle.
    trim: bool,
}

/// Exit code as a shell reports it: the code, or 128 + signal.
fn exit_code(raw: i32) -> i32 {
    if libc::WIFEXITED(raw) {
        libc::WEXITSTATUS(raw)
    } else if libc::WIFSIGNALED(raw) {
        128 + libc::WTERMSIG(raw)
    } else {
        255
    }
}

/// The shim's life after the fork: create the container, report, serve until it is gone.
pub fn run(bundle: PathBuf, cfg: ShimConfig, ready: OwnedFd) {
    match setup(bundle, cfg) {
        Ok(mut shim) => {
            report(ready, serde_json::json!({ "pid": shim.init_pid }));
            // Trimmed once idle: not while the container is being started.
            shim.trim = true;
            shim.serve();
        }
        Err(e) => report(ready, serde_json::json!({ "error": error_chain(&e) })),
    }
}

fn setup(bundle: PathBuf, cfg: ShimConfig) -> Result<Shim, ShimError> {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let sigchld = install_signals().map_err(|e| ShimError::Setup {
        what: "installing signal handlers",
        source: e,
    })?;
    let config = bundle.join("config.json");
    let spec_raw = std::fs::read(&config).map_err(|e| ShimError::Read {
        path: config.clone(),
        source: e,
    })?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&spec_raw).map_err(|e| ShimError::Parse {
            path: config.clone(),
            source: e,
        })?;
    let (lc_bundle, executor) = libcontainer_bundle(&bundle, &cfg, &mut spec)?;
    let init_argv0 = spec["process"]["args"][0].as_str().unwrap_or("").to_owned();
    let cgroup_path = spec["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let log = match &cfg.log_path {
        Some(p) => Some(
            JsonLog::open(p.clone(), cfg.log_max_size, cfg.log_max_file).map_err(|e| {
                ShimError::Read {
                    path: p.clone(),
                    source: e,
                }
            })?,
        ),
        None => None,
    };
    let stdio =
        Stdio::new(&bundle, "console", cfg.tty, cfg.open_stdin).map_err(|e| ShimError::Setup {
            what: "creating stdio",
            source: e,
        })?;
    std::fs::create_dir_all(&cfg.runtime_root).map_err(|e| ShimError::Setup {
        what: "creating the runtime root",
        source: e,
    })?;
    let mut stdio = stdio;
    let b = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_root_path(cfg.runtime_root.clone())
        .map_err(|e| ShimError::Create(create_error(&error_chain(&e), &init_argv0)))?;
    let built = stdio
        .wire(b, executor.clone())
        .as_init(&lc_bundle)
        .with_systemd(false)
        .with_detach(true)
        .build();
    let mut container = match built {
        Ok(c) => c,
        Err(e) => {
            stdio.discard();
            cleanup_failed_create(&cfg);
            return Err(ShimError::Create(create_error(
                &error_chain(&e),
                &init_argv0,
            )));
        }
    };
    let init_pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    let fail = |container: &mut Container, e: ShimError| {
        let _ = container.delete(true);
        e
    };
    let io = match stdio.finish(cfg.console_size) {
        Ok(io) => io,
        Err(e) => {
            return Err(fail(
                &mut container,
                ShimError::Setup {
                    what: "receiving the console",
                    source: e,
                },
            ))
        }
    };
    let sock_path = bundle.join("shim.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = match UnixListener::bind(&sock_path) {
        Ok(l) => l,
        Err(e) => {
            return Err(fail(
                &mut container,
                ShimError::Setup {
                    what: "listening on shim.sock",
                    source: e,
                },
            ))
        }
    };
    set_nonblocking(listener.as_raw_fd());
    if let Err(e) = write_atomic(
        &bundle.join("shim.pid"),
        std::process::id().to_string().as_bytes(),
    ) {
        return Err(fail(
            &mut container,
            ShimError::Setup {
                what: "writing shim.pid",
                source: e,
            },
        ));
    }
    Ok(Shim {
        cfg,
        bundle,
        container,
        init_pid,
        init_argv0,
        init_process: spec["process"].clone(),
        executor,
        cgroup_path,
        init_exit: None,
        exited_at: None,
        io,
        log,
        listener: Some(listener),
        pending: Vec::new(),
        streams: Vec::new(),
        waiters: Vec::new(),
        execs: HashMap::new(),
        exec_seq: 0,
        sigchld,
        finished_at: None,
        trim: false,
    })
}

/// The bundle libcontainer is given. With a precompiled seccomp program (see
/// `super::security`) that is `<bundle>/libcontainer/` holding the rewritten spec (rootfs
/// path made absolute); otherwise the bundle itself.
fn libcontainer_bundle(
    bundle: &Path,
    cfg: &ShimConfig,
    spec: &mut serde_json::Value,
) -> Result<(PathBuf, ShimExecutor), ShimError> {
    let Some(deferred) = super::security::prepare(spec, &cfg.runtime_root.join("seccomp")) else {
        return Ok((bundle.to_path_buf(), ShimExecutor::default()));
    };
    let dir = bundle.join("libcontainer");
    if let Some(root) = spec["root"]["path"].as_str() {
        let abs = bundle.join(root);
        spec["root"]["path"] = serde_json::Value::from(abs.to_string_lossy().into_owned());
    }
    let setup = |source| ShimError::Setup {
        what: "writing the libcontainer bundle",
        source,
    };
    std::fs::create_dir_all(&dir).map_err(setup)?;
    // Rewritten on every create and read only by libcontainer: no fsync needed.
    std::fs::write(dir.join("config.json"), spec.to_string()).map_err(setup)?;
    Ok((
        dir,
        ShimExecutor {
            security: Some(std::sync::Arc::new(deferred)),
        },
    ))
}

/// Removes whatever a failed create left: the init (if libcontainer got that far), its
/// cgroups and the state directory.
fn cleanup_failed_create(cfg: &ShimConfig) {
    let dir = cfg.runtime_root.join(&cfg.id);
    if let Ok(mut c) = Container::load(dir.clone()) {
        let _ = c.delete(true);
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Children that libcontainer did not wait for (none expected) must not linger as zombies.
    // SAFETY: non-blocking waitpid on any child; nothing else of ours runs concurrently.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// What a ready descriptor belongs to.
#[derive(Clone)]
enum Token {
    Sig,
    Listener,
    Pending(usize),
    Out(Target, u8),
    Stdin(Target),
    Stream(usize),
}

impl Shim {
    /// The exit is recorded (exit.json written, waiters answered).
    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
    }

    pub fn proc_io(&mut self, target: &Target) -> Option<&mut ProcIo> {
        match target {
            Target::Init => Some(&mut self.io),
            Target::Exec(id) => self.execs.get_mut(id).map(|e| &mut e.io),
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Token>) {
        let mut fds = Vec::with_capacity(8 + self.streams.len());
        let mut toks = Vec::with_capacity(8 + self.streams.len());
        let mut add = |fd: RawFd, events: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            toks.push(t);
        };
        add(self.sigchld.as_raw_fd(), libc::POLLIN, Token::Sig);
        if let Some(l) = &self.listener {
            add(l.as_raw_fd(), libc::POLLIN, Token::Listener);
        }
        for (i, p) in self.pending.iter().enumerate() {
            add(p.sock.as_raw_fd(), libc::POLLIN, Token::Pending(i));
        }
        let procs = std::iter::once((Target::Init, &self.io)).chain(
            self.execs
                .iter()
                .map(|(id, e)| (Target::Exec(id.clone()), &e.io)),
        );
        for (t, io) in procs {
            if let Some(f) = &io.pty {
                add(f.as_raw_fd(), libc::POLLIN, Token::Out(t.clone(), 1));
            }
            if let Some(f) = &io.stdout {
                add(f.as_raw_fd(), libc::POLLIN, Token::Out(t.clone(), 1));
            }
            if let Some(f) = &io.stderr {
                add(f.as_raw_fd(), libc::POLLIN, Token::Out(t.clone(), 2));
            }
            if !io.stdin_buf.is_empty() {
                if let Some(fd) = io.input_fd() {
                    add(fd, libc::POLLOUT, Token::Stdin(t.clone()));
                }
            }
        }
        for (i, s) in self.streams.iter().enumerate() {
            let mut ev: i16 = 0;
            if !s.read_closed {
                ev |= libc::POLLIN;
            }
            if s.has_output() {
                ev |= libc::POLLOUT;
            }
            add(s.sock.as_raw_fd(), ev, Token::Stream(i));
        }
        (fds, toks)
    }

    /// Milliseconds until the next deadline, or -1.
    fn timeout(&self) -> i32 {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(f) = self.finished_at {
            at(f + LINGER);
        } else if let Some(e) = self.exited_at {
            at(e + DRAIN_GRACE);
        }
        if let Some(p) = self.pending.iter().map(|p| p.since).min() {
            at(p + REQUEST_TIMEOUT);
        }
        match next {
            None => -1,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis();
                i32::try_from(ms).unwrap_or(i32::MAX).saturating_add(1)
            }
        }
    }

    fn serve(&mut self) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            self.streams.retain(|s| !s.finished());
            if let Some(f) = self.finished_at {
                if (self.streams.is_empty() && self.pending.is_empty()) || f.elapsed() >= LINGER {
                    return;
                }
            }
            let (mut fds, toks) = self.poll_set();
            let mut timeout = self.timeout();
            // Nothing scheduled after a request ran: give memory back once the shim has
            // been idle for TRIM_IDLE (a short-lived container never pays for it).
            let trim_when_idle = timeout < 0 && self.trim;
            if trim_when_idle {
                timeout = TRIM_IDLE.as_millis() as i32;
            }
            // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd entries.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if n == 0 && trim_when_idle {
                self.trim = false;
                super::memory::shrink();
            }
            // Indices in tokens refer to the vectors as they were when polled: handle
            // removals only in `housekeeping`, after the whole batch.
            let mut new_lines = Vec::new();
            for (pfd, tok) in fds.iter().zip(toks) {
                if pfd.revents == 0 {
                    continue;
                }
                match tok {
                    Token::Sig => {
                        while nix::unistd::read(pfd.fd, &mut buf[..64]).is_ok_and(|n| n > 0) {}
                        self.reap();
                        self.trim = true;
                    }
                    Token::Listener => self.accept(),
                    Token::Pending(i) => match self.pending[i].read(&mut buf) {
                        Progress::More => {}
                        Progress::Line(line, extra) => new_lines.push((i, line, extra)),
                        Progress::Drop => self.pending[i].dead = true,
                    },
                    Token::Out(t, stream) => self.read_output(&t, stream, pfd.fd, &mut buf),
                    Token::Stdin(t) => {
                        if let Some(io) = self.proc_io(&t) {
                            io.flush_stdin();
                        }
                    }
                    Token::Stream(i) => self.stream_event(i, pfd.revents, &mut buf),
                }
            }
            // Requests are handled after the batch: they may add streams and execs.
            let mut taken: Vec<(UnixStream, String, Vec<u8>)> = Vec::new();
            for (i, line, extra) in new_lines.into_iter().rev() {
                let p = self.pending.swap_remove(i);
                taken.push((p.sock, line, extra));
            }
            for (sock, line, extra) in taken.into_iter().rev() {
                self.handle(sock, &line, extra);
                self.trim = true;
            }
            self.housekeeping();
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((sock, _)) = l.accept() {
            if sock.set_nonblocking(true).is_ok() {
                self.pending.push(Pending::new(sock));
            }
        }
    }

    /// Reaps every exited child: init, execs, and orphans re-parented to us (subreaper).
    pub fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: non-blocking waitpid on any child. Only called from the loop, never
            // while libcontainer waits for its own helper processes.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == self.init_pid && self.init_exit.is_none() {
                self.exited_at = Some(Instant::now());
                self.init_exit = Some(ExitStatus {
                    code: exit_code(status),
                    exited_at: now(),
                    oom_killed: self.oom_killed(),
                });
                continue;
            }
            if let Some(e) = self
                .execs
                .values_mut()
                .find(|e| e.pid == pid && e.exit.is_none())
            {
                e.exit = Some(ExitStatus {
                    code: exit_code(status),
                    exited_at: now(),
                    oom_killed: false,
                });
            }
        }
    }

    /// Whether the kernel OOM killer fired in the container's memory cgroup.
    fn oom_killed(&self) -> bool {
        let p = self.cgroup_path.trim_start_matches('/');
        let candidates = [
            (
                format!("/sys/fs/cgroup/memory/{p}/memory.oom_control"),
                "oom_kill ",
            ),
            (format!("/sys/fs/cgroup/{p}/memory.events"), "oom_kill "),
            (
                format!("/sys/fs/cgroup/unified/{p}/memory.events"),
                "oom_kill ",
            ),
        ];
        for (file, key) in candidates {
            if let Ok(s) = std::fs::read_to_string(file) {
                if let Some(v) = s.lines().find_map(|l| l.strip_prefix(key)) {
                    return v.trim().parse::<u64>().unwrap_or(0) > 0;
                }
            }
        }
        false
    }

    fn read_output(&mut self, target: &Target, stream: u8, fd: RawFd, buf: &mut [u8]) {
        // A bounded amount per wake-up so one chatty process cannot starve the rest.
        for _ in 0..8 {
            // SAFETY: `fd` belongs to a ProcIo of ours and stays open during this call.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            match nix::unistd::read(borrowed.as_raw_fd(), buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    // EOF; EIO is what a pty master reads once the last slave closed.
                    if let Some(io) = self.proc_io(target) {
                        io.close_output(fd);
                    }
                    return;
                }
                Ok(n) => {
                    let data = &buf[..n];
                    if *target == Target::Init {
                        if let Some(l) = self.log.as_mut() {
                            l.write(stream, data);
                        }
                    }
                    for s in self.streams.iter_mut().filter(|s| s.target == *target) {
                        s.push(stream, data);
                    }
                    if n < buf.len() {
                        return;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
                Err(_) => {
                    if let Some(io) = self.proc_io(target) {
                        io.close_output(fd);
                    }
                    return;
                }
            }
        }
    }

    fn stream_event(&mut self, i: usize, revents: i16, buf: &mut [u8]) {
        use std::io::Read;
        let mut input: Option<usize> = None;
        let mut eof = false;
        {
            let s = &mut self.streams[i];
            if revents & libc::POLLOUT != 0 {
                s.flush();
            }
            if revents & (libc::POLLIN | libc::POLLHUP) != 0 && !s.read_closed {
                match s.sock.read(buf) {
                    Ok(0) => {
                        s.read_closed = true;
                        eof = true;
                    }
                    Ok(n) => input = Some(n),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => {
                        s.read_closed = true;
                        s.dead = true;
                        eof = true;
                    }
                }
            }
            if revents & libc::POLLERR != 0 {
                s.dead = true;
            }
        }
        let (target, wants_stdin) = (self.streams[i].target.clone(), self.streams[i].stdin);
        if !wants_stdin {
            return;
        }
        let stdin_once = self.cfg.stdin_once;
        let Some(io) = self.proc_io(&target) else {
            return;
        };
        if let Some(n) = input {
            io.feed(&buf[..n]);
        }
        // An exec's stdin belongs to its one stream; init's closes only with stdin_once.
        if eof && (target != Target::Init || stdin_once) {
            io.close_stdin();
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.pending
            .retain(|p| !p.dead && now.duration_since(p.since) < REQUEST_TIMEOUT);
        // Execs whose process exited and whose output is drained: end their streams.
        let done: Vec<String> = self
            .execs
            .iter()
            .filter(|(_, e)| e.exit.is_some() && !e.io.output_open())
            .map(|(k, _)| k.clone())
            .collect();
        for id in done {
            for s in self
                .streams
                .iter_mut()
                .filter(|s| s.target == Target::Exec(id.clone()))
            {
                s.closing = true;
            }
            if let Some(e) = self.execs.get_mut(&id) {
                e.io.stdin = None;
                e.io.stdin_buf = Vec::new();
            }
        }
        for s in self.streams.iter_mut().filter(|s| s.closing) {
            s.flush();
        }
        self.streams.retain(|s| !s.finished());
        if self.finished_at.is_none() {
            if let Some(at) = self.exited_at {
                if !self.io.output_open() || at.elapsed() >= DRAIN_GRACE {
                    self.finish();
                }
            }
        }
    }

    /// Init has exited and its output is drained (or the grace period passed): persist the
    /// status, answer waiters, end the attach streams, delete the container.
    pub fn finish(&mut self) {
        if self.finished_at.is_some() {
            return;
        }
        if let Some(l) = self.log.as_mut() {
            l.flush_partial();
        }
        self.io = ProcIo::default();
        let status = self.init_exit.clone().unwrap_or_else(|| ExitStatus {
            code: 255,
            exited_at: now(),
            oom_killed: false,
        });
        if let Ok(data) = serde_json::to_vec(&status) {
            let _ = write_atomic(&self.bundle.join("exit.json"), &data);
        }
        // Waiters and attach streams hear of the exit first; the libcontainer state and
        // cgroups go next, and only then do the waiters' connections close: berthd waits
        // for that before it creates the container again under the same ID or removes it
        // (`client::Cleanup`).
        let line = format!(
            "{}\n",
            serde_json::to_string(&Response::Exited(status)).unwrap_or_default()
        );
        let mut waiters = std::mem::take(&mut self.waiters);
        for w in &mut waiters {
            let _ = std::io::Write::write_all(w, line.as_bytes());
        }
        for s in self.streams.iter_mut().filter(|s| s.target == Target::Init) {
            s.closing = true;
            s.flush();
        }
        self.streams.retain(|s| !s.finished());
        let _ = self.container.delete(true);
        drop(waiters);
        // Connections queued on the socket are served from `pending` while lingering.
        self.accept();
        self.listener = None;
        let _ = std::fs::remove_file(self.bundle.join("shim.sock"));
        let _ = std::fs::remove_file(self.bundle.join("shim.pid"));
        self.finished_at = Some(Instant::now());
    }
}
