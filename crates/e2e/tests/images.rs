//! Images through the real docker CLI: import, images, tag, rmi (in use, -f, shared
//! layers), history, image inspect; plus `info` and `version`.
use berth_e2e::*;

fn sha(s: &str) -> bool {
    s.len() == 71
        && s.starts_with("sha256:")
        && s[7..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[test]
fn import_images_tag_history_inspect() {
    if skip_unless_root() {
        return;
    }
    let d = Daemon::start();
    assert_eq!(d.docker(&["images", "-q"]).ok(), "");
    let id = d.import_busybox("busybox:latest");
    assert!(sha(&id), "{id}");
    assert_eq!(d.docker(&["images", "-q", "--no-trunc"]).ok(), id);
    assert_eq!(d.docker(&["images", "-q"]).ok(), id[7..19]);
    assert_eq!(
        d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
            .ok(),
        format!("busybox:latest {}", &id[7..19])
    );
    let table = d.docker(&["images"]).ok();
    let header = table.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.lines().nth(1).unwrap().starts_with("busybox "),
        "{table}"
    );

    // The same image under more names: one ID, listed once per tag.
    d.docker(&["tag", "busybox", "myrepo/bb:v1"]).ok();
    d.docker(&["tag", &id, "other"]).ok();
    let mut listed: Vec<String> = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok()
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["busybox:latest", "myrepo/bb:v1", "other:latest"].map(|r| format!("{r} {}", &id[7..19]))
    );
    assert_eq!(
        d.docker(&["images", "myrepo/bb", "--format", "{{.Tag}}"])
            .ok(),
        "v1"
    );
    assert_eq!(
        d.docker(&[
            "images",
            "--filter",
            "reference=other",
            "--format",
            "{{.Repository}}"
        ])
        .ok(),
        "other"
    );
    assert_eq!(d.inspect("myrepo/bb:v1", "{{.Id}}"), id);
    let mut tags: Vec<String> = serde_json::from_str(
        &d.docker(&["image", "inspect", "-f", "{{json .RepoTags}}", "busybox"])
            .ok(),
    )
    .unwrap();
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "myrepo/bb:v1", "other:latest"]);
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}",
            &id[7..19]
        ])
        .ok(),
        "linux/amd64 [\"sh\"]"
    );
    let size: u64 = d
        .docker(&["image", "inspect", "-f", "{{.Size}}", "busybox"])
        .ok()
        .parse()
        .unwrap();
    assert!(size > 1_000_000, "{size}");
    let layers = d
        .docker(&[
            "image",
            "inspect",
            "-f",
            "{{.RootFS.Type}} {{len .RootFS.Layers}}",
            "busybox",
        ])
        .ok();
    assert_eq!(layers, "layers 1");

    // history: one layer, imported.
    let h = d
        .docker(&[
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
            "--no-trunc",
            "busybox",
        ])
        .ok();
    assert_eq!(h, format!("{id}||Imported from -"));

    // A container from the retagged image runs the same rootfs.
    assert_eq!(
        d.docker(&run_args(&["--rm", "myrepo/bb:v1", "echo", "ok"]))
            .ok(),
        "ok"
    );

    // Tagging moves a tag between images.
    let id2 = d.import_busybox("second");
    assert_ne!(id, id2);
    d.docker(&["tag", "second", "other"]).ok();
    assert_eq!(d.inspect("other", "{{.Id}}"), id2);
    let mut tags: Vec<String> = serde_json::from_str(
        &d.docker(&["image", "inspect", "-f", "{{json .RepoTags}}", &id])
            .ok(),
    )
    .unwrap();
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "myrepo/bb:v1"]);
}

#[test]
fn rmi_rules_in_use_force_and_shared_layers() {
    let Some(d) = setup() else { return };
    let id = d.inspect("busybox", "{{.Id}}");
    let short = &id[7..19];
    let cid = d
        .docker(&["create", "--network", "none", "busybox", "true"])
        .ok();

    // In use by a (stopped) container, only name: refused.
    let o = d.docker(&["rmi", "busybox"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("conflict: unable to remove repository reference \"busybox\" (must force) - container {} is using its referenced image {short}", &cid[..12])),
        "{o:?}"
    );
    assert_eq!(d.all_image_ids(), vec![id.clone()]);

    // By ID with the container present: refused too.
    let o = d.docker(&["rmi", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains(&format!("conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}", &cid[..12])), "{o:?}");

    // A second tag can go without force.
    d.docker(&["tag", "busybox", "extra:tag"]).ok();
    assert_eq!(d.docker(&["rmi", "extra:tag"]).ok(), "Untagged: extra:tag");

    // Running container: even -f by ID cannot delete it.
    let run_id = d
        .docker(&run_args(&["-d", "busybox", "sleep", "1000"]))
        .ok();
    let o = d.docker(&["rmi", "-f", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains(&format!("conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}", &run_id[..12])), "{o:?}");
    d.docker(&["rm", "-f", &run_id]).ok();

    // -f with a stopped container: untagged and deleted; the container keeps its rootfs.
    let o = d.docker(&["rmi", "-f", "busybox"]);
    assert_eq!(o.ok(), format!("Untagged: busybox:latest\nDeleted: {id}"));
    assert_eq!(d.docker(&["images", "-q", "-a"]).ok(), "");
    assert_eq!(d.inspect(&cid, "{{.Image}}"), id);
    assert_eq!(d.docker(&["start", "-a", &cid]).code, 0);
    d.docker(&["rm", &cid]).ok();

    // Shared layers: two imports of the same tarball share the layer; removing one image
    // keeps the layer for the other, removing the last deletes it.
    let a = d.import_busybox("layer-a");
    let b = d.import_busybox("layer-b");
    assert_eq!(
        d.inspect("layer-a", "{{json .RootFS.Layers}}"),
        d.inspect("layer-b", "{{json .RootFS.Layers}}")
    );
    let o = d.docker(&["rmi", "layer-a"]).ok();
    let deleted: Vec<&str> = o.lines().filter(|l| l.starts_with("Deleted: ")).collect();
    assert!(o.starts_with("Untagged: layer-a:latest\n"), "{o}");
    assert_eq!(deleted, vec![format!("Deleted: {a}").as_str()], "{o}");
    assert_eq!(
        d.docker(&run_args(&["--rm", "layer-b", "echo", "still-here"]))
            .ok(),
        "still-here"
    );
    let o = d.docker(&["rmi", "layer-b"]).ok();
    let deleted: Vec<&str> = o.lines().filter(|l| l.starts_with("Deleted: ")).collect();
    assert_eq!(deleted.len(), 2, "image and its layer: {o}");
    assert_eq!(deleted[0], format!("Deleted: {b}"));
    assert_eq!(d.all_image_ids(), Vec::<String>::new());
    assert!(
        d.mounts_under_roots().is_empty() || d.kind == Kind::Dockerd,
        "{:?}",
        d.mounts_under_roots()
    );

    // rmi of something unknown.
    let o = d.docker(&["rmi", "nosuch"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("No such image: nosuch:latest"), "{o:?}");
}

#[test]
fn info_and_version() {
    let Some(d) = setup() else { return };
    d.docker(&run_args(&["-d", "busybox", "sleep", "1000"]))
        .ok();
    d.docker(&["create", "--network", "none", "busybox", "true"])
        .ok();
    assert_eq!(d.docker(&["info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.ContainersPaused}} {{.Images}}"]).ok(), "2 1 1 0 1");
    assert_eq!(
        d.docker(&["info", "--format", "{{.OSType}} {{.Architecture}}"])
            .ok(),
        "linux x86_64"
    );
    let root = d.docker(&["info", "--format", "{{.DockerRootDir}}"]).ok();
    assert_eq!(root, d.data_root.display().to_string());
    let ncpu: usize = d
        .docker(&["info", "--format", "{{.NCPU}}"])
        .ok()
        .parse()
        .unwrap();
    assert_eq!(ncpu, std::thread::available_parallelism().unwrap().get());
    let info = d.docker(&["info"]);
    assert_eq!(info.code, 0, "{info:?}");
    assert!(
        info.stdout.contains("Server:") && info.stdout.contains("Containers: 2"),
        "{info:?}"
    );

    let v = d
        .docker(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Os}} {{.Server.Arch}} {{.Server.MinAPIVersion}}",
        ])
        .ok();
    let parts: Vec<&str> = v.split(' ').collect();
    let api: Vec<u32> = parts[0].split('.').map(|p| p.parse().unwrap()).collect();
    let min = if d.kind == Kind::Berthd { 47 } else { 41 };
    assert!(api[0] == 1 && api[1] >= min, "API version {v}");
    assert_eq!(&parts[1..3], &["linux", "amd64"]);
    assert!(
        ["1.12", "1.24"].contains(&parts[3]),
        "minimum API version {v}"
    );
    let o = d.docker(&["version"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Client:") && o.stdout.contains("Server:"),
        "{o:?}"
    );

    // The ping headers Docker clients rely on.
    let r = d.http("GET", "/_ping", &[], None).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    assert_eq!(r.header("ostype"), Some("linux"));
    assert!(r.header("api-version").is_some());
    let r = d.http("HEAD", "/_ping", &[], None).unwrap();
    assert_eq!(r.status, 200);
    let r = d.http("GET", "/version", &[], None).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Os"], "linux");
}
