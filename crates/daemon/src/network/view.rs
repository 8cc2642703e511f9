//! Docker's shapes: `Network` for `network ls/inspect`, and a container's
//! `NetworkSettings` (inspect), summary networks and ports (`ps`).
use std::collections::HashMap;
use std::net::IpAddr;

use berth_api::models::{
    ConfigReference, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, Network,
    NetworkContainer, NetworkSettings, Port, PortBinding, PortTypeEnum,
};
use berth_api::Filters;

use super::{endpoint::mode_network, find_in, CtrNet, NetRecord, Networks};

fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

impl Networks {
    pub fn network_model(&self, n: &NetRecord) -> Network {
        let st = self.state.lock().expect("net lock");
        let mut containers = HashMap::new();
        for (cid, c) in &st.ctrs {
            let Some(a) = &c.active else { continue };
            for e in a.endpoints.iter().filter(|e| e.net == n.id) {
                let mut v4 = String::new();
                let mut v6 = String::new();
                for (ip, sn) in e.ips.iter().zip(n.subnets.iter()) {
                    let t = format!("{ip}/{}", sn.subnet.prefix_len());
                    if ip.is_ipv4() {
                        v4 = t;
                    } else {
                        v6 = t;
                    }
                }
                containers.insert(
                    cid.clone(),
                    NetworkContainer {
                        name: s(c.name.clone()),
                        endpoint_id: s(e.endpoint_id.clone()),
                        mac_address: s(e.mac.clone()),
                        ipv4_address: s(v4),
                        ipv6_address: s(v6),
                    },
                );
            }
        }
        let config = if n.is_bridge() {
            n.subnets
                .iter()
                .map(|sn| IpamConfig {
                    subnet: s(sn.subnet.to_string()),
                    ip_range: sn.ip_range.map(|r| r.to_string()),
                    gateway: sn.show_gateway.then(|| sn.gateway.to_string()),
                    auxiliary_addresses: (!sn.aux.is_empty())
                        .then(|| sn.aux.clone().into_iter().collect()),
                })
                .collect()
        } else {
            vec![]
        };
        Network {
            name: s(n.name.clone()),
            id: s(n.id.clone()),
            created: s(n.created.clone()),
            scope: s("local"),
            driver: s(n.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(n.ipv6),
            ipam: Some(Ipam {
                driver: s("default"),
                config: Some(config),
                options: n.ipam_user.then(HashMap::new),
            }),
            internal: Some(n.internal),
            attachable: Some(n.attachable),
            ingress: Some(false),
            config_from: Some(ConfigReference { network: s("") }),
            config_only: Some(false),
            containers: Some(containers),
            options: Some(n.options.clone().into_iter().collect()),
            labels: Some(n.labels.clone().into_iter().collect()),
            peers: None,
        }
    }

    /// `network ls` with Docker's filters (driver, id, label, name, scope, type, dangling).
    pub fn list_networks(&self, filters: &Filters) -> Result<Vec<Network>, berth_api::ApiError> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "driver" | "id" | "label" | "name" | "scope" | "type" | "dangling"
            ) {
                return Err(berth_api::ApiError::invalid(format!(
                    "invalid filter '{k}'"
                )));
            }
        }
        let mut out = Vec::new();
        for n in self.all() {
            if !self.matches(&n, filters) {
                continue;
            }
            out.push(self.network_model(&n));
        }
        Ok(out)
    }

    pub(crate) fn matches(&self, n: &NetRecord, f: &Filters) -> bool {
        for (k, vals) in f {
            if vals.is_empty() {
                continue;
            }
            let ok = match k.as_str() {
                "driver" => vals.contains(&n.driver),
                "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
                "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
                "scope" => vals.iter().any(|v| v == "local"),
                "type" => vals.iter().any(|v| match v.as_str() {
                    "builtin" => n.predefined(),
                    "custom" => !n.predefined(),
                    _ => false,
                }),
                "label" => vals.iter().all(|v| match v.split_once('=') {
                    Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                    None => n.labels.contains_key(v.as_str()),
                }),
                "dangling" => {
                    let want = vals.iter().any(|v| v == "true" || v == "1");
                    let dangling = !n.predefined() && self.users(&n.id).is_empty();
                    want == dangling
                }
                _ => true,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// A container's `NetworkSettings` for inspect.
    pub fn container_settings(
        &self,
        id: &str,
        mode: &str,
        exposed: &[String],
        running: bool,
    ) -> NetworkSettings {
        let st = self.state.lock().expect("net lock");
        let c = st.ctrs.get(id).cloned().unwrap_or_default();
        let mut ns = NetworkSettings {
            bridge: s(""),
            sandbox_id: s(""),
            hairpin_mode: Some(false),
            link_local_ipv6_address: s(""),
            link_local_ipv6_prefix_len: Some(0),
            ports: Some(HashMap::new()),
            sandbox_key: s(""),
            secondary_ip_addresses: None,
            secondary_ipv6_addresses: None,
            endpoint_id: s(""),
            gateway: s(""),
            global_ipv6_address: s(""),
            global_ipv6_prefix_len: Some(0),
            ip_address: s(""),
            ip_prefix_len: Some(0),
            ipv6_gateway: s(""),
            mac_address: s(""),
            networks: Some(HashMap::new()),
        };
        let nets = endpoint_map(&st.nets, id, &c, mode);
        if let Some(a) = c.active.as_ref().filter(|a| a.pid != 0) {
            ns.sandbox_key = s(format!("/proc/{}/ns/net", a.pid));
            ns.sandbox_id = s(id.to_owned());
            if running {
                let mut ports: HashMap<String, Option<Vec<PortBinding>>> =
                    exposed.iter().map(|e| (e.clone(), None)).collect();
                for p in &a.ports {
                    let key = format!("{}/{}", p.ctr_port, p.proto);
                    let ip = p
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into());
                    ports
                        .entry(key)
                        .or_insert(None)
                        .get_or_insert_with(Vec::new)
                        .push(PortBinding {
                            host_ip: s(ip),
                            host_port: s(p.host_port.to_string()),
                        });
                }
                ns.ports = Some(ports);
            }
        }
        if let Some((_, e)) = nets.iter().find(|(k, _)| k.as_str() == "bridge") {
            let is_default = st
                .nets
                .values()
                .any(|n| n.default_bridge && n.name == "bridge");
            if is_default {
                ns.endpoint_id = e.endpoint_id.clone();
                ns.gateway = e.gateway.clone();
                ns.ip_address = e.ip_address.clone();
                ns.ip_prefix_len = e.ip_prefix_len;
                ns.mac_address = e.mac_address.clone();
                ns.global_ipv6_address = e.global_ipv6_address.clone();
                ns.global_ipv6_prefix_len = e.global_ipv6_prefix_len;
                ns.ipv6_gateway = e.ipv6_gateway.clone();
            }
        }
        ns.networks = Some(nets);
        ns
    }

    /// `ps --filter network=`: whether the container is on one of `keys` (name or ID).
    pub fn attached_to(&self, id: &str, mode: &str, keys: &[String]) -> bool {
        let st = self.state.lock().expect("net lock");
        let c = st.ctrs.get(id).cloned().unwrap_or_default();
        endpoint_map(&st.nets, id, &c, mode)
            .iter()
            .any(|(name, e)| {
                keys.iter().any(|k| {
                    k == name
                        || e.network_id
                            .as_deref()
                            .is_some_and(|nid| !k.is_empty() && nid.starts_with(k.as_str()))
                })
            })
    }

    /// `ps`: networks and published ports.
    pub fn summary(
        &self,
        id: &str,
        mode: &str,
        exposed: &[String],
        running: bool,
    ) -> (HashMap<String, EndpointSettings>, Vec<Port>) {
        let st = self.state.lock().expect("net lock");
        let c = st.ctrs.get(id).cloned().unwrap_or_default();
        let nets = endpoint_map(&st.nets, id, &c, mode);
        let mut ports = Vec::new();
        if running {
            let active = c.active.clone().unwrap_or_default();
            for p in &active.ports {
                ports.push(Port {
                    ip: s(p
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into())),
                    private_port: p.ctr_port,
                    public_port: Some(p.host_port),
                    typ: Some(proto_enum(&p.proto)),
                });
            }
            for e in exposed {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                let Ok(port) = port.parse::<u16>() else {
                    continue;
                };
                if active
                    .ports
                    .iter()
                    .any(|p| p.ctr_port == port && p.proto == proto)
                {
                    continue;
                }
                ports.push(Port {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: Some(proto_enum(proto)),
                });
            }
        }
        (nets, ports)
    }
}

fn proto_enum(p: &str) -> PortTypeEnum {
    match p {
        "udp" => PortTypeEnum::UDP,
        "sctp" => PortTypeEnum::SCTP,
        _ => PortTypeEnum::TCP,
    }
}

/// NetworkSettings.Networks: one entry per network the container is on.
fn endpoint_map(
    nets: &std::collections::BTreeMap<String, NetRecord>,
    id: &str,
    c: &CtrNet,
    mode: &str,
) -> HashMap<String, EndpointSettings> {
    let mut out = HashMap::new();
    if mode_network(mode).is_none() {
        let name = match mode {
            "host" => "host",
            "none" => "none",
            _ => return out,
        };
        if let Ok(n) = find_in(nets, name) {
            out.insert(
                name.to_owned(),
                EndpointSettings {
                    network_id: s(n.id.clone()),
                    endpoint_id: s(""),
                    gateway: s(""),
                    ip_address: s(""),
                    ip_prefix_len: Some(0),
                    ipv6_gateway: s(""),
                    global_ipv6_address: s(""),
                    global_ipv6_prefix_len: Some(0),
                    mac_address: s(""),
                    ..Default::default()
                },
            );
        }
        return out;
    }
    let active = c.active.as_ref().filter(|a| a.pid != 0);
    for w in &c.wants {
        let Some(n) = nets.get(&w.net) else { continue };
        let mut e = EndpointSettings {
            ipam_config: (w.ipv4.is_some() || w.ipv6.is_some()).then(|| EndpointIpamConfig {
                ipv4_address: w.ipv4.map(|a| a.to_string()),
                ipv6_address: w.ipv6.map(|a| a.to_string()),
                link_local_ips: None,
            }),
            links: (!w.links.is_empty()).then(|| w.links.clone()),
            aliases: if n.default_bridge {
                None
            } else {
                let mut a = vec![id[..12].to_owned()];
                a.extend(w.aliases.iter().cloned());
                Some(a)
            },
            network_id: s(n.id.clone()),
            endpoint_id: s(""),
            gateway: s(""),
            ip_address: s(""),
            ip_prefix_len: Some(0),
            ipv6_gateway: s(""),
            global_ipv6_address: s(""),
            global_ipv6_prefix_len: Some(0),
            mac_address: s(""),
            driver_opts: None,
            gw_priority: None,
            dns_names: None,
        };
        if let Some(ep) = active.and_then(|a| a.endpoints.iter().find(|e| e.net == n.id)) {
            e.endpoint_id = s(ep.endpoint_id.clone());
            e.mac_address = s(ep.mac.clone());
            for (ip, sn) in ep.ips.iter().zip(n.subnets.iter()) {
                match ip {
                    IpAddr::V4(_) => {
                        e.ip_address = s(ip.to_string());
                        e.ip_prefix_len = Some(sn.subnet.prefix_len() as i64);
                        e.gateway = s(sn.gateway.to_string());
                    }
                    IpAddr::V6(_) => {
                        e.global_ipv6_address = s(ip.to_string());
                        e.global_ipv6_prefix_len = Some(sn.subnet.prefix_len() as i64);
                        e.ipv6_gateway = s(sn.gateway.to_string());
                    }
                }
            }
            if !n.default_bridge {
                let mut names = vec![c.name.clone(), id[..12].to_owned()];
                names.extend(w.aliases.iter().cloned());
                e.dns_names = Some(names);
            }
        }
        out.insert(n.name.clone(), e);
    }
    out
}
