//! `run` and `create`: flag parsing into the create body, pull-on-missing-image, and the
//! foreground flow of docker/cli (attach and wait before start, stream, exit code).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use hyper::Method;
use serde_json::{json, Map, Value};

use super::{error_text, status};
use crate::client::{api_error, Client};
use crate::stream;

#[derive(Args, Debug, Clone, Default)]
#[command(
    disable_help_flag = true,
    override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct RunArgs {
    #[arg(long, action = clap::ArgAction::Help, help = "Print usage")]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Run an init inside the container
    #[arg(long)]
    pub init: bool,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub opts: super::run_opts::ContainerOpts,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, value_name = "IMAGE")]
    pub args: Vec<String>,
}

/// go-units `RAMInBytes`: "512m", "1g", "100MB", plain bytes.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size: '{s}'"))?;
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((n * mult) as i64)
}

/// docker/cli `opts.ParseEnvFile`: KEY=VALUE lines, comments, pass-through names.
pub fn parse_env_file(
    content: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let raw = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => {
                let k = k.trim_start();
                if k.is_empty() {
                    bail!("no variable name on line '{line}'");
                }
                if k.contains(char::is_whitespace) {
                    bail!("variable '{k}' contains whitespaces");
                }
                out.push(format!("{k}={v}"));
            }
            None => {
                let k = line.trim();
                if k.contains(char::is_whitespace) {
                    bail!("variable '{k}' contains whitespaces");
                }
                if let Some(v) = lookup(k) {
                    out.push(format!("{k}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// A `-v` spec split into its destination and how it is sent to the daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    /// `host:ctr[:opts]` or `name:ctr[:opts]`: goes to `HostConfig.Binds`.
    Bind(String),
    /// `/ctr`: an anonymous volume in `Config.Volumes`.
    Anonymous(String),
}

pub fn parse_volume(spec: &str) -> Result<VolumeSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [dst] if !dst.is_empty() => Ok(VolumeSpec::Anonymous(dst.to_string())),
        [src, dst] | [src, dst, _] if !src.is_empty() && !dst.is_empty() => {
            if !dst.starts_with('/') {
                bail!("invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute");
            }
            if let [_, _, mode] = parts.as_slice() {
                for m in mode.split(',') {
                    if !matches!(
                        m,
                        "ro" | "rw"
                            | "z"
                            | "Z"
                            | "nocopy"
                            | "private"
                            | "rprivate"
                            | "shared"
                            | "rshared"
                            | "slave"
                            | "rslave"
                            | "consistent"
                            | "cached"
                            | "delegated"
                    ) {
                        bail!("invalid mode: {mode}");
                    }
                }
            }
            Ok(VolumeSpec::Bind(spec.to_string()))
        }
        _ => bail!("invalid volume specification: '{spec}'"),
    }
}

fn restart_policy(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match name {
        "" | "no" => Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        "always" | "unless-stopped" => {
            if count.is_some() {
                bail!("maximum retry count cannot be used with restart policy '{name}'");
            }
            Ok(json!({"Name": name, "MaximumRetryCount": 0}))
        }
        "on-failure" | "on-unhealthy" => {
            let n: i64 = match count {
                Some(c) => c
                    .parse()
                    .with_context(|| format!("invalid restart policy format: maximum retry count must be an integer: {c}"))?,
                None => 0,
            };
            Ok(json!({"Name": name, "MaximumRetryCount": n}))
        }
        _ => bail!("invalid restart policy format: unknown policy '{name}'"),
    }
}

/// A Go duration flag (`--health-interval 1s`) in nanoseconds; negative values allowed
/// (refused by the caller with docker's message).
fn duration_flag(flag: &str, v: &str) -> Result<i64> {
    let (neg, body) = match v.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, v),
    };
    let d = if body == "0" {
        Some(std::time::Duration::ZERO)
    } else {
        super::parse_go_duration(body)
    };
    let d = d.with_context(|| {
        format!("invalid argument \"{v}\" for \"{flag}\" flag: time: invalid duration \"{v}\"")
    })?;
    let ns = d.as_nanos() as i64;
    Ok(if neg { -ns } else { ns })
}

/// docker/cli's healthcheck flags: `--health-*` or `--no-healthcheck`.
fn healthcheck(a: &RunArgs) -> Result<Option<Value>> {
    let dur = |flag: &str, v: &Option<String>| -> Result<i64> {
        v.as_deref().map_or(Ok(0), |v| duration_flag(flag, v))
    };
    let interval = dur("--health-interval", &a.health_interval)?;
    let timeout = dur("--health-timeout", &a.health_timeout)?;
    let start_period = dur("--health-start-period", &a.health_start_period)?;
    let start_interval = dur("--health-start-interval", &a.health_start_interval)?;
    let retries = a.health_retries.unwrap_or(0);
    let any = a.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if a.no_healthcheck {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !any {
        return Ok(None);
    }
    for (v, flag) in [
        (interval, "--health-interval"),
        (timeout, "--health-timeout"),
        (retries, "--health-retries"),
        (start_period, "--health-start-period"),
        (start_interval, "--health-start-interval"),
    ] {
        if v < 0 {
            bail!("{flag} cannot be negative");
        }
    }
    let mut h = Map::new();
    if let Some(c) = a.health_cmd.as_deref().filter(|c| !c.is_empty()) {
        h.insert("Test".into(), json!(["CMD-SHELL", c]));
    }
    h.insert("Interval".into(), json!(interval));
    h.insert("Timeout".into(), json!(timeout));
    h.insert("StartPeriod".into(), json!(start_period));
    h.insert("StartInterval".into(), json!(start_interval));
    h.insert("Retries".into(), json!(retries));
    Ok(Some(Value::Object(h)))
}

fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for it in items {
        let (k, v) = it.split_once('=').unwrap_or((it.as_str(), ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    m
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into exposed ports and bindings.
fn parse_ports(
    publish: &[String],
    expose: &[String],
) -> Result<(Map<String, Value>, Map<String, Value>)> {
    let mut exposed = Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in expose {
        let (p, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        exposed.insert(format!("{p}/{proto}"), json!({}));
    }
    for p in publish {
        let (spec, proto) = p
            .rsplit_once('/')
            .filter(|(_, pr)| !pr.contains(':'))
            .unwrap_or((p.as_str(), "tcp"));
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let (ctr, host_port, ip) = match parts.as_slice() {
            [c] => (*c, "", ""),
            [c, h] => (*c, *h, ""),
            [c, h, ip] => (*c, *h, *ip),
            _ => bail!("invalid port format: {p}"),
        };
        // Ranges as docker's nat.ParsePortSpec: `8000-8001:80-81` pairs them up,
        // `8000-8010:80` lets the daemon pick one of the host ports.
        let range = |s: &str| -> Option<(u16, u16)> {
            match s.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
                    (a <= b).then_some((a, b))
                }
                None => s.parse::<u16>().ok().map(|p| (p, p)),
            }
        };
        let Some((c0, c1)) = range(ctr).filter(|_| !ctr.is_empty()) else {
            bail!("invalid containerPort: {ctr}");
        };
        let host = if host_port.is_empty() {
            None
        } else {
            Some(range(host_port).ok_or_else(|| anyhow::anyhow!("invalid hostPort: {host_port}"))?)
        };
        let count = c1 - c0;
        if let Some((h0, h1)) = host {
            if count != 0 && h1 - h0 != count {
                bail!(
                    "invalid ranges specified for container and host Ports: {ctr} and {host_port}"
                );
            }
        }
        for i in 0..=count {
            let key = format!("{}/{proto}", c0 + i);
            let hp = match host {
                Some((h0, h1)) if count == 0 && h0 != h1 => format!("{h0}-{h1}"),
                Some((h0, _)) => (h0 + i).to_string(),
                None => String::new(),
            };
            exposed.insert(key.clone(), json!({}));
            bindings
                .entry(key)
                .or_default()
                .push(json!({"HostIp": ip.trim_matches(|c| c == '[' || c == ']'), "HostPort": hp}));
        }
    }
    let bindings = bindings
        .into_iter()
        .map(|(k, v)| (k, Value::Array(v)))
        .collect();
    Ok((exposed, bindings))
}

/// The `POST /containers/create` body for these flags.
pub fn create_body(a: &RunArgs) -> Result<Value> {
    let image = a
        .args
        .first()
        .context("\"berth run\" requires at least 1 argument")?;
    let cmd: Vec<String> = a.args[1..].to_vec();
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("open {f}: {}", super::run_opts::io_text(&e)))?;
        env.extend(parse_env_file(&content, |k| std::env::var(k).ok())?);
    }
    for e in &a.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        } else {
            env.push(e.clone());
        }
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &a.volume {
        match parse_volume(v)? {
            VolumeSpec::Bind(b) => binds.push(b),
            VolumeSpec::Anonymous(d) => {
                volumes.insert(d, json!({}));
            }
        }
    }
    let attach: Vec<String> = a.attach.iter().map(|s| s.to_ascii_lowercase()).collect();
    for s in &attach {
        if !matches!(s.as_str(), "stdin" | "stdout" | "stderr") {
            bail!("invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
        }
    }
    let (attach_stdin, attach_stdout, attach_stderr) = if a.detach {
        if !attach.is_empty() {
            bail!("conflicting options: cannot specify both --attach and --detach");
        }
        (false, false, false)
    } else if attach.is_empty() {
        (a.interactive, true, true)
    } else {
        (
            attach.iter().any(|s| s == "stdin"),
            attach.iter().any(|s| s == "stdout"),
            attach.iter().any(|s| s == "stderr"),
        )
    };
    let (exposed, port_bindings) = parse_ports(&a.publish, &a.expose)?;

    let mut config = Map::new();
    if let Some(h) = &a.hostname {
        config.insert("Hostname".into(), json!(h));
    }
    config.insert("User".into(), json!(a.user.clone().unwrap_or_default()));
    config.insert("AttachStdin".into(), json!(attach_stdin));
    config.insert("AttachStdout".into(), json!(attach_stdout));
    config.insert("AttachStderr".into(), json!(attach_stderr));
    if !exposed.is_empty() {
        config.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    config.insert("Tty".into(), json!(a.tty));
    config.insert("OpenStdin".into(), json!(a.interactive));
    config.insert("StdinOnce".into(), json!(a.interactive && attach_stdin));
    config.insert("Env".into(), json!(env));
    if !cmd.is_empty() {
        config.insert("Cmd".into(), json!(cmd));
    }
    config.insert("Image".into(), json!(image));
    if !volumes.is_empty() {
        config.insert("Volumes".into(), Value::Object(volumes));
    }
    config.insert(
        "WorkingDir".into(),
        json!(a.workdir.clone().unwrap_or_default()),
    );
    if let Some(ep) = &a.entrypoint {
        config.insert("Entrypoint".into(), json!([ep]));
    }
    config.insert("Labels".into(), Value::Object(kv_map(&a.label)));
    if let Some(s) = &a.stop_signal {
        config.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = a.stop_timeout {
        config.insert("StopTimeout".into(), json!(t));
    }
    if let Some(h) = healthcheck(a)? {
        config.insert("Healthcheck".into(), h);
    }

    let mut host = Map::new();
    host.insert("Binds".into(), json!(binds));
    super::mounts::apply(&mut host, &a.mount, &a.tmpfs, &a.volumes_from)?;
    let mut log = Map::new();
    log.insert(
        "Type".into(),
        json!(a.log_driver.clone().unwrap_or_default()),
    );
    log.insert("Config".into(), Value::Object(kv_map(&a.log_opt)));
    host.insert("LogConfig".into(), Value::Object(log));
    host.insert(
        "NetworkMode".into(),
        json!(a.network.clone().unwrap_or_else(|| "default".into())),
    );
    if !port_bindings.is_empty() {
        host.insert("PortBindings".into(), Value::Object(port_bindings));
    }
    host.insert("RestartPolicy".into(), restart_policy(&a.restart)?);
    host.insert("AutoRemove".into(), json!(a.rm));
    if a.rm && !matches!(a.restart.as_str(), "" | "no") {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    if !a.cap_add.is_empty() {
        host.insert("CapAdd".into(), json!(a.cap_add));
    }
    if !a.cap_drop.is_empty() {
        host.insert("CapDrop".into(), json!(a.cap_drop));
    }
    if !a.add_host.is_empty() {
        host.insert("ExtraHosts".into(), json!(a.add_host));
    }
    if !a.link.is_empty() {
        host.insert("Links".into(), json!(a.link));
    }
    if !a.dns.is_empty() {
        host.insert("Dns".into(), json!(a.dns));
    }
    if !a.dns_search.is_empty() {
        host.insert("DnsSearch".into(), json!(a.dns_search));
    }
    if !a.dns_option.is_empty() {
        host.insert("DnsOptions".into(), json!(a.dns_option));
    }
    if a.publish_all {
        host.insert("PublishAllPorts".into(), json!(true));
    }
    host.insert("Privileged".into(), json!(a.privileged));
    host.insert("ReadonlyRootfs".into(), json!(a.read_only));
    if a.init {
        host.insert("Init".into(), json!(true));
    }
    if let Some(m) = &a.memory {
        host.insert("Memory".into(), json!(ram_in_bytes(m)?));
    }
    if let Some(s) = &a.memory_swap {
        let v = if s == "-1" { -1 } else { ram_in_bytes(s)? };
        host.insert("MemorySwap".into(), json!(v));
    }
    if let Some(c) = a.cpus {
        host.insert("NanoCpus".into(), json!((c * 1e9).round() as i64));
    }
    if let Some(c) = a.cpu_shares {
        host.insert("CpuShares".into(), json!(c));
    }
    if let Some(p) = a.pids_limit {
        host.insert("PidsLimit".into(), json!(p));
    }

    a.opts.apply(&mut config, &mut host)?;
    let mut body = config;
    body.insert("HostConfig".into(), Value::Object(host));
    let mut endpoints = Map::new();
    if let Some(n) = &a.network {
        if !matches!(n.as_str(), "none" | "host" | "default") && !n.starts_with("container:") {
            let mut ipam = Map::new();
            if let Some(ip) = &a.ip {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &a.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            let mut ep = Map::new();
            if !ipam.is_empty() {
                ep.insert("IPAMConfig".into(), Value::Object(ipam));
            }
            if !a.network_alias.is_empty() {
                ep.insert("Aliases".into(), json!(a.network_alias));
            }
            endpoints.insert(n.clone(), Value::Object(ep));
        }
    } else if a.ip.is_some() || a.ip6.is_some() || !a.network_alias.is_empty() {
        let mut ep = Map::new();
        if let Some(ip) = &a.ip {
            ep.insert("IPAMConfig".into(), json!({"IPv4Address": ip}));
        }
        if !a.network_alias.is_empty() {
            ep.insert("Aliases".into(), json!(a.network_alias));
        }
        endpoints.insert("default".into(), Value::Object(ep));
    }
    body.insert(
        "NetworkingConfig".into(),
        json!({"EndpointsConfig": endpoints}),
    );
    Ok(Value::Object(body))
}

/// docker's familiar reference with the default tag: `busybox` -> `busybox:latest`.
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// `POST /images/create?fromImage=`; progress to stderr; errors in the stream fail.
pub async fn pull(client: &Client, image: &str, quiet: bool) -> Result<()> {
    use http_body_util::BodyExt;
    let full = with_default_tag(image);
    let (name, tag) = match full.rsplit_once('@') {
        Some((n, d)) => (n.to_string(), d.to_string()),
        None => {
            let slash = full.rfind('/').map_or(0, |p| p + 1);
            let colon = full[slash..].rfind(':').map(|p| p + slash);
            match colon {
                Some(c) => (full[..c].to_string(), full[c + 1..].to_string()),
                None => (full.clone(), "latest".into()),
            }
        }
    };
    let resp = client
        .stream(
            Method::POST,
            "/images/create",
            &[("fromImage", name), ("tag", tag)],
            None,
        )
        .await?;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            buf.extend_from_slice(data);
            while let Some(p) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=p).collect();
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    if let Some(err) = v.get("error").and_then(Value::as_str) {
                        return Err(status(125, Some(format!("berth: {err}"))));
                    }
                    if !quiet {
                        if let Some(st) = v.get("status").and_then(Value::as_str) {
                            let id = v.get("id").and_then(Value::as_str);
                            let progress = v.get("progress").and_then(Value::as_str);
                            if progress.is_none() {
                                match id {
                                    Some(id) => eprintln!("{id}: {st}"),
                                    None => eprintln!("{st}"),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Create the container, pulling the image when the daemon does not have it.
pub async fn create_container(client: &Client, a: &RunArgs) -> Result<String> {
    let body =
        create_body(a).map_err(|e| status(125, Some(format!("berth: {}", error_text(&e)))))?;
    let image = a.args[0].clone();
    let mut query = Vec::new();
    if let Some(n) = &a.name {
        query.push(("name", n.clone()));
    }
    if let Some(p) = &a.platform {
        query.push(("platform", p.clone()));
    }
    let mut cidfile = match &a.opts.cidfile {
        Some(p) => Some(
            super::run_opts::CidFile::create(p)
                .map_err(|e| status(125, Some(format!("berth: {}", error_text(&e)))))?,
        ),
        None => None,
    };
    if a.pull == "always" {
        pull(client, &image, a.quiet).await.map_err(run_error)?;
    }
    let resp = match client.post_json("/containers/create", &query, &body).await {
        Ok(r) => r,
        Err(e)
            if api_error(&e).is_some_and(|x| x.is_not_found())
                && a.pull != "never"
                && !image.starts_with("sha256:") =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(&image)
            );
            pull(client, &image, a.quiet).await.map_err(run_error)?;
            client
                .post_json("/containers/create", &query, &body)
                .await
                .map_err(run_error)?
        }
        Err(e) => return Err(run_error(e)),
    };
    let v: Value = serde_json::from_slice(&resp).context("decoding create response")?;
    for w in v
        .get("Warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    let id = v
        .get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("create response without Id")?;
    if let Some(c) = cidfile.as_mut() {
        c.write(&id)?;
    }
    Ok(id)
}

/// A daemon refusal during `run`/`create`: `berth: <error>` + help hint, exit 125.
fn run_error(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<super::StatusError>().is_some() {
        return e;
    }
    status(
        125,
        Some(format!(
            "berth: {}\n\nRun 'berth run --help' for more information",
            error_text(&e)
        )),
    )
}

/// docker/cli `runStartContainerErr`: 127 not found, 126 not invokable, else 125.
pub fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

pub async fn create(client: Client, a: RunArgs) -> Result<i32> {
    let id = create_container(&client, &a).await?;
    println!("{id}");
    Ok(0)
}

/// Start the wait request (headers received means the daemon registered it).
pub async fn wait_request(
    client: &Client,
    id: &str,
    condition: &str,
) -> Result<tokio::task::JoinHandle<Result<i64>>> {
    use http_body_util::BodyExt;
    let resp = client
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait"),
            &[("condition", condition.to_string())],
            None,
        )
        .await?;
    Ok(tokio::spawn(async move {
        let body = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&body).context("decoding wait response")?;
        if let Some(msg) = v
            .get("Error")
            .and_then(|e| e.get("Message"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            bail!("{msg}");
        }
        Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0))
    }))
}

pub async fn run(client: Client, a: RunArgs) -> Result<i32> {
    let stdin_tty = std::io::stdin().is_terminal();
    if a.tty && a.interactive && !stdin_tty {
        return Err(status(1, Some("the input device is not a TTY".into())));
    }
    let id = create_container(&client, &a).await?;
    if a.detach {
        client
            .post(&format!("/containers/{id}/start"), &[])
            .await
            .map_err(start_failure)?;
        println!("{id}");
        return Ok(0);
    }
    let attach: Vec<String> = a.attach.iter().map(|s| s.to_ascii_lowercase()).collect();
    let (att_in, att_out, att_err) = if attach.is_empty() {
        (a.interactive, true, true)
    } else {
        (
            attach.iter().any(|s| s == "stdin"),
            attach.iter().any(|s| s == "stdout"),
            attach.iter().any(|s| s == "stderr"),
        )
    };
    if a.sig_proxy && !a.tty {
        stream::proxy_signals(client.clone(), id.clone());
    }
    let mut q = vec![
        ("stream", "1".to_string()),
        ("stdin", if att_in { "1" } else { "0" }.to_string()),
        ("stdout", if att_out { "1" } else { "0" }.to_string()),
        ("stderr", if att_err { "1" } else { "0" }.to_string()),
    ];
    if let Some(k) = &a.detach_keys {
        q.push(("detachKeys", k.clone()));
    }
    // Attach and wait are independent: both in flight at once (one round trip, not two).
    let condition = if a.rm { "removed" } else { "next-exit" };
    let attach_path = format!("/containers/{id}/attach");
    let (conn, waiter) = tokio::join!(
        client.hijack(&attach_path, &q, None),
        wait_request(&client, &id, condition)
    );
    let conn = conn.map_err(run_error)?;
    let waiter = waiter.map_err(run_error)?;

    let raw = if a.tty && att_in && stdin_tty {
        Some(stream::RawTerminal::enable())
    } else {
        None
    };
    let stdin = att_in.then(stream::stdin_channel);
    let io = tokio::spawn(stream::hold(conn, a.tty, stdin));
    if let Err(e) = client.post(&format!("/containers/{id}/start"), &[]).await {
        drop(raw);
        io.abort();
        let err = start_failure(e);
        if a.rm {
            let _ = waiter.await;
        }
        return Err(err);
    }
    if a.tty && std::io::stdout().is_terminal() {
        stream::monitor_tty_size(client.clone(), format!("/containers/{id}/resize"));
    }
    let io_result = io.await;
    drop(raw);
    if let Ok(Err(e)) = io_result {
        eprintln!("berth: {}", error_text(&e));
    }
    match waiter.await {
        Ok(Ok(code)) => Ok(code as i32),
        Ok(Err(e)) => Err(status(125, Some(format!("berth: {}", error_text(&e))))),
        Err(e) => Err(status(125, Some(format!("berth: {e}")))),
    }
}

/// Start failures: `berth: <error>` + hint, exit 126/127/125.
fn start_failure(e: anyhow::Error) -> anyhow::Error {
    let text = error_text(&e);
    let code = start_error_code(&text);
    status(
        code,
        Some(format!(
            "berth: {text}\n\nRun 'berth run --help' for more information"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().run
    }

    #[test]
    fn trailing_args_verbatim() {
        let a = parse(&["--rm", "-it", "busybox", "sh", "-c", "echo $HOME", "-l"]);
        assert!(a.rm && a.interactive && a.tty);
        assert_eq!(a.args, ["busybox", "sh", "-c", "echo $HOME", "-l"]);
        let a = parse(&[
            "-e",
            "A=1",
            "--env=B=2",
            "-v",
            "/tmp:/data:ro",
            "busybox",
            "-x",
        ]);
        assert_eq!(a.env, ["A=1", "B=2"]);
        assert_eq!(a.volume, ["/tmp:/data:ro"]);
        assert_eq!(a.args, ["busybox", "-x"]);
    }

    #[test]
    fn create_body_fields() {
        let a = parse(&[
            "--name",
            "web",
            "-h",
            "box",
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--memory-swap",
            "-1",
            "--pids-limit",
            "-1",
            "-v",
            "/src:/dst:ro",
            "-v",
            "/anon",
            "-l",
            "a=b",
            "--restart",
            "on-failure:3",
            "--log-opt",
            "max-size=1m",
            "-u",
            "1000:1000",
            "-w",
            "/w",
            "--entrypoint",
            "",
            "busybox",
            "true",
        ]);
        let b = create_body(&a).unwrap();
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["Cmd"], json!(["true"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["User"], "1000:1000");
        assert_eq!(b["WorkingDir"], "/w");
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["Labels"], json!({"a": "b"}));
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 64 * 1024 * 1024);
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["PidsLimit"], -1);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["Binds"], json!(["/src:/dst:ro"]));
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(h["LogConfig"]["Config"], json!({"max-size": "1m"}));
    }

    #[test]
    fn volumes() {
        assert_eq!(
            parse_volume("/a:/b").unwrap(),
            VolumeSpec::Bind("/a:/b".into())
        );
        assert_eq!(
            parse_volume("vol:/b:ro").unwrap(),
            VolumeSpec::Bind("vol:/b:ro".into())
        );
        assert_eq!(
            parse_volume("/data").unwrap(),
            VolumeSpec::Anonymous("/data".into())
        );
        assert!(parse_volume("/a:rel").is_err());
        assert!(parse_volume("/a:/b:bogus").is_err());
    }

    #[test]
    fn env_file() {
        let got = parse_env_file(
            "\u{feff}# comment\n\nA=1\n  B = x y\nPASS\nMISSING\nC=\n",
            |k| (k == "PASS").then(|| "through".to_string()),
        );
        assert!(got.is_err(), "space in name rejected");
        let got = parse_env_file("# c\nA=1\n  B=x y \nPASS\nMISSING\nC=\n", |k| {
            (k == "PASS").then(|| "through".to_string())
        })
        .unwrap();
        assert_eq!(got, ["A=1", "B=x y ", "PASS=through", "C="]);
    }

    #[test]
    fn sizes_and_codes() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("100MB").unwrap(), 100 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert!(ram_in_bytes("1x").is_err());
        assert_eq!(
            start_error_code("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/a"),
            "localhost:5000/a:latest"
        );
        assert_eq!(with_default_tag("a:1"), "a:1");
    }

    #[test]
    fn ports() {
        let (e, b) = parse_ports(&["8080:80".into(), "127.0.0.1:53:53/udp".into()], &[]).unwrap();
        assert!(e.contains_key("80/tcp") && e.contains_key("53/udp"));
        assert_eq!(b["80/tcp"], json!([{"HostIp": "", "HostPort": "8080"}]));
        assert_eq!(
            b["53/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "53"}])
        );
    }
}
