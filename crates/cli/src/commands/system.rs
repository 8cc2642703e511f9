//! `version` and `info`.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use gotmpl::Value as T;
use serde_json::Value;

use super::{error_text, status};
use crate::client::{Client, MAX_API_VERSION};
use crate::format::json::{self as tjson, ordered_map};
use crate::format::tabwriter::TabWriter;
use crate::format::template;
use crate::format::units::bytes_size;

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

fn ansic(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_else(|_| ts.to_string())
}

fn client_map(api: &str) -> T {
    let s = |v: &str| T::String(v.into());
    ordered_map(vec![
        (
            Arc::from("Platform"),
            ordered_map(vec![(Arc::from("Name"), s(""))]),
        ),
        (Arc::from("Version"), s(env!("CARGO_PKG_VERSION"))),
        (Arc::from("ApiVersion"), s(api)),
        (Arc::from("DefaultAPIVersion"), s(MAX_API_VERSION)),
        (
            Arc::from("GitCommit"),
            s(option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")),
        ),
        (Arc::from("GoVersion"), s("n/a (rust)")),
        (Arc::from("Os"), s(std::env::consts::OS)),
        (Arc::from("Arch"), s(go_arch())),
        (Arc::from("BuildTime"), s("unknown")),
        (Arc::from("Context"), s("default")),
    ])
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn version(host: Option<&str>, a: VersionArgs) -> Result<i32> {
    let client = Client::connect(host).await;
    let api = client
        .as_ref()
        .map(|c| c.version().to_string())
        .unwrap_or_else(|_| MAX_API_VERSION.to_string());
    let server: Result<Value> = match &client {
        Ok(c) => c.get_json("/version", &[]).await,
        Err(e) => Err(anyhow::anyhow!(error_text(e))),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = template::parse(f)?;
        let server_v = server.as_ref().map(tjson::from_serde).unwrap_or(T::Nil);
        let data = ordered_map(vec![
            (Arc::from("Client"), client_map(&api)),
            (Arc::from("Server"), server_v),
        ]);
        let out =
            template::execute(&t, &data).map_err(|e| status(1, Some(format!("template: {e}"))))?;
        println!("{out}");
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(status(1, Some(error_text(&e)))),
        };
    }
    let mut out = String::new();
    let downgraded = if api != MAX_API_VERSION {
        format!(" (downgraded from {MAX_API_VERSION})")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "Client:\n Version:\t{}\n API version:\t{api}{downgraded}\n Go version:\tn/a (rust)\n Git commit:\t{}\n Built:\tunknown\n OS/Arch:\t{}/{}\n Context:\tdefault\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        std::env::consts::OS,
        go_arch()
    ));
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            print!("{}", TabWriter::new(20, 1).format(&out));
            return Err(status(1, Some(error_text(&e))));
        }
    };
    let name = server["Platform"]["Name"].as_str().unwrap_or("");
    out.push_str(&format!(
        "\nServer:{}\n",
        if name.is_empty() {
            String::new()
        } else {
            format!(" {name}")
        }
    ));
    let components = server["Components"].as_array().cloned().unwrap_or_default();
    let str_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if components.is_empty() {
        out.push_str(&format!(
            " Engine:\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}\n",
            str_of(&server["Version"]),
            str_of(&server["ApiVersion"]),
            str_of(&server["MinAPIVersion"]),
            str_of(&server["GoVersion"]),
            str_of(&server["GitCommit"]),
            ansic(&str_of(&server["BuildTime"])),
            str_of(&server["Os"]),
            str_of(&server["Arch"]),
            server["Experimental"].as_bool().unwrap_or(false),
        ));
    }
    for c in &components {
        let d = &c["Details"];
        out.push_str(&format!(" {}:\n", str_of(&c["Name"])));
        if c["Name"] == "Engine" {
            out.push_str(&format!(
                "  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}\n",
                str_of(&c["Version"]),
                str_of(&d["ApiVersion"]),
                str_of(&d["MinAPIVersion"]),
                str_of(&d["GoVersion"]),
                str_of(&d["GitCommit"]),
                ansic(&str_of(&d["BuildTime"])),
                str_of(&d["Os"]),
                str_of(&d["Arch"]),
                str_of(&d["Experimental"]),
            ));
        } else {
            out.push_str(&format!("  Version:\t{}\n", str_of(&c["Version"])));
            if let Some(m) = d.as_object() {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    out.push_str(&format!("  {k}:\t{}\n", str_of(&m[k])));
                }
            }
        }
    }
    print!("{}", TabWriter::new(20, 1).format(&out));
    Ok(0)
}

pub async fn info(host: Option<&str>, a: InfoArgs) -> Result<i32> {
    let client = Client::connect(host).await;
    let server: Result<Value> = match &client {
        Ok(c) => c.get_json("/info", &[]).await,
        Err(e) => Err(anyhow::anyhow!(error_text(e))),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = template::parse(f)?;
        let mut v = server.as_ref().cloned().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert(
                "ClientInfo".into(),
                serde_json::json!({"Debug": false, "Context": "default", "Plugins": [], "Warnings": null}),
            );
        }
        let out = template::execute(&t, &tjson::from_serde(&v))
            .map_err(|e| status(1, Some(format!("template: {e}"))))?;
        println!("{out}");
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(status(1, Some(error_text(&e)))),
        };
    }
    println!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
        env!("CARGO_PKG_VERSION")
    );
    let i = match server {
        Ok(s) => s,
        Err(e) => {
            println!("Server:");
            return Err(status(1, Some(error_text(&e))));
        }
    };
    let sv = |k: &str| -> String {
        match &i[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let mut o = String::from("Server:\n");
    o.push_str(&format!(" Containers: {}\n", sv("Containers")));
    o.push_str(&format!("  Running: {}\n", sv("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", sv("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", sv("ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", sv("Images")));
    o.push_str(&format!(" Server Version: {}\n", sv("ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", sv("Driver")));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        if let Some([k, v]) = pair.as_array().map(|a| a.as_slice()) {
            o.push_str(&format!(
                "  {}: {}\n",
                k.as_str().unwrap_or(""),
                v.as_str().unwrap_or("")
            ));
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", sv("LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", sv("CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", sv("CgroupVersion")));
    if let Some(p) = i["Plugins"].as_object() {
        o.push_str(" Plugins:\n");
        for (k, label) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
            if let Some(list) = p.get(k).and_then(Value::as_array) {
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                o.push_str(&format!("  {label}: {}\n", names.join(" ")));
            }
        }
    }
    if let Some(r) = i["Runtimes"].as_object() {
        let mut names: Vec<&String> = r.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        o.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
    }
    o.push_str(&format!(" Default Runtime: {}\n", sv("DefaultRuntime")));
    o.push_str(&format!(" Kernel Version: {}\n", sv("KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", sv("OperatingSystem")));
    o.push_str(&format!(" OSType: {}\n", sv("OSType")));
    o.push_str(&format!(" Architecture: {}\n", sv("Architecture")));
    o.push_str(&format!(" CPUs: {}\n", sv("NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    o.push_str(&format!(" Name: {}\n", sv("Name")));
    o.push_str(&format!(" ID: {}\n", sv("ID")));
    o.push_str(&format!(" Docker Root Dir: {}\n", sv("DockerRootDir")));
    o.push_str(&format!(
        " Debug Mode: {}\n",
        i["Debug"].as_bool().unwrap_or(false)
    ));
    o.push_str(&format!(
        " Experimental: {}\n",
        i["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        i["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    print!("{o}");
    for w in i["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}
