//! Containers on networks: what they ask for at create, addresses and port reservations
//! before the shim runs (`prepare`), veths into the container's namespace once it exists
//! (`activate`), and the undo of both (`release`). Also the container's hosts and
//! resolv.conf contents.
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use berth_api::models::{ContainerConfig, EndpointSettings, HostConfig};
use berth_api::ApiError;
use berth_network::ipam;
use berth_network::netlink::EndpointLink;
use berth_network::IpNet;

use super::{random_hex, Active, CtrNet, Ep, NetRecord, Networks, PortPub, Want};

/// A port reservation: a socket bound to the published host address and port, so the
/// port stays ours (and a later bind elsewhere fails) while DNAT carries the traffic.
pub enum Reservation {
    #[allow(dead_code)]
    Tcp(std::net::TcpListener),
    #[allow(dead_code)]
    Udp(std::net::UdpSocket),
}

/// The outcome of `prepare`: files to write into the container's directory.
pub struct Plan {
    pub hosts: Option<String>,
    pub resolv: Option<String>,
}

const HOSTS_HEAD: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The network a container's `NetworkMode` names, if it is a network (not host, none,
/// container:).
pub fn mode_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

fn parse_port_key(k: &str) -> Result<(u16, String), ApiError> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let port = p
        .parse::<u16>()
        .map_err(|_| ApiError::invalid(format!("invalid port specification: \"{k}\"")))?;
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ApiError::invalid(format!("invalid proto: {proto}")));
    }
    Ok((port, proto))
}

/// Host port spec: "" / "0" = any, "N", or "A-B".
fn host_port_range(s: &str) -> Result<(u16, u16), ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok((0, 0));
    }
    let bad = || ApiError::invalid(format!("invalid host port: {s}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let a = a.parse::<u16>().map_err(|_| bad())?;
            let b = b.parse::<u16>().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = s.parse::<u16>().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

impl Networks {
    /// Validates a container's network settings at create and records what it asks for.
    pub fn register(
        &self,
        id: &str,
        name: &str,
        host: &HostConfig,
        endpoints: &std::collections::HashMap<String, EndpointSettings>,
    ) -> Result<(), ApiError> {
        let mode = host.network_mode.clone().unwrap_or_default();
        let mut wants = Vec::new();
        // The CLI keys the endpoint of `--network X` by X, "default" included.
        let endpoints: std::collections::HashMap<String, EndpointSettings> = endpoints
            .iter()
            .map(|(k, v)| {
                let k = if k == "default" {
                    "bridge".to_owned()
                } else {
                    k.clone()
                };
                (k, v.clone())
            })
            .collect();
        let endpoints = &endpoints;
        let st = self.state.lock().expect("net lock");
        if let Some(net) = mode_network(&mode) {
            // An unknown network fails the start (404), as in Docker, not the create
            // (where a 404 would make the CLI try to pull the image).
            let n = match super::find_in(&st.nets, net) {
                Ok(n) => n,
                // `--bridge none`: the default network mode has no network, as in Docker.
                Err(_) if net == "bridge" && matches!(mode.as_str(), "" | "default") => {
                    drop(st);
                    let c = CtrNet {
                        name: name.to_owned(),
                        wants: vec![],
                        active: None,
                    };
                    // Nothing the container record does not already say: no fsync.
                    self.save_ctr_as(id, Some(&c), false);
                    self.state
                        .lock()
                        .expect("net lock")
                        .ctrs
                        .insert(id.to_owned(), c);
                    return Ok(());
                }
                Err(_) => {
                    wants.push(Want {
                        net: net.to_owned(),
                        ..Default::default()
                    });
                    drop(st);
                    let c = CtrNet {
                        name: name.to_owned(),
                        wants,
                        active: None,
                    };
                    self.save_ctr(id, Some(&c));
                    self.state
                        .lock()
                        .expect("net lock")
                        .ctrs
                        .insert(id.to_owned(), c);
                    return Ok(());
                }
            };
            if !n.is_bridge() {
                // `--network host` spelled by ID or similar: nothing to attach.
            } else {
                let mut keys: Vec<&String> = endpoints.keys().collect();
                keys.sort_by_key(|k| {
                    (
                        super::find_in(&st.nets, k)
                            .map(|x| x.id != n.id)
                            .unwrap_or(true),
                        (*k).clone(),
                    )
                });
                if keys.is_empty()
                    || super::find_in(&st.nets, keys[0])
                        .map(|x| x.id != n.id)
                        .unwrap_or(true)
                {
                    wants.push(want_from(n, None)?);
                }
                for k in keys {
                    let Ok(en) = super::find_in(&st.nets, k) else {
                        // Unknown: the start fails with 404 (see above).
                        if !wants.iter().any(|w: &Want| &w.net == k) {
                            wants.push(Want {
                                net: k.clone(),
                                ..Default::default()
                            });
                        }
                        continue;
                    };
                    if !en.is_bridge() {
                        return Err(ApiError::invalid(format!(
                            "container cannot be connected to network {} with network mode {mode}",
                            en.name
                        )));
                    }
                    if wants.iter().any(|w: &Want| w.net == en.id) {
                        continue;
                    }
                    wants.push(want_from(en, endpoints.get(k))?);
                }
            }
        } else if !endpoints.is_empty()
            && endpoints
                .keys()
                .any(|k| !matches!(k.as_str(), "host" | "none") && !k.is_empty())
            && mode != "host"
            && mode != "none"
        {
            // container:<id> with extra networks: Docker refuses.
            return Err(ApiError::invalid(
                "conflicting options: networks and the container network mode",
            ));
        }
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            let exposed = host.port_bindings.as_ref().is_some_and(|p| !p.is_empty());
            if mode.starts_with("container:") && exposed {
                return Err(ApiError::invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
        }
        // Validate the port bindings now (a bad one fails create, as in Docker).
        for (k, v) in host.port_bindings.clone().unwrap_or_default() {
            parse_port_key(&k)?;
            for b in v.unwrap_or_default() {
                host_port_range(b.host_port.as_deref().unwrap_or(""))?;
                if let Some(ip) = b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                    ip.parse::<IpAddr>()
                        .map_err(|_| ApiError::invalid(format!("invalid host IP: {ip}")))?;
                }
            }
        }
        drop(st);
        let c = CtrNet {
            name: name.to_owned(),
            wants,
            active: None,
        };
        // Durable only when it holds what the container record does not: endpoint settings
        // (`--network X` beyond the mode, `--ip`, aliases). Otherwise the wants follow from
        // the container's HostConfig alone, and a record lost to a crash is derived again
        // at start-up (`ensure_registered`): create pays no extra fsync for the default
        // bridge, `none`, `host` or `container:`.
        self.save_ctr_as(id, Some(&c), !endpoints.is_empty() && !c.wants.is_empty());
        self.state
            .lock()
            .expect("net lock")
            .ctrs
            .insert(id.to_owned(), c);
        Ok(())
    }

    /// At start-up, for a container whose network record is missing (written without
    /// fsync at create, see `register`): derives it again from the HostConfig.
    pub fn ensure_registered(&self, id: &str, name: &str, host: &HostConfig) {
        if self.state.lock().expect("net lock").ctrs.contains_key(id) {
            return;
        }
        if let Err(e) = self.register(id, name, host, &Default::default()) {
            tracing::warn!(%id, error = %e.message, "deriving the network record again");
        }
    }

    /// Forgets a removed container.
    pub fn forget(&self, id: &str) {
        let mut st = self.state.lock().expect("net lock");
        st.ctrs.remove(id);
        st.reservations.remove(id);
        drop(st);
        self.save_ctr(id, None);
    }

    /// Follows a rename (DNS answers the new name).
    pub fn renamed(&self, id: &str, name: &str) {
        let mut st = self.state.lock().expect("net lock");
        if let Some(c) = st.ctrs.get_mut(id) {
            c.name = name.to_owned();
            let c = c.clone();
            drop(st);
            self.save_ctr(id, Some(&c));
        }
    }

    /// Before the shim: addresses from IPAM, port reservations, hosts and resolv.conf.
    /// Nothing is left behind on error.
    pub async fn prepare(
        self: &Arc<Self>,
        id: &str,
        cfg: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<Plan, ApiError> {
        let _op = self.op.lock().await;
        let mode = host.network_mode.clone().unwrap_or_default();
        let mut st = self.state.lock().expect("net lock");
        let Some(c) = st.ctrs.get(id).cloned() else {
            return Ok(Plan {
                hosts: None,
                resolv: None,
            });
        };
        if mode_network(&mode).is_none() || c.wants.is_empty() {
            return Ok(Plan {
                hosts: None,
                resolv: None,
            });
        }
        // Used addresses, per network: gateways, aux addresses, live endpoints.
        let mut endpoints = Vec::new();
        for (i, w) in c.wants.iter().enumerate() {
            let n = st
                .nets
                .get(&w.net)
                .cloned()
                .or_else(|| super::find_in(&st.nets, &w.net).ok().cloned())
                .ok_or_else(|| ApiError::not_found(format!("network {} not found", w.net)))?;
            let mut used: BTreeSet<IpAddr> = n.subnets.iter().map(|s| s.gateway).collect();
            for s in &n.subnets {
                for v in s.aux.values() {
                    if let Ok(a) = v.parse() {
                        used.insert(a);
                    }
                }
            }
            for oc in st.ctrs.values() {
                if let Some(a) = &oc.active {
                    for e in a.endpoints.iter().filter(|e| e.net == n.id) {
                        used.extend(e.ips.iter().copied());
                    }
                }
            }
            for e in &endpoints {
                let e: &Ep = e;
                if e.net == n.id {
                    used.extend(e.ips.iter().copied());
                }
            }
            let mut ips = Vec::new();
            for s in &n.subnets {
                let requested = if s.subnet.addr().is_ipv4() {
                    w.ipv4
                } else {
                    w.ipv6
                };
                let a = match requested {
                    Some(a) if s.subnet.contains(&a) => {
                        ipam::check_static(&s.subnet, a, &used)
                            .map_err(|e| ApiError::conflict(e.to_string()))?;
                        a
                    }
                    _ => ipam::allocate(&s.subnet, s.ip_range.as_ref(), &used, &n.name)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                };
                used.insert(a);
                ips.push(a);
            }
            let v4 = ips.iter().find_map(|a| match a {
                IpAddr::V4(v) => Some(*v),
                _ => None,
            });
            if let Some(ent) = st.ctrs.get_mut(id) {
                ent.wants[i].net = n.id.clone();
            }
            endpoints.push(Ep {
                net: n.id.clone(),
                endpoint_id: random_hex(32),
                ips,
                mac: ipam::mac_string(&ipam::mac_for(v4)),
                host_if: format!("veth{}", &random_hex(4)[..7]),
                ctr_if: format!("eth{i}"),
            });
        }
        // Published ports (not on internal networks).
        let ports = plan_ports(cfg, host);
        let mut taken_by_us: BTreeSet<(String, u16)> = BTreeSet::new();
        for oc in st.ctrs.values() {
            if let Some(a) = &oc.active {
                for p in &a.ports {
                    taken_by_us.insert((p.proto.clone(), p.host_port));
                }
            }
        }
        let mut bound = Vec::new();
        let mut reservations = Vec::new();
        for (proto, host_ip, (lo, hi), ctr_port) in ports {
            let mut last_err = None;
            let mut got = None;
            let candidates: Vec<u16> = if lo == 0 {
                vec![0]
            } else {
                (lo..=hi).collect()
            };
            for hp in candidates {
                if hp != 0 && taken_by_us.contains(&(proto.clone(), hp)) {
                    last_err = Some(ApiError::internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): Bind for {}:{hp} failed: port is already allocated",
                        c.name,
                        endpoints[0].endpoint_id,
                        host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())
                    )));
                    continue;
                }
                match reserve(&proto, host_ip, hp) {
                    Ok((r, port)) => {
                        got = Some((r, port));
                        break;
                    }
                    Err(e) => {
                        last_err = Some(ApiError::internal(format!(
                            "driver failed programming external connectivity on endpoint {} ({}): Error starting userland proxy: listen {proto}4 {}:{hp}: bind: {}",
                            c.name,
                            endpoints[0].endpoint_id,
                            host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                            io_text(&e)
                        )))
                    }
                }
            }
            let Some((r, port)) = got else {
                return Err(last_err.unwrap_or_else(|| ApiError::internal("no host port")));
            };
            taken_by_us.insert((proto.clone(), port));
            reservations.push(r);
            bound.push(PortPub {
                proto,
                host_ip,
                host_port: port,
                ctr_port,
            });
        }
        let nets: Vec<NetRecord> = endpoints
            .iter()
            .filter_map(|e| st.nets.get(&e.net).cloned())
            .collect();
        let hosts = self.hosts_file(&st, cfg, host, &endpoints, &nets)?;
        let resolv = self.resolv_file(host, &nets);
        let entry = st.ctrs.get_mut(id).expect("present");
        entry.active = Some(Active {
            pid: 0,
            endpoints,
            ports: bound,
            dns: host
                .dns
                .clone()
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .map(|a| SocketAddr::new(a, 53))
                .collect(),
        });
        st.reservations.insert(id.to_owned(), reservations);
        Ok(Plan {
            hosts: Some(hosts),
            resolv: Some(resolv),
        })
    }

    fn hosts_file(
        &self,
        st: &super::State,
        cfg: &ContainerConfig,
        host: &HostConfig,
        eps: &[Ep],
        nets: &[NetRecord],
    ) -> Result<String, ApiError> {
        let mut s = HOSTS_HEAD.to_owned();
        let default_gw = st
            .nets
            .values()
            .find(|n| n.default_bridge)
            .and_then(|n| n.v4_gateway())
            .or_else(|| nets.first().and_then(|n| n.v4_gateway()));
        for e in host.extra_hosts.clone().unwrap_or_default() {
            if let Some((name, ip)) = e.split_once(':') {
                let ip = if ip == "host-gateway" {
                    default_gw.map(|g| g.to_string()).unwrap_or_default()
                } else {
                    ip.to_owned()
                };
                s.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        // --link name:alias on the default bridge.
        if nets.first().is_some_and(|n| n.default_bridge) {
            for l in host.links.clone().unwrap_or_default() {
                let (target, alias) = l.split_once(':').unwrap_or((&l, &l));
                let target = target.trim_start_matches('/');
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                let Some((tid, tc)) = st.ctrs.iter().find(|(k, c)| {
                    c.name == target || (target.len() >= 3 && k.starts_with(target))
                }) else {
                    return Err(ApiError::invalid(format!(
                        "could not get container for {target}: No such container: {target}"
                    )));
                };
                let ip = tc.active.as_ref().filter(|a| a.pid != 0).and_then(|a| {
                    a.endpoints
                        .iter()
                        .find(|e| nets[0].id == e.net)
                        .and_then(|e| e.ips.first().copied())
                });
                let Some(ip) = ip else {
                    return Err(ApiError::conflict(format!(
                        "Cannot link to a non running container: /{} AS /{alias}",
                        tc.name
                    )));
                };
                if alias == tc.name {
                    s.push_str(&format!("{ip}\t{alias} {}\n", &tid[..12]));
                } else {
                    s.push_str(&format!("{ip}\t{alias} {} {}\n", &tid[..12], tc.name));
                }
            }
        }
        let hostname = cfg.hostname.clone().unwrap_or_default();
        let domain = cfg.domainname.clone().unwrap_or_default();
        if let Some(ip) = eps.first().and_then(|e| e.ips.first()) {
            if domain.is_empty() {
                s.push_str(&format!("{ip}\t{hostname}\n"));
            } else {
                s.push_str(&format!("{ip}\t{hostname}.{domain} {hostname}\n"));
            }
        }
        Ok(s)
    }

    fn resolv_file(&self, host: &HostConfig, nets: &[NetRecord]) -> String {
        let host_resolv = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        let mut search: Vec<String> = Vec::new();
        let mut options: Vec<String> = Vec::new();
        let mut servers: Vec<String> = Vec::new();
        for l in host_resolv.lines() {
            let mut f = l.split_whitespace();
            match f.next() {
                Some("search") | Some("domain") => search = f.map(str::to_owned).collect(),
                Some("options") => options.extend(f.map(str::to_owned)),
                Some("nameserver") => {
                    if let Some(a) = f.next() {
                        if !(a.starts_with("127.") || a == "::1") {
                            servers.push(a.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(d) = host.dns_search.as_ref().filter(|d| !d.is_empty()) {
            search = d.iter().filter(|s| s.as_str() != ".").cloned().collect();
        }
        if let Some(o) = host.dns_options.as_ref().filter(|d| !d.is_empty()) {
            options = o.clone();
        }
        if let Some(d) = host.dns.as_ref().filter(|d| !d.is_empty()) {
            servers = d.clone();
        }
        let embedded = nets
            .iter()
            .find(|n| n.has_dns())
            .and_then(|n| n.v4_gateway());
        let mut s = String::new();
        match embedded {
            Some(gw) => s.push_str(&format!("nameserver {gw}\n")),
            None => {
                for a in &servers {
                    s.push_str(&format!("nameserver {a}\n"));
                }
            }
        }
        if !search.is_empty() {
            s.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            s.push_str(&format!("options {}\n", options.join(" ")));
        }
        s
    }

    /// Once the container's namespace exists: veths, addresses, routes, DNAT rules.
    pub async fn activate(self: &Arc<Self>, id: &str, pid: u32) -> Result<(), ApiError> {
        let (eps, nets, has_ports) = {
            let mut st = self.state.lock().expect("net lock");
            let Some(c) = st.ctrs.get_mut(id) else {
                return Ok(());
            };
            let Some(a) = c.active.as_mut() else {
                return Ok(());
            };
            a.pid = pid;
            let eps = a.endpoints.clone();
            let has_ports = !a.ports.is_empty();
            let nets: Vec<NetRecord> = eps
                .iter()
                .filter_map(|e| st.nets.get(&e.net).cloned())
                .collect();
            (eps, nets, has_ports)
        };
        if eps.is_empty() {
            return Ok(());
        }
        let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
        let mut gw_set = false;
        let mut done: Vec<String> = Vec::new();
        for (e, n) in eps.iter().zip(nets.iter()) {
            let link = endpoint_link(e, n, &mut gw_set, self.cfg.mtu);
            if let Err(err) = self.nl.add_endpoint(&n.bridge, &netns, &link).await {
                for h in &done {
                    let _ = self.nl.delete_link(h).await;
                }
                return Err(ApiError::from_chain(&err));
            }
            done.push(e.host_if.clone());
        }
        if has_ports {
            if let Err(e) = self.apply_rules().await {
                for h in &done {
                    let _ = self.nl.delete_link(h).await;
                }
                return Err(e);
            }
        }
        let c = self.state.lock().expect("net lock").ctrs.get(id).cloned();
        if let Some(c) = c {
            self.save_ctr_as(id, Some(&c), false);
        }
        for n in &nets {
            self.emit("connect", n, Some(id));
        }
        Ok(())
    }

    /// Undoes `prepare` and `activate` (exit, failed start); idempotent.
    pub async fn release(self: &Arc<Self>, id: &str) {
        let (active, c) = {
            let mut st = self.state.lock().expect("net lock");
            st.reservations.remove(id);
            let Some(c) = st.ctrs.get_mut(id) else { return };
            let a = c.active.take();
            (a, c.clone())
        };
        let Some(a) = active else { return };
        // Deleting a veth waits in the kernel for RCU grace periods (20-40 ms here): that
        // runs in the background, so that an exit is reported (and `run --rm` returns)
        // without it. The addresses and names are free already: the records above no
        // longer hold them and a new veth gets a fresh random name. Once the container's
        // namespace is gone the kernel deletes the pair by itself anyway; the explicit
        // delete covers a namespace still held (a process that joined it). A delete lost
        // to a daemon stop is done at the next start (orphans on our bridges).
        for e in &a.endpoints {
            self.reaper.delete(e.host_if.clone());
            if a.pid != 0 {
                let n = self
                    .state
                    .lock()
                    .expect("net lock")
                    .nets
                    .get(&e.net)
                    .cloned();
                if let Some(n) = n {
                    self.emit("disconnect", &n, Some(id));
                }
            }
        }
        if !a.ports.is_empty() {
            if let Err(e) = self.apply_rules().await {
                tracing::warn!(id, error = %e.message, "removing port rules");
            }
        }
        self.save_ctr_as(id, Some(&c), false);
    }

    /// At start-up: takes the port reservations of a live container again.
    pub(crate) fn rereserve(&self, id: &str) {
        let mut st = self.state.lock().expect("net lock");
        let Some(a) = st.ctrs.get(id).and_then(|c| c.active.clone()) else {
            return;
        };
        let mut rs = Vec::new();
        for p in &a.ports {
            match reserve(&p.proto, p.host_ip, p.host_port) {
                Ok((r, _)) => rs.push(r),
                Err(e) => {
                    tracing::warn!(id, port = p.host_port, error = %e, "re-reserving a published port")
                }
            }
        }
        st.reservations.insert(id.to_owned(), rs);
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

pub(crate) fn endpoint_link(e: &Ep, n: &NetRecord, gw_set: &mut bool, mtu: u32) -> EndpointLink {
    let addrs: Vec<IpNet> = e
        .ips
        .iter()
        .zip(n.subnets.iter())
        .map(|(ip, s)| IpNet::new(*ip, s.subnet.prefix_len()).expect("prefix"))
        .collect();
    let gateways = if n.internal || *gw_set {
        vec![]
    } else {
        *gw_set = true;
        n.subnets.iter().map(|s| s.gateway).collect()
    };
    let mut mac = [0u8; 6];
    for (i, p) in e.mac.split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(p, 16).unwrap_or(0);
    }
    let host_routes = if n.internal {
        vec![]
    } else {
        n.subnets.iter().map(|s| s.gateway).collect()
    };
    EndpointLink {
        host_if: e.host_if.clone(),
        ctr_if: e.ctr_if.clone(),
        mac,
        addrs,
        gateways,
        host_routes,
        mtu,
    }
}

/// Binds the reservation socket; port 0 picks a free one. Returns the port bound.
fn reserve(proto: &str, ip: Option<IpAddr>, port: u16) -> std::io::Result<(Reservation, u16)> {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let sa = SocketAddr::new(ip, port);
    match proto {
        "udp" => {
            let s = std::net::UdpSocket::bind(sa)?;
            let p = s.local_addr()?.port();
            Ok((Reservation::Udp(s), p))
        }
        _ => {
            let s = std::net::TcpListener::bind(sa)?;
            let p = s.local_addr()?.port();
            Ok((Reservation::Tcp(s), p))
        }
    }
}

type PortPlan = (String, Option<IpAddr>, (u16, u16), u16);

/// The ports to publish: `PortBindings`, plus every exposed port with `-P`.
fn plan_ports(cfg: &ContainerConfig, host: &HostConfig) -> Vec<PortPlan> {
    let mut out = Vec::new();
    let bindings = host.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    for k in keys {
        let Ok((ctr_port, proto)) = parse_port_key(k) else {
            continue;
        };
        let list = bindings[k].clone().unwrap_or_default();
        let list = if list.is_empty() {
            vec![Default::default()]
        } else {
            list
        };
        for b in list {
            let b: berth_api::models::PortBinding = b;
            let ip = b
                .host_ip
                .as_deref()
                .filter(|s| !s.is_empty() && *s != "0.0.0.0")
                .and_then(|s| s.parse().ok());
            let range = host_port_range(b.host_port.as_deref().unwrap_or("")).unwrap_or((0, 0));
            out.push((proto.clone(), ip, range, ctr_port));
        }
    }
    if host.publish_all_ports.unwrap_or(false) {
        let mut exposed: Vec<&String> = cfg
            .exposed_ports
            .as_ref()
            .map(|e| e.keys().collect())
            .unwrap_or_default();
        exposed.sort();
        for k in exposed {
            if bindings.contains_key(k) {
                continue;
            }
            if let Ok((p, proto)) = parse_port_key(k) {
                out.push((proto, None, (0, 0), p));
            }
        }
    }
    out
}

pub(crate) fn want_from_pub(n: &NetRecord, s: Option<&EndpointSettings>) -> Result<Want, ApiError> {
    want_from(n, s)
}

fn want_from(n: &NetRecord, s: Option<&EndpointSettings>) -> Result<Want, ApiError> {
    let mut w = Want {
        net: n.id.clone(),
        ..Default::default()
    };
    let Some(s) = s else { return Ok(w) };
    let ipam_cfg = s.ipam_config.clone().unwrap_or_default();
    let v4 = ipam_cfg.ipv4_address.clone().filter(|a| !a.is_empty());
    let v6 = ipam_cfg.ipv6_address.clone().filter(|a| !a.is_empty());
    if (v4.is_some() || v6.is_some()) && n.default_bridge {
        return Err(ApiError::invalid(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    let aliases: Vec<String> = s.aliases.clone().unwrap_or_default();
    if !aliases.is_empty() && n.default_bridge {
        return Err(ApiError::invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    for (val, is4) in [(v4, true), (v6, false)] {
        let Some(a) = val else { continue };
        let ip: IpAddr = a.parse().map_err(|_| {
            ApiError::invalid(format!(
                "invalid IPv{} address: {a}",
                if is4 { 4 } else { 6 }
            ))
        })?;
        if !n.subnets.iter().any(|s| s.subnet.contains(&ip)) || ip == n.subnets[0].subnet.network()
        {
            return Err(ApiError::invalid(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
        if n.subnets.iter().any(|s| s.gateway == ip) {
            return Err(ApiError::invalid(format!(
                "Address {ip} is the network's gateway"
            )));
        }
        if is4 {
            w.ipv4 = Some(ip);
        } else {
            w.ipv6 = Some(ip);
        }
    }
    w.aliases = aliases;
    w.links = s.links.clone().unwrap_or_default();
    Ok(w)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use berth_api::models::{EndpointIpamConfig, PortBinding};

    use super::*;
    use crate::network::SubnetCfg;

    fn net(default_bridge: bool) -> NetRecord {
        let subnet: IpNet = "10.5.0.0/24".parse().unwrap();
        NetRecord {
            id: "n".repeat(64),
            name: "n".into(),
            created: String::new(),
            driver: "bridge".into(),
            bridge: "b".into(),
            internal: false,
            ipv6: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            subnets: vec![SubnetCfg {
                subnet,
                gateway: "10.5.0.1".parse().unwrap(),
                ip_range: None,
                aux: BTreeMap::new(),
                show_gateway: true,
            }],
            ipam_user: true,
            default_bridge,
        }
    }

    fn settings(ip: &str, aliases: &[&str]) -> EndpointSettings {
        EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(ip.into()),
                ..Default::default()
            }),
            aliases: Some(aliases.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn modes() {
        assert_eq!(mode_network(""), Some("bridge"));
        assert_eq!(mode_network("default"), Some("bridge"));
        assert_eq!(mode_network("mynet"), Some("mynet"));
        assert_eq!(mode_network("host"), None);
        assert_eq!(mode_network("none"), None);
        assert_eq!(mode_network("container:abc"), None);
    }

    #[test]
    fn static_addresses_and_aliases_are_checked() {
        let w = want_from(&net(false), Some(&settings("10.5.0.9", &["web"]))).unwrap();
        assert_eq!(w.ipv4, Some("10.5.0.9".parse().unwrap()));
        assert_eq!(w.aliases, ["web"]);
        let e = want_from(&net(false), Some(&settings("10.6.0.9", &[]))).unwrap_err();
        assert!(e
            .message
            .contains("does not belong to any of this network's subnets"));
        let e = want_from(&net(false), Some(&settings("10.5.0.1", &[]))).unwrap_err();
        assert!(e.message.contains("gateway"));
        let e = want_from(&net(false), Some(&settings("nonsense", &[]))).unwrap_err();
        assert!(e.message.contains("invalid IPv4 address"));
        let e = want_from(&net(true), Some(&settings("10.5.0.9", &[]))).unwrap_err();
        assert!(e.message.contains("user defined networks only"));
        let mut s = settings("", &["x"]);
        s.ipam_config = None;
        let e = want_from(&net(true), Some(&s)).unwrap_err();
        assert!(e.message.contains("network-scoped alias"));
    }

    #[test]
    fn port_plans() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert!(parse_port_key("x/tcp").is_err());
        assert!(parse_port_key("80/icmp").is_err());
        assert_eq!(host_port_range("").unwrap(), (0, 0));
        assert_eq!(host_port_range("8080").unwrap(), (8080, 8080));
        assert_eq!(host_port_range("8000-8010").unwrap(), (8000, 8010));
        assert!(host_port_range("9-8").is_err());
        let host = HostConfig {
            port_bindings: Some(HashMap::from([(
                "80/tcp".to_owned(),
                Some(vec![
                    PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("8080".into()),
                    },
                    PortBinding {
                        host_ip: Some("".into()),
                        host_port: Some("".into()),
                    },
                ]),
            )])),
            publish_all_ports: Some(true),
            ..Default::default()
        };
        let cfg = ContainerConfig {
            exposed_ports: Some(HashMap::from([
                ("80/tcp".to_owned(), HashMap::new()),
                ("53/udp".to_owned(), HashMap::new()),
            ])),
            ..Default::default()
        };
        let p = plan_ports(&cfg, &host);
        assert_eq!(
            p,
            vec![
                (
                    "tcp".into(),
                    Some("127.0.0.1".parse().unwrap()),
                    (8080, 8080),
                    80
                ),
                ("tcp".into(), None, (0, 0), 80),
                ("udp".into(), None, (0, 0), 53),
            ]
        );
    }
}
