//! Network isolation between test daemons: each berthd gets its own default bridge name,
//! nftables table and address pool (a /20 of 10.0.0.0/8 that overlaps no host route), and
//! everything it left in the kernel is removed after the test. Plus an "outside host": a
//! network namespace joined to the host by a veth, inside the daemon's own /20.
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// A test daemon's network identity.
#[derive(Debug, Clone)]
pub struct NetIdentity {
    /// Default bridge (`--bridge`).
    pub bridge: String,
    /// The /20 this daemon's networks are taken from: 10.a.b.0/20.
    pub base: Ipv4Addr,
}

impl NetIdentity {
    /// `--default-address-pool` value: /24s of the first 3/4 of the /20 (the last /24 is
    /// left for the test's own namespaces).
    pub fn pool(&self) -> String {
        format!("base={}/21,size=24", self.base)
    }
    /// The nftables table berthd uses for this bridge.
    pub fn table(&self) -> String {
        format!("berth-{}", self.bridge)
    }
    /// A /24 of the /20 that berthd never allocates (for `network create --subnet` and
    /// outside-host namespaces): `k` in 8..16.
    pub fn spare_subnet(&self, k: u8) -> (Ipv4Addr, u8) {
        let o = self.base.octets();
        (Ipv4Addr::new(o[0], o[1], o[2] + k, 0), 24)
    }
    pub fn args(&self) -> Vec<String> {
        vec![
            "--bridge".into(),
            self.bridge.clone(),
            "--default-address-pool".into(),
            self.pool(),
        ]
    }
}

fn v4_routes() -> Vec<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let d = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let m = u32::from_str_radix(f.get(7)?, 16).ok()?;
            (m != 0).then(|| {
                (
                    u32::from_be_bytes(d.to_le_bytes()),
                    u32::from_be_bytes(m.to_le_bytes()),
                )
            })
        })
        .collect()
}

/// Picks a bridge name from the daemon's root directory name and a free /20.
pub fn identity_for(root: &Path) -> NetIdentity {
    let tag: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let tag = &tag[tag.len().saturating_sub(6)..];
    let bridge = format!("bt{tag}");
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ ((std::process::id() as u64) << 32);
    for b in tag.bytes() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(b as u64);
    }
    let routes = v4_routes();
    for _ in 0..4096 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let a = 1 + ((seed >> 33) % 250) as u8; // 10.1 .. 10.250
        let b = (((seed >> 20) % 16) as u8) * 16;
        let net = u32::from(Ipv4Addr::new(10, a, b, 0));
        let mask = 0xffff_f000u32;
        let clash = routes
            .iter()
            .any(|(d, m)| (net & m) == (d & m) || (d & mask) == net);
        if !clash {
            return NetIdentity {
                bridge,
                base: Ipv4Addr::new(10, a, b, 0),
            };
        }
    }
    panic!("no free /20 in 10.0.0.0/8 for the test daemon");
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

/// Removes what a berthd left in the kernel: its bridges (the default one and every
/// network's, read from `<data-root>/networks`), their iptables accept rules, its table.
pub fn cleanup(id: &NetIdentity, data_root: &Path) {
    let mut bridges = vec![id.bridge.clone()];
    if let Ok(rd) = std::fs::read_dir(data_root.join("networks")) {
        for e in rd.flatten() {
            if let Ok(v) = std::fs::read(e.path())
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    serde_json::from_slice::<serde_json::Value>(&d).map_err(|e| e.to_string())
                })
            {
                if let Some(b) = v["bridge"].as_str().filter(|b| !b.is_empty()) {
                    bridges.push(b.to_owned());
                }
            }
        }
    }
    bridges.sort();
    bridges.dedup();
    for b in &bridges {
        let _ = sh(&["ip", "link", "del", b]);
        for bin in ["iptables", "ip6tables"] {
            for dir in ["-i", "-o"] {
                for _ in 0..4 {
                    let o = Command::new(bin)
                        .args([
                            "-w",
                            "-D",
                            "FORWARD",
                            dir,
                            b,
                            "-m",
                            "comment",
                            "--comment",
                            "berth",
                            "-j",
                            "ACCEPT",
                        ])
                        .output();
                    if !o.is_ok_and(|o| o.status.success()) {
                        break;
                    }
                }
            }
        }
    }
    let _ = sh(&["nft", "delete", "table", "inet", &id.table()]);
}

/// An "outside host": a network namespace joined to the host by a veth pair, with
/// addresses from one of the daemon's spare /24s. Removed on drop.
pub struct OutsideHost {
    pub ns: String,
    pub host_if: String,
    /// The host's address on the link (the namespace's default gateway).
    pub host_ip: Ipv4Addr,
    /// The namespace's address.
    pub ns_ip: Ipv4Addr,
}

impl OutsideHost {
    pub fn new(id: &NetIdentity, k: u8) -> OutsideHost {
        let (net, _) = id.spare_subnet(k);
        let o = net.octets();
        let tag = &id.bridge[2..];
        let ns = format!("bo{tag}{k}");
        let host_if = format!("vo{tag}{k}");
        let host_ip = Ipv4Addr::new(o[0], o[1], o[2], 1);
        let ns_ip = Ipv4Addr::new(o[0], o[1], o[2], 2);
        let run = |a: &[&str]| {
            let out = sh(a);
            assert!(
                out.status.success(),
                "{a:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ns_ip}/24"),
            "dev",
            "eth0",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &host_ip.to_string(),
        ]);
        OutsideHost {
            ns,
            host_if,
            host_ip,
            ns_ip,
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        let mut v = vec!["ip", "netns", "exec", &self.ns];
        v.extend_from_slice(args);
        sh(&v)
    }
}

impl Drop for OutsideHost {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.host_if]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

/// Names of the interfaces enslaved to `bridge` (the host ends of its veths).
pub fn links_on(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap_or("").to_owned())
        })
        .collect()
}
