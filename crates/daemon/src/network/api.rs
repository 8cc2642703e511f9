//! The API face of the network service (`NetworkBackend`), and connect / disconnect,
//! which also need the container service (running state, namespace).
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use berth_api::models::{
    Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest,
};
use berth_api::{ApiError, ApiResult, Filters, NetworkBackend};
use berth_network::ipam;

use super::endpoint::{endpoint_link, mode_network};
use super::{random_hex, Ep, Networks};
use crate::container::Containers;

pub struct NetworkApi {
    pub nets: Arc<Networks>,
    pub ctrs: Arc<Containers>,
}

#[async_trait::async_trait]
impl NetworkBackend for NetworkApi {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<Network>> {
        self.nets.list_networks(&filters)
    }
    async fn inspect(&self, id: &str) -> ApiResult<Network> {
        let n = self.nets.find(id)?;
        Ok(self.nets.network_model(&n))
    }
    async fn create(&self, req: NetworkCreateRequest) -> ApiResult<NetworkCreateResponse> {
        let (id, _) = self.nets.create_network(req).await?;
        Ok(NetworkCreateResponse {
            id,
            warning: String::new(),
        })
    }
    async fn remove(&self, id: &str) -> ApiResult<()> {
        self.nets.remove_network(id).await
    }
    async fn prune(&self, filters: Filters) -> ApiResult<Vec<String>> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "label" | "label!" | "until") {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        let mut out = Vec::new();
        for n in self.nets.all() {
            if n.predefined() || !self.nets.users(&n.id).is_empty() {
                continue;
            }
            let mut lf = Filters::new();
            if let Some(l) = filters.get("label") {
                lf.insert("label".into(), l.clone());
            }
            if !self.nets.matches(&n, &lf) {
                continue;
            }
            if let Some(nl) = filters.get("label!") {
                if nl.iter().any(|v| match v.split_once('=') {
                    Some((k, val)) => n.labels.get(k).is_some_and(|x| x == val),
                    None => n.labels.contains_key(v.as_str()),
                }) {
                    continue;
                }
            }
            if self.nets.remove_network(&n.id).await.is_ok() {
                out.push(n.name.clone());
            }
        }
        Ok(out)
    }
    async fn connect(&self, id: &str, req: NetworkConnectRequest) -> ApiResult<()> {
        let key = req.container.clone().unwrap_or_default();
        let c = self.ctrs.get(&key)?;
        let rec = c.snapshot();
        let n = self.nets.find(id)?;
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode_network(&mode).is_none() {
            return Err(ApiError::invalid(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if !n.is_bridge() {
            return Err(ApiError::invalid(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let running = rec.state.status.is_running();
        self.nets
            .connect(
                &rec.id,
                &rec.name,
                &n.id,
                req.endpoint_config.as_ref(),
                running,
            )
            .await
    }
    async fn disconnect(&self, id: &str, req: NetworkDisconnectRequest) -> ApiResult<()> {
        let key = req.container.clone().unwrap_or_default();
        let n = self.nets.find(id)?;
        let c = match self.ctrs.get(&key) {
            Ok(c) => c,
            Err(e) if req.force.unwrap_or(false) => {
                // A container that is gone: drop what the network still knows of it.
                let _ = e;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let rec = c.snapshot();
        self.nets.disconnect(&rec.id, &rec.name, &n.id).await
    }
}

impl Networks {
    pub(crate) async fn connect(
        self: &Arc<Self>,
        id: &str,
        name: &str,
        net: &str,
        settings: Option<&berth_api::models::EndpointSettings>,
        running: bool,
    ) -> Result<(), ApiError> {
        let _op = self.op.lock().await;
        let (n, want) = {
            let st = self.state.lock().expect("net lock");
            let n = st
                .nets
                .get(net)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("network {net} not found")))?;
            let c = st.ctrs.get(id).cloned().unwrap_or_default();
            if c.wants.iter().any(|w| w.net == n.id) {
                return Err(ApiError::conflict(format!(
                    "endpoint with name {name} already exists in network {}",
                    n.name
                )));
            }
            (n.clone(), super::endpoint::want_from_pub(&n, settings)?)
        };
        if !running {
            let mut st = self.state.lock().expect("net lock");
            let c = st.ctrs.entry(id.to_owned()).or_default();
            c.name = name.to_owned();
            c.wants.push(want);
            let c = c.clone();
            drop(st);
            self.save_ctr(id, Some(&c));
            return Ok(());
        }
        // Running: allocate, plug a new interface into its namespace.
        let (ep, pid, gw_set) = {
            let st = self.state.lock().expect("net lock");
            let c = st.ctrs.get(id).cloned().unwrap_or_default();
            let a = c.active.clone().unwrap_or_default();
            if a.pid == 0 {
                return Err(ApiError::conflict(format!(
                    "container {id} has no network namespace"
                )));
            }
            let mut used: BTreeSet<IpAddr> = n.subnets.iter().map(|s| s.gateway).collect();
            for oc in st.ctrs.values() {
                if let Some(oa) = &oc.active {
                    for e in oa.endpoints.iter().filter(|e| e.net == n.id) {
                        used.extend(e.ips.iter().copied());
                    }
                }
            }
            let mut ips = Vec::new();
            for s in &n.subnets {
                let req = if s.subnet.addr().is_ipv4() {
                    want.ipv4
                } else {
                    want.ipv6
                };
                let ip = match req {
                    Some(a) if s.subnet.contains(&a) => {
                        ipam::check_static(&s.subnet, a, &used)
                            .map_err(|e| ApiError::conflict(e.to_string()))?;
                        a
                    }
                    _ => ipam::allocate(&s.subnet, s.ip_range.as_ref(), &used, &n.name)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                };
                used.insert(ip);
                ips.push(ip);
            }
            let used_if: BTreeSet<String> = a.endpoints.iter().map(|e| e.ctr_if.clone()).collect();
            let ctr_if = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used_if.contains(n))
                .expect("free name");
            let v4 = ips.iter().find_map(|a| match a {
                IpAddr::V4(v) => Some(*v),
                _ => None,
            });
            let gw_set = a
                .endpoints
                .iter()
                .any(|e| st.nets.get(&e.net).is_some_and(|x| !x.internal));
            (
                Ep {
                    net: n.id.clone(),
                    endpoint_id: random_hex(32),
                    ips,
                    mac: ipam::mac_string(&ipam::mac_for(v4)),
                    host_if: format!("veth{}", &random_hex(4)[..7]),
                    ctr_if,
                },
                a.pid,
                gw_set,
            )
        };
        let mut gw = gw_set;
        let link = endpoint_link(&ep, &n, &mut gw, self.cfg.mtu);
        let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
        self.nl
            .add_endpoint(&n.bridge, &netns, &link)
            .await
            .map_err(|e| ApiError::from_chain(&e))?;
        let c = {
            let mut st = self.state.lock().expect("net lock");
            let c = st.ctrs.entry(id.to_owned()).or_default();
            c.wants.push(want);
            if let Some(a) = c.active.as_mut() {
                a.endpoints.push(ep);
            }
            c.clone()
        };
        self.save_ctr(id, Some(&c));
        self.emit("connect", &n, Some(id));
        Ok(())
    }

    pub(crate) async fn disconnect(
        self: &Arc<Self>,
        id: &str,
        _name: &str,
        net: &str,
    ) -> Result<(), ApiError> {
        let _op = self.op.lock().await;
        let (removed, had_ports, c) = {
            let mut st = self.state.lock().expect("net lock");
            let nname = st.nets.get(net).map(|n| n.name.clone()).unwrap_or_default();
            let Some(c) = st.ctrs.get_mut(id) else {
                return Err(ApiError::invalid(format!(
                    "container {id} is not connected to network {nname}"
                )));
            };
            let before = c.wants.len();
            c.wants.retain(|w| w.net != net);
            if c.wants.len() == before {
                return Err(ApiError::invalid(format!(
                    "container {id} is not connected to network {nname}"
                )));
            }
            let mut removed = None;
            let mut had_ports = false;
            if let Some(a) = c.active.as_mut() {
                if let Some(i) = a.endpoints.iter().position(|e| e.net == net) {
                    removed = Some(a.endpoints.remove(i));
                    had_ports = !a.ports.is_empty();
                }
            }
            (removed, had_ports, c.clone())
        };
        self.save_ctr(id, Some(&c));
        if let Some(e) = removed {
            let _ = self.nl.delete_link(&e.host_if).await;
            let n = self.state.lock().expect("net lock").nets.get(net).cloned();
            if let Some(n) = n {
                self.emit("disconnect", &n, Some(id));
            }
            if had_ports {
                self.apply_rules().await?;
            }
        }
        Ok(())
    }
}
