//! Published ports by kernel DNAT: `-p host:ctr`, `-p ip:host:ctr`, `-p ctr`, `-P`, udp;
//! reachable on 127.0.0.1, from an outside host (a namespace joined by a veth) and from a
//! container to its own published port (hairpin); `docker port` and inspect; a port in use
//! fails the start and leaves nothing behind.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_e2e::net::{NetIdentity, OutsideHost};
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

/// GET / on `addr`, retried for a few seconds while the server comes up.
fn get(addr: &str) -> Option<String> {
    for _ in 0..30 {
        if let Some(b) = get_once(addr).filter(|b| b.contains("hello-")) {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    get_once(addr)
}

fn get_once(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
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

#[test]
fn published_ports_everywhere() {
    let Some((d, id)) = setup_net() else { return };
    let p1 = free_port();
    let spec = format!("{p1}:80");
    let c = d
        .docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &spec,
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sh",
            "-c",
            HTTPD,
        ])
        .ok();
    let short = &c[..12];
    // docker port and inspect.
    let ports = d.docker(&["port", "web"]).ok();
    assert!(
        ports.contains(&format!("80/tcp -> 0.0.0.0:{p1}")),
        "{ports}"
    );
    let random: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .expect("random port on 127.0.0.1")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(d.docker(&["port", "web", "80/tcp"]).ok().lines().count(), 2);
    let hp = d.inspect(
        "web",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
    );
    assert!(hp == p1.to_string() || hp == random.to_string(), "{hp}");
    let ps = d.docker(&["ps", "--format", "{{.Ports}}"]).ok();
    assert!(ps.contains(&format!("0.0.0.0:{p1}->80/tcp")), "{ps}");
    // 127.0.0.1 on both ports.
    let body = get(&format!("127.0.0.1:{p1}")).expect("127.0.0.1 reaches the published port");
    assert!(body.contains(&format!("hello-{short}")), "{body}");
    let body = get(&format!("127.0.0.1:{random}")).expect("random port");
    assert!(body.contains("hello-"), "{body}");
    // The host's port is taken while published: a later bind fails, as with Docker.
    assert!(std::net::TcpListener::bind(("0.0.0.0", p1)).is_err());
    // An outside host through its veth.
    let out = OutsideHost::new(&id, 14);
    let cmd = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {} {p1}",
        out.host_ip
    );
    let o = out.exec(&["sh", "-c", &cmd]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("hello-{short}")),
        "outside host: {text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Only on 127.0.0.1: not from outside.
    let cmd = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {} {random}",
        out.host_ip
    );
    let o = out.exec(&["sh", "-c", &cmd]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("hello-"),
        "127.0.0.1-only port reached from outside"
    );
    // Hairpin: the container reaches its own published port through the host, and a
    // neighbour reaches it too.
    let gw = d.inspect("bridge", "{{(index .IPAM.Config 0).Gateway}}");
    let cmd = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gw} {p1}");
    let o = d.docker(&["exec", "web", "sh", "-c", &cmd]).ok();
    assert!(o.contains(&format!("hello-{short}")), "hairpin: {o}");
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", &cmd]).ok();
    assert!(o.contains(&format!("hello-{short}")), "neighbour: {o}");
    // Stop: rules and reservation go, the port is free again.
    d.docker(&["rm", "-f", "web"]).ok();
    eventually("publish rules removed", Duration::from_secs(10), || {
        !nft_publish(&id).contains("dnat")
    });
    assert!(std::net::TcpListener::bind(("0.0.0.0", p1)).is_ok());
    assert!(get_once(&format!("127.0.0.1:{p1}")).is_none_or(|b| !b.contains("hello-")));
}

#[test]
fn publish_all_udp_and_user_networks() {
    let Some((d, id)) = setup_net() else { return };
    // -P publishes every EXPOSEd port on a random host port.
    d.docker(&[
        "network",
        "create",
        "--subnet",
        &{
            let (n, p) = id.spare_subnet(8);
            format!("{n}/{p}")
        },
        "pubnet",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "all",
        "--network",
        "pubnet",
        "--expose",
        "80",
        "--expose",
        "7000/udp",
        "-P",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let ports = d.docker(&["port", "all"]).ok();
    let tcp: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{ports}"))
        .trim()
        .parse()
        .unwrap();
    assert!(ports.contains("7000/udp -> 0.0.0.0:"), "{ports}");
    let body = get(&format!("127.0.0.1:{tcp}")).expect("-P port reachable");
    assert!(body.contains("hello-"), "{body}");
    // UDP (busybox has no UDP server to answer, so the kernel rule is what is checked).
    let up = free_port();
    let spec = format!("127.0.0.1:{up}:9999/udp");
    d.docker(&[
        "run", "-d", "--name", "udp", "-p", &spec, "busybox", "sleep", "100",
    ])
    .ok();
    let ip = d.inspect("udp", "{{.NetworkSettings.IPAddress}}");
    let rules = nft_publish(&id);
    assert!(
        rules.contains(&format!(
            "ip daddr 127.0.0.1 udp dport {up} dnat ip to {ip}:9999"
        )),
        "{rules}"
    );
    assert!(
        std::net::UdpSocket::bind(("127.0.0.1", up)).is_err(),
        "udp port reserved"
    );
    // Published ports in inspect: unpublished exposed ports show as null.
    let j = d.inspect("all", "{{json .NetworkSettings.Ports}}");
    assert!(j.contains("\"80/tcp\":[{\"HostIp\":\"0.0.0.0\""), "{j}");
    d.docker(&["rm", "-f", "all", "udp"]).ok();
}

#[test]
fn port_in_use_fails_cleanly() {
    let Some((d, id)) = setup_net() else { return };
    // Held by a host process.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let spec = format!("{taken}:80");
    let o = d.docker(&[
        "run", "-d", "--name", "clash", "-p", &spec, "busybox", "sleep", "100",
    ]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("address already in use"), "{o:?}");
    assert!(o.stderr.contains(&format!("0.0.0.0:{taken}")), "{o:?}");
    assert_eq!(d.status("clash"), "created");
    let bridge = id.bridge.clone();
    let links = Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&links.stdout).trim().is_empty(),
        "no veth left"
    );
    assert!(!nft_publish(&id).contains("dnat"), "no rule left");
    drop(holder);
    // Held by another container of ours.
    let p = free_port();
    let spec = format!("{p}:80");
    d.docker(&[
        "run", "-d", "--name", "first", "-p", &spec, "busybox", "sh", "-c", HTTPD,
    ])
    .ok();
    let o = d.docker(&[
        "run", "-d", "--name", "second", "-p", &spec, "busybox", "sleep", "100",
    ]);
    assert!(
        o.stderr.contains(&format!(
            "Bind for 0.0.0.0:{p} failed: port is already allocated"
        )),
        "{o:?}"
    );
    assert_eq!(nft_publish(&id).matches("dnat").count(), 1);
    // The first one still serves; a start after the holder is gone works.
    assert!(get(&format!("127.0.0.1:{p}")).is_some_and(|b| b.contains("hello-")));
    d.docker(&["rm", "-f", "first"]).ok();
    d.docker(&["start", "second"]).ok();
    assert_eq!(
        d.docker(&["port", "second"]).ok().trim(),
        format!("80/tcp -> 0.0.0.0:{p}")
    );
    d.docker(&["start", "clash"]).ok();
    d.docker(&["rm", "-f", "second", "clash"]).ok();
    // Bad specs are refused by the CLI or the daemon.
    let o = d.docker(&["run", "--rm", "-p", "70000:80", "busybox", "true"]);
    assert_ne!(o.code, 0);
}

#[test]
fn port_ranges_docker_and_berth() {
    let Some((d, _id)) = setup_net() else { return };
    let two = "mkdir -p /www && echo hello-$(hostname) > /www/index.html && httpd -p 80 -h /www && exec httpd -f -p 81 -h /www";
    for (cli, name) in [("docker", "rd"), ("berth", "rb")] {
        // Two consecutive free host ports.
        let base = loop {
            let p = free_port();
            if p < 65000 && std::net::TcpListener::bind(("0.0.0.0", p + 1)).is_ok() {
                break p;
            }
        };
        let spec = format!("{base}-{}:80-81", base + 1);
        let args = [
            "run", "-d", "--name", name, "-p", &spec, "busybox", "sh", "-c", two,
        ];
        if cli == "docker" {
            d.docker(&args).ok();
        } else {
            d.berth(&args).ok();
        }
        let ports = d.docker(&["port", name]).ok();
        assert!(
            ports.contains(&format!("80/tcp -> 0.0.0.0:{base}")),
            "{ports}"
        );
        assert!(
            ports.contains(&format!("81/tcp -> 0.0.0.0:{}", base + 1)),
            "{ports}"
        );
        assert!(get(&format!("127.0.0.1:{}", base + 1)).is_some());
        d.docker(&["rm", "-f", name]).ok();
    }
    // A host range for one container port: the first free one of the range.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let p = holder.local_addr().unwrap().port();
    if p < 65000 {
        let spec = format!("{p}-{}:80", p + 3);
        d.docker(&[
            "run", "-d", "--name", "hr", "-p", &spec, "busybox", "sh", "-c", HTTPD,
        ])
        .ok();
        let got: u16 = d
            .docker(&["port", "hr", "80"])
            .ok()
            .trim()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(got > p && got <= p + 3, "{got} from {p}-{}", p + 3);
        d.docker(&["rm", "-f", "hr"]).ok();
    }
}

/// Bytes of the body of `GET /big` on `addr` (HTTP/1.0, read to EOF).
fn download_len(addr: &str) -> usize {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))
        .expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /big HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let head = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    all.len() - head - 4
}

/// The path between a container and its host carries 64 KiB segments (a host route with a
/// large MTU for TCP to the gateway, netlink::HOST_PATH_MTU) while the container's
/// interface keeps Docker's MTU. Large transfers work every way through it: to the host on
/// a published 127.0.0.1 port, container to container, hairpin to the container's own
/// published port and to a neighbour's through the gateway (TCP: MSS clamped), and a
/// large UDP datagram through the gateway to a published UDP port (not on the TCP path,
/// fragmented as usual).
#[test]
fn large_transfers_on_every_path() {
    let Some((d, _id)) = setup_net() else { return };
    let size = 32 << 20;
    let serve = format!(
        "mkdir -p /www && head -c {size} /dev/zero > /www/big && exec httpd -f -p 80 -h /www"
    );
    let p = free_port();
    let q = free_port();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "big",
        "-p",
        &format!("127.0.0.1:{p}:80"),
        "-p",
        &format!("{q}:80"),
        "busybox",
        "sh",
        "-c",
        &serve,
    ])
    .ok();
    let gw = d
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            "bridge",
        ])
        .ok();
    let ip = d.inspect("big", "{{.NetworkSettings.IPAddress}}");
    assert_eq!(
        d.docker(&["exec", "big", "cat", "/sys/class/net/eth0/mtu"])
            .ok(),
        "1500",
        "the container's interface keeps Docker's MTU"
    );
    eventually("httpd up", Duration::from_secs(10), || {
        get_once(&format!("127.0.0.1:{p}")).is_some()
    });
    assert_eq!(
        download_len(&format!("127.0.0.1:{p}")),
        size,
        "host via 127.0.0.1"
    );
    let fetch = |url: String| format!("timeout 30 wget -q -O - {url} | wc -c");
    assert_eq!(
        d.docker(&[
            "exec",
            "big",
            "sh",
            "-c",
            &fetch(format!("http://{gw}:{q}/big"))
        ])
        .ok(),
        size.to_string(),
        "hairpin to its own published port"
    );
    for (what, url) in [
        (
            "neighbour through the gateway",
            format!("http://{gw}:{q}/big"),
        ),
        ("container to container", format!("http://{ip}/big")),
    ] {
        assert_eq!(
            d.docker(&["run", "--rm", "busybox", "sh", "-c", &fetch(url)])
                .ok(),
            size.to_string(),
            "{what}"
        );
    }

    // UDP: a 20000-byte datagram to a published UDP port through the gateway. The host's
    // python runs in each container's network namespace.
    let u = free_port();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "usrv",
        "-p",
        &format!("{u}:9999/udp"),
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["run", "-d", "--name", "ucli", "busybox", "sleep", "300"])
        .ok();
    let pid = |n: &str| d.inspect(n, "{{.State.Pid}}");
    let recv = Command::new("nsenter")
        .args(["-t", &pid("usrv"), "-n", "timeout", "10", "python3", "-c"])
        .arg(
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
             s.bind(('0.0.0.0', 9999)); print(len(s.recvfrom(65536)[0]), flush=True)",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("receiver");
    std::thread::sleep(Duration::from_millis(500));
    let send = format!(
        "import socket, time\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range(5):\n    s.sendto(b'x' * 20000, ('{gw}', {u})); time.sleep(0.2)\n"
    );
    let st = Command::new("nsenter")
        .args(["-t", &pid("ucli"), "-n", "python3", "-c", &send])
        .status()
        .expect("sender");
    assert!(st.success());
    let out = recv.wait_with_output().expect("receiver output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "20000",
        "a large datagram through the gateway"
    );
    d.docker(&["rm", "-f", "big", "usrv", "ucli"]).ok();
}
