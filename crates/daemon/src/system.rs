//! `/info` and `/version`.
use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{
    SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};
use berth_api::version::{API_VERSION, MIN_API_VERSION, SERVER_VERSION};
use berth_api::{ApiError, SystemBackend};

use crate::container::{Containers, Status};
use crate::images::Images;
use crate::paths::Paths;

pub struct System {
    pub paths: Arc<Paths>,
    pub containers: Arc<Containers>,
    pub images: Arc<Images>,
    pub daemon_id: String,
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Docker's name for the filesystem under the data root (`statfs` magic).
fn backing_fs(path: &std::path::Path) -> &'static str {
    let Ok(st) = nix::sys::statfs::statfs(path) else {
        return "<unknown>";
    };
    match st.filesystem_type().0 as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        _ => "<unknown>",
    }
}

fn cgroup_version() -> &'static str {
    if berth_runtime::cgroup_unified() {
        "2"
    } else {
        "1"
    }
}

#[async_trait::async_trait]
impl SystemBackend for System {
    fn pinged(&self) {
        // A create and start usually follow (`docker run`): start the cgroup lock's grace
        // period now (crates/runtime/src/cgroup_warm.rs).
        berth_runtime::cgroup_warm::kick();
    }
    async fn info(&self) -> Result<SystemInfo, ApiError> {
        let all = self.containers.all();
        let count =
            |f: &dyn Fn(Status) -> bool| all.iter().filter(|c| f(c.status())).count() as i64;
        Ok(SystemInfo {
            id: Some(self.daemon_id.clone()),
            containers: Some(all.len() as i64),
            containers_running: Some(count(&|s| s == Status::Running || s == Status::Restarting)),
            containers_paused: Some(count(&|s| s == Status::Paused)),
            containers_stopped: Some(count(&|s| !s.is_running())),
            images: Some(self.images.count() as i64),
            driver: Some("overlayfs".into()),
            driver_status: Some(vec![vec![
                "Backing Filesystem".into(),
                backing_fs(&self.paths.data_root).into(),
            ]]),
            plugins: Some(berth_api::models::PluginsInfo {
                volume: Some(vec!["local".into()]),
                network: Some(vec!["host".into(), "null".into()]),
                authorization: None,
                log: Some(vec!["json-file".into(), "none".into()]),
            }),
            swarm: Some(berth_api::models::SwarmInfo {
                local_node_state: Some(berth_api::models::LocalNodeState::INACTIVE),
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                control_available: Some(false),
                ..Default::default()
            }),
            docker_root_dir: Some(self.paths.data_root.display().to_string()),
            memory_limit: Some(true),
            swap_limit: Some(
                std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            ),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(cgroup_version() == "1"),
            ipv4_forwarding: Some(
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                    .map(|s| s.trim() == "1")
                    .unwrap_or(false),
            ),
            debug: Some(false),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or(0),
            ),
            n_goroutines: Some(0),
            system_time: Some(crate::container::now_rfc3339()),
            logging_driver: Some("json-file".into()),
            cgroup_driver: Some(berth_api::models::SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if cgroup_version() == "2" {
                berth_api::models::SystemInfoCgroupVersionEnum::_2
            } else {
                berth_api::models::SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(0),
            kernel_version: Some(kernel_version()),
            operating_system: Some(os_name()),
            os_version: Some(String::new()),
            os_type: Some("linux".into()),
            architecture: Some("x86_64".into()),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(mem_total()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            name: Some(crate::container::host_hostname()),
            labels: Some(vec![]),
            experimental_build: Some(false),
            server_version: Some(SERVER_VERSION.into()),
            runtimes: Some(HashMap::from([(
                "berth".to_owned(),
                berth_api::models::Runtime {
                    path: Some(self.paths.shim_bin.display().to_string()),
                    ..Default::default()
                },
            )])),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(true),
            isolation: None,
            init_binary: Some(String::new()),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            warnings: Some(vec![]),
            ..Default::default()
        })
    }

    async fn version(&self) -> Result<SystemVersion, ApiError> {
        let details = HashMap::from([
            ("ApiVersion".to_owned(), API_VERSION.to_owned()),
            ("MinAPIVersion".to_owned(), MIN_API_VERSION.to_owned()),
            ("Os".to_owned(), "linux".into()),
            ("Arch".to_owned(), "amd64".into()),
            ("KernelVersion".to_owned(), kernel_version()),
            ("GitCommit".to_owned(), env!("BERTH_GIT_COMMIT").into()),
            ("GoVersion".to_owned(), env!("BERTH_RUST_VERSION").into()),
            ("Experimental".to_owned(), "false".into()),
        ]);
        Ok(SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "berth".into(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".into(),
                version: SERVER_VERSION.into(),
                details: Some(details),
            }]),
            version: Some(SERVER_VERSION.into()),
            api_version: Some(API_VERSION.into()),
            min_api_version: Some(MIN_API_VERSION.into()),
            git_commit: Some(env!("BERTH_GIT_COMMIT").into()),
            go_version: Some(env!("BERTH_RUST_VERSION").into()),
            os: Some("linux".into()),
            arch: Some("amd64".into()),
            kernel_version: Some(kernel_version()),
            experimental: Some(false),
            build_time: Some(String::new()),
        })
    }
}
