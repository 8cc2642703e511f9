//! `exec` and `attach`: hijacked streams into a running container.

use std::io::IsTerminal;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{json, Value};

use super::status;
use crate::client::Client;
use crate::stream;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn exec(client: Client, a: ExecArgs) -> Result<i32> {
    let container = &a.args[0];
    let cmd = &a.args[1..];
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        return Err(status(1, Some("the input device is not a TTY".into())));
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = std::fs::read_to_string(f).with_context(|| format!("open {f}"))?;
        env.extend(super::run::parse_env_file(&content, |k| {
            std::env::var(k).ok()
        })?);
    }
    env.extend(a.env.iter().cloned());
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    if let Some(k) = &a.detach_keys {
        body["DetachKeys"] = json!(k);
    }
    let resp = client
        .post_json(&format!("/containers/{container}/exec"), &[], &body)
        .await?;
    let v: Value = serde_json::from_slice(&resp).context("decoding exec create response")?;
    let id = v["Id"]
        .as_str()
        .context("exec create without Id")?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        client
            .post_json(&format!("/exec/{id}/start"), &[], &start)
            .await?;
        return Ok(0);
    }
    let conn = client
        .hijack(
            &format!("/exec/{id}/start"),
            &[],
            Some(serde_json::to_vec(&start)?),
        )
        .await?;
    let raw = (a.tty && a.interactive && std::io::stdin().is_terminal())
        .then(stream::RawTerminal::enable);
    if a.tty && std::io::stdout().is_terminal() {
        stream::monitor_tty_size(client.clone(), format!("/exec/{id}/resize"));
    }
    let stdin = a.interactive.then(stream::stdin_channel);
    let r = stream::hold(conn, a.tty, stdin).await;
    drop(raw);
    r?;
    let info: Value = client.get_json(&format!("/exec/{id}/json"), &[]).await?;
    Ok(info["ExitCode"].as_i64().unwrap_or(0) as i32)
}

pub async fn attach(client: Client, a: AttachArgs) -> Result<i32> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", a.container), &[])
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(status(
            1,
            Some("You cannot attach to a stopped container, start it first".into()),
        ));
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(status(
            1,
            Some("You cannot attach to a paused container, unpause it first".into()),
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let use_stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && use_stdin && !std::io::stdin().is_terminal() {
        return Err(status(1, Some("the input device is not a TTY".into())));
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
    let waiter = super::run::wait_request(&client, &id, "not-running").await?;
    if a.sig_proxy && !tty {
        stream::proxy_signals(client.clone(), id.clone());
    }
    let conn = client
        .hijack(&format!("/containers/{id}/attach"), &q, None)
        .await?;
    let raw = (tty && use_stdin).then(stream::RawTerminal::enable);
    if tty && std::io::stdout().is_terminal() {
        stream::monitor_tty_size(client.clone(), format!("/containers/{id}/resize"));
    }
    let stdin = use_stdin.then(stream::stdin_channel);
    let r = stream::hold(conn, tty, stdin).await;
    drop(raw);
    r?;
    // Detached with the detach keys: the container keeps running, exit 0.
    let still: Value = client
        .get_json(&format!("/containers/{id}/json"), &[])
        .await
        .unwrap_or_default();
    if still["State"]["Running"].as_bool().unwrap_or(false) {
        return Ok(0);
    }
    let code = waiter.await.context("waiting for the container")??;
    Ok(code as i32)
}
