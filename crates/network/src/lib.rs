//! berth-network: the container network stack's mechanisms. IPAM ([`ipam`]), host routes
//! ([`routes`]), the bridge driver's netlink side ([`netlink`]), NAT / isolation / port
//! publishing in nftables ([`nft`]) and the embedded DNS server ([`dns`]). The daemon's
//! network service owns state and policy and calls into these.
pub mod dns;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod routes;

pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};
