//! The network service: network records (the predefined `bridge`, `host`, `none` and
//! user-defined bridges), IPAM allocations, container endpoints, published ports and the
//! embedded DNS servers. State lives under `<data-root>/networks/` (one JSON file per
//! network and per attached container, written temp + fsync + rename) and is re-applied
//! to the kernel at start-up (live restore). Kernel mechanisms are in `berth-network`.
mod api;
mod endpoint;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::models::NetworkCreateRequest;
use berth_api::ApiError;
use berth_network::ipam::{self, Pool};
use berth_network::netlink::Netlink;
use berth_network::nft::{self, NetRules, PortRule, Ruleset};
use berth_network::{dns, routes, IpNet};
use serde::{Deserialize, Serialize};

pub use api::NetworkApi;
pub use endpoint::Plan;

use crate::fsutil::write_atomic;

/// Daemon flags for the default bridge (dockerd's names).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// `--bridge`: the default bridge's interface name (`none` disables it).
    pub bridge: String,
    /// `--bip`: the default bridge's address and prefix (gateway/prefix).
    pub bip: Option<String>,
    /// `--default-address-pool`, in order.
    pub pools: Vec<Pool>,
    /// Resolver configuration the embedded DNS forwards to and containers inherit.
    pub resolv_conf: PathBuf,
    /// MTU for bridges and veths (`--mtu`, 0 = kernel default).
    pub mtu: u32,
}

/// One subnet of a network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubnetCfg {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    #[serde(default)]
    pub ip_range: Option<IpNet>,
    #[serde(default)]
    pub aux: BTreeMap<String, String>,
    /// The gateway was given or chosen by IPAM (shown), not defaulted from a given subnet.
    #[serde(default)]
    pub show_gateway: bool,
}

/// A network as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The bridge interface (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub subnets: Vec<SubnetCfg>,
    /// The IPAM config as the user gave it (Docker shows that, not the defaults).
    #[serde(default)]
    pub ipam_user: bool,
    /// The predefined `bridge` network (no DNS, `--link` works).
    #[serde(default)]
    pub default_bridge: bool,
}

impl NetRecord {
    pub fn predefined(&self) -> bool {
        self.default_bridge || self.driver == "host" || self.driver == "null"
    }
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }
    /// User-defined bridges have the embedded DNS.
    pub fn has_dns(&self) -> bool {
        self.is_bridge() && !self.default_bridge
    }
    fn v4_gateway(&self) -> Option<IpAddr> {
        self.subnets
            .iter()
            .find(|s| s.subnet.addr().is_ipv4())
            .map(|s| s.gateway)
    }
    fn masquerade(&self) -> bool {
        self.options
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false")
    }
}

/// What a container asked for on one network (create's EndpointsConfig, connect).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Want {
    pub net: String,
    #[serde(default)]
    pub ipv4: Option<IpAddr>,
    #[serde(default)]
    pub ipv6: Option<IpAddr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
}

/// One live endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ep {
    pub net: String,
    pub endpoint_id: String,
    pub ips: Vec<IpAddr>,
    pub mac: String,
    pub host_if: String,
    pub ctr_if: String,
}

/// A published port as bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortPub {
    pub proto: String,
    /// None = every address (`0.0.0.0`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub ctr_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Active {
    pub pid: u32,
    pub endpoints: Vec<Ep>,
    pub ports: Vec<PortPub>,
    /// `--dns` servers: the embedded DNS forwards this container's other queries there.
    #[serde(default)]
    pub dns: Vec<SocketAddr>,
}

/// A container's network state (`networks/containers/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CtrNet {
    pub name: String,
    pub wants: Vec<Want>,
    #[serde(default)]
    pub active: Option<Active>,
}

pub(crate) struct State {
    nets: BTreeMap<String, NetRecord>,
    ctrs: HashMap<String, CtrNet>,
    /// Port reservations: one bound socket per published port, per container.
    reservations: HashMap<String, Vec<endpoint::Reservation>>,
    dns: HashMap<String, dns::DnsServer>,
}

pub struct Networks {
    pub(crate) cfg: NetConfig,
    dir: PathBuf,
    table: String,
    pub(crate) nl: Netlink,
    /// Deletes released veths in the background (`Reaper`).
    pub(crate) reaper: berth_network::netlink::Reaper,
    events: Arc<crate::events::Events>,
    pub(crate) state: Mutex<State>,
    /// Serialises create/remove/attach against each other (IPAM decisions).
    pub(crate) op: tokio::sync::Mutex<()>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

pub(crate) fn random_hex(n: usize) -> String {
    let b: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    crate::container::hex_id(&b)
}

impl Networks {
    /// Loads persisted networks and endpoints, creates the predefined networks, and
    /// re-applies bridges, rules and DNS servers.
    pub async fn open(
        data_root: &std::path::Path,
        cfg: NetConfig,
        events: Arc<crate::events::Events>,
    ) -> anyhow::Result<Arc<Self>> {
        let dir = data_root.join("networks");
        std::fs::create_dir_all(dir.join("containers"))?;
        let table = if cfg.bridge == "berth0" || cfg.bridge == "none" {
            "berth".to_owned()
        } else {
            format!("berth-{}", cfg.bridge)
        };
        let nl = Netlink::open()?;
        let mut nets = BTreeMap::new();
        let mut ctrs = HashMap::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|d| {
                    serde_json::from_slice::<NetRecord>(&d).map_err(|e| e.to_string())
                }) {
                    Ok(r) => {
                        nets.insert(r.id.clone(), r);
                    }
                    Err(err) => {
                        tracing::warn!(path = %p.display(), %err, "skipping unreadable network")
                    }
                }
            }
        }
        for e in std::fs::read_dir(dir.join("containers"))?.flatten() {
            let p = e.path();
            let Some(id) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            if let Ok(c) = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|d| serde_json::from_slice::<CtrNet>(&d).map_err(|e| e.to_string()))
            {
                ctrs.insert(id, c);
            }
        }
        let this = Arc::new(Self {
            cfg,
            dir,
            table,
            nl,
            reaper: Default::default(),
            events,
            state: Mutex::new(State {
                nets,
                ctrs,
                reservations: HashMap::new(),
                dns: HashMap::new(),
            }),
            op: tokio::sync::Mutex::new(()),
        });
        // Networking problems (no nft binary, a taken bridge name) must not keep the rest
        // of the daemon down: they are logged, and the affected networks fail at use.
        if let Err(e) = this.ensure_predefined().await {
            tracing::error!(error = %format!("{e:#}"), "setting up the predefined networks");
        }
        if let Err(e) = this.restore_kernel().await {
            tracing::error!(error = %format!("{e:#}"), "restoring networks");
        }
        Ok(this)
    }

    /// A network event (`create`, `destroy`, `connect`, `disconnect`) as Docker's.
    pub(crate) fn emit(&self, action: &str, net: &NetRecord, container: Option<&str>) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), net.name.clone());
        attrs.insert("type".to_owned(), net.driver.clone());
        if let Some(c) = container {
            attrs.insert("container".to_owned(), c.to_owned());
        }
        self.events.publish("network", action, &net.id, attrs);
    }

    fn save_net(&self, r: &NetRecord) -> Result<(), ApiError> {
        let data = serde_json::to_vec_pretty(r).map_err(internal)?;
        write_atomic(&self.dir.join(format!("{}.json", r.id)), &data, true).map_err(internal)
    }

    pub(crate) fn save_ctr(&self, id: &str, c: Option<&CtrNet>) {
        self.save_ctr_as(id, c, true)
    }

    /// `durable`: fsynced (create, connect); run-time transitions (start, exit) are not, as
    /// the container record's own transitions: a power loss kills the containers anyway, and
    /// start-up reconciliation removes what no record owns.
    pub(crate) fn save_ctr_as(&self, id: &str, c: Option<&CtrNet>, durable: bool) {
        let p = self.dir.join("containers").join(format!("{id}.json"));
        let r = match c {
            Some(c) => serde_json::to_vec(c)
                .map_err(std::io::Error::other)
                .and_then(|d| write_atomic(&p, &d, durable)),
            None => match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        };
        if let Err(e) = r {
            tracing::error!(%id, error = %e, "persisting container network state");
        }
    }

    async fn ensure_predefined(self: &Arc<Self>) -> anyhow::Result<()> {
        let have = |drv: &str, name: &str| {
            self.state
                .lock()
                .expect("net lock")
                .nets
                .values()
                .any(|n| n.driver == drv && n.name == name)
        };
        for (drv, name) in [("host", "host"), ("null", "none")] {
            if !have(drv, name) {
                let r = NetRecord {
                    id: random_hex(32),
                    name: name.into(),
                    created: crate::container::now_rfc3339(),
                    driver: drv.into(),
                    bridge: String::new(),
                    internal: false,
                    ipv6: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    subnets: vec![],
                    ipam_user: false,
                    default_bridge: false,
                };
                self.save_net(&r).map_err(|e| anyhow::anyhow!(e.message))?;
                self.state
                    .lock()
                    .expect("net lock")
                    .nets
                    .insert(r.id.clone(), r);
            }
        }
        if self.cfg.bridge == "none" {
            return Ok(());
        }
        let existing = {
            let st = self.state.lock().expect("net lock");
            st.nets.values().find(|n| n.default_bridge).cloned()
        };
        let bip = match &self.cfg.bip {
            Some(b) => Some(
                b.parse::<IpNet>()
                    .map_err(|_| anyhow::anyhow!("invalid --bip {b}"))?,
            ),
            None => None,
        };
        let keep = existing.as_ref().is_some_and(|e| {
            e.bridge == self.cfg.bridge
                && bip.is_none_or(|b| {
                    e.subnets
                        .first()
                        .is_some_and(|s| s.subnet == b.trunc() && s.gateway == b.addr())
                })
        });
        if keep {
            return Ok(());
        }
        let (subnet, gateway) = match bip {
            Some(b) => (b.trunc(), b.addr()),
            None => {
                let taken = self.taken_subnets(Some(&self.cfg.bridge));
                let s = ipam::pick_subnet(&self.cfg.pools, &taken)
                    .map_err(|e| anyhow::anyhow!("default bridge: {e}"))?;
                let s = IpNet::V4(s);
                (s, ipam::first_host(&s))
            }
        };
        let mut options = BTreeMap::new();
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.driver.mtu", "1500"),
        ] {
            options.insert(k.to_owned(), v.to_owned());
        }
        options.insert(
            "com.docker.network.bridge.name".into(),
            self.cfg.bridge.clone(),
        );
        let r = NetRecord {
            id: existing
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_else(|| random_hex(32)),
            name: "bridge".into(),
            created: crate::container::now_rfc3339(),
            driver: "bridge".into(),
            bridge: self.cfg.bridge.clone(),
            internal: false,
            ipv6: false,
            attachable: false,
            labels: BTreeMap::new(),
            options,
            subnets: vec![SubnetCfg {
                subnet,
                gateway,
                ip_range: None,
                aux: BTreeMap::new(),
                show_gateway: true,
            }],
            ipam_user: false,
            default_bridge: true,
        };
        if let Some(old) = &existing {
            if old.bridge != r.bridge {
                let _ = self.nl.delete_link(&old.bridge).await;
            }
        }
        self.save_net(&r).map_err(|e| anyhow::anyhow!(e.message))?;
        self.state
            .lock()
            .expect("net lock")
            .nets
            .insert(r.id.clone(), r);
        Ok(())
    }

    /// Subnets already used: every network's, and every host route except the default
    /// routes and routes on `own_bridge` (a bridge being re-created).
    fn taken_subnets(&self, own_bridge: Option<&str>) -> Vec<IpNet> {
        let st = self.state.lock().expect("net lock");
        let mut v: Vec<IpNet> = st
            .nets
            .values()
            .flat_map(|n| n.subnets.iter().map(|s| s.subnet))
            .collect();
        let ours: BTreeSet<&str> = st.nets.values().map(|n| n.bridge.as_str()).collect();
        for r in routes::host_routes() {
            if Some(r.iface.as_str()) == own_bridge || ours.contains(r.iface.as_str()) {
                continue;
            }
            v.push(r.dst);
        }
        v
    }

    /// Host routes a subnet overlaps (not counting berth's own bridges).
    fn route_clash(&self, subnet: &IpNet) -> Option<routes::HostRoute> {
        let ours: BTreeSet<String> = self
            .state
            .lock()
            .expect("net lock")
            .nets
            .values()
            .map(|n| n.bridge.clone())
            .collect();
        routes::host_routes()
            .into_iter()
            .find(|r| !ours.contains(&r.iface) && ipam::overlaps(&r.dst, subnet))
    }

    /// Brings a bridge network up in the kernel: bridge, addresses, sysctls, forward
    /// accept rules.
    async fn bring_up(&self, n: &NetRecord) -> Result<(), ApiError> {
        if !n.is_bridge() {
            return Ok(());
        }
        let addrs: Vec<IpNet> = n
            .subnets
            .iter()
            .map(|s| IpNet::new(s.gateway, s.subnet.prefix_len()).expect("prefix"))
            .collect();
        self.nl
            .ensure_bridge(&n.bridge, &addrs, self.cfg.mtu)
            .await
            .map_err(|e| ApiError::from_chain(&e))?;
        let br = n.bridge.clone();
        let v6 = n.ipv6;
        tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
            nft::sysctl("net/ipv4/ip_forward", "1").map_err(internal)?;
            let _ = nft::sysctl(&format!("net/ipv4/conf/{br}/route_localnet"), "1");
            if v6 {
                let _ = nft::sysctl(&format!("net/ipv6/conf/{br}/disable_ipv6"), "0");
                nft::sysctl("net/ipv6/conf/all/forwarding", "1").map_err(internal)?;
            }
            nft::allow_forward(&br, v6).map_err(|e| ApiError::from_chain(&e))
        })
        .await
        .map_err(internal)??;
        Ok(())
    }

    /// Replaces berth's nftables table from the current state.
    pub(crate) async fn apply_rules(&self) -> Result<(), ApiError> {
        let rs = {
            let st = self.state.lock().expect("net lock");
            let nets = st
                .nets
                .values()
                .filter(|n| n.is_bridge())
                .map(|n| NetRules {
                    bridge: n.bridge.clone(),
                    subnets: n.subnets.iter().map(|s| s.subnet).collect(),
                    internal: n.internal,
                    masquerade: n.masquerade(),
                })
                .collect();
            let mut ports = Vec::new();
            for c in st.ctrs.values() {
                let Some(a) = &c.active else { continue };
                let Some(ep) = a.endpoints.iter().find(|e| {
                    st.nets
                        .get(&e.net)
                        .is_some_and(|n| n.is_bridge() && !n.internal)
                }) else {
                    continue;
                };
                for p in &a.ports {
                    for ip in &ep.ips {
                        ports.push(PortRule {
                            proto: p.proto.clone(),
                            host_ip: p.host_ip,
                            host_port: p.host_port,
                            ctr_ip: *ip,
                            ctr_port: p.ctr_port,
                        });
                    }
                }
            }
            Ruleset {
                table: self.table.clone(),
                nets,
                ports,
            }
        };
        tokio::task::spawn_blocking(move || rs.apply())
            .await
            .map_err(internal)?
            .map_err(|e| ApiError::from_chain(&e))
    }

    /// Starts the embedded DNS server of network `id` (user-defined bridges).
    async fn start_dns(self: &Arc<Self>, id: &str) {
        let Some(n) = self.state.lock().expect("net lock").nets.get(id).cloned() else {
            return;
        };
        if !n.has_dns() {
            return;
        }
        let Some(gw) = n.v4_gateway() else { return };
        let upstreams = dns::upstreams_from(
            &std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default(),
        );
        let names: Arc<dyn dns::Names> = Arc::new(DnsNames(Arc::downgrade(self)));
        match dns::serve(gw, names, upstreams).await {
            Ok(s) => {
                self.state
                    .lock()
                    .expect("net lock")
                    .dns
                    .insert(id.to_owned(), s);
            }
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "starting the embedded DNS server")
            }
        }
    }

    /// At start-up: bridges, rules, DNS servers and port reservations of live containers.
    async fn restore_kernel(self: &Arc<Self>) -> anyhow::Result<()> {
        let nets: Vec<NetRecord> = self
            .state
            .lock()
            .expect("net lock")
            .nets
            .values()
            .cloned()
            .collect();
        for n in &nets {
            if let Err(e) = self.bring_up(n).await {
                tracing::warn!(network = %n.name, error = %e.message, "bringing the network up");
            }
        }
        self.apply_rules()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        for n in &nets {
            self.start_dns(&n.id).await;
        }
        let ids: Vec<String> = self
            .state
            .lock()
            .expect("net lock")
            .ctrs
            .keys()
            .cloned()
            .collect();
        for id in ids {
            self.rereserve(&id);
        }
        Ok(())
    }

    /// Releases the endpoints of containers that are not running (after the container
    /// service restored its own state) and forgets containers that no longer exist.
    pub async fn reconcile(
        self: &Arc<Self>,
        running: &BTreeSet<String>,
        existing: &BTreeSet<String>,
    ) {
        let ids: Vec<String> = self
            .state
            .lock()
            .expect("net lock")
            .ctrs
            .keys()
            .cloned()
            .collect();
        for id in ids {
            if !existing.contains(&id) {
                self.release(&id).await;
                self.forget(&id);
            } else if !running.contains(&id) {
                self.release(&id).await;
            }
        }
        // From the kernel: veths on berth's bridges that no live endpoint owns (a start cut
        // short by a crash before its endpoint was recorded).
        let (bridges, owned): (Vec<String>, BTreeSet<String>) = {
            let st = self.state.lock().expect("net lock");
            (
                st.nets
                    .values()
                    .filter(|n| n.is_bridge())
                    .map(|n| n.bridge.clone())
                    .collect(),
                st.ctrs
                    .values()
                    .filter_map(|c| c.active.as_ref())
                    .flat_map(|a| a.endpoints.iter().map(|e| e.host_if.clone()))
                    .collect(),
            )
        };
        for b in bridges {
            match self.nl.ports_of(&b).await {
                Ok(ports) => {
                    for p in ports
                        .into_iter()
                        .filter(|p| p.starts_with("veth") && !owned.contains(p))
                    {
                        tracing::info!(bridge = %b, veth = %p, "removing an orphaned veth");
                        let _ = self.nl.delete_link(&p).await;
                    }
                }
                Err(e) => tracing::warn!(bridge = %b, error = %e, "listing bridge ports"),
            }
        }
    }

    /// Finds a network by full ID, exact name, then unique ID prefix.
    pub fn find(&self, key: &str) -> Result<NetRecord, ApiError> {
        let st = self.state.lock().expect("net lock");
        find_in(&st.nets, key).cloned()
    }

    pub async fn create_network(
        self: &Arc<Self>,
        req: NetworkCreateRequest,
    ) -> Result<(String, String), ApiError> {
        let _op = self.op.lock().await;
        let name = req.name.clone();
        if name.is_empty() {
            return Err(ApiError::invalid("network name must not be empty"));
        }
        if !crate::names::valid_name(&name) {
            return Err(ApiError::invalid(format!(
                "invalid network name \"{name}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if self
            .state
            .lock()
            .expect("net lock")
            .nets
            .values()
            .any(|n| n.name == name)
        {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(ApiError::conflict(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            other => return Err(ApiError::not_found(format!("plugin \"{other}\" not found"))),
        }
        let ipam_req = req.ipam.clone().unwrap_or_default();
        if let Some(d) = ipam_req.driver.as_deref() {
            if !d.is_empty() && d != "default" {
                return Err(ApiError::not_found(format!("plugin \"{d}\" not found")));
            }
        }
        let ipv6 = req.enable_ipv6.unwrap_or(false);
        let mut subnets = Vec::new();
        let user_cfg = ipam_req.config.clone().unwrap_or_default();
        for c in &user_cfg {
            let Some(s) = c.subnet.as_deref().filter(|s| !s.is_empty()) else {
                if c.gateway.as_deref().is_some_and(|g| !g.is_empty())
                    || c.ip_range.as_deref().is_some_and(|g| !g.is_empty())
                {
                    return Err(ApiError::invalid(
                        "every ip-range or gateway must have a corresponding subnet",
                    ));
                }
                continue;
            };
            let sn = ipam::parse_cidr(s)
                .map_err(|e| ApiError::invalid(format!("Invalid subnet {s} : {e}")))?;
            let sn = sn.trunc();
            let gateway = match c.gateway.as_deref().filter(|g| !g.is_empty()) {
                Some(g) => {
                    let g = ipam::parse_ip(g).map_err(|e| ApiError::invalid(e.to_string()))?;
                    if !sn.contains(&g) || g == sn.network() {
                        return Err(ApiError::invalid(format!(
                            "no matching subnet for gateway {g}"
                        )));
                    }
                    g
                }
                None => ipam::first_host(&sn),
            };
            let ip_range = match c.ip_range.as_deref().filter(|g| !g.is_empty()) {
                Some(r) => {
                    let r = ipam::parse_cidr(r).map_err(|e| ApiError::invalid(e.to_string()))?;
                    if !(sn.contains(&r.network()) && r.prefix_len() >= sn.prefix_len()) {
                        return Err(ApiError::invalid(format!(
                            "no matching subnet for range {r}"
                        )));
                    }
                    Some(r.trunc())
                }
                None => None,
            };
            if sn.addr().is_ipv6() && !ipv6 {
                return Err(ApiError::invalid(format!(
                    "subnet {sn} is IPv6: enable IPv6 (--ipv6) for this network"
                )));
            }
            subnets.push(SubnetCfg {
                subnet: sn,
                gateway,
                show_gateway: c.gateway.as_deref().is_some_and(|g| !g.is_empty()),
                ip_range,
                aux: c
                    .auxiliary_addresses
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            });
        }
        // Overlaps with other networks, each other, and host routes.
        {
            let st = self.state.lock().expect("net lock");
            for (i, s) in subnets.iter().enumerate() {
                let clash = st
                    .nets
                    .values()
                    .flat_map(|n| n.subnets.iter())
                    .chain(subnets[..i].iter())
                    .any(|o| ipam::overlaps(&o.subnet, &s.subnet));
                if clash {
                    return Err(ApiError::conflict(
                        "Pool overlaps with other one on this address space",
                    ));
                }
            }
        }
        for s in &subnets {
            if let Some(r) = self.route_clash(&s.subnet) {
                return Err(ApiError::conflict(format!(
                    "Pool overlaps with other one on this address space: subnet {} overlaps the host route {} dev {}",
                    s.subnet, r.dst, r.iface
                )));
            }
        }
        if !subnets.iter().any(|s| s.subnet.addr().is_ipv4()) {
            let taken = self.taken_subnets(None);
            let s = ipam::pick_subnet(&self.cfg.pools, &taken)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let s = IpNet::V4(s);
            subnets.insert(
                0,
                SubnetCfg {
                    subnet: s,
                    gateway: ipam::first_host(&s),
                    ip_range: None,
                    aux: BTreeMap::new(),
                    show_gateway: true,
                },
            );
        }
        if ipv6 && !subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
            return Err(ApiError::invalid(
                "IPv6 is enabled but no IPv6 subnet was given (--subnet fd..::/64)",
            ));
        }
        let id = random_hex(32);
        let options: BTreeMap<String, String> = req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let bridge = match options.get("com.docker.network.bridge.name") {
            Some(b) if !b.is_empty() => {
                if b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) {
                    return Err(ApiError::invalid(format!("invalid bridge name {b}")));
                }
                if self
                    .state
                    .lock()
                    .expect("net lock")
                    .nets
                    .values()
                    .any(|n| &n.bridge == b)
                {
                    return Err(ApiError::conflict(format!(
                        "bridge name {b} is already in use"
                    )));
                }
                b.clone()
            }
            _ => format!("br-{}", &id[..12]),
        };
        let r = NetRecord {
            id: id.clone(),
            name: name.clone(),
            created: crate::container::now_rfc3339(),
            driver,
            bridge,
            internal: req.internal.unwrap_or(false),
            ipv6,
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            options,
            subnets,
            ipam_user: !user_cfg.is_empty(),
            default_bridge: false,
        };
        if let Err(e) = self.bring_up(&r).await {
            let _ = self.nl.delete_link(&r.bridge).await;
            nft::disallow_forward(&r.bridge);
            return Err(e);
        }
        self.state
            .lock()
            .expect("net lock")
            .nets
            .insert(id.clone(), r.clone());
        let res = match self.apply_rules().await {
            Ok(()) => self.save_net(&r),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            self.state.lock().expect("net lock").nets.remove(&id);
            let _ = self.apply_rules().await;
            let _ = self.nl.delete_link(&r.bridge).await;
            nft::disallow_forward(&r.bridge);
            return Err(e);
        }
        self.start_dns(&id).await;
        self.emit("create", &r, None);
        Ok((id, name))
    }

    /// Containers attached to network `id` (configured, running or not).
    fn users(&self, id: &str) -> Vec<String> {
        let st = self.state.lock().expect("net lock");
        st.ctrs
            .iter()
            .filter(|(_, c)| c.wants.iter().any(|w| w.net == id))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub async fn remove_network(self: &Arc<Self>, key: &str) -> Result<(), ApiError> {
        let _op = self.op.lock().await;
        let n = self.find(key)?;
        if n.predefined() {
            return Err(ApiError::conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let active: Vec<String> = {
            let st = self.state.lock().expect("net lock");
            st.ctrs
                .iter()
                .filter(|(_, c)| {
                    c.active
                        .as_ref()
                        .is_some_and(|a| a.endpoints.iter().any(|e| e.net == n.id))
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        if !active.is_empty() {
            return Err(ApiError::conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        // Stopped containers that named it keep a dangling reference, as in Docker.
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", n.id)));
        {
            let mut st = self.state.lock().expect("net lock");
            st.nets.remove(&n.id);
            st.dns.remove(&n.id);
        }
        let _ = self.apply_rules().await;
        let _ = self.nl.delete_link(&n.bridge).await;
        let br = n.bridge.clone();
        let _ = tokio::task::spawn_blocking(move || nft::disallow_forward(&br)).await;
        self.emit("destroy", &n, None);
        Ok(())
    }

    pub fn all(&self) -> Vec<NetRecord> {
        self.state
            .lock()
            .expect("net lock")
            .nets
            .values()
            .cloned()
            .collect()
    }

    /// Removes the kernel objects of every network (used by nothing at run time; tests
    /// clean up through the harness).
    #[allow(dead_code)]
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn find_in<'a>(
    nets: &'a BTreeMap<String, NetRecord>,
    key: &str,
) -> Result<&'a NetRecord, ApiError> {
    if let Some(n) = nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == key) {
        return Ok(n);
    }
    let m: Vec<&NetRecord> = nets
        .values()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match m.len() {
        1 => Ok(m[0]),
        0 => Err(ApiError::not_found(format!("network {key} not found"))),
        _ => Err(ApiError::invalid(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            m.len()
        ))),
    }
}

/// The DNS server's view of the state.
struct DnsNames(std::sync::Weak<Networks>);

impl dns::Names for DnsNames {
    fn allowed(&self, src: IpAddr) -> bool {
        let Some(n) = self.0.upgrade() else {
            return false;
        };
        let st = n.state.lock().expect("net lock");
        st.ctrs
            .values()
            .filter_map(|c| c.active.as_ref())
            .any(|a| a.endpoints.iter().any(|e| e.ips.contains(&src)))
    }

    fn upstreams(&self, src: IpAddr) -> Option<Vec<SocketAddr>> {
        let n = self.0.upgrade()?;
        let st = n.state.lock().expect("net lock");
        st.ctrs
            .values()
            .filter_map(|c| c.active.as_ref())
            .find(|a| a.endpoints.iter().any(|e| e.ips.contains(&src)))
            .map(|a| a.dns.clone())
            .filter(|d| !d.is_empty())
    }

    fn lookup(&self, src: IpAddr, name: &str) -> Option<Vec<IpAddr>> {
        let n = self.0.upgrade()?;
        let st = n.state.lock().expect("net lock");
        // The asker's networks (user-defined ones only).
        let mut asker_nets = BTreeSet::new();
        for c in st.ctrs.values() {
            if let Some(a) = &c.active {
                if a.endpoints.iter().any(|e| e.ips.contains(&src)) {
                    asker_nets.extend(a.endpoints.iter().map(|e| e.net.clone()));
                }
            }
        }
        asker_nets.retain(|id| st.nets.get(id).is_some_and(|n| n.has_dns()));
        if asker_nets.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for (cid, c) in &st.ctrs {
            let Some(a) = &c.active else { continue };
            for e in &a.endpoints {
                if !asker_nets.contains(&e.net) {
                    continue;
                }
                let want = c.wants.iter().find(|w| w.net == e.net);
                // `name` or `name.<network>` (Docker answers both).
                let netname = st.nets.get(&e.net).map(|n| n.name.as_str()).unwrap_or("");
                let base = name
                    .strip_suffix(netname)
                    .and_then(|b| b.strip_suffix('.'))
                    .filter(|b| !b.is_empty() && !netname.is_empty())
                    .unwrap_or(name);
                let matches = [name, base].iter().any(|name| {
                    c.name.eq_ignore_ascii_case(name)
                        || (name.len() >= 12 && cid.starts_with(*name) && name.len() <= 64)
                        || want.is_some_and(|w| {
                            w.aliases.iter().any(|al| al.eq_ignore_ascii_case(name))
                        })
                });
                if matches {
                    out.extend(e.ips.iter().copied());
                }
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}
