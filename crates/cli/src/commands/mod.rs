//! The command tree (docker's verbs and the `container` / `image` management commands)
//! and the error conventions they share.

pub mod archive;
pub mod commit;
pub mod container;
pub mod control;
pub mod cp;
pub mod df;
pub mod events;
pub mod exec;
pub mod fs;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod mounts;
pub mod network;
pub mod prune;
pub mod ps;
pub mod run;
pub mod run_opts;
pub mod stats;
pub mod system;
pub mod volume;

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::client::{self, Client};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    override_usage = "berth [OPTIONS] COMMAND"
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
// Each subcommand's arguments are built only when it is the one invoked (start-up time).
#[command(defer = true)]
pub enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::RunArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(exec::AttachArgs),
    /// Return low-level information on Docker objects
    Inspect(inspect::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::WaitArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArgs),
    /// Rename a container
    Rename(control::RenameArgs),
    /// Display the running processes of a container
    Top(control::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Update configuration of one or more containers
    Update(stats::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(fs::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(fs::ExportArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(archive::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(archive::LoadArgs),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Show the Docker version information
    Version(system::VersionArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
}

#[derive(Subcommand, Debug)]
// Each subcommand's arguments are built only when it is the one invoked (start-up time).
#[command(defer = true)]
pub enum ContainerCommand {
    #[command(visible_aliases = ["ps", "list"])]
    /// List containers
    Ls(ps::PsArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::RunArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    #[command(visible_aliases = ["remove"])]
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach to a running container
    Attach(exec::AttachArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::TypedInspectArgs),
    /// Block until one or more containers stop
    Wait(container::WaitArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArgs),
    /// Rename a container
    Rename(control::RenameArgs),
    /// Display the running processes of a container
    Top(control::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Update configuration of one or more containers
    Update(stats::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(fs::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(fs::ExportArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Remove all stopped containers
    Prune(prune::ContainerPruneArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
}

#[derive(Subcommand, Debug)]
// Each subcommand's arguments are built only when it is the one invoked (start-up time).
#[command(defer = true)]
pub enum SystemCommand {
    /// Show docker disk usage
    Df(df::DfArgs),
    /// Remove unused data
    Prune(prune::SystemPruneArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
}

#[derive(Subcommand, Debug)]
// Each subcommand's arguments are built only when it is the one invoked (start-up time).
#[command(defer = true)]
pub enum ImageCommand {
    #[command(visible_aliases = ["list"])]
    /// List images
    Ls(images::ImagesArgs),
    #[command(visible_aliases = ["remove"])]
    /// Remove one or more images
    Rm(images::RmiArgs),
    /// Display detailed information on one or more images
    Inspect(inspect::TypedInspectArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(archive::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(archive::LoadArgs),
    /// Remove unused images
    Prune(prune::ImagePruneArgs),
}

/// Exit with a specific status; `message` (if any) goes to stderr.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: Option<String>,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.code)
    }
}

impl std::error::Error for StatusError {}

pub fn status(code: i32, message: Option<String>) -> anyhow::Error {
    StatusError { code, message }.into()
}

/// The text docker prints for an error: the daemon's answer, or the whole chain.
pub fn error_text(err: &anyhow::Error) -> String {
    if let Some(api) = client::api_error(err) {
        return api.to_string();
    }
    if let Some(c) = err
        .chain()
        .find_map(|e| e.downcast_ref::<client::ConnectError>())
    {
        return c.to_string();
    }
    let mut s = err.to_string();
    for cause in err.chain().skip(1) {
        s.push_str(": ");
        s.push_str(&cause.to_string());
    }
    s
}

/// Collects per-name failures of multi-name commands; errors print after the successes.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn push(&mut self, err: &anyhow::Error) {
        self.0.push(error_text(err));
    }

    pub fn finish(self) -> Result<i32> {
        if self.0.is_empty() {
            Ok(0)
        } else {
            Err(status(1, Some(self.0.join("\n"))))
        }
    }
}

/// clap errors as docker prints flag errors: message, usage hint, exit 125.
pub fn report_clap_error(e: clap::Error, argv: &[String]) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let sub = command_path(argv);
            let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
            use clap::error::{ContextKind, ContextValue};
            let rendered = e.render().to_string();
            let mut first = rendered
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            if e.kind() == ErrorKind::UnknownArgument {
                if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
                    first = if arg.starts_with("--") {
                        format!("unknown flag: {}", arg.split('=').next().unwrap_or(arg))
                    } else {
                        format!(
                            "unknown shorthand flag: {:?} in {arg}",
                            arg.chars().nth(1).unwrap_or('-')
                        )
                        .replace('"', "'")
                    };
                }
            }
            let cmd = if sub.is_empty() {
                "berth".to_string()
            } else {
                format!("berth {}", sub.join(" "))
            };
            let usage = usage_for(&sub);
            eprintln!("{first}\n\n{usage}\n\nRun '{cmd} --help' for more information");
            ExitCode::from(125)
        }
    }
}

/// The subcommand words of `argv` (`["container", "ls"]`), skipping global flags.
fn command_path(argv: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if out.is_empty() && matches!(a.as_str(), "-H" | "--host" | "-l" | "--log-level") {
            it.next();
            continue;
        }
        if a.starts_with('-') {
            if out.is_empty() {
                continue;
            }
            break;
        }
        match cmd.find_subcommand(a) {
            Some(c) => {
                out.push(c.get_name().to_string());
                cmd = c.clone();
            }
            None => break,
        }
    }
    out
}

/// `Usage:  berth run [OPTIONS] ...` for the (sub)command named in `path`.
fn usage_for(path: &[&str]) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for p in path {
        match cmd.find_subcommand(p) {
            Some(c) => cmd = c.clone(),
            None => break,
        }
    }
    let u = cmd.render_usage().to_string();
    let u = u.trim_start_matches("Usage: ").trim().to_string();
    let u = if u.starts_with("berth ") {
        u
    } else {
        let rest = u.split_once(' ').map_or("", |(_, r)| r);
        let mut full = vec!["berth"];
        full.extend_from_slice(path);
        format!("{} {rest}", full.join(" "))
    };
    format!("Usage:  {u}")
}

pub async fn dispatch(cli: Cli) -> Result<i32> {
    if cli.version {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        );
        return Ok(0);
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(0);
    };
    let host = cli.host.as_deref();
    let connect = || async move { Client::connect(host).await };
    match command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            run::run(connect().await.map_err(run_err)?, a).await
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            run::create(connect().await.map_err(run_err)?, a).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start(connect().await?, a).await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(connect().await?, a, "stop").await
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::stop(connect().await?, a, "restart").await
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(connect().await?, a).await
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            container::rm(connect().await?, a).await
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(connect().await?, a).await
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            container::simple(connect().await?, a, "pause").await
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            container::simple(connect().await?, a, "unpause").await
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            control::rename(connect().await?, a).await
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            cp::cp(connect().await?, a).await
        }
        Command::Volume(c) => volume::run(connect().await?, c).await,
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            control::top(connect().await?, a).await
        }
        Command::Events(a) => events::events(connect().await?, a).await,
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            stats::stats(connect().await?, a).await
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            stats::update(connect().await?, a).await
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            fs::diff(connect().await?, a).await
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            fs::export(connect().await?, a).await
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            ps::ps(connect().await?, a).await
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            logs::logs(connect().await?, a).await
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            exec::exec(connect().await?, a).await
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            exec::attach(connect().await?, a).await
        }
        Command::Inspect(a) => inspect::inspect(connect().await?, a).await,
        Command::Container(ContainerCommand::Inspect(a)) => {
            inspect::inspect(connect().await?, a.with_type("container")).await
        }
        Command::Image(ImageCommand::Inspect(a)) => {
            inspect::inspect(connect().await?, a.with_type("image")).await
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            images::import(connect().await?, a).await
        }
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            images::images(connect().await?, a).await
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            images::rmi(connect().await?, a).await
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            images::tag(connect().await?, a).await
        }
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(connect().await?, a).await
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commit::commit(connect().await?, a).await
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            archive::save(connect().await?, a).await
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            archive::load(connect().await?, a).await
        }
        Command::Image(ImageCommand::Prune(a)) => prune::image_prune(connect().await?, a).await,
        Command::Container(ContainerCommand::Prune(a)) => {
            prune::container_prune(connect().await?, a).await
        }
        Command::System(SystemCommand::Df(a)) => df::df(connect().await?, a).await,
        Command::System(SystemCommand::Prune(a)) => prune::system_prune(connect().await?, a).await,
        Command::System(SystemCommand::Info(a)) => system::info(cli.host.as_deref(), a).await,
        Command::Info(a) => system::info(cli.host.as_deref(), a).await,
        Command::Version(a) => system::version(cli.host.as_deref(), a).await,
        Command::Network(c) => network::run(connect().await?, c).await,
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            network::port(connect().await?, a).await
        }
    }
}

/// `run`/`create` report daemon and connection failures with exit status 125.
fn run_err(e: anyhow::Error) -> anyhow::Error {
    status(
        125,
        Some(format!(
            "berth: {}\n\nRun 'berth run --help' for more information",
            error_text(&e)
        )),
    )
}

/// Parse a Go-style duration/timestamp argument for `--since`/`--until`: RFC 3339,
/// a unix timestamp, or a relative duration such as `10m` or `1h30m`.
pub fn parse_timestamp(value: &str) -> Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(value.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if let Some(d) = parse_go_duration(value) {
        let now = chrono::Utc::now();
        let t = now - chrono::Duration::from_std(d)?;
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, fmt) {
            return Ok(t.and_utc().timestamp().to_string());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(value, fmt) {
            if let Some(t) = d.and_hms_opt(0, 0, 0) {
                return Ok(t.and_utc().timestamp().to_string());
            }
        }
    }
    anyhow::bail!("invalid value for timestamp: {value:?}")
}

/// Go's `time.ParseDuration` for the units docker users type (ns..h).
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole command tree is well formed (no flag defined twice, e.g. by two flattened
    /// argument groups): clap checks it only when a subcommand is parsed.
    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(parse_go_duration("10x"), None);
        assert_eq!(parse_timestamp("1700000000").unwrap(), "1700000000");
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z").unwrap(),
            "1700000000.000000000"
        );
    }
}
