//! Real containers through berth-shim (needs root): create, attach, start, wait, exec,
//! tty, stdin, logs, errors, survival of the shim.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::client::{self, ShimClient};
use berth_runtime::protocol::{ExecProcess, ShimConfig};
use berth_runtime::spec::{self, SpecOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUSYBOX: &str = "/bin/busybox";

/// `BERTH_SHIM_BIN` (e.g. a release build for timing), else the shim built with this test.
fn shim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM_BIN") {
        return p.into();
    }
    // target/<profile>/deps/shim-xxxx → target/<profile>/berth-shim
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("berth-shim")
}

struct Bundle {
    _dir: tempfile::TempDir,
    path: PathBuf,
    id: String,
    runtime_root: PathBuf,
}

impl Drop for Bundle {
    /// A failed test must not leave its container running: SIGKILL its init, the shim then
    /// cleans up and exits.
    fn drop(&mut self) {
        if let Ok(st) = std::fs::read_to_string(self.runtime_root.join(&self.id).join("state.json"))
        {
            let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_default();
            if let Some(pid) = v["pid"].as_i64() {
                // SAFETY: kill(2); at worst the pid is already gone.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for a in [
        "sh", "echo", "cat", "sleep", "true", "false", "ls", "id", "hostname", "printf", "stty",
        "head", "yes",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

fn bundle(args: &[&str], tty: bool, stdin: bool, log_max: u64) -> Bundle {
    bundle_with(args, tty, stdin, log_max, |_| {})
}

fn bundle_with(
    args: &[&str],
    tty: bool,
    stdin: bool,
    log_max: u64,
    tweak: impl FnOnce(&mut SpecOptions),
) -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("bs")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().to_path_buf();
    rootfs(&path.join("rootfs"));
    let bytes: [u8; 16] = rand_bytes();
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let opts = SpecOptions {
        id: id.clone(),
        rootfs: path.join("rootfs"),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        tty,
        hostname: "testhost".into(),
        ..Default::default()
    };
    let mut opts = opts;
    tweak(&mut opts);
    let spec = spec::build(&opts).unwrap();
    std::fs::write(path.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    let runtime_root = path.join("rt");
    let cfg = ShimConfig {
        id: id.clone(),
        runtime_root: runtime_root.clone(),
        log_path: Some(path.join("log.json")),
        log_max_size: log_max,
        log_max_file: 3,
        tty,
        open_stdin: stdin,
        stdin_once: stdin,
        console_size: if tty { Some((24, 80)) } else { None },
    };
    std::fs::write(path.join("shim.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    Bundle {
        _dir: dir,
        path,
        id,
        runtime_root,
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let f = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    for (i, c) in f
        .iter()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .enumerate()
    {
        b[i] = *c;
    }
    b
}

/// Reads a multiplexed stream to the end; returns (stdout, stderr).
async fn demux(mut s: tokio::net::UnixStream) -> (String, String) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i + 8 <= all.len() {
        let len = u32::from_be_bytes([all[i + 4], all[i + 5], all[i + 6], all[i + 7]]) as usize;
        let data = &all[i + 8..i + 8 + len];
        if all[i] == 2 {
            err.extend_from_slice(data)
        } else {
            out.extend_from_slice(data)
        }
        i += 8 + len;
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// No process runs from this bundle (shim or container).
fn no_process_of(bundle: &Path) -> bool {
    let needle = bundle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(false);
            if cmd.contains(&needle) && !zombie {
                found.push(cmd);
            }
        }
    }
    found.is_empty()
}

fn proc(args: &[&str], tty: bool, stdin: bool) -> ExecProcess {
    ExecProcess {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        tty,
        stdin,
        console_size: None,
    }
}

fn cgroup_gone(id: &str) -> bool {
    !Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists()
        && !Path::new(&format!("/sys/fs/cgroup/pids/berth/{id}")).exists()
}

#[tokio::test]
async fn run_attach_wait_and_log() {
    let b = bundle(
        &["sh", "-c", "echo out; echo err >&2; hostname; exit 3"],
        false,
        false,
        0,
    );
    let t0 = Instant::now();
    let pid = client::spawn(&shim_bin(), &b.path).await.unwrap();
    assert!(pid > 0);
    let shim = ShimClient::new(&b.path);
    let stream = shim.attach(false, true, true).await.unwrap();
    shim.start().await.unwrap();
    let st = shim.wait().await.unwrap();
    let elapsed = t0.elapsed();
    eprintln!("spawn+start+wait: {elapsed:?}");
    assert_eq!(st.code, 3);
    let (out, err) = demux(stream).await;
    assert_eq!(out, "out\ntesthost\n");
    assert_eq!(err, "err\n");
    let log = std::fs::read_to_string(b.path.join("log.json")).unwrap();
    assert!(
        log.contains("{\"log\":\"out\\n\",\"stream\":\"stdout\""),
        "{log}"
    );
    assert!(log.contains("\"stream\":\"stderr\""));
    assert_eq!(client::read_exit_file(&b.path).unwrap().code, 3);
    // Everything is cleaned up: state dir, cgroup, shim.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!b.runtime_root.join(&b.id).exists());
    assert!(cgroup_gone(&b.id));
    assert!(!b.path.join("shim.sock").exists());
}

#[tokio::test]
async fn exec_tty_stdin_and_kill() {
    let b = bundle(&["sleep", "100"], false, false, 0);
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    shim.start().await.unwrap();
    let p = |args: &[&str], tty: bool, stdin: bool| ExecProcess {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        tty,
        stdin,
        console_size: None,
    };
    let (_, s) = shim
        .exec("e1", p(&["sh", "-c", "echo hi; exit 5"], false, false))
        .await
        .unwrap();
    let (out, _) = demux(s).await;
    assert_eq!(out, "hi\n");
    assert_eq!(shim.exec_state("e1").await.unwrap().exit.unwrap().code, 5);
    // stdin through a pipe, half-close ends it.
    let (_, mut s) = shim.exec("e2", p(&["cat"], false, true)).await.unwrap();
    s.write_all(b"piped\n").await.unwrap();
    s.shutdown().await.unwrap();
    let (out, _) = demux(s).await;
    assert_eq!(out, "piped\n");
    // tty: raw output with \r\n.
    let (_, mut s) = shim
        .exec("e3", p(&["echo", "tty"], true, false))
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&raw), "tty\r\n");
    // a missing executable: Docker's message.
    let e = shim
        .exec("e4", p(&["nosuchcmd"], false, false))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("executable file not found in $PATH"), "{e}");
    // A new client (as after a berthd restart) still works; SIGTERM to the shim is ignored.
    let shim_pid: i32 = std::fs::read_to_string(b.path.join("shim.pid"))
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: kill(2) with a plain signal number.
    unsafe { libc::kill(shim_pid, libc::SIGTERM) };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shim2 = ShimClient::new(&b.path);
    assert!(shim2.state().await.unwrap().running);
    let (_, s) = shim2
        .exec("after", p(&["echo", "again"], false, false))
        .await
        .unwrap();
    assert_eq!(demux(s).await.0, "again\n");
    shim2.kill(9, true).await.unwrap();
    assert_eq!(shim2.wait().await.unwrap().code, 137);
}

#[tokio::test]
async fn missing_executable_leaves_nothing() {
    let b = bundle(&["nosuchcmd"], false, false, 0);
    let e = client::spawn(&shim_bin(), &b.path)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "{e}"
    );
    assert!(e.starts_with("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "), "{e}");
    assert!(!b.runtime_root.join(&b.id).exists());
    assert!(no_process_of(&b.path));
    assert!(cgroup_gone(&b.id));
    assert!(!b.path.join("shim.sock").exists());
}

#[tokio::test]
async fn tty_init_and_log_rotation() {
    let b = bundle(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
        true,
        false,
        2000,
    );
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    let mut s = shim.attach(false, true, true).await.unwrap();
    shim.start().await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("line-199\r\n"));
    assert_eq!(
        shim.wait()
            .await
            .unwrap_or_else(|_| client::read_exit_file(&b.path).unwrap())
            .code,
        0
    );
    assert!(b.path.join("log.json.1").exists() && b.path.join("log.json.2").exists());
    assert!(!b.path.join("log.json.3").exists());
    assert!(std::fs::metadata(b.path.join("log.json")).unwrap().len() <= 2000);
}

#[tokio::test]
async fn true_exits_zero_fast() {
    let mut times = Vec::new();
    for _ in 0..5 {
        let b = bundle(&["true"], false, false, 0);
        let t0 = Instant::now();
        client::spawn(&shim_bin(), &b.path).await.unwrap();
        let shim = ShimClient::new(&b.path);
        shim.start().await.unwrap();
        let (st, cleanup) = shim.wait_cleanup().await.unwrap();
        times.push(t0.elapsed());
        assert_eq!(st.code, 0);
        assert!(!st.oom_killed);
        assert_eq!(client::read_exit_file(&b.path).unwrap(), st);
        // The answer comes first; the cgroups and the runtime state are gone once the
        // shim closes the waiter's connection.
        cleanup.done(Duration::from_secs(10)).await;
        assert!(cgroup_gone(&b.id) && !b.runtime_root.join(&b.id).exists());
        // The shim is gone shortly after answering.
        let mut gone = false;
        for _ in 0..100 {
            if no_process_of(&b.path) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "shim still running");
        assert!(cgroup_gone(&b.id) && !b.runtime_root.join(&b.id).exists());
        assert!(std::fs::read_to_string(b.path.join("log.json"))
            .unwrap()
            .is_empty());
    }
    times.sort();
    eprintln!(
        "spawn+start+wait of `true`: min {:?} median {:?} max {:?}",
        times[0], times[2], times[4]
    );
}

#[tokio::test]
async fn init_stdin_pipe_and_half_close() {
    let b = bundle(&["cat"], false, true, 0);
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    let mut s = shim.attach(true, true, true).await.unwrap();
    shim.start().await.unwrap();
    s.write_all(b"hello stdin\n").await.unwrap();
    s.shutdown().await.unwrap();
    let (out, err) = demux(s).await;
    assert_eq!((out.as_str(), err.as_str()), ("hello stdin\n", ""));
    assert_eq!(shim.wait().await.unwrap().code, 0);
    let log = std::fs::read_to_string(b.path.join("log.json")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(entry["log"], "hello stdin\n");
    assert_eq!(entry["stream"], "stdout");
    let t = entry["time"].as_str().unwrap();
    assert!(
        t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
        "{t}"
    );
}

#[tokio::test]
async fn tty_exec_size_resize_and_user() {
    let b = bundle(&["sleep", "100"], false, false, 0);
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    shim.start().await.unwrap();
    let mut p = proc(&["stty", "size"], true, false);
    p.console_size = Some((30, 100));
    let (_, mut s) = shim.exec("sz", p).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&raw), "30 100\r\n");
    // Resize while it runs: `read` waits for a line, then stty reports the new size.
    let (_, mut s) = shim
        .exec("rs", proc(&["sh", "-c", "read x; stty size"], true, true))
        .await
        .unwrap();
    shim.resize(Some("rs"), 40, 120).await.unwrap();
    s.write_all(b"go\r").await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    assert!(
        String::from_utf8_lossy(&raw).ends_with("40 120\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(shim.exec_state("rs").await.unwrap().exit.unwrap().code, 0);
    assert!(shim.resize(None, 10, 10).await.is_err(), "init has no tty");
    // User and groups of an exec.
    let mut p = proc(&["id"], false, false);
    (p.uid, p.gid, p.additional_gids) = (65534, 65534, vec![0]);
    let (_, s) = shim.exec("id", p).await.unwrap();
    let (out, _) = demux(s).await;
    assert!(
        out.starts_with("uid=65534(nobody) gid=65534(nogroup) groups="),
        "{out}"
    );
    // Exec output is not in the container log.
    assert!(!std::fs::read_to_string(b.path.join("log.json"))
        .unwrap()
        .contains("65534"));
    // Signal to init only.
    shim.kill(libc::SIGKILL, false).await.unwrap();
    let st = shim.wait().await.unwrap();
    assert_eq!(st.code, 137);
    assert!(shim
        .exec("late", proc(&["true"], false, false))
        .await
        .is_err());
}

#[tokio::test]
async fn slow_reader_does_not_block_the_container() {
    // 8 MiB of output to a client that never reads: the container still finishes.
    let b = bundle(&["sh", "-c", "yes 0123456789012345678901234567890123456789012345678901234567890123 | head -c 8388608; echo done"], false, false, 0);
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    let _idle = shim.attach(false, true, true).await.unwrap();
    let mut live = shim.attach(false, true, true).await.unwrap();
    shim.start().await.unwrap();
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        live.read_to_end(&mut all).await.unwrap();
        all.len()
    });
    let st = tokio::time::timeout(Duration::from_secs(20), shim.wait())
        .await
        .expect("container blocked")
        .unwrap();
    assert_eq!(st.code, 0);
    assert!(reader.await.unwrap() > 8 << 20);
    let log = std::fs::read_to_string(b.path.join("log.json")).unwrap();
    // (head cuts the last `yes` line short: "done" ends that line.)
    assert!(
        log.contains("done\\n\",\"stream\":\"stdout\""),
        "last line logged"
    );
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let b = bundle_with(
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        false,
        false,
        0,
        |o| {
            o.memory = 16 << 20;
            o.memory_swap = 16 << 20;
        },
    );
    std::os::unix::fs::symlink("busybox", b.path.join("rootfs/bin/tr")).unwrap();
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let shim = ShimClient::new(&b.path);
    shim.start().await.unwrap();
    let st = tokio::time::timeout(Duration::from_secs(30), shim.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(st.oom_killed, "{st:?}");
    assert!(!std::fs::read_to_string(b.path.join("log.json"))
        .unwrap()
        .contains("survived"));
}

/// After a spawn a standby shim waits; the next spawn is served by it (its shim.pid is a
/// `berth-shim --standby` process, not anyone's child), and the container behaves the same.
#[tokio::test]
async fn standby_shim_serves_the_next_spawn() {
    let first = bundle(&["true"], false, false, 0);
    client::spawn(&shim_bin(), &first.path).await.unwrap();
    ShimClient::new(&first.path).start().await.unwrap();
    ShimClient::new(&first.path).wait().await.unwrap();
    // The replacement standby is started in the background.
    let mut standby = false;
    for _ in 0..200 {
        standby = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0).any(|a| a == b"--standby")
                    && std::fs::read_link(e.path().join("exe"))
                        .is_ok_and(|x| x == std::fs::canonicalize(shim_bin()).unwrap())
            })
        });
        if standby {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(standby, "no standby shim after a spawn");
    let b = bundle(&["sh", "-c", "echo from-standby"], false, false, 0);
    client::spawn(&shim_bin(), &b.path).await.unwrap();
    let pid = std::fs::read_to_string(b.path.join("shim.pid")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.split(|c| *c == 0).any(|a| a == b"--standby"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("PPid:\t1\n")
            || !status.contains(&format!("PPid:\t{}\n", std::process::id()))
    );
    let shim = ShimClient::new(&b.path);
    let out = shim.attach(false, true, true).await.unwrap();
    shim.start().await.unwrap();
    assert_eq!(demux(out).await.0, "from-standby\n");
    assert_eq!(shim.wait().await.unwrap().code, 0);
}
