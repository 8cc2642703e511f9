//! Log rotation and `--log-opt`, `logs --since`, wait conditions (with headers flushed at
//! once) and TTY resize, through the real docker CLI and raw API calls.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use berth_e2e::*;

#[test]
fn json_file_logs_rotate_with_log_opts() {
    let Some(d) = setup() else { return };
    // ~300 KB of output with a 10 KB limit and 3 files: the log stays bounded.
    let id = d
        .docker(&run_args(&[
            "-d",
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 6000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done; echo last-line",
        ]))
        .ok();
    d.wait_status(&id, "exited", Duration::from_secs(30));
    assert_eq!(
        d.inspect(
            &id,
            "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}"
        ),
        r#"json-file {"max-file":"3","max-size":"10k"}"#
    );
    let dir = d.data_root.join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{id}-json.log")))
        .collect();
    files.sort();
    if d.kind == Kind::Berthd {
        assert_eq!(
            files,
            [
                format!("{id}-json.log"),
                format!("{id}-json.log.1"),
                format!("{id}-json.log.2")
            ]
        );
        let total: u64 = files
            .iter()
            .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
            .sum();
        assert!(
            total <= 3 * 10 * 1024 + 3 * 200,
            "log files total {total} bytes"
        );
        // Every line is Docker's json-file format.
        let text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["log"], "last-line\n");
        assert_eq!(last["stream"], "stdout");
        assert!(last["time"].as_str().unwrap().ends_with('Z'));
    }
    // `logs` reads across the rotated files: the newest lines, in order, nothing torn.
    let out = d.docker(&["logs", "--tail", "3", &id]).ok();
    assert_eq!(
        out,
        "line-5998-padding-padding-padding\nline-5999-padding-padding-padding\nlast-line"
    );
    let all = d.docker(&["logs", &id]).ok();
    let lines: Vec<&str> = all.lines().collect();
    assert!(
        lines.len() < 6001 && lines.len() > 100,
        "{} lines kept",
        lines.len()
    );
    let first: usize = lines[0].split('-').nth(1).unwrap().parse().unwrap();
    for (i, l) in lines[..lines.len() - 1].iter().enumerate() {
        assert_eq!(*l, format!("line-{}-padding-padding-padding", first + i));
    }

    // Bad log options are refused at create with nothing left behind.
    let o = d.docker(&run_args(&[
        "--log-opt",
        "max-size=lots",
        "busybox",
        "true",
    ]));
    assert_eq!(o.code, 125, "{o:?}");
    let o = d.docker(&run_args(&["--log-opt", "nosuch=1", "busybox", "true"]));
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("unknown log opt 'nosuch'"), "{o:?}");
    assert_eq!(d.all_container_ids(), vec![id]);
}

#[test]
fn logs_since_and_until() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d",
            "busybox",
            "sh",
            "-c",
            "echo early; sleep 2; echo late",
        ]))
        .ok();
    d.wait_status(&id, "exited", Duration::from_secs(20));
    let stamped = d.docker(&["logs", "-t", &id]).ok();
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split_once(' ').unwrap().0)
        .collect();
    assert_eq!(times.len(), 2, "{stamped}");
    // Seconds since the epoch between the two lines.
    let secs = |t: &str| -> f64 {
        let out = std::process::Command::new("date")
            .args(["-d", t, "+%s.%N"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mid = (secs(times[0]) + secs(times[1])) / 2.0;
    let mid = format!("{mid:.3}");
    assert_eq!(d.docker(&["logs", "--since", &mid, &id]).ok(), "late");
    assert_eq!(d.docker(&["logs", "--until", &mid, &id]).ok(), "early");
}

/// Sends a raw request and returns the socket once the response head has arrived.
fn request_head(sock: &std::path::Path, method: &str, path: &str) -> (UnixStream, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("response head within 5 s");
        assert_eq!(
            n,
            1,
            "connection closed in the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

fn read_body(mut s: UnixStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut body = Vec::new();
    let mut b = [0u8; 4096];
    // Chunked: read until the terminating chunk.
    while !body.ends_with(b"0\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&b[..n]),
            Err(e) => panic!("reading wait body: {e}"),
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn wait_conditions_flush_headers_at_once() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&["-d", "busybox", "sleep", "1000"]))
        .ok();

    // not-running (default) on a running container: the head arrives before the exit.
    let t = Instant::now();
    let (s, head) = request_head(&d.sock, "POST", &format!("/containers/{id}/wait"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(t.elapsed() < Duration::from_secs(3));
    d.docker(&["kill", &id]).ok();
    let body = read_body(s);
    assert!(body.contains(r#""StatusCode":137"#), "{body}");

    // not-running on an exited container answers at once.
    let r = d
        .http("POST", &format!("/containers/{id}/wait"), &[], None)
        .unwrap();
    assert_eq!(
        (r.status, r.json()["StatusCode"].as_i64()),
        (200, Some(137))
    );

    // next-exit waits for the next run to end.
    let (s, head) = request_head(
        &d.sock,
        "POST",
        &format!("/containers/{id}/wait?condition=next-exit"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    d.docker(&["start", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    d.docker(&["stop", "-t", "0", &id]).ok();
    assert!(read_body(s).contains(r#""StatusCode":137"#));

    // removed answers when the container is removed.
    let (s, head) = request_head(
        &d.sock,
        "POST",
        &format!("/containers/{id}/wait?condition=removed"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    d.docker(&["rm", &id]).ok();
    assert!(read_body(s).contains("StatusCode"));

    // Bad condition and unknown container.
    let r = d
        .http("POST", "/containers/nosuch/wait", &[], None)
        .unwrap();
    assert_eq!(r.status, 404);
    let id = d
        .docker(&["create", "--network", "none", "busybox", "true"])
        .ok();
    let r = d
        .http(
            "POST",
            &format!("/containers/{id}/wait?condition=whenever"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // `docker wait` prints the exit code of each container.
    d.docker(&["start", &id]).ok();
    assert_eq!(d.docker(&["wait", &id]).ok(), "0");
}

#[test]
fn tty_resize_reaches_the_container() {
    let Some(d) = setup() else { return };
    let id = d.docker(&run_args(&["-d", "-t", "busybox", "sh"])).ok();
    let r = d
        .http(
            "POST",
            &format!("/containers/{id}/resize?h=37&w=111"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let size = d
        .docker(&["exec", &id, "stty", "-F", "/dev/pts/0", "size"])
        .ok();
    assert_eq!(size, "37 111");
    let r = d
        .http(
            "POST",
            &format!("/containers/{id}/resize?h=x&w=111"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    d.docker(&["rm", "-f", &id]).ok();
    let r = d
        .http(
            "POST",
            &format!("/containers/{id}/resize?h=37&w=111"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
}
