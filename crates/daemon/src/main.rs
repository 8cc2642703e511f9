//! berthd: the berth daemon. Composition root only: parses dockerd-style flags, opens the
//! stores, restores live containers, serves the Docker Engine API on a unix socket.
mod backend;
mod container;
mod events;
mod exec;
mod exec_watch;
mod fsutil;
mod images;
mod names;
mod network;
mod paths;
mod restore;
mod storage;
mod system;
mod tarfs;
mod user;
mod volumes;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::paths::Paths;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: serves the Docker Engine API"
)]
struct Args {
    /// Daemon socket to listen on (unix://PATH).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: Vec<String>,
    /// Root of persistent state.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Path of the pid file.
    #[arg(short = 'p', long, default_value = "/run/berth.pid")]
    pidfile: PathBuf,
    /// Log level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// The berth-shim binary (default: next to berthd).
    #[arg(long, env = "BERTH_SHIM")]
    shim: Option<PathBuf>,
    /// The default bridge's interface name ("none": no default bridge).
    #[arg(short = 'b', long, default_value = "berth0")]
    bridge: String,
    /// The default bridge's address and prefix (e.g. 10.88.0.1/24).
    #[arg(long)]
    bip: Option<String>,
    /// Address pools for new networks: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// MTU of bridges and container interfaces (0: kernel default).
    #[arg(long, default_value_t = 0)]
    mtu: u32,
    /// Resolver configuration containers inherit and the embedded DNS forwards to.
    #[arg(long, default_value = "/etc/resolv.conf", hide = true)]
    resolv_conf: PathBuf,
}

fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("unsupported host {host:?}: berthd listens on unix sockets (unix:///path)"),
    }
}

fn write_pidfile(path: &Path) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            if pid != std::process::id() as i32 && Path::new(&format!("/proc/{pid}")).exists() {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.file_name().is_some_and(|n| n == "berthd") {
                    bail!(
                        "pid file found, ensure berthd is not running or delete {}",
                        path.display()
                    );
                }
            }
        }
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, format!("{}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    // Two malloc arenas instead of glibc's eight per CPU: berthd's threads mostly wait, and
    // each extra arena keeps its own free memory resident.
    // SAFETY: mallopt before any thread exists; it only tunes the allocator.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let args = Args::parse();
    let level = match args.log_level.as_str() {
        "fatal" => "error",
        l => l,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level).context("invalid --log-level")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Free heap goes back to the kernel now and then (glibc returns only the top of the main
    // heap by itself): what a burst of requests allocated does not stay resident while idle.
    std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            // SAFETY: malloc_trim only returns free memory to the kernel.
            unsafe { libc::malloc_trim(0) };
        })?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    if args.host.len() != 1 {
        bail!("berthd listens on exactly one socket");
    }
    let sock = socket_path(&args.host[0])?;
    let shim_bin = match args.shim {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("berthd has no directory")?
            .join("berth-shim"),
    };
    if !shim_bin.exists() {
        bail!("berth-shim not found at {}", shim_bin.display());
    }
    for d in [
        args.data_root.join("containers"),
        args.exec_root.join("c"),
        args.exec_root.join("runtime"),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::set_permissions(&args.data_root, std::fs::Permissions::from_mode(0o710))?;
    write_pidfile(&args.pidfile)?;
    let paths = Arc::new(Paths {
        data_root: args.data_root.clone(),
        exec_root: args.exec_root.clone(),
        shim_bin,
    });
    let store =
        Arc::new(berth_store::Store::open(&args.data_root).context("opening the image store")?);
    let events = events::Events::new();
    let volumes = volumes::Volumes::open(&args.data_root, events.clone())
        .context("opening the volume store")?;
    let pools = if args.default_address_pool.is_empty() {
        berth_network::ipam::Pool::docker_defaults()
    } else {
        args.default_address_pool
            .iter()
            .map(|p| berth_network::ipam::Pool::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .context("invalid --default-address-pool")?
    };
    let networks = network::Networks::open(
        &args.data_root,
        network::NetConfig {
            bridge: args.bridge.clone(),
            bip: args.bip.clone(),
            pools,
            resolv_conf: args.resolv_conf.clone(),
            mtu: args.mtu,
        },
        events.clone(),
    )
    .await
    .context("setting up networking")?;
    let containers = container::Containers::new(
        paths.clone(),
        store.clone(),
        events.clone(),
        volumes.clone(),
        networks.clone(),
    );
    restore::restore(&containers).await;
    container::remove_stale_copy_dirs(&paths);
    containers.migrate_mount_points();
    let images = images::Images::new(store.clone(), containers.clone());
    let storage = storage::Storage::new(store.clone(), containers.clone());
    storage.set_volume_usage(containers.clone());
    let daemon_id = daemon_id(&args.data_root)?;
    let backends = berth_api::Backends {
        system: Arc::new(system::System {
            paths: paths.clone(),
            containers: containers.clone(),
            images: images.clone(),
            daemon_id,
        }),
        containers: Arc::new(backend::ContainerApi(containers.clone())),
        exec: exec::Execs::new(containers.clone()),
        images,
        filesystem: Arc::new(backend::FilesystemApi(containers.clone())),
        events: Arc::new(events::EventsApi(events.clone())),
        control: Arc::new(backend::ControlApi(containers.clone())),
        storage,
        stats: Arc::new(container::StatsApi::new(containers.clone())),
        volumes: Arc::new(container::VolumeApi(containers.clone())),
        archive: Arc::new(container::ArchiveApi(containers.clone())),
        networks: Arc::new(network::NetworkApi {
            nets: networks.clone(),
            ctrs: containers.clone(),
        }),
    };

    if let Some(d) = sock.parent() {
        std::fs::create_dir_all(d)?;
    }
    match std::fs::remove_file(&sock) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("removing stale socket")
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(&sock)
        .with_context(|| format!("listening on {}", sock.display()))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660))?;
    tracing::info!(socket = %sock.display(), data_root = %args.data_root.display(), "API listen");

    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .expect("signal handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down; containers keep running");
    };
    let router = berth_api::router(backends);
    tokio::select! {
        r = berth_api::serve(listener, router, std::future::pending()) => { r?; }
        _ = shutdown => {}
    }
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&args.pidfile);
    Ok(())
}

/// A stable daemon ID, kept in `<data-root>/engine-id`.
fn daemon_id(root: &Path) -> Result<String> {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_owned());
        }
    }
    let b: [u8; 16] = rand::random();
    let id = container::hex_id(&b);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    fsutil::write_atomic(&p, id.as_bytes(), true)?;
    Ok(id)
}
