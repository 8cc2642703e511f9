//! IPAM: subnet selection from address pools (skipping subnets in use or overlapping a
//! host route) and address allocation inside a subnet. Pure data: the caller persists it.
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error(
        "no available IPv4 subnet in the address pools: all are in use or overlap a host route"
    )]
    PoolExhausted,
    #[error("no available IP addresses on network {0}")]
    Exhausted(String),
    #[error("Address already in use")]
    InUse,
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    OutOfRange(IpAddr),
}

/// `base=CIDR,size=N` (dockerd's `--default-address-pool`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl Pool {
    pub fn parse(s: &str) -> Result<Pool, IpamError> {
        let mut base = None;
        let mut size = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => {
                    base = Some(
                        v.parse::<Ipv4Net>()
                            .map_err(|_| IpamError::InvalidCidr(v.to_owned()))?,
                    )
                }
                Some(("size", v)) => {
                    size = Some(
                        v.parse::<u8>()
                            .map_err(|_| IpamError::InvalidCidr(s.to_owned()))?,
                    )
                }
                _ => return Err(IpamError::InvalidCidr(s.to_owned())),
            }
        }
        let base = base.ok_or_else(|| IpamError::InvalidCidr(s.to_owned()))?;
        let size = size.unwrap_or(24);
        if size < base.prefix_len() || size > 30 {
            return Err(IpamError::InvalidCidr(s.to_owned()));
        }
        Ok(Pool {
            base: base.trunc(),
            size,
        })
    }

    /// Docker's default local pools: 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/16
    /// in /20s.
    pub fn docker_defaults() -> Vec<Pool> {
        vec![
            Pool {
                base: "172.17.0.0/16".parse().expect("cidr"),
                size: 16,
            },
            Pool {
                base: "172.18.0.0/15".parse().expect("cidr"),
                size: 16,
            },
            Pool {
                base: "172.20.0.0/14".parse().expect("cidr"),
                size: 16,
            },
            Pool {
                base: "172.24.0.0/14".parse().expect("cidr"),
                size: 16,
            },
            Pool {
                base: "172.28.0.0/14".parse().expect("cidr"),
                size: 16,
            },
            Pool {
                base: "192.168.0.0/16".parse().expect("cidr"),
                size: 20,
            },
        ]
    }
}

/// Parses a CIDR as Docker does: the address part must be the network address or the
/// subnet is taken as written (`10.1.2.3/24` is the subnet 10.1.2.0/24).
pub fn parse_cidr(s: &str) -> Result<IpNet, IpamError> {
    s.parse::<IpNet>()
        .map_err(|_| IpamError::InvalidCidr(s.to_owned()))
}

pub fn parse_ip(s: &str) -> Result<IpAddr, IpamError> {
    s.parse::<IpAddr>()
        .map_err(|_| IpamError::InvalidAddress(s.to_owned()))
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of the pools that overlaps none of `taken` (subnets of other networks
/// and host routes; default routes must not be in `taken`).
pub fn pick_subnet(pools: &[Pool], taken: &[IpNet]) -> Result<Ipv4Net, IpamError> {
    for p in pools {
        let Ok(subnets) = p.base.subnets(p.size) else {
            continue;
        };
        for s in subnets {
            let n = IpNet::V4(s);
            if !taken.iter().any(|t| overlaps(t, &n)) {
                return Ok(s);
            }
        }
    }
    Err(IpamError::PoolExhausted)
}

/// The first usable host address of a subnet (Docker's default gateway).
pub fn first_host(net: &IpNet) -> IpAddr {
    nth(net, 1)
}

fn nth(net: &IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(v) => IpAddr::V4(Ipv4Addr::from(
            u32::from(v.network()).wrapping_add(n as u32),
        )),
        IpNet::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v.network()).wrapping_add(n))),
    }
}

/// Allocates the lowest free address of `range` (within `subnet`), skipping the network
/// and broadcast addresses and everything in `used` (gateway included by the caller).
pub fn allocate(
    subnet: &IpNet,
    range: Option<&IpNet>,
    used: &BTreeSet<IpAddr>,
    netname: &str,
) -> Result<IpAddr, IpamError> {
    let r = range.unwrap_or(subnet);
    let host_bits = (r.max_prefix_len() - r.prefix_len()) as u32;
    let count: u128 = if host_bits >= 64 {
        u64::MAX as u128
    } else {
        1u128 << host_bits
    };
    let limit = count.min(1 << 20);
    for i in 0..limit {
        let a = nth(r, i);
        if !usable(subnet, &a) || used.contains(&a) {
            continue;
        }
        return Ok(a);
    }
    Err(IpamError::Exhausted(netname.to_owned()))
}

/// Not the network address, nor (IPv4) the broadcast address.
fn usable(subnet: &IpNet, a: &IpAddr) -> bool {
    if !subnet.contains(a) || *a == subnet.network() {
        return false;
    }
    match subnet {
        IpNet::V4(v) => v.prefix_len() >= 31 || IpAddr::V4(v.broadcast()) != *a,
        IpNet::V6(_) => true,
    }
}

/// Checks a requested static address.
pub fn check_static(subnet: &IpNet, a: IpAddr, used: &BTreeSet<IpAddr>) -> Result<(), IpamError> {
    if !usable(subnet, &a) {
        return Err(IpamError::OutOfRange(a));
    }
    if used.contains(&a) {
        return Err(IpamError::InUse);
    }
    Ok(())
}

/// A MAC address derived from an IPv4 address (Docker's `02:42:` + the four bytes), or a
/// random locally administered one.
pub fn mac_for(ip: Option<Ipv4Addr>) -> [u8; 6] {
    match ip {
        Some(a) => {
            let o = a.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        None => {
            let mut m: [u8; 6] = rand::random();
            m[0] = (m[0] & 0xfe) | 0x02;
            m
        }
    }
}

pub fn mac_string(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_skip_taken() {
        let pools = vec![Pool::parse("base=10.9.0.0/16,size=24").unwrap()];
        let taken = vec![parse_cidr("10.9.0.0/23").unwrap()];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "10.9.2.0/24"
        );
        let all = vec![parse_cidr("10.0.0.0/8").unwrap()];
        assert_eq!(pick_subnet(&pools, &all), Err(IpamError::PoolExhausted));
        assert!(Pool::parse("base=10.0.0.0/16,size=8").is_err());
        assert!(Pool::parse("nonsense").is_err());
    }

    #[test]
    fn allocation() {
        let net = parse_cidr("10.1.0.0/30").unwrap();
        let mut used = BTreeSet::from([first_host(&net)]);
        let a = allocate(&net, None, &used, "n").unwrap();
        assert_eq!(a.to_string(), "10.1.0.2");
        used.insert(a);
        assert_eq!(
            allocate(&net, None, &used, "n"),
            Err(IpamError::Exhausted("n".into()))
        );
        let range = parse_cidr("10.1.0.2/31").unwrap();
        let net24 = parse_cidr("10.1.0.0/24").unwrap();
        assert_eq!(
            allocate(&net24, Some(&range), &used, "n")
                .unwrap()
                .to_string(),
            "10.1.0.3"
        );
        assert_eq!(
            check_static(&net24, "10.1.0.2".parse().unwrap(), &used),
            Err(IpamError::InUse)
        );
        assert!(matches!(
            check_static(&net24, "10.2.0.2".parse().unwrap(), &used),
            Err(IpamError::OutOfRange(_))
        ));
        assert!(check_static(&net24, "10.1.0.255".parse().unwrap(), &used).is_err());
        let v6 = parse_cidr("fd10::/64").unwrap();
        assert_eq!(
            allocate(&v6, None, &BTreeSet::from([first_host(&v6)]), "n")
                .unwrap()
                .to_string(),
            "fd10::2"
        );
    }

    #[test]
    fn overlap_and_mac() {
        let a = parse_cidr("10.0.0.0/8").unwrap();
        let b = parse_cidr("10.3.0.0/16").unwrap();
        let c = parse_cidr("11.0.0.0/8").unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a) && !overlaps(&a, &c));
        assert_eq!(
            mac_string(&mac_for(Some("172.17.0.2".parse().unwrap()))),
            "02:42:ac:11:00:02"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}
