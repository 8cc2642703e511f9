//! End-to-end test harness: starts a real `berthd` (or, with `BERTH_E2E_REFERENCE=dockerd`,
//! Debian's `dockerd`) on its own socket, data-root and exec-root under /tmp, and drives it
//! with the real docker CLI (`/usr/local/bin/docker`), the `berth` CLI, raw HTTP on the
//! socket, or bollard.
//!
//! Glossary:
//! - *daemon*: one `Daemon` value, one daemon process with private roots `/tmp/beXXXXXX/{d,x}`
//!   and socket `/tmp/beXXXXXX/s` (short: unix socket paths are limited to 108 bytes).
//! - *reference mode*: the same tests against dockerd, to check that the expectations are
//!   Docker's real behaviour.
//!
//! ```no_run
//! let d = berth_e2e::Daemon::start();
//! d.busybox_image();
//! let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
//! assert_eq!(out.code, 0);
//! assert_eq!(out.stdout, "hi\n");
//! ```
//!
//! `Drop` stops the daemon (SIGTERM, then SIGKILL) and force-cleans everything it started:
//! processes in its containers' cgroups or mentioning its roots, mounts under its roots,
//! the roots themselves and its containers' cgroup directories.
pub mod net;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The real docker CLI.
pub const DOCKER: &str = "/usr/local/bin/docker";
/// Debian's dockerd, used in reference mode.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Which daemon the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Berthd,
    Dockerd,
}

impl Kind {
    /// `BERTH_E2E_REFERENCE=dockerd` selects dockerd, anything else berthd.
    pub fn from_env() -> Kind {
        match std::env::var("BERTH_E2E_REFERENCE").as_deref() {
            Ok("dockerd") => Kind::Dockerd,
            _ => Kind::Berthd,
        }
    }
}

/// True when the tests run against the reference dockerd.
pub fn is_reference() -> bool {
    Kind::from_env() == Kind::Dockerd
}

/// The workspace root (two levels above this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace dir")
}

/// Where `berthd`, `berth` and `berth-shim` are: `$BERTH_BIN_DIR` or `<workspace>/target/debug`.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("BERTH_BIN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace_dir().join("target/debug"),
    }
}

/// The result of one CLI invocation.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from_output(o: std::process::Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns stdout with surrounding whitespace trimmed.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.stdout.trim().to_owned()
    }

    /// Asserts a non-zero exit code and returns stderr.
    #[track_caller]
    pub fn err(&self) -> String {
        assert_ne!(self.code, 0, "command unexpectedly succeeded: {self:?}");
        self.stderr.clone()
    }
}

/// Options for [`Daemon::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// dockerd only: pass `--live-restore` (berthd always keeps containers across restarts).
    pub live_restore: bool,
}

/// One running daemon with private roots; stopped and cleaned on drop.
pub struct Daemon {
    pub kind: Kind,
    opts: Options,
    /// `/tmp/beXXXXXX`: holds everything below.
    pub root: PathBuf,
    pub sock: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    /// DOCKER_CONFIG for the CLIs (empty dir: no user config interferes).
    pub docker_config: PathBuf,
    /// The daemon's stderr.
    pub log_file: PathBuf,
    child: Option<Child>,
    /// berthd only: its bridge name and address pool.
    pub net: Option<net::NetIdentity>,
    /// Extra daemon flags ([`Daemon::start_with_args`]).
    extra_args: Vec<String>,
}

impl Daemon {
    /// Starts the daemon selected by `BERTH_E2E_REFERENCE` and waits for `/_ping`.
    pub fn start() -> Daemon {
        Daemon::start_with(Options::default())
    }

    /// Starts the daemon with extra flags (berthd-only flags when `kind` is berthd).
    pub fn start_with_args(args: &[&str]) -> Daemon {
        Daemon::start_inner(Kind::from_env(), Options::default(), args)
    }

    pub fn start_with(opts: Options) -> Daemon {
        Daemon::start_kind(Kind::from_env(), opts)
    }

    /// Starts a daemon of the given kind whatever `BERTH_E2E_REFERENCE` says, for tests
    /// that drive berthd and dockerd side by side (interop). Each has its own roots.
    pub fn start_kind(kind: Kind, opts: Options) -> Daemon {
        Daemon::start_inner(kind, opts, &[])
    }

    fn start_inner(kind: Kind, opts: Options, extra: &[&str]) -> Daemon {
        let root = tempfile::Builder::new()
            .prefix("be")
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        let d = Daemon {
            kind,
            opts,
            sock: root.join("s"),
            data_root: root.join("d"),
            exec_root: root.join("x"),
            pidfile: root.join("pid"),
            docker_config: root.join("cfg"),
            log_file: root.join("daemon.log"),
            net: (kind == Kind::Berthd).then(|| net::identity_for(&root)),
            extra_args: Vec::new(),
            root,
            child: None,
        };
        std::fs::create_dir_all(&d.docker_config).expect("docker config dir");
        let mut d = d;
        d.extra_args = extra.iter().map(|s| s.to_string()).collect();
        d.spawn();
        d
    }

    /// The `-H` value for clients.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The daemon process ID (None once it was killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("daemon log");
        let mut cmd = match self.kind {
            Kind::Berthd => {
                let bin = bin_dir().join("berthd");
                assert!(bin.exists(), "{} not found: build with `cargo build --workspace --bins` or set BERTH_BIN_DIR", bin.display());
                let mut c = Command::new(bin);
                c.arg("--log-level").arg("debug");
                if let Some(n) = &self.net {
                    c.args(n.args());
                    // Containers' DNS traffic must stay on this machine: the host's
                    // resolver is replaced by a loopback address nothing answers on
                    // (suites that test forwarding pass their own).
                    if !self.extra_args.iter().any(|a| a == "--resolv-conf") {
                        let rc = self.root.join("resolv.conf");
                        std::fs::write(&rc, "nameserver 127.0.0.1\n").expect("resolv.conf");
                        c.arg("--resolv-conf").arg(rc);
                    }
                }
                c.args(&self.extra_args);
                c
            }
            Kind::Dockerd => {
                let mut c = Command::new(DOCKERD);
                c.args([
                    "--bridge",
                    "none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-masq=false",
                    "--ip-forward=false",
                ]);
                c.args(["--storage-driver", "overlay2", "--log-level", "debug"]);
                if self.opts.live_restore {
                    c.arg("--live-restore");
                }
                c
            }
        };
        cmd.arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        let child = cmd.spawn().expect("spawning the daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "daemon exited during start-up ({st}); log:\n{}",
                        self.log_tail()
                    );
                }
            }
            if self.sock.exists() {
                if let Ok(r) = self.http("GET", "/_ping", &[], None) {
                    if r.status == 200 {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("daemon not ready after 60s; log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last 60 lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// SIGKILLs the daemon (containers and shims stay) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same socket and roots (after [`Daemon::kill9`] or
    /// [`Daemon::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "daemon still running");
        self.spawn();
    }

    /// Stops the daemon with SIGTERM (SIGKILL after 30s) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) on a child we spawned and have not reaped yet.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }

    fn cli(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.arg("-H").arg(self.host()).args(args);
        c.env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env("DOCKER_CLI_HINTS", "false");
        c
    }

    /// A `docker -H unix://<sock> ARGS` command, for spawning (e.g. `logs -f`).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        self.cli(Path::new(DOCKER), args)
    }

    /// A `berth -H unix://<sock> ARGS` command.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        self.cli(&bin_dir().join("berth"), args)
    }

    /// Runs the real docker CLI with stdin from /dev/null.
    pub fn docker(&self, args: &[&str]) -> Out {
        run(self.docker_cmd(args), None)
    }

    /// Runs the real docker CLI with `stdin` piped in (then closed).
    pub fn docker_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        run(self.docker_cmd(args), Some(stdin))
    }

    /// Runs the berth CLI with stdin from /dev/null.
    pub fn berth(&self, args: &[&str]) -> Out {
        run(self.berth_cmd(args), None)
    }

    /// Imports the busybox rootfs (built once per test process) as `busybox:latest`.
    pub fn busybox_image(&self) {
        self.import_busybox("busybox:latest");
    }

    /// Imports the busybox rootfs under another reference.
    pub fn import_busybox(&self, reference: &str) -> String {
        let tar = busybox_tar();
        let out = self.docker(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            reference,
        ]);
        out.ok()
    }

    /// `docker inspect -f FORMAT OBJ`, trimmed (panics if inspect fails).
    #[track_caller]
    pub fn inspect(&self, obj: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, obj]).ok()
    }

    /// `.State.Status` of a container.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.inspect(id, "{{.State.Status}}")
    }

    /// `.State.Pid` of a container.
    #[track_caller]
    pub fn container_pid(&self, id: &str) -> i32 {
        self.inspect(id, "{{.State.Pid}}").parse().expect("pid")
    }

    /// `.State.ExitCode` of a container.
    #[track_caller]
    pub fn exit_code(&self, id: &str) -> i32 {
        self.inspect(id, "{{.State.ExitCode}}")
            .parse()
            .expect("exit code")
    }

    /// Full ID of a container.
    #[track_caller]
    pub fn container_id(&self, name: &str) -> String {
        self.inspect(name, "{{.Id}}")
    }

    /// Polls `.State.Status` until it equals `want` (panics after `timeout`).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.docker(&["inspect", "-f", "{{.State.Status}}", id]);
            if s.code == 0 && s.stdout.trim() == want {
                return;
            }
            if Instant::now() > deadline {
                panic!("container {id} not {want} after {timeout:?}: {s:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// All container IDs (`ps -a -q --no-trunc`), sorted.
    pub fn all_container_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .docker(&["ps", "-a", "-q", "--no-trunc"])
            .ok()
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// All image IDs (`images -a -q --no-trunc`), sorted and deduplicated.
    pub fn all_image_ids(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .docker(&["images", "-a", "-q", "--no-trunc"])
            .ok()
            .lines()
            .map(str::to_owned)
            .collect();
        set.into_iter().collect()
    }

    /// The cgroup v1 directory of a container for one controller
    /// (`/sys/fs/cgroup/<controller>/{berth,docker}/<id>`), or the v2 directory.
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        let parent = match self.kind {
            Kind::Berthd => "berth",
            Kind::Dockerd => "docker",
        };
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from(format!("/sys/fs/cgroup/{parent}/{id}"))
        } else {
            PathBuf::from(format!("/sys/fs/cgroup/{controller}/{parent}/{id}"))
        }
    }

    /// Mount points (from /proc/self/mountinfo) under this daemon's roots.
    pub fn mounts_under_roots(&self) -> Vec<PathBuf> {
        mounts_under(&self.root)
    }

    /// One HTTP/1.1 request on the daemon socket (`Connection: close`).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<HttpResponse> {
        http_request(&self.sock, method, path, headers, body)
    }

    /// A bollard client on this daemon's socket.
    pub fn bollard(&self) -> bollard::Docker {
        bollard::Docker::connect_with_unix(&self.host(), 120, bollard::API_DEFAULT_VERSION)
            .expect("bollard client")
    }

    fn cleanup(&mut self) {
        // Container IDs this daemon knew about.
        let mut ids = BTreeSet::new();
        for dir in [self.data_root.join("containers"), self.exec_root.join("c")] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    ids.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        // Shims first (berth-shim pid files), then everything in the containers' cgroups
        // and every process whose command line mentions our roots (dockerd's containerd
        // and containerd-shims).
        for id in &ids {
            if let Ok(s) =
                std::fs::read_to_string(self.exec_root.join("c").join(id).join("shim.pid"))
            {
                if let Ok(pid) = s.trim().parse::<i32>() {
                    kill9(pid);
                }
            }
        }
        let root = self.root.to_string_lossy().into_owned();
        for _ in 0..3 {
            for id in &ids {
                for dir in self.all_cgroup_dirs(id) {
                    for pid in cgroup_procs(&dir) {
                        kill9(pid);
                    }
                }
            }
            for pid in pids_mentioning(&format!("{root}/")) {
                kill9(pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Mounts under the roots, deepest first (lazily: a dying process may hold one).
        for _ in 0..3 {
            let mounts = mounts_under(&self.root);
            if mounts.is_empty() {
                break;
            }
            for m in mounts {
                if let Ok(c) = std::ffi::CString::new(m.to_string_lossy().as_bytes()) {
                    // SAFETY: umount2 with a valid NUL-terminated path.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
        // Cgroup directories (leaves first); they can be removed once empty.
        let deadline = Instant::now() + Duration::from_secs(5);
        for id in &ids {
            for dir in self.all_cgroup_dirs(id) {
                while dir.exists()
                    && std::fs::remove_dir(&dir).is_err()
                    && Instant::now() < deadline
                {
                    for pid in cgroup_procs(&dir) {
                        kill9(pid);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if mounts_under(&self.root).is_empty() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn all_cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        let parent = match self.kind {
            Kind::Berthd => "berth",
            Kind::Dockerd => "docker",
        };
        let mut v = Vec::new();
        let v2 = PathBuf::from(format!("/sys/fs/cgroup/{parent}/{id}"));
        if v2.exists() {
            v.push(v2);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let p = e.path().join(parent).join(id);
                if p.exists() {
                    v.push(p);
                }
            }
        }
        v
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- daemon log ({}) ----\n{}\n----",
                self.log_file.display(),
                self.log_tail()
            );
        }
        self.stop();
        if let Some(n) = &self.net {
            net::cleanup(n, &self.data_root);
        }
        self.cleanup();
    }
}

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    Out::from_output(child.wait_with_output().expect("waiting for the CLI"))
}

fn kill9(pid: i32) {
    if pid > 1 && pid as u32 != std::process::id() {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn cgroup_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// PIDs whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    let me = std::process::id() as i32;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(needle) {
                    v.push(pid);
                }
            }
        }
    }
    v
}

/// Mount points under `root`, deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let root = root.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .filter(|m| m == &root || m.starts_with(&format!("{root}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    v
}

fn unescape_mount(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The busybox rootfs tarball, built once per test process by `scripts/mkbusybox.sh`.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        // One tarball per test process in a shared dir; tarballs of dead processes go.
        let dir = PathBuf::from("/tmp/berth-e2e-bb");
        std::fs::create_dir_all(&dir).expect("busybox tar dir");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_suffix(".tar")
                .and_then(|p| p.parse::<i32>().ok())
            {
                if !pid_alive(pid) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let tar = dir.join(format!("{}.tar", std::process::id()));
        let st = Command::new("bash")
            .arg(workspace_dir().join("scripts/mkbusybox.sh"))
            .arg("--tar")
            .arg(&tar)
            .status()
            .expect("running scripts/mkbusybox.sh");
        assert!(st.success(), "scripts/mkbusybox.sh failed");
        tar
    })
}

/// A response read by [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics if it is not JSON).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// A tiny HTTP/1.1 client on a unix socket: one request, `Connection: close`, body read to
/// EOF (chunked transfer encoding decoded).
pub fn http_request(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<HttpResponse> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nUser-Agent: berth-e2e\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad HTTP response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_response(raw: &[u8], head: bool) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        let mut out = Vec::new();
        let mut r = rest;
        loop {
            let nl = r.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&r[..nl]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            r = &r[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(r.get(..size)?);
            r = r.get(size + 2..)?;
        }
        out
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Waits until `f` returns true (polling every 50 ms); panics with `what` after `timeout`.
#[track_caller]
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True if a process with this PID exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Seconds since the epoch (for `--since` / `--until`).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after the epoch")
        .as_secs()
}

/// Skips a test (returns true) when not root: the e2e suites need root.
pub fn skip_unless_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: e2e tests need root");
        return true;
    }
    false
}

/// `docker run` arguments with the network flag both daemons accept (berth has no networks
/// yet; dockerd started with `--bridge none` has no default bridge).
pub fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--network", "none"];
    v.extend_from_slice(extra);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"message\":\"x\"}", false).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["message"], "x");
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false).unwrap();
        assert_eq!(r.text(), "abcde");
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mount("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}

/// Starts a daemon with `busybox:latest` imported, or None (test skipped) when not root.
pub fn setup() -> Option<Daemon> {
    if skip_unless_root() {
        return None;
    }
    let d = Daemon::start();
    d.busybox_image();
    Some(d)
}

/// A minimal ustar writer that writes exactly the entries it is given (including hostile
/// ones: absolute paths, `..`, links out of the root), unlike the `tar` crate's builder.
#[derive(Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    fn header(&mut self, path: &str, mode: u32, size: usize, kind: u8, link: &str) {
        assert!(
            path.len() < 100 && link.len() < 100,
            "names longer than 99 bytes are not supported"
        );
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        let mut field = |off: usize, len: usize, v: u64| {
            let s = format!("{:0width$o}\0", v, width = len - 1);
            h[off..off + len].copy_from_slice(s.as_bytes());
        };
        field(100, 8, mode as u64);
        field(108, 8, 0);
        field(116, 8, 0);
        field(124, 12, size as u64);
        field(136, 12, 1_700_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    pub fn file(mut self, path: &str, data: &[u8]) -> Self {
        self.header(path, 0o644, data.len(), b'0', "");
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        self.header(path, 0o755, 0, b'5', "");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.header(path, 0o777, 0, b'2', target);
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.header(path, 0o644, 0, b'1', target);
        self
    }

    /// The archive bytes (with the two terminating zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}
