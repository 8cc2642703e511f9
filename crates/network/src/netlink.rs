//! The bridge driver's kernel side, over rtnetlink: bridges with their gateway addresses,
//! veth pairs whose container end is created directly in the container's network
//! namespace, and the container end's addresses, default routes and loopback.
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMetric, RouteScope};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::packet_route::IpProtocol;
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink: {what}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no link named {0}")]
    NoLink(String),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Netlink { what, source }
}

/// Whether a netlink error is the kernel's EEXIST.
fn is_exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST)
}

fn is_not_found(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV || m.raw_code() == -libc::ENOENT)
}

/// One endpoint's container side.
#[derive(Debug, Clone)]
pub struct EndpointLink {
    /// Host-side veth name (attached to the bridge).
    pub host_if: String,
    /// Interface name inside the container (`eth0`, `eth1`, ...).
    pub ctr_if: String,
    pub mac: [u8; 6],
    /// Addresses with the subnet's prefix length.
    pub addrs: Vec<IpNet>,
    /// Gateways for default routes (one per family), unless the network is internal.
    pub gateways: Vec<IpAddr>,
    /// The network's gateway addresses (the host's end of the bridge): each gets a host
    /// route with [`HOST_PATH_MTU`] in the container (see there), unless internal.
    pub host_routes: Vec<IpAddr>,
    /// The container interface's MTU (0: kernel default, 1500).
    pub mtu: u32,
}

/// The MTU of the path between a container and its host. The container's interface keeps
/// the network's MTU (1500 as Docker: what the container sees, and what off-host traffic
/// through the default route uses), but its route to the gateway address, which is the
/// host itself, carries this one, and the host's end of the veth accepts it. Traffic to
/// the host (published ports on 127.0.0.1, the host's own services) then moves in 64 KiB
/// segments as over loopback instead of 1500-byte ones: twice the throughput here. The
/// host's direction stays at the network MTU (the bridge's MTU is pinned, so a large veth
/// end does not raise it), since the container's interface accepts no more. Traffic that
/// the host forwards back onto a bridge (hairpin) is brought down to the bridge's MTU: TCP
/// by MSS clamping (nft.rs), anything else by fragmentation (the route is locked).
pub const HOST_PATH_MTU: u32 = 65520;
/// The routing table (in the container's namespace) holding the host routes, and the
/// priority of the rules that send TCP to the gateway addresses there. Only TCP: it
/// negotiates its segment size (and the MSS clamp in nft.rs brings a hairpin connection
/// down to the bridge's MTU), while a large datagram sent to a published port through the
/// gateway could come back onto the bridge unfragmented and be dropped by the receiving
/// container's interface.
const HOST_PATH_TABLE: u32 = 4001;
const HOST_PATH_RULE_PRIORITY: u32 = 1000;
/// The host end of every veth (the largest a veth takes).
const HOST_END_MTU: u32 = 65535;

/// A host-namespace rtnetlink handle.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// Deletes links off the caller's path. A veth delete returns only after the kernel has
/// waited for RCU grace periods (`netdev_run_todo`, 20-40 ms here) in the deleting
/// thread: on a tokio worker with the shared connection that would stall every other
/// netlink request behind it. The reaper is one thread with its own connection; deletes
/// queue on it in order. Links already gone are fine.
/// Started on first use.
#[derive(Default)]
pub struct Reaper {
    tx: std::sync::OnceLock<Option<std::sync::mpsc::Sender<String>>>,
}

impl Reaper {
    fn start() -> Result<std::sync::mpsc::Sender<String>, NetlinkError> {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| NetlinkError::Io {
                what: "veth reaper runtime".into(),
                source,
            })?;
        let nl = {
            let _guard = rt.enter();
            Netlink::open()?
        };
        std::thread::Builder::new()
            .name("veth-reaper".into())
            .spawn(move || {
                while let Ok(name) = rx.recv() {
                    if let Err(e) = rt.block_on(nl.delete_link(&name)) {
                        tracing::debug!(link = %name, error = %e, "deleting a link");
                    }
                }
            })
            .map_err(|source| NetlinkError::Io {
                what: "spawning the veth reaper".into(),
                source,
            })?;
        Ok(tx)
    }

    /// Queues `name` for deletion and returns at once. Should the reaper fail to start,
    /// the link is left to the kernel (it goes with the container's namespace) and to the
    /// orphan sweep at the next daemon start.
    pub fn delete(&self, name: String) {
        let tx = self.tx.get_or_init(|| {
            Self::start()
                .map_err(|e| tracing::warn!(error = %e, "starting the veth reaper"))
                .ok()
        });
        if let Some(tx) = tx {
            let _ = tx.send(name);
        }
    }
}

impl Netlink {
    /// Opens a connection in the current (host) network namespace; needs a tokio runtime.
    pub fn open() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetlinkError::Io {
            what: "opening a netlink socket".into(),
            source,
        })?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(nl(format!("looking up {name}"))(e)),
        }
    }

    /// Creates (or adopts) bridge `name` with `addrs`, and sets it up.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        addrs: &[IpNet],
        mtu: u32,
    ) -> Result<(), NetlinkError> {
        let idx = match self.link_index(name).await? {
            Some(i) => i,
            None => {
                let mut b = LinkBridge::new(name);
                if mtu > 0 {
                    b = b.mtu(mtu);
                }
                match self.handle.link().add(b.build()).execute().await {
                    Ok(()) => {}
                    Err(e) if is_exists(&e) => {}
                    Err(e) => return Err(nl(format!("creating bridge {name}"))(e)),
                }
                self.link_index(name)
                    .await?
                    .ok_or_else(|| NetlinkError::NoLink(name.to_owned()))?
            }
        };
        for a in addrs {
            let mut req = self.handle.address().add(idx, a.addr(), a.prefix_len());
            if a.addr().is_ipv6() {
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            match req.execute().await {
                Ok(()) => {}
                Err(e) if is_exists(&e) => {}
                Err(e) => return Err(nl(format!("adding {a} to {name}"))(e)),
            }
        }
        // Pin the bridge's MTU: a bridge whose MTU was never changed follows the smallest
        // of its ports, and the host ends of veths are larger (`HOST_END_MTU`). The kernel
        // marks it as set only on a change, so change it once and back.
        let target = if mtu > 0 { mtu } else { 1500 };
        let step = if target < HOST_END_MTU {
            target + 1
        } else {
            target - 1
        };
        for m in [step, target] {
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(idx).mtu(m).build())
                .execute()
                .await
                .map_err(nl(format!("setting the MTU of {name}")))?;
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {name} up")))?;
        Ok(())
    }

    /// The names of the interfaces attached to bridge `name`.
    pub async fn ports_of(&self, name: &str) -> Result<Vec<String>, NetlinkError> {
        let Some(br) = self.link_index(name).await? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(m) = links
            .try_next()
            .await
            .map_err(nl(format!("listing the ports of {name}")))?
        {
            let on_bridge = m
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(i) if *i == br));
            if !on_bridge {
                continue;
            }
            if let Some(n) = m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Deletes link `name`; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let Some(idx) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(nl(format!("deleting {name}"))(e)),
        }
    }

    /// Creates the veth pair of `ep`: the host end on `bridge`, the container end (named
    /// `ep.ctr_if`) directly in the network namespace at `netns`, then configures the
    /// container end (addresses, up, default routes, lo up) from inside that namespace.
    pub async fn add_endpoint(
        &self,
        bridge: &str,
        netns: &Path,
        ep: &EndpointLink,
    ) -> Result<(), NetlinkError> {
        let br = self
            .link_index(bridge)
            .await?
            .ok_or_else(|| NetlinkError::NoLink(bridge.to_owned()))?;
        let ns = std::fs::File::open(netns).map_err(|source| NetlinkError::Io {
            what: format!("opening {}", netns.display()),
            source,
        })?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(ep.ctr_if.clone())
            .address(ep.mac.to_vec())
            .setns_by_fd(ns.as_raw_fd());
        if ep.mtu > 0 {
            peer = peer.mtu(ep.mtu);
        }
        let veth = LinkVeth::new(&ep.host_if, &ep.ctr_if)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .mtu(HOST_END_MTU);
        self.handle
            .link()
            .add(veth.build())
            .execute()
            .await
            .map_err(nl(format!("creating veth {}", ep.host_if)))?;
        let host = self
            .link_index(&ep.host_if)
            .await?
            .ok_or_else(|| NetlinkError::NoLink(ep.host_if.clone()))?;
        let res = async {
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(host).controller(br).up().build())
                .execute()
                .await
                .map_err(nl(format!("attaching {} to {bridge}", ep.host_if)))?;
            // Hairpin: with br_netfilter, a container's packet DNATed back to itself (its
            // own published port) is bridged out of the port it came in on.
            self.handle
                .link()
                .set_port(LinkBridgePort::new(host).hairpin(true).build())
                .execute()
                .await
                .map_err(nl(format!("hairpin mode on {}", ep.host_if)))?;
            configure_in_netns(ns, ep.clone()).await
        }
        .await;
        if res.is_err() {
            let _ = self.handle.link().del(host).execute().await;
        }
        res
    }
}

/// Configures the container end from inside its namespace: a short-lived thread enters
/// the namespace (setns only affects that thread) and runs its own netlink connection.
async fn configure_in_netns(ns: std::fs::File, ep: EndpointLink) -> Result<(), NetlinkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-config".into())
        .spawn(move || {
            let r = (|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetlinkError::Io {
                        what: "entering the container's network namespace".into(),
                        source: e.into(),
                    }
                })?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|source| NetlinkError::Io {
                        what: "netns runtime".into(),
                        source,
                    })?;
                rt.block_on(configure_here(&ep))
            })();
            let _ = tx.send(r);
        })
        .map_err(|source| NetlinkError::Io {
            what: "spawning the netns thread".into(),
            source,
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(NetlinkError::Io {
            what: "netns thread died".into(),
            source: std::io::Error::other("no answer"),
        })
    })
}

async fn configure_here(ep: &EndpointLink) -> Result<(), NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetlinkError::Io {
        what: "opening a netlink socket in the container".into(),
        source,
    })?;
    tokio::spawn(conn);
    let nl = Netlink { handle };
    if let Some(lo) = nl.link_index("lo").await? {
        nl.handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(self::nl("setting lo up"))?;
    }
    let idx = nl
        .link_index(&ep.ctr_if)
        .await?
        .ok_or_else(|| NetlinkError::NoLink(ep.ctr_if.clone()))?;
    for a in &ep.addrs {
        let mut req = nl.handle.address().add(idx, a.addr(), a.prefix_len());
        if a.addr().is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(self::nl(format!("adding {a} to {}", ep.ctr_if)))?;
    }
    nl.handle
        .link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(self::nl(format!("setting {} up", ep.ctr_if)))?;
    for gw in &ep.gateways {
        let msg = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(*g)
                .output_interface(idx)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(*g)
                .output_interface(idx)
                .build(),
        };
        match nl.handle.route().add(msg).execute().await {
            Ok(()) => {}
            // A second network's gateway: the first default route stays.
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(self::nl(format!("adding the default route via {gw}"))(e)),
        }
    }
    // TCP to the host takes the large-MTU path; everything else keeps the interface's.
    for h in &ep.host_routes {
        let mut msg = match h {
            IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(*a, 32)
                .output_interface(idx)
                .scope(RouteScope::Link)
                .table_id(HOST_PATH_TABLE)
                .build(),
            IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(*a, 128)
                .output_interface(idx)
                .table_id(HOST_PATH_TABLE)
                .build(),
        };
        // Locked: no path-MTU discovery on a path that never leaves the host.
        msg.attributes.push(RouteAttribute::Metrics(vec![
            RouteMetric::Mtu(HOST_PATH_MTU),
            // RTAX_LOCK is a bit mask of locked metrics; RTAX_MTU is metric 2.
            RouteMetric::Lock(1 << 2),
        ]));
        match nl.handle.route().add(msg).execute().await {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(self::nl(format!("adding the host route to {h}"))(e)),
        }
        let rule = nl
            .handle
            .rule()
            .add()
            .table_id(HOST_PATH_TABLE)
            .priority(HOST_PATH_RULE_PRIORITY)
            .action(RuleAction::ToTable);
        let added = match h {
            IpAddr::V4(a) => {
                let mut r = rule.v4().destination_prefix(*a, 32);
                r.message_mut()
                    .attributes
                    .push(RuleAttribute::IpProtocol(IpProtocol::Tcp));
                r.execute().await
            }
            IpAddr::V6(a) => {
                let mut r = rule.v6().destination_prefix(*a, 128);
                r.message_mut()
                    .attributes
                    .push(RuleAttribute::IpProtocol(IpProtocol::Tcp));
                r.execute().await
            }
        };
        match added {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(self::nl(format!("adding the host rule for {h}"))(e)),
        }
    }
    Ok(())
}

/// Deletes interface `name` inside the namespace at `netns` (disconnect of a running
/// container): deleting one end of a veth deletes both.
pub async fn delete_in_netns(netns: &Path, name: &str) -> Result<(), NetlinkError> {
    let ns = std::fs::File::open(netns).map_err(|source| NetlinkError::Io {
        what: format!("opening {}", netns.display()),
        source,
    })?;
    let name = name.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetlinkError::Io {
                    what: "entering the container's network namespace".into(),
                    source: e.into(),
                }
            })?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|source| NetlinkError::Io {
                    what: "netns runtime".into(),
                    source,
                })?;
            rt.block_on(async {
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(|source| NetlinkError::Io {
                        what: "opening a netlink socket in the container".into(),
                        source,
                    })?;
                tokio::spawn(conn);
                Netlink { handle }.delete_link(&name).await
            })
        })();
        let _ = tx.send(r);
    });
    rx.await.unwrap_or(Ok(()))
}
