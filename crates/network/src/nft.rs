//! NAT, isolation and port publishing in berth's own nftables table (`inet <table>`).
//!
//! The whole table is rendered from the daemon's state and replaced in one `nft -f`
//! transaction (create-if-missing, delete, re-create), so the kernel never holds a
//! half-applied ruleset and a restart rebuilds it exactly. We drive the `nft` binary with
//! its native syntax: one process per change, atomic, and readable in `nft list table`.
//! (The `nftables` crate would drive the same binary through JSON.)
//!
//! A dockerd on the same host sets the iptables FORWARD policy to DROP; a packet must be
//! accepted by every base chain on the hook, so for each berth bridge one ACCEPT rule in and
//! one out is inserted into iptables' FORWARD chain (tagged with a comment), nothing else.
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {cmd}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
}

/// One bridge network's rules.
#[derive(Debug, Clone)]
pub struct NetRules {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// No traffic in or out of the bridge except to the host itself.
    pub internal: bool,
    /// Outbound NAT (`com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
}

/// One published port: DNAT from the host's `host_ip:host_port` to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// Only this host address (None = every local address).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub ctr_ip: IpAddr,
    pub ctr_port: u16,
}

#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub table: String,
    pub nets: Vec<NetRules>,
    pub ports: Vec<PortRule>,
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn fam(a: &IpAddr) -> &'static str {
    if a.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn fam_net(n: &IpNet) -> &'static str {
    fam(&n.addr())
}

fn addr_port(a: &IpAddr, p: u16) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}:{p}"),
        IpAddr::V6(v) => format!("[{v}]:{p}"),
    }
}

impl Ruleset {
    /// The `nft -f` script that replaces the table.
    pub fn render(&self) -> String {
        let t = &self.table;
        let mut s = format!("table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n");
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n    fib daddr type local jump publish\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump publish\n  }\n");
        s.push_str("  chain publish {\n");
        for p in &self.ports {
            let f = fam(&p.ctr_ip);
            let dst = match p.host_ip {
                Some(h) if h.is_ipv4() != p.ctr_ip.is_ipv4() => continue,
                Some(h) => format!("{} daddr {h} ", fam(&h)),
                None => format!("meta nfproto {} ", if f == "ip" { "ipv4" } else { "ipv6" }),
            };
            let _ = writeln!(
                s,
                "    {dst}{} dport {} dnat {f} to {}",
                p.proto,
                p.host_port,
                addr_port(&p.ctr_ip, p.ctr_port)
            );
        }
        s.push_str("  }\n");
        s.push_str(
            "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n",
        );
        for n in &self.nets {
            let br = q(&n.bridge);
            if n.masquerade && !n.internal {
                for sn in &n.subnets {
                    let _ = writeln!(
                        s,
                        "    {} saddr {sn} oifname != {br} masquerade",
                        fam_net(sn)
                    );
                }
            }
            // 127.0.0.1:port DNATed to the bridge (needs route_localnet on it).
            let _ = writeln!(s, "    oifname {br} ip saddr 127.0.0.0/8 masquerade");
            // Hairpin: a container reaching a published port (its own or a neighbour's)
            // through the host must see the reply come back the same way. (The input
            // interface is not known here for bridged packets under br_netfilter.)
            for sn in &n.subnets {
                let _ = writeln!(
                    s,
                    "    oifname {br} {} saddr {sn} ct status dnat masquerade",
                    fam_net(sn)
                );
            }
        }
        s.push_str("  }\n");
        s.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
        let all: Vec<String> = self.nets.iter().map(|n| q(&n.bridge)).collect();
        if !all.is_empty() {
            // A container's route to its gateway (the host) carries a 64 KiB MTU
            // (netlink::HOST_PATH_MTU), so a connection through the host back onto a bridge
            // (hairpin to a published port) would offer segments the bridge cannot take:
            // clamp the MSS of SYNs forwarded onto a bridge to the route's MTU.
            let _ = writeln!(
                s,
                "    oifname {{ {} }} tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu",
                all.join(", ")
            );
        }
        for n in &self.nets {
            let br = q(&n.bridge);
            if n.internal {
                let _ = writeln!(s, "    iifname {br} oifname != {br} drop");
                let _ = writeln!(s, "    oifname {br} iifname != {br} drop");
            }
            let others: Vec<&String> = all.iter().filter(|b| **b != br).collect();
            if !others.is_empty() {
                let set = others
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(s, "    iifname {br} oifname {{ {set} }} drop");
            }
        }
        s.push_str("  }\n}\n");
        s
    }

    /// Replaces the table in the kernel.
    pub fn apply(&self) -> Result<(), NftError> {
        nft_script(&self.render())
    }
}

/// Runs `nft -f -` with `script`.
pub fn nft_script(script: &str) -> Result<(), NftError> {
    let cmd = "nft -f -".to_owned();
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NftError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| NftError::Spawn {
        cmd: cmd.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(NftError::Failed {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Deletes the table (a missing table is not an error).
pub fn delete_table(table: &str) -> Result<(), NftError> {
    nft_script(&format!("table inet {table}\ndelete table inet {table}\n"))
}

const COMMENT: &str = "berth";

fn iptables_bins(v6: bool) -> Vec<&'static str> {
    let mut v = vec!["iptables"];
    if v6 {
        v.push("ip6tables");
    }
    v
}

fn iptables(bin: &str, args: &[&str]) -> Result<bool, NftError> {
    let out = Command::new(bin)
        .arg("-w")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| NftError::Spawn {
            cmd: bin.to_owned(),
            source,
        })?;
    Ok(out.status.success())
}

/// Inserts ACCEPT rules for `bridge` into iptables' FORWARD chain (idempotent), so
/// a DROP policy set by dockerd does not stop berth's traffic. Without an iptables binary
/// there is no such policy to get past.
pub fn allow_forward(bridge: &str, v6: bool) -> Result<(), NftError> {
    for bin in iptables_bins(v6) {
        for dir in ["-i", "-o"] {
            let rule = [
                dir,
                bridge,
                "-m",
                "comment",
                "--comment",
                COMMENT,
                "-j",
                "ACCEPT",
            ];
            let mut check = vec!["-C", "FORWARD"];
            check.extend_from_slice(&rule);
            match iptables(bin, &check) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(NftError::Spawn { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
            let mut ins = vec!["-I", "FORWARD"];
            ins.extend_from_slice(&rule);
            if !iptables(bin, &ins)? {
                return Err(NftError::Failed {
                    cmd: format!("{bin} -I FORWARD {dir} {bridge} -j ACCEPT"),
                    stderr: "rejected".into(),
                });
            }
        }
    }
    Ok(())
}

/// Removes the ACCEPT rules of [`allow_forward`].
pub fn disallow_forward(bridge: &str) {
    for bin in iptables_bins(true) {
        for dir in ["-i", "-o"] {
            let rule = [
                "-D",
                "FORWARD",
                dir,
                bridge,
                "-m",
                "comment",
                "--comment",
                COMMENT,
                "-j",
                "ACCEPT",
            ];
            while let Ok(true) = iptables(bin, &rule) {}
        }
    }
}

/// Writes a sysctl under /proc/sys (`net/ipv4/ip_forward`).
pub fn sysctl(path: &str, value: &str) -> std::io::Result<()> {
    let p = format!("/proc/sys/{path}");
    if std::fs::read_to_string(&p).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(p, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_isolation_and_ports() {
        let r = Ruleset {
            table: "berth-t".into(),
            nets: vec![
                NetRules {
                    bridge: "b0".into(),
                    subnets: vec!["10.7.0.0/24".parse().unwrap()],
                    internal: false,
                    masquerade: true,
                },
                NetRules {
                    bridge: "b1".into(),
                    subnets: vec!["10.7.1.0/24".parse().unwrap()],
                    internal: true,
                    masquerade: true,
                },
            ],
            ports: vec![PortRule {
                proto: "tcp".into(),
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 8080,
                ctr_ip: "10.7.0.2".parse().unwrap(),
                ctr_port: 80,
            }],
        };
        let s = r.render();
        assert!(s.starts_with("table inet berth-t\ndelete table inet berth-t\n"));
        assert!(s.contains("ip saddr 10.7.0.0/24 oifname != \"b0\" masquerade"));
        assert!(s.contains(
            "oifname { \"b0\", \"b1\" } tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu"
        ));
        assert!(!s.contains("ip saddr 10.7.1.0/24 oifname != \"b1\" masquerade"));
        assert!(s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.7.0.2:80"));
        assert!(s.contains("iifname \"b1\" oifname != \"b1\" drop"));
        assert!(s.contains("iifname \"b0\" oifname { \"b1\" } drop"));
    }
}
