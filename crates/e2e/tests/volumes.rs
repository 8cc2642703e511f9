//! Volumes through the real docker CLI (and the berth CLI): `volume create/ls/inspect/rm/
//! prune`, `-v name:/path[:ro]`, anonymous volumes (image `VOLUME`, `-v /path`), `--mount`,
//! `--tmpfs`, `--volumes-from`, population from the image, `rm -v`, the local driver's
//! tmpfs and bind options, volume events; with assertions on the host (`_data`,
//! /proc/mounts).
use std::path::PathBuf;
use std::time::Duration;

use berth_e2e::*;

fn vol_data(d: &Daemon, name: &str) -> PathBuf {
    d.data_root.join("volumes").join(name).join("_data")
}

/// Mounts under the daemon's roots (dockerd keeps its data-root bind-mounted).
fn leftover_mounts(d: &Daemon) -> Vec<PathBuf> {
    d.mounts_under_roots()
        .into_iter()
        .filter(|m| *m != d.data_root)
        .collect()
}

fn volume_names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["volume", "ls", "-q"]).ok();
    out.lines().map(str::to_owned).collect()
}

/// A busybox image with `/seed/file` and `/seed/sub/deep` and `VOLUME /seed`.
fn seeded_image(d: &Daemon) {
    let mut b = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(std::fs::File::open(busybox_tar()).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        if let Some(l) = e.link_name().unwrap() {
            let l = l.into_owned();
            b.append_link(&mut h, &path, &l).unwrap();
        } else {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            b.append_data(&mut h, &path, &data[..]).unwrap();
        }
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(65534);
    h.set_gid(65534);
    h.set_size(0);
    b.append_data(&mut h, "seed/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(11);
    b.append_data(&mut h, "seed/file", &b"from-image\n"[..])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(5);
    b.append_data(&mut h, "seed/sub/deep", &b"deep\n"[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    let out = d.docker_stdin(
        &[
            "import",
            "--change",
            "VOLUME /seed",
            "--change",
            "CMD [\"sh\"]",
            "-",
            "seeded:latest",
        ],
        &tar,
    );
    out.ok();
}

#[test]
fn volume_create_ls_inspect_rm() {
    let Some(d) = setup() else { return };
    assert_eq!(d.docker(&["volume", "create", "v1"]).ok(), "v1");
    // Creating an existing volume is not an error and returns it.
    assert_eq!(d.docker(&["volume", "create", "v1"]).ok(), "v1");
    assert_eq!(
        d.docker(&[
            "volume",
            "create",
            "--label",
            "tier=db",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=5m",
            "v2",
        ])
        .ok(),
        "v2"
    );
    assert!(vol_data(&d, "v1").is_dir());
    let ls = d.docker(&["volume", "ls"]).ok();
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "DRIVER    VOLUME NAME");
    assert!(lines.contains(&"local     v1"), "{ls}");
    assert!(lines.contains(&"local     v2"), "{ls}");
    assert_eq!(
        d.docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}",
            "v1"
        ])
        .ok(),
        format!("v1 local local {}", vol_data(&d, "v1").display())
    );
    assert_eq!(
        d.docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Labels.tier}} {{.Options.type}} {{.Options.o}}",
            "v2"
        ])
        .ok(),
        "db tmpfs size=5m"
    );
    assert_eq!(
        d.docker(&["volume", "ls", "-q", "--filter", "label=tier=db"])
            .ok(),
        "v2"
    );
    assert_eq!(
        d.docker(&["volume", "ls", "-q", "--filter", "name=v1"])
            .ok(),
        "v1"
    );
    assert_eq!(
        d.docker(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}}:{{.Driver}}",
            "--filter",
            "name=v2"
        ])
        .ok(),
        "v2:local"
    );
    // Bad names and unknown volumes: Docker's messages, exit 1.
    let o = d.docker(&["volume", "create", "bad name"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("includes invalid characters for a local volume name"),
        "{o:?}"
    );
    let o = d.docker(&["volume", "create", "-o", "bogus=1", "v3"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("create v3: invalid option: \"bogus\""),
        "{o:?}"
    );
    assert!(!volume_names(&d).contains(&"v3".to_string()));
    let o = d.docker(&["volume", "inspect", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no such volume"), "{o:?}");
    let o = d.docker(&["volume", "rm", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("get nosuch: no such volume"), "{o:?}");
    d.docker(&["volume", "rm", "-f", "nosuch"]).ok();
    assert_eq!(d.docker(&["volume", "rm", "v1", "v2"]).ok(), "v1\nv2");
    assert!(!d.data_root.join("volumes/v1").exists());
    assert!(volume_names(&d).is_empty());
    // The same through the berth CLI.
    if !is_reference() {
        assert_eq!(
            d.berth(&["volume", "create", "--label", "a=b", "bv"]).ok(),
            "bv"
        );
        assert_eq!(
            d.berth(&["volume", "ls"]).ok(),
            "DRIVER    VOLUME NAME\nlocal     bv"
        );
        assert_eq!(d.berth(&["volume", "ls", "-q", "-f", "label=a"]).ok(), "bv");
        assert_eq!(
            d.berth(&["volume", "inspect", "-f", "{{.Labels.a}}", "bv"])
                .ok(),
            "b"
        );
        let o = d.berth(&["volume", "rm", "bv", "nosuch"]);
        assert_eq!(o.code, 1);
        assert_eq!(o.stdout, "bv\n");
        assert!(o.stderr.contains("get nosuch: no such volume"), "{o:?}");
    }
}

#[test]
fn named_volume_survives_containers_and_refuses_rm_in_use() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&[
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]))
    .ok();
    assert_eq!(
        std::fs::read_to_string(vol_data(&d, "data").join("f")).unwrap(),
        "kept\n"
    );
    // In use by a stopped container: refused, with the container named.
    let id = d.container_id("writer");
    assert_eq!(
        d.docker(&["ps", "-aq", "--no-trunc", "--filter", "volume=data"])
            .ok(),
        id
    );
    assert_eq!(
        d.docker(&["ps", "-aq", "--no-trunc", "--filter", "volume=/data"])
            .ok(),
        id
    );
    assert_eq!(
        d.docker(&["ps", "-aq", "--filter", "volume=other"]).ok(),
        ""
    );
    let o = d.docker(&["volume", "rm", "data"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains(&format!("remove data: volume is in use - [{id}]")),
        "{o:?}"
    );
    assert!(vol_data(&d, "data").join("f").exists());
    // `rm -v` never removes named volumes.
    d.docker(&["rm", "-v", "writer"]).ok();
    assert_eq!(
        d.docker(&run_args(&[
            "--rm",
            "-v",
            "data:/other:ro",
            "busybox",
            "cat",
            "/other/f"
        ]))
        .ok(),
        "kept"
    );
    let o = d.docker(&run_args(&[
        "--rm",
        "-v",
        "data:/other:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /other/g",
    ]));
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!vol_data(&d, "data").join("g").exists());
    let mounts = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            "data:/data:ro",
            "busybox",
            "true",
        ])
        .ok();
    let m = d.inspect(
        &mounts,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Mode}}{{end}}",
    );
    assert_eq!(m, "volume data /data false ro");
    d.docker(&["rm", &mounts]).ok();
    d.docker(&["volume", "rm", "data"]).ok();
    assert!(!d.data_root.join("volumes/data").exists());
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
}

#[test]
fn new_volumes_are_populated_from_the_image() {
    let Some(d) = setup() else { return };
    seeded_image(&d);
    // Anonymous volume from the image's VOLUME: populated.
    let id = d.docker(&run_args(&["-d", "seeded", "sleep", "1000"])).ok();
    let anon = d.inspect(&id, "{{range .Mounts}}{{.Name}}{{end}}");
    assert_eq!(anon.len(), 64, "{anon}");
    assert_eq!(
        d.inspect(
            &id,
            "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}"
        ),
        "volume /seed true"
    );
    assert_eq!(
        d.docker(&["exec", &id, "cat", "/seed/file", "/seed/sub/deep"])
            .ok(),
        "from-image\ndeep"
    );
    assert_eq!(
        std::fs::read_to_string(vol_data(&d, &anon).join("sub/deep")).unwrap(),
        "deep\n"
    );
    // The volume root takes the owner and mode of the image's directory.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(vol_data(&d, &anon)).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o750));
    // A new named volume is populated; once it holds data it is never overwritten.
    d.docker(&run_args(&[
        "--rm",
        "-v",
        "pop:/seed",
        "seeded",
        "sh",
        "-c",
        "echo changed > /seed/file",
    ]))
    .ok();
    assert_eq!(
        d.docker(&run_args(&[
            "--rm",
            "-v",
            "pop:/seed",
            "seeded",
            "cat",
            "/seed/file",
            "/seed/sub/deep"
        ]))
        .ok(),
        "changed\ndeep"
    );
    // nocopy: left empty.
    assert_eq!(
        d.docker(&run_args(&[
            "--rm",
            "-v",
            "empty:/seed:nocopy",
            "seeded",
            "ls",
            "-A",
            "/seed"
        ]))
        .ok(),
        ""
    );
    // A bind over the image's VOLUME wins and creates no anonymous volume.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host\n").unwrap();
    let before = volume_names(&d).len();
    let bind = format!("{}:/seed", host.path().display());
    assert_eq!(
        d.docker(&run_args(&["--rm", "-v", &bind, "seeded", "ls", "/seed"]))
            .ok(),
        "h"
    );
    assert_eq!(volume_names(&d).len(), before);
    d.docker(&["rm", "-f", &id]).ok();
}

#[test]
fn rm_v_removes_anonymous_volumes_only() {
    let Some(d) = setup() else { return };
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            "/anon",
            "-v",
            "keep:/keep",
            "busybox",
            "true",
        ])
        .ok();
    let anon = d.inspect(
        &id,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
    );
    assert!(volume_names(&d).contains(&anon));
    d.docker(&["start", "-a", &id]).ok();
    d.docker(&["rm", "-v", &id]).ok();
    let names = volume_names(&d);
    assert!(!names.contains(&anon), "{names:?}");
    assert!(names.contains(&"keep".to_string()), "{names:?}");
    assert!(!d.data_root.join("volumes").join(&anon).exists());
    // Without -v the anonymous volume stays (dangling).
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            "/anon2",
            "busybox",
            "true",
        ])
        .ok();
    let anon2 = d.inspect(&id, "{{range .Mounts}}{{.Name}}{{end}}");
    d.docker(&["rm", &id]).ok();
    assert!(volume_names(&d).contains(&anon2));
    assert!(d
        .docker(&["volume", "ls", "-q", "-f", "dangling=true"])
        .ok()
        .contains(&anon2));
    // --rm takes its anonymous volumes with it.
    let before = volume_names(&d);
    d.docker(&run_args(&["--rm", "-v", "/anon3", "busybox", "true"]))
        .ok();
    eventually(
        "the --rm container's volume is gone",
        Duration::from_secs(10),
        || volume_names(&d) == before,
    );
}

#[test]
fn prune_follows_the_api_version() {
    let Some(d) = setup() else { return };
    d.docker(&["volume", "create", "unused-named"]).ok();
    d.docker(&["volume", "create", "--label", "keep=1", "labelled"])
        .ok();
    d.docker(&["volume", "create", "inuse"]).ok();
    let c = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            "inuse:/x",
            "-v",
            "/a",
            "busybox",
            "true",
        ])
        .ok();
    let id = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            "/dangling",
            "busybox",
            "true",
        ])
        .ok();
    let dangling = d.inspect(&id, "{{range .Mounts}}{{.Name}}{{end}}");
    d.docker(&["rm", &id]).ok();
    let out = d.docker(&["volume", "prune", "-f"]).ok();
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert!(out.contains(&dangling), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let names = volume_names(&d);
    assert!(!names.contains(&dangling));
    assert!(names.contains(&"inuse".to_string()));
    if is_reference() {
        // Docker 20.10 (API 1.41) prunes named volumes too.
        assert!(!names.contains(&"unused-named".to_string()), "{names:?}");
        return;
    }
    // API ≥ 1.42: anonymous only, unless --all.
    assert!(names.contains(&"unused-named".to_string()), "{names:?}");
    // The older API prunes everything unused (a filter keeps the labelled one).
    let r = d
        .http(
            "POST",
            "/v1.41/volumes/prune?filters=%7B%22label!%22%3A%7B%22keep%22%3Atrue%7D%7D",
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["VolumesDeleted"],
        serde_json::json!(["unused-named"])
    );
    let out = d.docker(&["volume", "prune", "-a", "-f"]).ok();
    assert!(out.contains("labelled"), "{out}");
    let names = volume_names(&d);
    assert!(names.contains(&"inuse".to_string()), "{names:?}");
    d.docker(&["rm", "-v", &c]).ok();
    assert_eq!(
        d.berth(&["volume", "prune", "-a", "-f"]).ok(),
        "Deleted Volumes:\ninuse\n\nTotal reclaimed space: 0B"
    );
    assert!(volume_names(&d).is_empty());
}

#[test]
fn mount_tmpfs_and_volumes_from() {
    let Some(d) = setup() else { return };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "hostdata\n").unwrap();
    let bind = format!("type=bind,src={},dst=/b,readonly", host.path().display());
    let id = d
        .docker(&run_args(&[
            "-d",
            "--name",
            "m1",
            "--mount",
            "type=volume,src=mv,dst=/m",
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "--tmpfs",
            "/run2:size=2m",
            "busybox",
            "sleep",
            "1000",
        ]))
        .ok();
    let mounts = d.docker(&["exec", &id, "cat", "/proc/mounts"]).ok();
    let line = |dst: &str| {
        mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(dst))
            .unwrap_or_else(|| panic!("{dst} not mounted: {mounts}"))
            .to_owned()
    };
    assert!(
        line("/t").starts_with("tmpfs /t tmpfs rw,nosuid,nodev,noexec"),
        "{}",
        line("/t")
    );
    assert!(line("/t").contains("size=1024k"), "{}", line("/t"));
    assert!(line("/run2").contains("size=2048k"), "{}", line("/run2"));
    assert!(line("/b").contains(" ro,"), "{}", line("/b"));
    assert_eq!(d.docker(&["exec", &id, "cat", "/b/in"]).ok(), "hostdata");
    let o = d.docker(&["exec", &id, "sh", "-c", "echo x > /b/new"]);
    assert_ne!(o.code, 0);
    assert!(!host.path().join("new").exists());
    d.docker(&["exec", &id, "sh", "-c", "echo shared > /m/f"])
        .ok();
    assert_eq!(
        d.inspect(&id, "{{json .HostConfig.Tmpfs}}"),
        "{\"/run2\":\"size=2m\"}"
    );
    let types = d.inspect(
        &id,
        "{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}} {{end}}",
    );
    for want in ["bind:/b:false", "volume:/m:true", "tmpfs:/t:true"] {
        assert!(types.contains(want), "{want} not in {types}");
    }
    // --volumes-from: the same mounts; `:ro` makes them read-only. (dockerd 20.10 cannot
    // take mounts from a container with a tmpfs `--mount`: the source has none.)
    let bind2 = format!("{}:/b:ro", host.path().display());
    d.docker(&[
        "create",
        "--name",
        "vf",
        "--network",
        "none",
        "-v",
        "mv:/m",
        "-v",
        &bind2,
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.docker(&run_args(&[
            "--rm",
            "--volumes-from",
            "vf",
            "busybox",
            "cat",
            "/m/f",
            "/b/in"
        ]))
        .ok(),
        "shared\nhostdata"
    );
    let o = d.docker(&run_args(&[
        "--rm",
        "--volumes-from",
        "vf:ro",
        "busybox",
        "sh",
        "-c",
        "echo y > /m/g",
    ]));
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    d.docker(&run_args(&[
        "--rm",
        "--volumes-from",
        "vf",
        "busybox",
        "sh",
        "-c",
        "echo y > /m/g",
    ]))
    .ok();
    assert!(vol_data(&d, "mv").join("g").exists());
    let o = d.docker(&[
        "create",
        "--network",
        "none",
        "--volumes-from",
        "nosuch",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    d.docker(&["rm", "-f", &id, "vf"]).ok();
    // --mount creates its volume with the labels and options it carries; volume-subpath
    // mounts a directory of the volume.
    d.docker(&run_args(&[
        "--rm",
        "--mount",
        "type=volume,src=labelled,dst=/l,volume-label=team=ops",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /l/sub && echo s > /l/sub/f",
    ]))
    .ok();
    assert_eq!(
        d.docker(&["volume", "inspect", "-f", "{{.Labels.team}}", "labelled"])
            .ok(),
        "ops"
    );
    if !is_reference() {
        // (subpath needs API 1.45)
        assert_eq!(
            d.docker(&run_args(&[
                "--rm",
                "--mount",
                "type=volume,src=labelled,dst=/s,volume-subpath=sub",
                "busybox",
                "ls",
                "/s",
            ]))
            .ok(),
            "f"
        );
        let o = d.docker(&run_args(&[
            "--rm",
            "--mount",
            "type=volume,src=labelled,dst=/s,volume-subpath=nosuch",
            "busybox",
            "true",
        ]));
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("subpath"), "{o:?}");
    }
    // The berth CLI takes the same flags.
    if !is_reference() {
        assert_eq!(
            d.berth(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--mount",
                "type=volume,src=mv,dst=/m,readonly",
                "--tmpfs",
                "/x",
                "busybox",
                "sh",
                "-c",
                "cat /m/f && grep -c ' /x tmpfs' /proc/mounts",
            ])
            .ok(),
            "shared\n1"
        );
    }
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
}

#[test]
fn malformed_mounts_are_refused_with_dockers_errors() {
    let Some(d) = setup() else { return };
    let before = volume_names(&d);
    for (spec, want) in [
        ("type=bogus,dst=/x", "invalid mount config for type \"bogus\": mount type unknown"),
        ("type=bind,dst=/x", "invalid mount config for type \"bind\": field Source must not be empty"),
        ("type=bind,src=/nonexistent-berth,dst=/x", "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"),
        ("type=tmpfs,src=x,dst=/x", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
        ("type=volume,dst=rel", "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
        ("type=volume,src=ok,dst=rel", "invalid mount path: 'rel' mount path must be absolute"),
    ] {
        let o = d.docker(&["create", "--network", "none", "--mount", spec, "busybox", "true"]);
        assert_eq!(o.code, 1, "{spec}: {o:?}");
        assert!(o.stderr.contains(want), "{spec}: {o:?}");
    }
    // Refused by the CLI's own parser (docker's and berth's).
    for (spec, want) in [
        ("type=volume", "target is required"),
        (
            "type=volume,src=v1,dst=/x,foo=bar",
            "unexpected key 'foo' in 'foo=bar'",
        ),
        ("dst=/x,readonly=maybe", "invalid value for readonly: maybe"),
        (
            "type=tmpfs,dst=/x,tmpfs-size=abc",
            "invalid value for tmpfs-size: abc",
        ),
    ] {
        let o = d.docker(&[
            "create",
            "--network",
            "none",
            "--mount",
            spec,
            "busybox",
            "true",
        ]);
        assert_eq!(o.code, 125, "{spec}: {o:?}");
        assert!(o.stderr.contains(want), "{spec}: {o:?}");
        if !is_reference() {
            let o = d.berth(&[
                "create",
                "--network",
                "none",
                "--mount",
                spec,
                "busybox",
                "true",
            ]);
            assert_eq!(o.code, 125, "{spec}: {o:?}");
            assert!(o.stderr.contains(want), "{spec}: {o:?}");
        }
    }
    for (v, want) in [
        ("v1:/data:xyz", "invalid mode: xyz"),
        ("/h:/", "destination can't be '/'"),
        (
            "bad name:/x",
            "includes invalid characters for a local volume name",
        ),
    ] {
        let o = d.docker(&["create", "--network", "none", "-v", v, "busybox", "true"]);
        assert_ne!(o.code, 0, "{v}: {o:?}");
        assert!(o.stderr.contains(want), "{v}: {o:?}");
    }
    let o = d.docker(&[
        "create",
        "--network",
        "none",
        "-v",
        "v1:/data",
        "-v",
        "v2:/data",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("Duplicate mount point: /data"), "{o:?}");
    // Nothing was left behind: no container, no volume (dockerd leaves the volumes it made
    // before finding the duplicate).
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
    if !is_reference() {
        assert_eq!(volume_names(&d), before);
    }
}

#[test]
fn local_driver_tmpfs_and_bind_options() {
    let Some(d) = setup() else { return };
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=5m",
        "tv",
    ])
    .ok();
    let id = d
        .docker(&run_args(&[
            "-d", "-v", "tv:/t", "busybox", "sleep", "1000",
        ]))
        .ok();
    let inside = d
        .docker(&["exec", &id, "grep", " /t ", "/proc/mounts"])
        .ok();
    assert!(
        inside.starts_with("tmpfs /t tmpfs") && inside.contains("size=5120k"),
        "{inside}"
    );
    let data = vol_data(&d, "tv");
    assert!(
        d.mounts_under_roots().contains(&data),
        "{:?}",
        d.mounts_under_roots()
    );
    d.docker(&["exec", &id, "sh", "-c", "echo t > /t/f"]).ok();
    assert!(data.join("f").exists());
    d.docker(&["rm", "-f", &id]).ok();
    // Unmounted with its last container: tmpfs data is gone, nothing in /proc/mounts.
    eventually("the volume is unmounted", Duration::from_secs(10), || {
        !d.mounts_under_roots().contains(&data)
    });
    assert!(!data.join("f").exists());
    // A bind of a host directory.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "via-bind\n").unwrap();
    let dev = format!("device={}", host.path().display());
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "bv",
    ])
    .ok();
    assert_eq!(
        d.docker(&run_args(&[
            "--rm",
            "-v",
            "bv:/b",
            "busybox",
            "sh",
            "-c",
            "cat /b/h; echo w > /b/w"
        ]))
        .ok(),
        "via-bind"
    );
    assert!(host.path().join("w").exists());
    // Removing the volume never deletes through the bind.
    d.docker(&["volume", "rm", "bv"]).ok();
    assert!(host.path().join("h").exists());
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
}

#[test]
fn volume_events() {
    let Some(d) = setup() else { return };
    let since = d.docker(&["version", "-f", "{{.Server.Version}}"]).ok();
    let _ = since;
    let start = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    d.docker(&["volume", "create", "ev"]).ok();
    let id = d
        .docker(&run_args(&["-v", "ev:/e", "busybox", "true"]))
        .ok();
    let _ = id;
    let cid = d.docker(&["ps", "-aq", "--no-trunc"]).ok();
    d.docker(&["rm", &cid]).ok();
    d.docker(&["volume", "rm", "ev"]).ok();
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    std::thread::sleep(Duration::from_millis(1100));
    let out = d
        .docker(&[
            "events", "--since", &start, "--until", &until, "--filter", "type=volume",
            "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} {{.Actor.Attributes.container}}",
        ])
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "create ev local <no value>".to_string(),
            // dockerd logs `create` again when a container's `-v` finds the volume.
            "create ev local <no value>".to_string(),
            format!("mount ev local {cid}"),
            format!("unmount ev local {cid}"),
            "destroy ev local <no value>".to_string(),
        ],
        "{out}"
    );
}

#[test]
fn volumes_survive_a_daemon_crash() {
    let Some(mut d) = setup() else { return };
    if is_reference() {
        return; // berth's on-disk recovery
    }
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "tmpv",
    ])
    .ok();
    d.docker(&["volume", "create", "plain"]).ok();
    std::fs::write(vol_data(&d, "plain").join("f"), "kept\n").unwrap();
    let id = d
        .docker(&run_args(&[
            "-d", "-v", "tmpv:/t", "busybox", "sleep", "1000",
        ]))
        .ok();
    d.docker(&["exec", &id, "sh", "-c", "echo live > /t/f"])
        .ok();
    // A container recorded before mounts were resolved at create (only HostConfig.Binds).
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "old-record\n").unwrap();
    let bind = format!("{}:/h:ro", host.path().display());
    let old = d
        .docker(&[
            "create",
            "--network",
            "none",
            "-v",
            &bind,
            "busybox",
            "cat",
            "/h/h",
        ])
        .ok();
    d.kill9();
    let cfg = d
        .data_root
        .join("containers")
        .join(&old)
        .join("config.v2.json");
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    rec.as_object_mut().unwrap().remove("mount_points");
    std::fs::write(&cfg, serde_json::to_vec(&rec).unwrap()).unwrap();
    // What a crash can leave: a create cut short (no metadata, empty data), a removal cut
    // short, and data copied in by hand without metadata.
    let vols = d.data_root.join("volumes");
    std::fs::create_dir_all(vols.join("halfmade/_data")).unwrap();
    std::fs::create_dir_all(vols.join(".rm-gone/_data")).unwrap();
    std::fs::write(vols.join(".rm-gone/_data/x"), "x").unwrap();
    std::fs::create_dir_all(vols.join("byhand/_data")).unwrap();
    std::fs::write(vols.join("byhand/_data/x"), "x").unwrap();
    d.restart();
    assert_eq!(d.docker(&["start", "-a", &old]).ok(), "old-record");
    assert_eq!(
        d.inspect(
            &old,
            "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}"
        ),
        "bind /h false"
    );
    d.docker(&["rm", &old]).ok();
    let names = volume_names(&d);
    assert!(names.contains(&"plain".to_string()), "{names:?}");
    assert!(names.contains(&"byhand".to_string()), "{names:?}");
    assert!(!names.contains(&"halfmade".to_string()), "{names:?}");
    assert!(!vols.join("halfmade").exists() && !vols.join(".rm-gone").exists());
    // The running container kept its tmpfs volume; it is still in use and unmounted when
    // the container goes.
    assert_eq!(d.docker(&["exec", &id, "cat", "/t/f"]).ok(), "live");
    assert_eq!(d.docker(&["volume", "rm", "tmpv"]).code, 1);
    d.docker(&["rm", "-f", &id]).ok();
    let data = vol_data(&d, "tmpv");
    eventually("the volume is unmounted", Duration::from_secs(10), || {
        !d.mounts_under_roots().contains(&data)
    });
    d.docker(&["volume", "rm", "tmpv", "plain", "byhand"]).ok();
    assert!(leftover_mounts(&d).is_empty(), "{:?}", leftover_mounts(&d));
}
