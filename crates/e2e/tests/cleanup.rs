//! Many containers at once: `stop $(ps -q)` and `rm -f $(ps -aq)` (the docker CLI sends
//! them in parallel), `container prune`, and nothing left on the host afterwards: no
//! mounts under the daemon's roots, no cgroup directories, no container state, no veths.
use std::path::Path;
use std::time::Duration;

use berth_e2e::net::links_on;
use berth_e2e::{eventually, setup};

const N: usize = 12;

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn stop_and_remove_many_in_parallel_leaves_nothing() {
    let Some(d) = setup() else { return };
    // A mix: default network (veth, IPAM), an anonymous volume, a tmpfs, a bind, a
    // memory limit (cgroup files), a TTY.
    let bind = d.root.join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    let bind_arg = format!("{}:/b", bind.display());
    let mut ids = Vec::new();
    for i in 0..N {
        let name = format!("many{i}");
        let mut args = vec!["run", "-d", "--name", name.as_str()];
        match i % 4 {
            0 => args.extend(["-v", "/anon"]),
            1 => args.extend(["--tmpfs", "/scratch", "-m", "64m"]),
            2 => args.extend(["-v", bind_arg.as_str()]),
            _ => args.extend(["-t", "--network", "none"]),
        }
        args.extend(["busybox", "sleep", "600"]);
        ids.push(d.docker(&args).ok());
    }
    // Two that already exited, for prune.
    for i in 0..2 {
        let name = format!("done{i}");
        d.docker(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .ok();
    }
    let running = d.docker(&["ps", "-q"]).ok();
    assert_eq!(running.lines().count(), N, "{running}");
    if let Some(net) = &d.net {
        assert_eq!(
            links_on(&net.bridge).len(),
            N - N / 4,
            "one veth per bridged container"
        );
    }

    // `docker stop $(docker ps -q)`: every container stops (sleep ignores SIGTERM as PID 1,
    // so each one is killed after the timeout, all in parallel).
    let mut stop = vec!["stop", "-t", "1"];
    stop.extend(running.lines());
    let out = d.docker(&stop).ok();
    assert_eq!(out.lines().count(), N, "{out}");
    assert_eq!(d.docker(&["ps", "-q"]).ok(), "");
    for id in &ids {
        assert_eq!(d.status(id), "exited");
        assert!(!d.cgroup_dir("memory", id).exists(), "cgroup of {id} left");
    }

    // `container prune` removes the stopped ones... all of them here; restart a few first
    // so prune must leave the running ones alone.
    d.docker(&["start", "many0", "many1"]).ok();
    let pruned = d.docker(&["container", "prune", "-f"]).ok();
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    let left = d.docker(&["ps", "-aq"]).ok();
    assert_eq!(left.lines().count(), 2, "{left}");

    // `docker rm -f $(docker ps -aq)` on what still runs.
    let mut rm = vec!["rm", "-f", "-v"];
    rm.extend(left.lines());
    d.docker(&rm).ok();
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");

    // Nothing left behind on the host.
    eventually(
        "no mounts under the daemon's roots",
        Duration::from_secs(10),
        || d.mounts_under_roots().is_empty(),
    );
    for id in &ids {
        for ctrl in ["memory", "pids", "cpu", "freezer"] {
            assert!(
                !d.cgroup_dir(ctrl, id).exists(),
                "{ctrl} cgroup of {id} left"
            );
        }
    }
    if !berth_e2e::is_reference() {
        // A removed container's files are deleted in the background.
        eventually(
            "no container directories left",
            Duration::from_secs(10),
            || entries(&d.data_root.join("containers")).is_empty(),
        );
        assert_eq!(entries(&d.exec_root.join("c")), Vec::<String>::new());
        assert_eq!(
            entries(&d.data_root.join("image/holds")),
            Vec::<String>::new()
        );
    }
    if let Some(net) = &d.net {
        // Released veths are deleted in the background (the kernel's delete is slow).
        eventually(
            &format!("no veths left on {}", net.bridge),
            Duration::from_secs(10),
            || links_on(&net.bridge).is_empty(),
        );
    }
    // The bind source is untouched. `rm -v` took many0's anonymous volume; `container
    // prune` keeps volumes, as Docker: those of many4 and many8 are still there.
    assert!(bind.is_dir());
    let vols = d.docker(&["volume", "ls", "-q"]).ok();
    assert_eq!(vols.lines().count(), 2, "{vols}");
}
