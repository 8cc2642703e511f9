//! Prune and disk usage through the real docker CLI (and the berth CLI): `container prune`,
//! `image prune` (dangling, `-a`, `label`/`until` filters), `system df` (`-v`, `--format`)
//! and `berth system prune`, asserting output, exit codes and the host: what `du` says the
//! data-root lost matches the "Total reclaimed space" the command printed; running
//! containers and images in use stay; pruned containers leave no mounts behind.
use std::collections::BTreeSet;
use std::path::Path;

use berth_e2e::*;

/// `du -s -B1`: bytes used on disk.
fn du(p: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// go-units `HumanSize` back to bytes (4 significant digits).
fn parse_human(s: &str) -> u64 {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    };
    (num.parse::<f64>().unwrap() * mult) as u64
}

fn reclaimed(out: &str) -> u64 {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in {out}"));
    parse_human(line)
}

/// The reported bytes are what the data-root lost, within rounding of the printed figure
/// and a few metadata blocks (state files rewritten meanwhile).
#[track_caller]
fn assert_honest(reported: u64, before: u64, after: u64) {
    let freed = before.saturating_sub(after) as f64;
    let tol = (reported as f64 * 0.01).max(64.0 * 1024.0);
    assert!(
        (freed - reported as f64).abs() <= tol,
        "reported {reported} bytes, du freed {freed} (before {before}, after {after})"
    );
}

fn ids_in(out: &str, header: &str) -> BTreeSet<String> {
    out.split(header)
        .nth(1)
        .unwrap_or("")
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn container_prune_removes_stopped_only() {
    let Some(d) = setup() else { return };
    let exited = d
        .docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/blob bs=1M count=3 2>/dev/null",
        ])
        .ok();
    let created = d.docker(&["create", "busybox"]).ok();
    let kept = d.docker(&["create", "--label", "keep=1", "busybox"]).ok();
    let running = d
        .docker(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"])
        .ok();
    d.wait_status(&exited, "exited", std::time::Duration::from_secs(20));

    // Without -f: the prompt, answered by EOF, removes nothing.
    let o = d.docker(&["container", "prune"]);
    assert_eq!(o.code, 0);
    assert!(
        o.stdout
            .starts_with("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "),
        "{}",
        o.stdout
    );
    assert_eq!(d.all_container_ids().len(), 4);

    // `until` in the past matches nothing.
    let o = d
        .docker(&["container", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(o, "Total reclaimed space: 0B");

    let before = du(&d.data_root);
    let o = d
        .docker(&["container", "prune", "-f", "--filter", "label!=keep"])
        .ok();
    let after = du(&d.data_root);
    assert_eq!(
        ids_in(&o, "Deleted Containers:"),
        [exited.clone(), created.clone()].into_iter().collect()
    );
    let total = reclaimed(&o);
    assert!(total >= 3_000_000, "{o}");
    if !is_reference() {
        assert_honest(total, before, after);
        for id in [&exited, &created] {
            assert!(!d.data_root.join("containers").join(id).exists());
            assert!(!d.exec_root.join("c").join(id).exists());
        }
        assert!(
            d.mounts_under_roots()
                .iter()
                .all(|m| !m.to_string_lossy().contains(&exited)),
            "{:?}",
            d.mounts_under_roots()
        );
    }
    let left: BTreeSet<String> = d.all_container_ids().into_iter().collect();
    assert_eq!(left, [kept.clone(), running.clone()].into_iter().collect());
    assert_eq!(d.status(&running), "running");

    // The berth CLI, and the label filter the other way.
    let cli = if is_reference() { "docker" } else { "berth" };
    let o = if cli == "berth" {
        d.berth(&["container", "prune", "-f", "--filter", "label=keep=1"])
    } else {
        d.docker(&["container", "prune", "-f", "--filter", "label=keep=1"])
    };
    let o = o.ok();
    assert_eq!(
        ids_in(&o, "Deleted Containers:"),
        [kept].into_iter().collect()
    );
    assert_eq!(d.all_container_ids(), vec![running.clone()]);
    d.docker(&["rm", "-f", &running]).ok();
}

#[test]
fn image_prune_dangling_then_all() {
    let Some(d) = setup() else { return };
    let user = d.docker(&["create", "busybox"]).ok();
    let mk = |cmd: &str, reference: Option<&str>, label: &str| -> String {
        let c = d
            .docker(&["run", "-d", "--network", "none", "busybox", "sh", "-c", cmd])
            .ok();
        d.wait_status(&c, "exited", std::time::Duration::from_secs(20));
        let mut args = vec!["commit", "-c", label, c.as_str()];
        if let Some(r) = reference {
            args.push(r);
        }
        let id = d.docker(&args).ok();
        d.docker(&["rm", &c]).ok();
        id
    };
    let dangling = mk(
        "dd if=/dev/zero of=/a bs=1M count=2 2>/dev/null",
        None,
        "LABEL kind=scratch",
    );
    let tagged = mk(
        "dd if=/dev/zero of=/b bs=1M count=3 2>/dev/null",
        Some("keepme:1"),
        "LABEL kind=release",
    );
    let old_tag = mk("echo > /c", Some("other:1"), "LABEL kind=release");
    d.docker(&["tag", &tagged, "keepme:2"]).ok();
    // A tag moved away leaves a dangling image too.
    let moved = mk("echo > /d", Some("other:1"), "LABEL kind=release");
    let _ = moved;

    let o = d.docker(&["image", "prune"]);
    assert!(o
        .stdout
        .starts_with("WARNING! This will remove all dangling images."));
    assert_eq!(d.all_image_ids().len(), 5);

    // Dangling only (and the filter narrows it).
    let o = d
        .docker(&["image", "prune", "-f", "--filter", "label=kind=release"])
        .ok();
    let del = ids_in(&o, "Deleted Images:");
    assert!(del.contains(&format!("deleted: {old_tag}")), "{o}");
    assert!(!del.contains(&format!("deleted: {dangling}")), "{o}");
    let before = du(&d.data_root);
    let o = d.docker(&["image", "prune", "-f"]).ok();
    let after = du(&d.data_root);
    let del = ids_in(&o, "Deleted Images:");
    assert!(del.contains(&format!("deleted: {dangling}")), "{o}");
    assert!(del.iter().all(|l| !l.starts_with("untagged:")), "{o}");
    let total = reclaimed(&o);
    assert!(total >= 2_000_000, "{o}");
    if !is_reference() {
        assert_honest(total, before, after);
    }
    assert!(d.docker(&["image", "inspect", &dangling]).code != 0);

    // `until` in the past: nothing.
    let o = d
        .docker(&["image", "prune", "-a", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(o, "Total reclaimed space: 0B");

    // -a: every image no container uses, tags first; busybox stays (a container uses it).
    let before = du(&d.data_root);
    let cli_out = if is_reference() {
        d.docker(&["image", "prune", "-a", "-f"])
    } else {
        d.berth(&["image", "prune", "-a", "-f"])
    };
    let o = cli_out.ok();
    let after = du(&d.data_root);
    let del = ids_in(&o, "Deleted Images:");
    for l in [
        "untagged: keepme:1".to_owned(),
        "untagged: keepme:2".to_owned(),
        format!("deleted: {tagged}"),
    ] {
        assert!(del.contains(&l), "{l} not in {o}");
    }
    let total = reclaimed(&o);
    assert!(total >= 3_000_000, "{o}");
    if !is_reference() {
        assert_honest(total, before, after);
    }
    let left = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    assert_eq!(left, "busybox:latest");
    d.docker(&["rm", &user]).ok();
    let o = d.docker(&["image", "prune", "-f", "--filter", "bogus=1"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Invalid filter 'bogus'"), "{}", o.stderr);
}

#[test]
fn system_df_reports_what_prune_frees() {
    let Some(d) = setup() else { return };
    let c = d
        .docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/blob bs=1M count=2 2>/dev/null",
        ])
        .ok();
    d.wait_status(&c, "exited", std::time::Duration::from_secs(20));
    d.docker(&["commit", &c, "big:1"]).ok();
    let running = d
        .docker(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"])
        .ok();

    let o = d
        .docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
        ])
        .ok();
    let rows: Vec<Vec<String>> = o
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{o}");
    assert_eq!(rows[0][..3], ["Images", "2", "1"]);
    assert_eq!(rows[1][..3], ["Containers", "2", "1"]);
    assert_eq!(rows[2][0], "Local Volumes");
    assert_eq!(rows[3][0], "Build Cache");
    let table = d.docker(&["system", "df"]).ok();
    assert!(
        table.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"),
        "{table}"
    );
    let v = d.docker(&["system", "df", "-v"]).ok();
    assert!(v.contains("Images space usage:"), "{v}");
    assert!(v.contains("big          1"), "{v}");
    assert!(v.contains("Containers space usage:"), "{v}");
    assert!(v.contains(&c[..12]) && v.contains(&running[..12]), "{v}");

    if !is_reference() {
        // Images' SIZE is what the store holds on disk (layers + configs), and the
        // reclaimable part of stopped containers is what container prune frees.
        let store = du(&d.data_root.join("snapshots")) + du(&d.data_root.join("content"));
        let size = parse_human(&rows[0][3]) as f64;
        assert!(
            (size - store as f64).abs() <= size * 0.01 + 64.0 * 1024.0,
            "df says {size}, du says {store}"
        );
        let rec_containers = parse_human(rows[1][4].split(' ').next().unwrap());
        let before = du(&d.data_root);
        let o = d.docker(&["container", "prune", "-f"]).ok();
        let after = du(&d.data_root);
        let total = reclaimed(&o);
        assert!(total >= rec_containers, "{o} vs {rows:?}");
        assert_honest(total, before, after);

        // The berth CLI shows the same table.
        let b = d
            .berth(&[
                "system",
                "df",
                "--format",
                "{{.Type}}|{{.TotalCount}}|{{.Active}}",
            ])
            .ok();
        let dk = d
            .docker(&[
                "system",
                "df",
                "--format",
                "{{.Type}}|{{.TotalCount}}|{{.Active}}",
            ])
            .ok();
        assert_eq!(b, dk);
        let bv = d.berth(&["system", "df", "-v"]).ok();
        assert!(
            bv.contains("Images space usage:") && bv.contains("big          1"),
            "{bv}"
        );

        // berth system prune: stopped containers, dangling images; -a: unused images.
        d.docker(&["stop", "-t", "0", &running]).ok();
        let o = d.berth(&["system", "prune"]);
        assert_eq!(o.code, 0);
        assert!(
            o.stdout
                .starts_with("WARNING! This will remove:\n  - all stopped containers\n"),
            "{}",
            o.stdout
        );
        assert_eq!(d.all_container_ids().len(), 1);
        let before = du(&d.data_root);
        let o = d.berth(&["system", "prune", "-a", "-f"]).ok();
        let after = du(&d.data_root);
        assert!(o.contains("Deleted Containers:"), "{o}");
        assert!(
            o.contains("untagged: big:1") && o.contains("untagged: busybox:latest"),
            "{o}"
        );
        assert_honest(reclaimed(&o), before, after);
        assert_eq!(d.all_container_ids().len(), 0);
        assert_eq!(d.all_image_ids().len(), 0);
        assert!(
            d.mounts_under_roots().is_empty(),
            "{:?}",
            d.mounts_under_roots()
        );
        let o = d.berth(&["system", "prune", "-f"]).ok();
        assert_eq!(o, "Total reclaimed space: 0B");
    }
}

#[test]
fn images_filters() {
    let Some(d) = setup() else { return };
    let commit = |label: &str, reference: Option<&str>| -> String {
        let c = d.docker(&["create", "busybox"]).ok();
        let mut args = vec!["commit", "-c", label, c.as_str()];
        if let Some(r) = reference {
            args.push(r);
        }
        let id = d.docker(&args).ok();
        d.docker(&["rm", &c]).ok();
        id
    };
    let a = commit("LABEL x=1", Some("alpha:1"));
    let b = commit("LABEL x=2", Some("beta:1"));
    let c = commit("LABEL y=1", None);
    let list = |f: &[&str]| -> BTreeSet<String> {
        let mut args = vec!["images", "--no-trunc", "--format", "{{.ID}}"];
        for x in f {
            args.push("--filter");
            args.push(x);
        }
        d.docker(&args).ok().lines().map(str::to_owned).collect()
    };
    let set = |v: &[&String]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    let bb = d.inspect("busybox", "{{.Id}}");
    assert_eq!(list(&["dangling=true"]), set(&[&c]));
    assert_eq!(list(&["dangling=false"]), set(&[&a, &b, &bb]));
    assert_eq!(list(&["label=x=1"]), set(&[&a]));
    assert_eq!(list(&["label=x"]), set(&[&a, &b]));
    assert_eq!(list(&["label=x", "label=x=2"]), set(&[&b]));
    assert_eq!(list(&["reference=be*"]), set(&[&b]));
    assert_eq!(list(&["before=beta:1"]), set(&[&a, &bb]));
    assert_eq!(list(&["since=alpha:1"]), set(&[&b, &c]));
    assert_eq!(list(&["since=alpha:1", "dangling=false"]), set(&[&b]));
    let o = d.docker(&["images", "--filter", "before=nosuch:9"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("nosuch"), "{}", o.stderr);
}
