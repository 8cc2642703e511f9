//! `berth network create|ls|inspect|rm|prune|connect|disconnect` and `berth port`, with
//! docker's flags and output.
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use gotmpl::Value as T;
use serde_json::{json, Value};

use super::ps::filters_json;
use super::{inspect, status, Failures};
use crate::client::Client;
use crate::format::json::ordered_map;
use crate::format::Formatter;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    #[command(visible_aliases = ["list"])]
    /// List networks
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(inspect::TypedInspectArgs),
    #[command(visible_aliases = ["remove"])]
    /// Remove one or more networks
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. 'driver=bridge')
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

pub async fn run(client: Client, cmd: NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => create(client, a).await,
        NetworkCommand::Ls(a) => ls(client, a).await,
        NetworkCommand::Inspect(a) => inspect::inspect(client, a.with_type("network")).await,
        NetworkCommand::Rm(a) => rm(client, a).await,
        NetworkCommand::Prune(a) => prune(client, a).await,
        NetworkCommand::Connect(a) => connect(client, a).await,
        NetworkCommand::Disconnect(a) => disconnect(client, a).await,
    }
}

fn kv(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// docker's consolidateIpam: every gateway / ip-range belongs to one subnet.
fn ipam_config(a: &CreateArgs) -> Result<Vec<Value>> {
    if a.subnet.is_empty() && (!a.gateway.is_empty() || !a.ip_range.is_empty()) {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let mut out = Vec::new();
    let mut used_gw = vec![false; a.gateway.len()];
    let mut used_range = vec![false; a.ip_range.len()];
    for s in &a.subnet {
        let mut cfg = serde_json::Map::new();
        cfg.insert("Subnet".into(), json!(s));
        for (i, r) in a.ip_range.iter().enumerate() {
            if !used_range[i] && in_subnet(s, r.split('/').next().unwrap_or(r)) {
                cfg.insert("IPRange".into(), json!(r));
                used_range[i] = true;
            }
        }
        for (i, g) in a.gateway.iter().enumerate() {
            if !used_gw[i] && in_subnet(s, g) {
                cfg.insert("Gateway".into(), json!(g));
                used_gw[i] = true;
            }
        }
        out.push(Value::Object(cfg));
    }
    if let Some(i) = used_gw.iter().position(|u| !u) {
        bail!("no matching subnet for gateway {}", a.gateway[i]);
    }
    if let Some(i) = used_range.iter().position(|u| !u) {
        bail!("no matching subnet for range {}", a.ip_range[i]);
    }
    Ok(out)
}

/// Whether `ip` is inside `cidr` (false for anything unparsable: the daemon reports it).
fn in_subnet(cidr: &str, ip: &str) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(ip), Ok(len)) = (
        net.parse::<std::net::IpAddr>(),
        ip.parse::<std::net::IpAddr>(),
        len.parse::<u32>(),
    ) else {
        return false;
    };
    match (net, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) if len <= 32 => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & m == u32::from(i) & m
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) if len <= 128 => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

async fn create(client: Client, a: CreateArgs) -> Result<i32> {
    let cfg = ipam_config(&a).map_err(|e| status(1, Some(e.to_string())))?;
    let mut body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": a.ipam_driver, "Config": cfg, "Options": {}},
        "Options": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    if !a.aux_address.is_empty() {
        if let Some(c) = body["IPAM"]["Config"].get_mut(0) {
            c["AuxiliaryAddresses"] = json!(kv(&a.aux_address));
        }
    }
    let resp = client.post_json("/networks/create", &[], &body).await?;
    let v: Value = serde_json::from_slice(&resp)?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

async fn ls(client: Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if !a.filter.is_empty() {
        q.push(("filters", filters_json(&a.filter)?));
    }
    let mut list: Vec<Value> = client.get_json("/networks", &q).await?;
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" if a.quiet => "{{.ID}}".to_string(),
        "" | "table" => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let s = |v: &str| T::String(v.into());
    let rows: Vec<T> = list
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or("");
            let id = if a.no_trunc {
                id
            } else {
                &id[..id.len().min(12)]
            };
            let mut labels: Vec<String> = n["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            let fields: Vec<(&str, T)> = vec![
                ("CreatedAt", s(n["Created"].as_str().unwrap_or(""))),
                ("Driver", s(n["Driver"].as_str().unwrap_or(""))),
                ("ID", s(id)),
                (
                    "IPv6",
                    s(&n["EnableIPv6"].as_bool().unwrap_or(false).to_string()),
                ),
                (
                    "Internal",
                    s(&n["Internal"].as_bool().unwrap_or(false).to_string()),
                ),
                ("Labels", s(&labels.join(","))),
                ("Name", s(n["Name"].as_str().unwrap_or(""))),
                ("Scope", s(n["Scope"].as_str().unwrap_or(""))),
            ];
            ordered_map(
                fields
                    .into_iter()
                    .map(|(k, v)| (Arc::<str>::from(k), v))
                    .collect(),
            )
        })
        .collect();
    print!("{}", Formatter::new(&format)?.render(&rows, HEADERS)?);
    Ok(0)
}

async fn rm(client: Client, a: RmArgs) -> Result<i32> {
    let mut failures = Failures::default();
    for n in &a.names {
        match client
            .request(hyper::Method::DELETE, &format!("/networks/{n}"), &[], None)
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) => {
                if a.force && crate::client::api_error(&e).is_some_and(|x| x.is_not_found()) {
                    continue;
                }
                failures.push(&e);
            }
        }
    }
    failures.finish()
}

async fn prune(client: Client, a: PruneArgs) -> Result<i32> {
    if !a.force {
        print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y") {
            return Ok(0);
        }
    }
    let mut q = Vec::new();
    if !a.filter.is_empty() {
        q.push(("filters", filters_json(&a.filter)?));
    }
    let resp = client.post("/networks/prune", &q).await?;
    let v: Value = serde_json::from_slice(&resp)?;
    let names: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in names {
            println!("{n}");
        }
    }
    Ok(0)
}

async fn connect(client: Client, a: ConnectArgs) -> Result<i32> {
    let mut ipam = serde_json::Map::new();
    if let Some(ip) = &a.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &a.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    let body = json!({
        "Container": a.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Aliases": a.alias,
            "Links": a.link,
        },
    });
    client
        .post_json(&format!("/networks/{}/connect", a.network), &[], &body)
        .await?;
    Ok(0)
}

async fn disconnect(client: Client, a: DisconnectArgs) -> Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    client
        .post_json(&format!("/networks/{}/disconnect", a.network), &[], &body)
        .await?;
    Ok(0)
}

/// `berth port`: the container's published ports from inspect.
pub async fn port(client: Client, a: PortArgs) -> Result<i32> {
    let v: Value = client
        .get_json(&format!("/containers/{}/json", a.container), &[])
        .await?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        (p.parse::<u32>().unwrap_or(0), proto.to_owned())
    });
    if let Some(given) = &a.port {
        let want = if given.contains('/') {
            given.clone()
        } else {
            format!("{given}/tcp")
        };
        let Some(bindings) = ports.get(&want).and_then(|b| b.as_array()) else {
            return Err(status(
                1,
                Some(format!(
                    "Error: No public port '{given}' published for {}",
                    a.container
                )),
            ));
        };
        for b in bindings {
            println!("{}", host_addr(b));
        }
        return Ok(0);
    }
    for k in keys {
        if let Some(bindings) = ports[k].as_array() {
            for b in bindings {
                println!("{k} -> {}", host_addr(b));
            }
        }
    }
    Ok(0)
}

fn host_addr(b: &Value) -> String {
    let ip = b["HostIp"].as_str().unwrap_or("");
    let port = b["HostPort"].as_str().unwrap_or("");
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_consolidation() {
        let a = CreateArgs {
            driver: "bridge".into(),
            subnet: vec!["10.1.0.0/24".into(), "fd00:1::/64".into()],
            gateway: vec!["fd00:1::1".into(), "10.1.0.254".into()],
            ip_range: vec!["10.1.0.128/25".into()],
            aux_address: vec![],
            ipam_driver: "default".into(),
            internal: false,
            ipv6: true,
            attachable: false,
            label: vec![],
            opt: vec![],
            name: "n".into(),
        };
        let c = ipam_config(&a).unwrap();
        assert_eq!(c[0]["Gateway"], "10.1.0.254");
        assert_eq!(c[0]["IPRange"], "10.1.0.128/25");
        assert_eq!(c[1]["Gateway"], "fd00:1::1");
        let bad = CreateArgs {
            gateway: vec!["10.9.0.1".into()],
            subnet: vec!["10.1.0.0/24".into()],
            ..a
        };
        assert_eq!(
            ipam_config(&bad).unwrap_err().to_string(),
            "no matching subnet for gateway 10.9.0.1"
        );
    }
}
