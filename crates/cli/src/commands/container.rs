//! Container lifecycle verbs over one or more names: start, stop, restart, kill, rm,
//! wait, pause, unpause.

use std::io::IsTerminal;

use anyhow::{Context as _, Result};
use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::{error_text, run, status, Failures};
use crate::client::{api_error, Client};
use crate::stream;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn start(client: Client, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(status(
                1,
                Some("you cannot start and attach multiple containers at once".into()),
            ));
        }
        return start_attached(client, &a).await;
    }
    let mut failed = Vec::new();
    for name in &a.containers {
        match client.post(&format!("/containers/{name}/start"), &[]).await {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", error_text(&e));
                failed.push(name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(status(
            1,
            Some(format!(
                "Error: failed to start containers: {}",
                failed.join(", ")
            )),
        ))
    }
}

async fn start_attached(client: Client, a: &StartArgs) -> Result<i32> {
    let name = &a.containers[0];
    let info: Value = client
        .get_json(&format!("/containers/{name}/json"), &[])
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let use_stdin = a.interactive && open_stdin;
    if !tty {
        stream::proxy_signals(client.clone(), id.clone());
    }
    let mut q = vec![
        ("stream", "1".to_string()),
        ("stdin", if use_stdin { "1" } else { "0" }.to_string()),
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
    ];
    if let Some(k) = &a.detach_keys {
        q.push(("detachKeys", k.clone()));
    }
    let conn = client
        .hijack(&format!("/containers/{id}/attach"), &q, None)
        .await?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let waiter = run::wait_request(&client, &id, condition).await?;
    let raw =
        (tty && use_stdin && std::io::stdin().is_terminal()).then(stream::RawTerminal::enable);
    let stdin = use_stdin.then(stream::stdin_channel);
    let io = tokio::spawn(stream::hold(conn, tty, stdin));
    if let Err(e) = client.post(&format!("/containers/{id}/start"), &[]).await {
        drop(raw);
        io.abort();
        return Err(e);
    }
    if tty && std::io::stdout().is_terminal() {
        stream::monitor_tty_size(client.clone(), format!("/containers/{id}/resize"));
    }
    let _ = io.await;
    drop(raw);
    let code = waiter.await.context("waiting for the container")??;
    Ok(code as i32)
}

pub async fn stop(client: Client, a: StopArgs, verb: &str) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(t) = a.timeout {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    let mut failures = Failures::default();
    for name in &a.containers {
        match client.post(&format!("/containers/{name}/{verb}"), &q).await {
            Ok(_) => println!("{name}"),
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

pub async fn kill(client: Client, a: KillArgs) -> Result<i32> {
    let q: Vec<(&str, String)> = a.signal.iter().map(|s| ("signal", s.clone())).collect();
    let mut failures = Failures::default();
    for name in &a.containers {
        match client.post(&format!("/containers/{name}/kill"), &q).await {
            Ok(_) => println!("{name}"),
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

pub async fn rm(client: Client, a: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    if a.link {
        q.push(("link", "1".to_string()));
    }
    let mut failures = Failures::default();
    for name in &a.containers {
        let name = name.trim_matches('/');
        match client
            .request(Method::DELETE, &format!("/containers/{name}"), &q, None)
            .await
        {
            Ok(_) => println!("{name}"),
            Err(e) if a.force && api_error(&e).is_some_and(|x| x.is_not_found()) => {
                eprintln!("{}", error_text(&e));
            }
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

pub async fn wait(client: Client, a: WaitArgs) -> Result<i32> {
    let mut failures = Failures::default();
    for name in &a.containers {
        match client.post(&format!("/containers/{name}/wait"), &[]).await {
            Ok(body) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                println!("{}", v["StatusCode"].as_i64().unwrap_or(0));
            }
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}

pub async fn simple(client: Client, a: NamesArgs, verb: &str) -> Result<i32> {
    let mut failures = Failures::default();
    for name in &a.containers {
        match client
            .post(&format!("/containers/{name}/{verb}"), &[])
            .await
        {
            Ok(_) => println!("{name}"),
            Err(e) => failures.push(&e),
        }
    }
    failures.finish()
}
