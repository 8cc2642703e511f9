//! `docker cp` through the real docker CLI (and `berth cp`): both ways, running and stopped
//! containers, files and directories, `-a`, `-L`, `-` tar streams, volumes and binds inside
//! the container; hostile links in the container (to `/`, to `..`, swapped during the copy)
//! and hostile archives on `PUT /containers/{id}/archive`, with the host checked untouched.
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use berth_e2e::*;

/// Mounts under the daemon's roots (dockerd keeps its data-root bind-mounted).
fn leftover_mounts(d: &Daemon) -> Vec<std::path::PathBuf> {
    d.mounts_under_roots()
        .into_iter()
        .filter(|m| *m != d.data_root)
        .collect()
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn running(d: &Daemon, name: &str, script: &str) -> String {
    let id = d
        .docker(&run_args(&[
            "-d",
            "--name",
            name,
            "busybox",
            "sh",
            "-c",
            &format!("{script}; touch /ready; sleep 1000"),
        ]))
        .ok();
    eventually("the container's files", Duration::from_secs(10), || {
        d.docker(&["exec", &id, "test", "-e", "/ready"]).code == 0
    });
    id
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let Some(d) = setup() else { return };
    let id = running(
        &d,
        "cp1",
        "mkdir -p /d/sub && echo a > /d/a && echo deep > /d/sub/b && echo top > /f",
    );
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    // Out: a file to a new name, a directory into an existing directory, contents with /.
    d.docker(&["cp", "cp1:/f", h.join("f.out").to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(h.join("f.out")).unwrap(), "top\n");
    d.docker(&["cp", "cp1:/d", h.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(h.join("d/sub/b")).unwrap(),
        "deep\n"
    );
    std::fs::create_dir(h.join("contents")).unwrap();
    d.docker(&["cp", "cp1:/d/.", h.join("contents").to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(h.join("contents/a")).unwrap(),
        "a\n"
    );
    // `-` writes a tar whose entries start with the source's name.
    let o = d.docker(&["cp", "cp1:/d", "-"]);
    assert_eq!(o.code, 0);
    let raw = d
        .docker_cmd(&["cp", "cp1:/d", "-"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(tar_names(&raw), ["d/", "d/a", "d/sub/", "d/sub/b"]);
    // In: a file into a directory, a file to a new name, a directory, a tar from stdin.
    std::fs::write(h.join("up.txt"), "up\n").unwrap();
    std::fs::create_dir_all(h.join("tree/x")).unwrap();
    std::fs::write(h.join("tree/x/y"), "y\n").unwrap();
    d.docker(&["cp", h.join("up.txt").to_str().unwrap(), "cp1:/d/"])
        .ok();
    d.docker(&["cp", h.join("up.txt").to_str().unwrap(), "cp1:/renamed"])
        .ok();
    d.docker(&["cp", h.join("tree").to_str().unwrap(), "cp1:/"])
        .ok();
    let tar = TarWriter::new().file("fromstdin", b"s\n").finish();
    d.docker_stdin(&["cp", "-", "cp1:/d"], &tar).ok();
    assert_eq!(
        d.docker(&[
            "exec",
            &id,
            "cat",
            "/d/up.txt",
            "/renamed",
            "/tree/x/y",
            "/d/fromstdin"
        ])
        .ok(),
        "up\nup\ny\ns"
    );
    // Stopped: the same both ways, and nothing stays mounted afterwards.
    d.docker(&["stop", "-t", "0", &id]).ok();
    d.docker(&[
        "cp",
        h.join("up.txt").to_str().unwrap(),
        "cp1:/d/while-stopped",
    ])
    .ok();
    d.docker(&[
        "cp",
        "cp1:/d/while-stopped",
        h.join("back").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(h.join("back")).unwrap(), "up\n");
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
    d.docker(&["start", &id]).ok();
    assert_eq!(
        d.docker(&["exec", &id, "cat", "/d/while-stopped"]).ok(),
        "up"
    );
    // Errors, as Docker prints them.
    let o = d.docker(&["cp", "cp1:/nosuch", h.to_str().unwrap()]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Could not find the file /nosuch in container cp1"),
        "{o:?}"
    );
    let o = d.docker(&["cp", h.join("up.txt").to_str().unwrap(), "nosuch:/tmp"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    let o = d.docker(&["cp", h.join("up.txt").to_str().unwrap(), "cp1:/f/x"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("extraction point is not a directory"),
        "{o:?}"
    );
    let o = d.docker(&["cp", h.join("up.txt").to_str().unwrap(), "cp1:/nodir/x"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Could not find the file /nodir in container cp1"),
        "{o:?}"
    );
    d.docker(&["rm", "-f", &id]).ok();
    // A created, never started container: copied into before its first start.
    let fresh = d
        .docker(&["create", "--network", "none", "busybox", "cat", "/seeded"])
        .ok();
    d.docker(&[
        "cp",
        h.join("up.txt").to_str().unwrap(),
        &format!("{fresh}:/seeded"),
    ])
    .ok();
    assert_eq!(d.docker(&["start", "-a", &fresh]).ok(), "up");
    d.docker(&["rm", &fresh]).ok();
}

#[test]
fn cp_stat_header_and_follow_link() {
    let Some(d) = setup() else { return };
    let id = running(
        &d,
        "cp2",
        "echo target > /etc/real && ln -s /etc/real /link && ln -s /etc /etclink",
    );
    let r = d
        .http(
            "HEAD",
            &format!("/containers/{id}/archive?path=/link"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let hdr = r
        .header("x-docker-container-path-stat")
        .expect("stat header");
    let json = String::from_utf8(
        std::process::Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(hdr.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap()
            .stdout,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "link");
    assert_eq!(v["linkTarget"], "/etc/real");
    assert_eq!(v["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "{v}");
    let r = d
        .http(
            "HEAD",
            &format!("/containers/{id}/archive?path=/nosuch"),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404);
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    // Without -L the link is copied as a link; with -L its target's content.
    d.docker(&["cp", "cp2:/link", h.join("nolink").to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_link(h.join("nolink")).unwrap(),
        Path::new("/etc/real")
    );
    d.docker(&[
        "cp",
        "-L",
        "cp2:/link",
        h.join("followed").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(h.join("followed")).unwrap(),
        "target\n"
    );
    // A trailing slash follows a link to a directory.
    let raw = d
        .docker_cmd(&["cp", "cp2:/etclink/", "-"])
        .output()
        .unwrap()
        .stdout;
    assert!(
        tar_names(&raw).contains(&"etclink/real".to_string()),
        "{:?}",
        tar_names(&raw)
    );
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn cp_archive_mode_keeps_or_sets_owners() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d", "--name", "cp3", "-u", "nobody", "busybox", "sleep", "1000",
        ]))
        .ok();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("owned");
    std::fs::write(&f, "o\n").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(4321)).unwrap();
    d.docker(&["cp", f.to_str().unwrap(), "cp3:/tmp/plain"])
        .ok();
    d.docker(&["cp", "-a", f.to_str().unwrap(), "cp3:/tmp/archived"])
        .ok();
    assert_eq!(
        d.docker(&["exec", &id, "stat", "-c", "%u:%g", "/tmp/plain"])
            .ok(),
        "1234:4321"
    );
    assert_eq!(
        d.docker(&["exec", &id, "stat", "-c", "%u:%g", "/tmp/archived"])
            .ok(),
        "65534:65534"
    );
    // Out: owners and modes are kept in the tar.
    let raw = d
        .docker_cmd(&["cp", "cp3:/tmp/plain", "-"])
        .output()
        .unwrap()
        .stdout;
    let mut a = tar::Archive::new(&raw[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (e.header().uid().unwrap(), e.header().gid().unwrap()),
        (1234, 4321)
    );
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn cp_honours_volumes_and_binds() {
    let Some(d) = setup() else { return };
    let bind = tempfile::tempdir().unwrap();
    let bspec = format!("{}:/b", bind.path().display());
    let ro = tempfile::tempdir().unwrap();
    let rospec = format!("{}:/ro:ro", ro.path().display());
    let id = d
        .docker(&run_args(&[
            "-d",
            "--name",
            "cp4",
            "-v",
            "cpv:/data",
            "-v",
            &bspec,
            "-v",
            &rospec,
            "busybox",
            "sleep",
            "1000",
        ]))
        .ok();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("in");
    std::fs::write(&f, "vol\n").unwrap();
    let vol = d.data_root.join("volumes/cpv/_data");
    d.docker(&["cp", f.to_str().unwrap(), "cp4:/data/"]).ok();
    assert_eq!(std::fs::read_to_string(vol.join("in")).unwrap(), "vol\n");
    d.docker(&["cp", f.to_str().unwrap(), "cp4:/b/"]).ok();
    assert_eq!(
        std::fs::read_to_string(bind.path().join("in")).unwrap(),
        "vol\n"
    );
    let o = d.docker(&["cp", f.to_str().unwrap(), "cp4:/ro/"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!ro.path().join("in").exists());
    // Stopped: the volume is still where /data points.
    d.docker(&["stop", "-t", "0", &id]).ok();
    std::fs::write(vol.join("made-on-host"), "h\n").unwrap();
    let out = host.path().join("out");
    d.docker(&["cp", "cp4:/data/made-on-host", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "h\n");
    d.docker(&["cp", f.to_str().unwrap(), "cp4:/data/stopped-in"])
        .ok();
    assert!(vol.join("stopped-in").exists());
    let o = d.docker(&["cp", f.to_str().unwrap(), "cp4:/ro/"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!ro.path().join("in").exists());
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
    d.docker(&["rm", &id]).ok();
}

#[test]
fn cp_never_follows_container_links_out() {
    let Some(d) = setup() else { return };
    // A marker only the host has: a copy that escaped the container would see it.
    let marker = format!("berth-cp-marker-{}", std::process::id());
    let host_marker = Path::new("/tmp").join(&marker);
    std::fs::write(&host_marker, "host-secret\n").unwrap();
    let id = running(
        &d,
        "cp5",
        &format!("echo ctr > /tmp/{marker}.ctr; ln -s / /hostroot; ln -s ../../../../../tmp /up; ln -s /tmp/{marker} /direct"),
    );
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    // Reading through links resolves inside the container.
    let o = d.docker(&[
        "cp",
        &format!("cp5:/hostroot/tmp/{marker}"),
        h.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{o:?}");
    let o = d.docker(&["cp", &format!("cp5:/up/{marker}"), h.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    let o = d.docker(&[
        "cp",
        "-L",
        "cp5:/direct",
        h.join("direct").to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!h.join("direct").exists());
    d.docker(&[
        "cp",
        &format!("cp5:/up/{marker}.ctr"),
        h.join("ctr").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(h.join("ctr")).unwrap(), "ctr\n");
    // Writing through links lands inside the container.
    let f = h.join("payload");
    std::fs::write(&f, "p\n").unwrap();
    d.docker(&["cp", f.to_str().unwrap(), "cp5:/hostroot/tmp/"])
        .ok();
    d.docker(&["cp", f.to_str().unwrap(), "cp5:/up/"]).ok();
    assert!(
        !Path::new("/tmp/payload").exists()
            || std::fs::read_to_string("/tmp/payload").unwrap() != "p\n"
    );
    assert_eq!(d.docker(&["exec", &id, "cat", "/tmp/payload"]).ok(), "p");
    // The same with the container stopped (its rootfs mounted by the daemon).
    d.docker(&["stop", "-t", "0", &id]).ok();
    let o = d.docker(&[
        "cp",
        &format!("cp5:/hostroot/tmp/{marker}"),
        h.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{o:?}");
    d.docker(&["cp", f.to_str().unwrap(), "cp5:/hostroot/"])
        .ok();
    assert!(!Path::new("/payload").exists());
    assert_eq!(
        std::fs::read_to_string(&host_marker).unwrap(),
        "host-secret\n"
    );
    std::fs::remove_file(&host_marker).unwrap();
    d.docker(&["rm", &id]).ok();
}

#[test]
fn cp_with_a_link_swapped_during_the_copy() {
    let Some(d) = setup() else { return };
    let marker = format!("berth-race-{}", std::process::id());
    let host_dir = Path::new("/tmp").join(&marker);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("host-only"), "secret\n").unwrap();
    // The container swaps /race between a real directory and a link to the host path.
    let id = running(
        &d,
        "cp6",
        &format!(
            "mkdir -p /tmp/{marker} /racedir && echo in > /racedir/f && (while true; do ln -sfn /tmp/{marker} /race.new && mv -f /race.new /race; rm -f /race; cp -r /racedir /race 2>/dev/null; rm -rf /race; done) & true"
        ),
    );
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("dropped");
    std::fs::write(&f, "x\n").unwrap();
    for _ in 0..25 {
        let raw = d
            .docker_cmd(&["cp", "cp6:/race/", "-"])
            .output()
            .unwrap()
            .stdout;
        if !raw.is_empty() {
            if let Ok(names) = std::panic::catch_unwind(|| tar_names(&raw)) {
                assert!(!names.iter().any(|n| n.contains("host-only")), "{names:?}");
            }
        }
        let _ = d.docker(&["cp", f.to_str().unwrap(), "cp6:/race/"]);
    }
    assert!(!host_dir.join("dropped").exists());
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&host_dir).unwrap();
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn put_archive_refuses_hostile_tars() {
    let Some(d) = setup() else { return };
    let id = running(&d, "cp7", "mkdir /dest");
    let marker = format!("berth-put-{}", std::process::id());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            TarWriter::new()
                .file("ok", b"x")
                .file(&format!("../../../../../../tmp/{marker}"), b"p")
                .finish(),
        ),
        (
            "absolute",
            TarWriter::new()
                .file("ok", b"x")
                .file(&format!("/tmp/{marker}"), b"p")
                .finish(),
        ),
        (
            "symlink out",
            TarWriter::new()
                .file("ok", b"x")
                .symlink("l", "../../../../../..")
                .finish(),
        ),
        (
            "hardlink out",
            TarWriter::new()
                .file("ok", b"x")
                .hardlink("h", "../../../etc/passwd")
                .finish(),
        ),
    ];
    for (what, tar) in cases {
        let r = d
            .http(
                "PUT",
                &format!("/containers/{id}/archive?path=/dest"),
                &[("Content-Type", "application/x-tar")],
                Some(&tar),
            )
            .unwrap();
        if !is_reference() {
            // Docker answers 500 after writing the entries before the bad one; berth
            // refuses the whole archive before writing anything.
            assert_eq!(r.status, 400, "{what}: {}", r.text());
            assert!(
                r.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("refusing archive entry"),
                "{what}: {}",
                r.text()
            );
            assert_eq!(
                d.docker(&["exec", &id, "ls", "-A", "/dest"]).ok(),
                "",
                "{what}"
            );
        } else if what != "absolute" {
            // dockerd takes absolute names as relative to the destination.
            assert_ne!(r.status, 200, "{what}");
        }
        assert!(!Path::new("/tmp").join(&marker).exists(), "{what}");
    }
    // A header claiming more than the disk holds (a bomb): refused, nothing written.
    let mut bomb = TarWriter::new().file("big", b"").finish();
    let size = format!("{:011o}\0", 0o77777777777u64);
    bomb[124..136].copy_from_slice(size.as_bytes());
    bomb[148..156].copy_from_slice(b"        ");
    let sum: u32 = bomb[..512].iter().map(|&b| b as u32).sum();
    bomb[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    // (dockerd may reset the connection instead of reading a refused upload.)
    let put = |path: &str, tar: &[u8]| -> Option<HttpResponse> {
        match d.http(
            "PUT",
            &format!("/containers/{id}/archive?{path}"),
            &[],
            Some(tar),
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                assert!(is_reference(), "{e}");
                None
            }
        }
    };
    if let Some(r) = put("path=/dest", &bomb) {
        assert_ne!(r.status, 200);
    }
    if !is_reference() {
        let r = put("path=/dest", &bomb).unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
        // Nothing of any refused archive was written.
        assert_eq!(d.docker(&["exec", &id, "ls", "-A", "/dest"]).ok(), "");
    }
    // Not a directory / not found / bad path parameter.
    let tar = TarWriter::new().file("ok", b"x").finish();
    if let Some(r) = put("path=/bin/sh", &tar) {
        assert!(
            r.text().contains("extraction point is not a directory"),
            "{}",
            r.text()
        );
    }
    // (dockerd may reset the connection instead of reading a refused upload.)
    if let Ok(r) = d.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/nosuch"),
        &[],
        Some(&tar),
    ) {
        assert_eq!(r.status, 404);
    } else {
        assert!(is_reference());
    }
    if let Ok(r) = d.http("PUT", &format!("/containers/{id}/archive"), &[], Some(&tar)) {
        assert_eq!(r.status, 400);
    } else {
        assert!(is_reference());
    }
    // A link to / planted by the archive itself resolves inside the container.
    let tar = TarWriter::new()
        .symlink("l", "/")
        .file(&format!("l/tmp/{marker}"), b"in")
        .finish();
    let r = d
        .http(
            "PUT",
            &format!("/containers/{id}/archive?path=/dest"),
            &[],
            Some(&tar),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!Path::new("/tmp").join(&marker).exists());
    assert_eq!(
        d.docker(&["exec", &id, "cat", &format!("/tmp/{marker}")])
            .ok(),
        "in"
    );
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn cp_read_only_rootfs() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "-d",
            "--read-only",
            "-v",
            "rov:/data",
            "busybox",
            "sleep",
            "1000",
        ]))
        .ok();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("f");
    std::fs::write(&f, "x\n").unwrap();
    let o = d.docker(&["cp", f.to_str().unwrap(), &format!("{id}:/tmp/")]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("read-only"), "{o:?}");
    // The volume is writable.
    d.docker(&["cp", f.to_str().unwrap(), &format!("{id}:/data/")])
        .ok();
    assert!(d.data_root.join("volumes/rov/_data/f").exists());
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn berth_cp_between_containers() {
    let Some(d) = setup() else { return };
    if is_reference() {
        return;
    }
    let a = running(
        &d,
        "cpa",
        "mkdir -p /src/sub && echo one > /src/sub/one && echo f > /file",
    );
    let b = running(&d, "cpb", "mkdir /into");
    // Docker refuses it; berth copies.
    let o = d.docker(&["cp", "cpa:/src", "cpb:/into"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("copying between containers is not supported"),
        "{o:?}"
    );
    d.berth(&["cp", "cpa:/src", "cpb:/into"]).ok();
    d.berth(&["cp", "cpa:/file", "cpb:/renamed"]).ok();
    d.berth(&["cp", "cpa:/src/.", "cpb:/flat"]).ok();
    assert_eq!(
        d.docker(&[
            "exec",
            &b,
            "cat",
            "/into/src/sub/one",
            "/renamed",
            "/flat/sub/one"
        ])
        .ok(),
        "one\nf\none"
    );
    // And the docker-compatible directions through the berth CLI.
    let host = tempfile::tempdir().unwrap();
    d.berth(&["cp", "cpa:/src", host.path().to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.path().join("src/sub/one")).unwrap(),
        "one\n"
    );
    std::fs::write(host.path().join("h"), "h\n").unwrap();
    std::os::unix::fs::chown(host.path().join("h"), Some(42), Some(43)).unwrap();
    d.berth(&["cp", host.path().join("h").to_str().unwrap(), "cpa:/src/"])
        .ok();
    assert_eq!(
        d.docker(&["exec", &a, "stat", "-c", "%u:%g %s", "/src/h"])
            .ok(),
        "42:43 2"
    );
    let o = d.berth(&["cp", "cpa:/nosuch", host.path().to_str().unwrap()]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Could not find the file /nosuch in container cpa"),
        "{o:?}"
    );
    let m = std::fs::metadata(host.path().join("src/sub/one")).unwrap();
    assert_eq!(m.uid(), 0);
    d.docker(&["rm", "-f", &a, &b]).ok();
}
