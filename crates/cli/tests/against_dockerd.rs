//! Drives the `berth` binary against a running Docker-API daemon (dockerd or berthd).
//!
//! Set `BERTH_TEST_DOCKER_HOST=unix:///path/to.sock` (and optionally `BERTH_TEST_IMAGE`,
//! default `busybox`, an image with a shell that the daemon already has). When the real
//! docker CLI is at `/usr/local/bin/docker` (or `BERTH_TEST_DOCKER_CLI`), outputs are
//! compared with it. Without the variable every test prints a notice and passes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn host() -> Option<String> {
    match std::env::var("BERTH_TEST_DOCKER_HOST") {
        Ok(h) if !h.is_empty() => Some(h),
        _ => {
            eprintln!("skipping: BERTH_TEST_DOCKER_HOST is not set");
            None
        }
    }
}

fn image() -> String {
    std::env::var("BERTH_TEST_IMAGE").unwrap_or_else(|_| "busybox".into())
}

fn berth(host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(host)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running berth")
}

fn docker(host: &str, args: &[&str]) -> Option<Output> {
    let cli =
        std::env::var("BERTH_TEST_DOCKER_CLI").unwrap_or_else(|_| "/usr/local/bin/docker".into());
    if !Path::new(&cli).exists() {
        return None;
    }
    Some(
        Command::new(cli)
            .arg("-H")
            .arg(host)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running docker"),
    )
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[test]
fn run_exit_codes_and_streams() {
    let Some(h) = host() else { return };
    let img = image();
    let o = berth(
        &h,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            "echo out; echo oops >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "stderr: {}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert_eq!(err(&o), "oops\n");

    let o = berth(&h, &["run", "--rm", "--network", "none", &img, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "stderr: {}", err(&o));
    assert!(err(&o).starts_with("berth: Error response from daemon: "));

    let o = berth(&h, &["run", "--bogus-flag", &img]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).starts_with("unknown flag: --bogus-flag"));

    let name = unique("berth-conflict");
    let o = berth(
        &h,
        &["create", "--name", &name, "--network", "none", &img, "true"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = berth(
        &h,
        &["run", "--name", &name, "--network", "none", &img, "true"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("Conflict"), "{}", err(&o));
    assert!(berth(&h, &["rm", &name]).status.success());
}

#[test]
fn run_env_workdir_user_and_stdin() {
    let Some(h) = host() else { return };
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    let envf = dir.path().join("env");
    std::fs::write(&envf, "# comment\nFROM_FILE=1\n").unwrap();
    let o = berth(
        &h,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--env-file",
            envf.to_str().unwrap(),
            "-e",
            "A=b",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            &img,
            "sh",
            "-c",
            "echo $FROM_FILE $A; pwd; id -u; id -g",
        ],
    );
    assert_eq!(out(&o), "1 b\n/tmp\n1\n2\n", "{}", err(&o));

    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "-H",
            &h,
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            &img,
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(out(&o), "through stdin\n");
    assert!(o.status.success());
}

#[test]
fn detached_lifecycle_ps_logs_exec_inspect() {
    let Some(h) = host() else { return };
    let img = image();
    let name = unique("berth-life");
    let o = berth(
        &h,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "-l",
            "com.example.role=test",
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            "echo started; sleep 300",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let id = out(&o).trim().to_string();
    assert_eq!(id.len(), 64);

    let f = r#"{{.ID}} {{.Names}} {{.State}} {{.Label "com.example.role"}} {{.Command}}"#;
    let filter = format!("name={name}");
    let o = berth(&h, &["ps", "--filter", &filter, "--format", f]);
    assert_eq!(
        out(&o),
        format!(
            "{} {name} running test \"sh -c 'echo started…\"\n",
            &id[..12]
        )
    );
    if let Some(d) = docker(&h, &["ps", "--filter", &filter, "--format", f]) {
        assert_eq!(out(&d), out(&o));
    }
    let o = berth(&h, &["ps", "--filter", &filter]);
    let text = out(&o);
    assert!(
        text.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{text}"
    );
    if let Some(d) = docker(&h, &["ps", "--filter", &filter]) {
        assert_eq!(out(&d), text);
    }

    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(out(&berth(&h, &["logs", &name])), "started\n");
    let o = berth(
        &h,
        &["exec", "-e", "X=1", &name, "sh", "-c", "echo $X; exit 4"],
    );
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(out(&o), "1\n");

    let o = berth(
        &h,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{json .Config.Labels}}",
            &name,
        ],
    );
    assert_eq!(out(&o), "running {\"com.example.role\":\"test\"}\n");
    let o = berth(&h, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    if let Some(d) = docker(&h, &["inspect", &name]) {
        assert_eq!(out(&d), out(&o));
    }

    let o = berth(&h, &["stop", "-t", "1", &name, "berth-no-such-container"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(out(&o), format!("{name}\n"));
    assert_eq!(
        err(&o),
        "Error response from daemon: No such container: berth-no-such-container\n"
    );
    let o = berth(
        &h,
        &["ps", "-a", "--filter", &filter, "--format", "{{.Status}}"],
    );
    assert!(out(&o).starts_with("Exited ("), "{}", out(&o));
    assert_eq!(out(&berth(&h, &["rm", &name])), format!("{name}\n"));
}

#[test]
fn images_and_tags_match_docker() {
    let Some(h) = host() else { return };
    let img = image();
    let tag = format!("{}:t{}", "berth-test", std::process::id());
    assert!(berth(&h, &["tag", &img, &tag]).status.success());
    let o = berth(&h, &["images", "berth-test"]);
    assert!(out(&o).starts_with("REPOSITORY   TAG"), "{}", out(&o));
    if let Some(d) = docker(&h, &["images", "berth-test"]) {
        assert_eq!(out(&d), out(&o));
    }
    if let Some(d) = docker(&h, &["history", &img]) {
        assert_eq!(out(&d), out(&berth(&h, &["history", &img])));
    }
    let o = berth(&h, &["rmi", &tag]);
    assert_eq!(out(&o), format!("Untagged: {tag}\n"));
    let o = berth(&h, &["inspect", "berth-no-such-object"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(out(&o), "[]\n");
    assert_eq!(err(&o), "Error: No such object: berth-no-such-object\n");
}
