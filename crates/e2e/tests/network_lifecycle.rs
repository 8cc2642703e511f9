//! Networking across daemon restarts, cleanup after many run/rm cycles, IPv6, and a
//! dockerd-style FORWARD DROP policy beside berthd.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_e2e::net::{links_on, NetIdentity, OutsideHost};
use berth_e2e::*;

fn setup_net() -> Option<(Daemon, NetIdentity)> {
    if is_reference() {
        eprintln!("skipped: the reference dockerd runs without networking in this harness");
        return None;
    }
    let d = setup()?;
    let id = d.net.clone().expect("network identity");
    Some((d, id))
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

fn get(addr: &str) -> Option<String> {
    for _ in 0..30 {
        let r = (|| {
            let mut s =
                TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out)
        })();
        if let Some(b) = r.filter(|b| b.contains("hello-")) {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nft_publish(id: &NetIdentity) -> String {
    let out = Command::new("nft")
        .args(["list", "chain", "inet", &id.table(), "publish"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

trait NetworkIdOnDisk {
    fn data_root_network_id(&self, name: &str) -> String;
}

impl NetworkIdOnDisk for Daemon {
    /// A network's ID from `<data-root>/networks` (works while the daemon is down).
    fn data_root_network_id(&self, name: &str) -> String {
        for e in std::fs::read_dir(self.data_root.join("networks"))
            .unwrap()
            .flatten()
        {
            if let Ok(v) = std::fs::read(e.path())
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    serde_json::from_slice::<serde_json::Value>(&d).map_err(|e| e.to_string())
                })
            {
                if v["name"] == name {
                    return v["id"].as_str().unwrap().to_owned();
                }
            }
        }
        panic!("no network {name} on disk");
    }
}

fn subnet(id: &NetIdentity, k: u8) -> String {
    let (n, p) = id.spare_subnet(k);
    format!("{n}/{p}")
}

#[test]
fn live_restore_keeps_addresses_rules_and_names() {
    let Some((mut d, id)) = setup_net() else {
        return;
    };
    d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "app"])
        .ok();
    let p = free_port();
    let spec = format!("{p}:80");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "-p",
        &spec,
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "brief",
        "--network",
        "app",
        "busybox",
        "sleep",
        "3",
    ])
    .ok();
    let ip = d.inspect("web", "{{.NetworkSettings.Networks.app.IPAddress}}");
    assert!(get(&format!("127.0.0.1:{p}")).is_some());
    d.kill9();
    // The kernel keeps forwarding while berthd is down.
    assert!(
        get(&format!("127.0.0.1:{p}")).is_some(),
        "published port works with berthd down"
    );
    std::thread::sleep(Duration::from_secs(4)); // "brief" exits meanwhile
                                                // A veth left on the bridge by a start cut short: the restarted daemon removes it.
    let br = format!("br-{}", &d.data_root_network_id("app")[..12]);
    let orphan = format!("veth{}", &id.bridge[2..]);
    let st = Command::new("ip")
        .args([
            "link",
            "add",
            &orphan,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{orphan}p"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(Command::new("ip")
        .args(["link", "set", &orphan, "master", &br])
        .status()
        .unwrap()
        .success());
    d.restart();
    eventually("orphaned veth removed", Duration::from_secs(10), || {
        !links_on(&br).iter().any(|l| l.contains(&orphan))
    });
    assert_eq!(
        d.inspect("web", "{{.NetworkSettings.Networks.app.IPAddress}}"),
        ip
    );
    assert!(get(&format!("127.0.0.1:{p}")).is_some());
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "nslookup",
            "web",
        ])
        .ok();
    assert!(o.contains(&ip), "DNS after restart: {o}");
    eventually(
        "the exited container's veth released",
        Duration::from_secs(10),
        || links_on(&br).len() == 1,
    );
    assert!(d
        .docker(&["port", "web"])
        .ok()
        .contains(&format!("0.0.0.0:{p}")));
    // The port stays reserved after the restart.
    assert!(std::net::TcpListener::bind(("0.0.0.0", p)).is_err());
    // A new container does not get web's address.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "new",
        "--network",
        "app",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    assert_ne!(
        d.inspect("new", "{{.NetworkSettings.Networks.app.IPAddress}}"),
        ip
    );
    d.docker(&["rm", "-f", "web", "new", "brief"]).ok();
    eventually("rules removed", Duration::from_secs(10), || {
        !nft_publish(&id).contains("dnat")
    });
    eventually("veths removed", Duration::from_secs(10), || {
        links_on(&br).is_empty()
    });
}

#[test]
fn run_rm_cycles_leak_nothing() {
    let Some((d, id)) = setup_net() else { return };
    d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "cyc"])
        .ok();
    let br = format!("br-{}", &d.inspect("cyc", "{{.Id}}")[..12]);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "watcher",
        "--network",
        "cyc",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let cycles = 200;
    for i in 0..cycles {
        let name = format!("c{i}");
        let p = free_port();
        let spec = format!("127.0.0.1:{p}:80");
        let args: Vec<&str> = if i % 2 == 0 {
            vec![
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "cyc",
                "--network-alias",
                "tmp",
                "-p",
                &spec,
                "busybox",
                "true",
            ]
        } else {
            vec![
                "run", "--rm", "--name", &name, "-p", &spec, "busybox", "true",
            ]
        };
        d.docker(&args).ok();
    }
    eventually(
        "all cycle containers removed",
        Duration::from_secs(30),
        || d.all_container_ids().len() == 1,
    );
    // No veth but the watcher's (released ones go in the background), no DNAT rule, no
    // endpoint state, no DNS record.
    eventually(
        "only the watcher's veth left",
        Duration::from_secs(10),
        || links_on(&br).len() == 1 && links_on(&id.bridge).is_empty(),
    );
    assert!(!nft_publish(&id).contains("dnat"), "{}", nft_publish(&id));
    let left: Vec<_> = std::fs::read_dir(d.data_root.join("networks/containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the watcher's endpoint state: {left:?}");
    assert_eq!(d.inspect("cyc", "{{len .Containers}}"), "1");
    let o = d.docker(&["exec", "watcher", "nslookup", "tmp"]);
    assert_ne!(o.code, 0, "no DNS record left: {o:?}");
    let o = d.docker(&["exec", "watcher", "nslookup", "c0"]);
    assert_ne!(o.code, 0, "no DNS record left: {o:?}");
    // IPAM: the next container gets the lowest address again.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "next",
        "--network",
        "cyc",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let (n, _) = id.spare_subnet(8);
    let o = n.octets();
    assert_eq!(
        d.inspect("next", "{{.NetworkSettings.Networks.cyc.IPAddress}}"),
        format!("{}.{}.{}.3", o[0], o[1], o[2])
    );
    d.docker(&["rm", "-f", "next", "watcher"]).ok();
}

#[test]
fn ipv6_network() {
    let Some((d, id)) = setup_net() else { return };
    let o = id.base.octets();
    // Canonical text (a zero group collapses: fd42:95:0:: is fd42:95::), as inspect shows it.
    let base6: std::net::Ipv6Addr = format!("fd42:{:x}:{:x}::", o[1], o[2]).parse().unwrap();
    let v6 = format!("{base6}/64");
    let mut g = base6.segments();
    g[7] = 1;
    let gw6 = std::net::Ipv6Addr::from(g).to_string();
    d.docker(&["network", "create", "--ipv6", "--subnet", &v6, "six"])
        .ok();
    assert_eq!(d.inspect("six", "{{.EnableIPv6}}"), "true");
    let subnets = d.inspect("six", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    assert!(subnets.contains(&v6), "{subnets}");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "s6",
        "--network",
        "six",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let a6 = d.inspect("s6", "{{.NetworkSettings.Networks.six.GlobalIPv6Address}}");
    let addr6: std::net::Ipv6Addr = a6.parse().unwrap_or_else(|_| panic!("{a6}"));
    assert_eq!(addr6.segments()[..4], base6.segments()[..4], "{a6}");
    assert_eq!(
        d.inspect("s6", "{{.NetworkSettings.Networks.six.IPv6Gateway}}"),
        gw6
    );
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "six",
            "busybox",
            "sh",
            "-c",
            "nslookup -type=AAAA s6; ping -c1 -W2 s6; ping -c1 -W2 $0",
            &gw6,
        ])
        .ok();
    assert!(
        out.contains(&format!("Address: {a6}")),
        "AAAA answer: {out}"
    );
    assert_eq!(out.matches("1 packets received").count(), 2, "{out}");
    d.docker(&["rm", "-f", "s6"]).ok();
}

/// Docker sets the iptables FORWARD policy to DROP; berth's accept rules keep its
/// traffic flowing, with a real dockerd running beside berthd.
#[test]
fn forward_drop_and_dockerd_beside() {
    let Some((d, id)) = setup_net() else { return };
    let root = tempfile::Builder::new()
        .prefix("bd")
        .tempdir_in("/tmp")
        .unwrap();
    let r = root.path();
    // A real dockerd beside berthd when the host has one (CI installs it only for the
    // reference runs); the FORWARD DROP policy is what matters and is set either way.
    let have_dockerd = std::path::Path::new("/usr/sbin/dockerd").exists();
    if !have_dockerd {
        eprintln!("no /usr/sbin/dockerd: testing the FORWARD DROP policy without it");
    }
    let mut dockerd = have_dockerd.then(|| {
        Command::new("/usr/sbin/dockerd")
            .args([
                "--bridge",
                "none",
                "--iptables=true",
                "--ip6tables=false",
                "--storage-driver",
                "overlay2",
            ])
            .arg("-H")
            .arg(format!("unix://{}/s", r.display()))
            .arg("--data-root")
            .arg(r.join("d"))
            .arg("--exec-root")
            .arg(r.join("x"))
            .arg("--pidfile")
            .arg(r.join("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(r.join("log")).unwrap())
            .spawn()
            .expect("dockerd")
    });
    let policy = || {
        let o = Command::new("iptables")
            .args(["-S", "FORWARD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let before = policy();
    if have_dockerd {
        eventually("dockerd up", Duration::from_secs(60), || {
            r.join("s").exists()
        });
    }
    // Docker sets DROP when it enables forwarding itself; berthd already did, so make
    // the policy what it is on a Docker host.
    assert!(Command::new("iptables")
        .args(["-P", "FORWARD", "DROP"])
        .status()
        .unwrap()
        .success());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "dn"])
            .ok();
        d.docker(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "dn",
            "busybox",
            "sh",
            "-c",
            HTTPD,
        ])
        .ok();
        let o = d
            .docker(&[
                "run",
                "--rm",
                "--network",
                "dn",
                "busybox",
                "sh",
                "-c",
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 srv 80",
            ])
            .ok();
        assert!(o.contains("hello-"), "container to container: {o}");
        let p = free_port();
        let spec = format!("{p}:80");
        d.docker(&[
            "run", "-d", "--name", "pub", "-p", &spec, "busybox", "sh", "-c", HTTPD,
        ])
        .ok();
        let out = OutsideHost::new(&id, 13);
        let cmd = format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {} {p}",
            out.host_ip
        );
        let mut ok = false;
        for _ in 0..20 {
            let o = out.exec(&["sh", "-c", &cmd]);
            if String::from_utf8_lossy(&o.stdout).contains("hello-") {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(ok, "outside host through DNAT with FORWARD DROP");
        let o = d
            .docker(&[
                "run",
                "--rm",
                "--network",
                "dn",
                "busybox",
                "ping",
                "-c1",
                "-W2",
                &out.ns_ip.to_string(),
            ])
            .ok();
        assert!(
            o.contains("1 packets received"),
            "outbound with FORWARD DROP: {o}"
        );
        d.docker(&["rm", "-f", "srv", "pub"]).ok();
    }));
    let restore = if before.contains("DROP") {
        "DROP"
    } else {
        "ACCEPT"
    };
    let _ = Command::new("iptables")
        .args(["-P", "FORWARD", restore])
        .status();
    if let Some(dockerd) = dockerd.as_mut() {
        // SAFETY: kill(2) on the dockerd child we spawned.
        unsafe { libc::kill(dockerd.id() as i32, libc::SIGTERM) };
        let _ = dockerd.wait();
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// After a host reboot the bridges, addresses and rules are gone; berthd re-creates them
/// from its records (same subnets) at start-up.
#[test]
fn kernel_state_rebuilt_after_reboot() {
    let Some((mut d, id)) = setup_net() else {
        return;
    };
    d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "keep"])
        .ok();
    let br = format!("br-{}", &d.inspect("keep", "{{.Id}}")[..12]);
    let sn = d.inspect("bridge", "{{(index .IPAM.Config 0).Subnet}}");
    d.stop();
    // What a reboot loses.
    for b in [&br, &id.bridge] {
        assert!(Command::new("ip")
            .args(["link", "del", b])
            .status()
            .unwrap()
            .success());
    }
    assert!(Command::new("nft")
        .args(["delete", "table", "inet", &id.table()])
        .status()
        .unwrap()
        .success());
    d.restart();
    assert_eq!(d.inspect("bridge", "{{(index .IPAM.Config 0).Subnet}}"), sn);
    let addr = Command::new("ip")
        .args(["-4", "-o", "addr", "show", &br])
        .output()
        .unwrap();
    let (n, _) = id.spare_subnet(8);
    let o = n.octets();
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains(&format!("{}.{}.{}.1/24", o[0], o[1], o[2])),
        "{}",
        String::from_utf8_lossy(&addr.stdout)
    );
    assert!(nft_publish(&id).contains("chain publish"));
    d.docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "keep",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "keep",
            "busybox",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 srv 80",
        ])
        .ok();
    assert!(o.contains("hello-"), "{o}");
    let o = d.docker(&["run", "--rm", "busybox", "ip", "route"]).ok();
    assert!(o.contains("default via"), "{o}");
    d.docker(&["rm", "-f", "srv"]).ok();
}

/// The network record of a container on the default bridge is written without fsync (it
/// follows from the HostConfig); one lost to a crash is derived again at start-up, while a
/// container with endpoint settings (here an alias) keeps its durable record.
#[test]
fn lost_network_record_is_derived_again() {
    let Some((mut d, _id)) = setup_net() else {
        return;
    };
    let id = d
        .docker(&["create", "--name", "plain", "busybox", "sleep", "60"])
        .ok();
    d.docker(&["network", "create", "aliased"]).ok();
    d.docker(&[
        "create",
        "--name",
        "withalias",
        "--network",
        "aliased",
        "--network-alias",
        "al",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    d.kill9();
    let rec = d
        .data_root
        .join("networks/containers")
        .join(format!("{id}.json"));
    std::fs::remove_file(&rec).expect("the record exists");
    d.restart();
    d.docker(&["start", "plain", "withalias"]).ok();
    let ip = d.inspect("plain", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty(), "the default bridge again");
    assert!(
        d.docker(&["exec", "plain", "ip", "-o", "-4", "addr", "show", "eth0"])
            .ok()
            .contains(&ip),
        "eth0 has {ip}"
    );
    let aliases = d.inspect(
        "withalias",
        "{{json .NetworkSettings.Networks.aliased.Aliases}}",
    );
    assert!(aliases.contains("\"al\""), "{aliases}");
    d.docker(&["rm", "-f", "plain", "withalias"]).ok();
    d.docker(&["network", "rm", "aliased"]).ok();
}
