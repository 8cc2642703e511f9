//! `docker diff` and `docker export` through the real docker CLI (and the berth CLI), for
//! running and stopped containers, with hostile symlinks inside the container.
use std::time::Duration;

use berth_e2e::*;

#[test]
fn diff_lists_added_changed_and_deleted() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&run_args(&[
            "--name",
            "df",
            "busybox",
            "sh",
            "-c",
            "mkdir /newdir && echo x > /newdir/f && echo y >> /etc/passwd && rm /bin/vi",
        ]))
        .code;
    assert_eq!(id, 0);
    let out = d.docker(&["diff", "df"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "A /newdir",
        "A /newdir/f",
        "C /etc",
        "C /etc/passwd",
        "C /bin",
        "D /bin/vi",
    ] {
        assert!(lines.contains(&want), "{want} not in {out}");
    }
    // The same through the berth CLI.
    assert_eq!(d.berth(&["diff", "df"]).ok(), out);
    // A fresh container has no changes; an unknown one is a 404.
    let fresh = d
        .docker(&["create", "--network", "none", "busybox", "true"])
        .ok();
    assert_eq!(d.docker(&["diff", &fresh]).ok(), "");
    let o = d.docker(&["diff", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
}

fn tar_listing(tar: &[u8]) -> Vec<(String, tar::EntryType, String)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            (
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
                link,
            )
        })
        .collect()
}

#[test]
fn export_running_and_stopped_containers() {
    let Some(d) = setup() else { return };
    // Links pointing at the host's root and out of the rootfs: exported as links, and the
    // host files behind them are never read.
    let id = d
        .docker(&run_args(&[
            "-d",
            "busybox",
            "sh",
            "-c",
            "echo secret-in-ctr > /data.txt && ln -s / /hostroot && ln -s ../../../../etc/shadow /esc && mkfifo /fifo && sleep 1000",
        ]))
        .ok();
    eventually("the container's files", Duration::from_secs(10), || {
        d.docker(&["exec", &id, "test", "-p", "/fifo"]).code == 0
    });
    let out = d.root.join("running.tar");
    d.docker(&["export", "-o", out.to_str().unwrap(), &id]).ok();
    let data = std::fs::read(&out).unwrap();
    let list = tar_listing(&data);
    let find = |n: &str| {
        list.iter()
            .find(|(p, _, _)| p == n)
            .unwrap_or_else(|| panic!("{n} not in export"))
    };
    assert_eq!(find("bin/busybox").1, tar::EntryType::Regular);
    assert_eq!(find("data.txt").1, tar::EntryType::Regular);
    assert_eq!(find("hostroot").1, tar::EntryType::Symlink);
    assert_eq!(find("hostroot").2, "/");
    assert_eq!(find("esc").2, "../../../../etc/shadow");
    assert_eq!(find("fifo").1, tar::EntryType::Fifo);
    assert!(
        !list.iter().any(|(p, _, _)| p.starts_with("hostroot/")),
        "followed a link out of the root"
    );

    // Stopped: exported from a temporary mount, then nothing is left mounted.
    d.docker(&["stop", "-t", "0", &id]).ok();
    let before = d.mounts_under_roots();
    let o = d.docker_cmd(&["export", &id]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let list = tar_listing(&o.stdout);
    assert!(list.iter().any(|(p, _, _)| p == "data.txt"));
    assert_eq!(d.mounts_under_roots(), before);
    // Imported back, the exported filesystem runs.
    let o = d.docker_stdin(&["import", "-", "exported:1"], &o.stdout);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        d.docker(&run_args(&["--rm", "exported:1", "cat", "/data.txt"]))
            .ok(),
        "secret-in-ctr"
    );

    let o = d.docker(&["export", "-o", out.to_str().unwrap(), "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
}
