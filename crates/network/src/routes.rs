//! The host's routes (from /proc/net/route and /proc/net/ipv6_route), to keep new subnets
//! clear of networks the host already reaches.
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// One route: destination and interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub dst: IpNet,
    pub iface: String,
}

/// Every non-default route of the main table, IPv4 and IPv6 (loopback and link-local
/// excluded).
pub fn host_routes() -> Vec<HostRoute> {
    let mut out = parse_v4(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
    out.extend(parse_v6(
        &std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
    ));
    out
}

fn parse_v4(s: &str) -> Vec<HostRoute> {
    let mut out = Vec::new();
    for l in s.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // /proc/net/route prints the address bytes as a little-endian word.
        let dst = Ipv4Addr::from(dst.to_le_bytes());
        let prefix = mask.count_ones() as u8;
        if prefix == 0 {
            continue;
        }
        if let Ok(n) = Ipv4Net::new(dst, prefix) {
            out.push(HostRoute {
                dst: IpNet::V4(n),
                iface: f[0].to_owned(),
            });
        }
    }
    out
}

fn parse_v6(s: &str) -> Vec<HostRoute> {
    let mut out = Vec::new();
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(dst), Ok(prefix)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16))
        else {
            continue;
        };
        let iface = f[9];
        let dst = Ipv6Addr::from(dst);
        if prefix == 0 || iface == "lo" || dst.segments()[0] & 0xffc0 == 0xfe80 {
            continue;
        }
        if dst.segments()[0] & 0xff00 == 0xff00 {
            continue;
        }
        if let Ok(n) = Ipv6Net::new(dst, prefix) {
            out.push(HostRoute {
                dst: IpNet::V6(n),
                iface: iface.to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_routes() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = parse_v4(v4);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].dst.to_string(), "192.0.2.0/24");
        assert_eq!(r[0].iface, "eth0");
        let v6 = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\nfe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        let r = parse_v6(v6);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].dst.to_string(), "fd00::/64");
    }
}
