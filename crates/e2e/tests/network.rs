//! Container networking through the real docker CLI: the default bridge, user-defined
//! bridges with DNS and isolation, bad input, `--internal`, connect/disconnect, modes,
//! resolv.conf/hosts flags. Traffic goes only to the test daemon's own bridges and
//! namespaces (addresses from its private /20) and to 127.0.0.0/8.
use std::process::Command;
use std::time::Duration;

use berth_e2e::net::{links_on, NetIdentity};
use berth_e2e::*;

fn setup_net() -> Option<(Daemon, NetIdentity)> {
    if is_reference() {
        eprintln!("skipped: the reference dockerd runs without networking in this harness");
        return None;
    }
    let d = setup()?;
    let id = d.net.clone().expect("berthd has a network identity");
    Some((d, id))
}

fn subnet(id: &NetIdentity, k: u8) -> String {
    let (n, p) = id.spare_subnet(k);
    format!("{n}/{p}")
}

fn ip_in(id: &NetIdentity, k: u8, host: u8) -> String {
    let (n, _) = id.spare_subnet(k);
    let o = n.octets();
    format!("{}.{}.{}.{host}", o[0], o[1], o[2])
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn nft_table(id: &NetIdentity) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", &id.table()])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

fn http_get_in(d: &Daemon, args: &[&str], target: &str) -> (i32, String) {
    let cmd = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {target} 80");
    let mut v = vec!["run", "--rm"];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sh", "-c", &cmd]);
    let o = d.docker(&v);
    (o.code, o.stdout)
}

#[test]
fn default_bridge() {
    let Some((d, id)) = setup_net() else { return };
    let ls = d
        .docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok();
    for want in ["bridge bridge", "host host", "none null"] {
        assert!(ls.lines().any(|l| l == want), "network ls: {ls}");
    }
    for n in ["bridge", "host", "none"] {
        let e = d.docker(&["network", "rm", n]).err();
        assert!(
            e.contains("pre-defined network and cannot be removed"),
            "{e}"
        );
    }
    let gw = d.inspect("bridge", "{{(index .IPAM.Config 0).Gateway}}");
    let sn = d.inspect("bridge", "{{(index .IPAM.Config 0).Subnet}}");
    assert!(
        sn.starts_with(&format!("{}.", id.base.octets()[0])),
        "subnet {sn} from the pool"
    );
    assert!(link_exists(&id.bridge));
    // The container: eth0 with an address, default route via the gateway, reaches it.
    let c = d
        .docker(&["run", "-d", "--name", "ca", "busybox", "sh", "-c", HTTPD])
        .ok();
    let ip = d.inspect("ca", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    assert_eq!(d.inspect("ca", "{{.NetworkSettings.Gateway}}"), gw);
    assert_eq!(
        d.inspect("ca", "{{.NetworkSettings.Networks.bridge.IPAddress}}"),
        ip
    );
    assert_eq!(d.inspect("ca", "{{.HostConfig.NetworkMode}}"), "default");
    assert_eq!(d.inspect("ca", "{{.NetworkSettings.IPPrefixLen}}"), "24");
    let mac = d.inspect("ca", "{{.NetworkSettings.MacAddress}}");
    assert!(mac.starts_with("02:42:"), "{mac}");
    let out = d
        .docker(&[
            "exec",
            "ca",
            "sh",
            "-c",
            "ip -4 addr show eth0; ip route; ping -c1 -W2 $(ip route | awk '/default/{print $3}')",
        ])
        .ok();
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    let hosts = d.docker(&["exec", "ca", "cat", "/etc/hosts"]).ok();
    assert!(hosts.contains(&format!("{ip}\t{}", &c[..12])), "{hosts}");
    assert_eq!(links_on(&id.bridge).len(), 1, "one veth on the bridge");
    // The host reaches the container, containers reach each other by IP.
    let (code, body) = http_get_in(&d, &[], &ip);
    assert_eq!(code, 0);
    assert!(body.contains(&format!("hello-{}", &c[..12])), "{body}");
    // No name resolution on the default bridge; --link works there.
    let o = d.docker(&["run", "--rm", "busybox", "nslookup", "ca"]);
    assert_ne!(
        o.code, 0,
        "names must not resolve on the default bridge: {o:?}"
    );
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--link",
            "ca:web",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; ping -c1 -W2 web",
        ])
        .ok();
    assert!(o.contains(&format!("{ip}\tweb")), "{o}");
    assert!(o.contains("1 packets received"), "{o}");
    // ps shows the network; the veth goes when the container stops.
    let ps = d.docker(&["ps", "--format", "{{.Networks}}"]).ok();
    assert_eq!(ps.trim(), "bridge");
    d.docker(&["rm", "-f", "ca"]).ok();
    eventually("veth removed", Duration::from_secs(10), || {
        links_on(&id.bridge).is_empty()
    });
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    assert!(nft_table(&id).contains("masquerade"));
}

#[test]
fn user_defined_networks_dns_and_isolation() {
    let Some((d, id)) = setup_net() else { return };
    // The seed's line, verbatim.
    let out = d.docker(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        "182.18.0.0/16",
        "custom-network",
    ]);
    out.ok();
    assert_eq!(
        d.inspect("custom-network", "{{(index .IPAM.Config 0).Subnet}}"),
        "182.18.0.0/16"
    );
    // Docker shows the IPAM config as given (no gateway); the gateway is the first host.
    assert_eq!(
        d.inspect("custom-network", "{{(index .IPAM.Config 0).Gateway}}"),
        ""
    );
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "custom-network",
            "busybox",
            "ip",
            "route",
        ])
        .ok();
    assert!(o.contains("default via 182.18.0.1"), "{o}");
    d.docker(&["network", "rm", "custom-network"]).ok();

    let s1 = subnet(&id, 8);
    d.docker(&[
        "network",
        "create",
        "--subnet",
        &s1,
        "--gateway",
        &ip_in(&id, 8, 254),
        "--ip-range",
        &format!("{}/25", ip_in(&id, 8, 128)),
        "--label",
        "team=a",
        "n1",
    ])
    .ok();
    d.docker(&["network", "create", "n2"]).ok();
    assert_eq!(
        d.inspect("n1", "{{.Labels.team}}"),
        "team=a".split('=').nth(1).unwrap()
    );
    let ls = d
        .docker(&[
            "network",
            "ls",
            "--filter",
            "label=team=a",
            "--format",
            "{{.Name}}",
        ])
        .ok();
    assert_eq!(ls.trim(), "n1");
    let ls = d
        .docker(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}}",
        ])
        .ok();
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    assert_eq!(names, ["n1", "n2"]);
    // Two web servers sharing an alias; a static address; an ip-range allocation.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web1",
        "--network",
        "n1",
        "--network-alias",
        "web",
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
        "web2",
        "--network",
        "n1",
        "--network-alias",
        "web",
        "--ip",
        &ip_in(&id, 8, 10),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let ip1 = d.inspect("web1", "{{.NetworkSettings.Networks.n1.IPAddress}}");
    let ip2 = d.inspect("web2", "{{.NetworkSettings.Networks.n1.IPAddress}}");
    assert_eq!(ip1, ip_in(&id, 8, 128), "allocated from the ip-range");
    assert_eq!(ip2, ip_in(&id, 8, 10));
    assert_eq!(
        d.inspect("web1", "{{.NetworkSettings.Networks.n1.Gateway}}"),
        ip_in(&id, 8, 254)
    );
    let aliases = d.inspect("web1", "{{json .NetworkSettings.Networks.n1.Aliases}}");
    assert!(aliases.contains("\"web\""), "{aliases}");
    let ps = d
        .docker(&["ps", "--filter", "network=n1", "--format", "{{.Names}}"])
        .ok();
    let mut on: Vec<&str> = ps.lines().collect();
    on.sort();
    assert_eq!(on, ["web1", "web2"]);
    let conts = d.inspect("n1", "{{len .Containers}}");
    assert_eq!(conts, "2");
    // By name: ping, TCP; the alias resolves to both (round robin).
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "web1",
        ])
        .ok();
    assert!(o.contains(&format!("({ip1})")), "{o}");
    let (code, body) = http_get_in(&d, &["--network", "n1"], "web2");
    assert_eq!(code, 0);
    assert!(body.contains("hello-"), "{body}");
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox",
            "nslookup",
            "web",
        ])
        .ok();
    assert!(
        o.contains(&ip1) && o.contains(&ip2),
        "alias answers both: {o}"
    );
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox",
            "nslookup",
            "web1.n1",
        ])
        .ok();
    assert!(o.contains(&ip1), "name.network: {o}");
    let short = d.container_id("web1")[..12].to_owned();
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox",
            "nslookup",
            &short,
        ])
        .ok();
    assert!(o.contains(&ip1), "{o}");
    let resolv = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(
        resolv.contains(&format!("nameserver {}", ip_in(&id, 8, 254))),
        "{resolv}"
    );
    // Isolation: n2 neither resolves nor reaches n1's containers; the default bridge
    // does not resolve them either.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "nslookup",
        "web1",
    ]);
    assert_ne!(o.code, 0, "{o:?}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &ip1,
    ]);
    assert_ne!(o.code, 0, "n2 must not reach n1: {o:?}");
    let o = d.docker(&["run", "--rm", "busybox", "ping", "-c1", "-W1", &ip1]);
    assert_ne!(o.code, 0, "the default bridge must not reach n1: {o:?}");
    let o = d.docker(&["run", "--rm", "busybox", "nslookup", "web1"]);
    assert_ne!(o.code, 0, "{o:?}");
    // A network in use cannot go; prune keeps it and removes n2.
    let e = d.docker(&["network", "rm", "n1"]).err();
    assert!(e.contains("has active endpoints"), "{e}");
    let p = d.docker(&["network", "prune", "-f"]).ok();
    assert!(p.contains("n2") && !p.contains("n1"), "{p}");
    d.docker(&["rm", "-f", "web1", "web2"]).ok();
    let br = format!("br-{}", &d.inspect("n1", "{{.Id}}")[..12]);
    assert!(link_exists(&br));
    d.docker(&["network", "rm", "n1"]).ok();
    assert!(!link_exists(&br), "bridge {br} removed with the network");
    let e = d.docker(&["network", "inspect", "n1"]).err();
    assert!(
        e.contains("network n1 not found") || e.contains("No such network"),
        "{e}"
    );
}

#[test]
fn bad_input_leaves_nothing() {
    let Some((d, id)) = setup_net() else { return };
    let s1 = subnet(&id, 9);
    d.docker(&["network", "create", "--subnet", &s1, "good"])
        .ok();
    let before = d.docker(&["network", "ls", "-q"]).ok();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--subnet".into(), s1.clone(), "dup-subnet".into()],
            "Pool overlaps with other one on this address space",
        ),
        (
            vec!["--subnet".into(), "192.0.2.0/25".into(), "hostroute".into()],
            "overlaps the host route",
        ),
        (
            vec!["--subnet".into(), "10.1.2.0/33".into(), "badcidr".into()],
            "Invalid subnet 10.1.2.0/33 : invalid CIDR address: 10.1.2.0/33",
        ),
        (
            vec!["--subnet".into(), "nonsense".into(), "badcidr2".into()],
            "invalid CIDR address: nonsense",
        ),
        (
            vec![
                "--subnet".into(),
                subnet(&id, 10),
                "--gateway".into(),
                ip_in(&id, 11, 1),
                "gwout".into(),
            ],
            "no matching subnet for gateway",
        ),
        (vec!["good".into()], "network with name good already exists"),
        (
            vec!["--driver".into(), "nosuch".into(), "drv".into()],
            "plugin \"nosuch\" not found",
        ),
    ];
    for (args, want) in &cases {
        let mut v = vec!["network", "create"];
        v.extend(args.iter().map(|s| s.as_str()));
        let e = d.docker(&v).err();
        assert!(e.contains(want), "{args:?}: want {want:?}, got {e}");
    }
    assert_eq!(
        d.docker(&["network", "ls", "-q"]).ok(),
        before,
        "nothing half-created"
    );
    // --ip outside the subnet, on the default bridge, taken; unknown network.
    let e = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "good",
            "--ip",
            &ip_in(&id, 12, 5),
            "busybox",
            "true",
        ])
        .err();
    assert!(
        e.contains("does not belong to any of this network's subnets"),
        "{e}"
    );
    let e = d
        .docker(&["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"])
        .err();
    assert!(
        e.contains("user specified IP address is supported on user defined networks only"),
        "{e}"
    );
    let e = d
        .docker(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"])
        .err();
    assert!(e.contains("network nosuchnet not found"), "{e}");
    let ip = ip_in(&id, 9, 7);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "good",
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let o = d.docker(&[
        "run",
        "--name",
        "second",
        "--network",
        "good",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert!(o.stderr.contains("Address already in use"), "{o:?}");
    assert_ne!(d.status("second"), "running");
    let bridge = format!("br-{}", &d.inspect("good", "{{.Id}}")[..12]);
    // (Veths are deleted in the background: crates/daemon/src/network/endpoint.rs.)
    eventually(
        "the failed start left no veth",
        Duration::from_secs(10),
        || links_on(&bridge).len() == 1,
    );
    d.docker(&["rm", "-f", "holder", "second"]).ok();
    eventually("veths removed", Duration::from_secs(10), || {
        links_on(&bridge).is_empty()
    });
    let e = d.docker(&["network", "connect", "nosuch", "holder"]).err();
    assert!(
        e.contains("No such container") || e.contains("not found"),
        "{e}"
    );
}

#[test]
fn internal_network_and_outside_host() {
    let Some((d, id)) = setup_net() else { return };
    let out = berth_e2e::net::OutsideHost::new(&id, 15);
    let target = out.host_ip.to_string();
    let outside = out.ns_ip.to_string();
    // A normal network reaches the outside host (forwarded + masqueraded).
    d.docker(&["network", "create", "open"]).ok();
    d.docker(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &subnet(&id, 9),
        "closed",
    ])
    .ok();
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "open",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        &outside,
    ]);
    assert_eq!(
        o.code, 0,
        "open network reaches the outside host: {o:?} (host side {target})"
    );
    // --internal: neighbours yes, the way out no.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "in1",
        "--network",
        "closed",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let (code, body) = http_get_in(&d, &["--network", "closed"], "in1");
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("hello-"), "{body}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &outside,
    ]);
    assert_ne!(o.code, 0, "internal network must have no way out: {o:?}");
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "closed",
            "busybox",
            "ip",
            "route",
        ])
        .ok();
    assert!(
        !o.contains("default"),
        "no default route on an internal network: {o}"
    );
    assert_eq!(d.inspect("closed", "{{.Internal}}"), "true");
    d.docker(&["rm", "-f", "in1"]).ok();
}

#[test]
fn connect_and_disconnect_running() {
    let Some((d, id)) = setup_net() else { return };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "front"])
        .ok();
    d.docker(&["network", "create", "--subnet", &subnet(&id, 9), "back"])
        .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
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
        "app",
        "--network",
        "front",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let o = d.docker(&["exec", "app", "ping", "-c1", "-W1", "db"]);
    assert_ne!(o.code, 0, "not connected yet: {o:?}");
    d.docker(&[
        "network",
        "connect",
        "--alias",
        "application",
        "--ip",
        &ip_in(&id, 9, 50),
        "back",
        "app",
    ])
    .ok();
    let o = d.docker(&["exec", "app", "ip", "-4", "addr"]).ok();
    assert!(o.contains(&format!("inet {}/24", ip_in(&id, 9, 50))), "{o}");
    assert!(o.contains("eth1"), "{o}");
    let o = d
        .docker(&[
            "exec",
            "app",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 db 80",
        ])
        .ok();
    assert!(o.contains("hello-"), "{o}");
    let o = d.docker(&["exec", "db", "nslookup", "application"]).ok();
    assert!(o.contains(&ip_in(&id, 9, 50)), "{o}");
    let nets = d.inspect(
        "app",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert_eq!(nets.trim(), "back front");
    let e = d.docker(&["network", "connect", "back", "app"]).err();
    assert!(e.contains("already exists"), "{e}");
    d.docker(&["network", "disconnect", "back", "app"]).ok();
    let o = d.docker(&["exec", "app", "ip", "-4", "addr"]).ok();
    assert!(!o.contains("eth1"), "{o}");
    let o = d.docker(&["exec", "app", "ping", "-c1", "-W1", "db"]);
    assert_ne!(o.code, 0, "{o:?}");
    let e = d.docker(&["network", "disconnect", "back", "app"]).err();
    assert!(e.contains("is not connected to network back"), "{e}");
    // A stopped container: connect records it, start attaches.
    d.docker(&[
        "create",
        "--name",
        "later",
        "--network",
        "front",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["network", "connect", "back", "later"]).ok();
    d.docker(&["start", "later"]).ok();
    let o = d
        .docker(&[
            "exec",
            "later",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 db 80",
        ])
        .ok();
    assert!(o.contains("hello-"), "{o}");
    // Several networks at run (docker CLI 28: --network twice).
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "front",
            "--network",
            "back",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 db 80",
        ])
        .ok();
    assert!(o.contains("eth0") && o.contains("eth1"), "{o}");
    assert!(o.contains("hello-"), "{o}");
    let e = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "front",
            "--network",
            "nosuchnet",
            "busybox",
            "true",
        ])
        .err();
    assert!(e.contains("network nosuchnet not found"), "{e}");
    d.docker(&["rm", "-f", "db", "app", "later"]).ok();
    // Network events from the daemon's history.
    let r = d
        .http(
            "GET",
            &format!(
                "/events?since={since}&until={}&filters=%7B%22type%22%3A%5B%22network%22%5D%7D",
                // `until` is whole seconds: one past now, so the events of this second
                // are all in (the stream ends at that second).
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 1
            ),
            &[],
            None,
        )
        .unwrap();
    let text = r.text();
    for want in [
        "\"create\"",
        "\"connect\"",
        "\"disconnect\"",
        "\"name\":\"back\"",
    ] {
        assert!(text.contains(want), "network events: {text}");
    }
}

#[test]
fn modes_and_resolver_flags() {
    let Some((d, id)) = setup_net() else { return };
    d.docker(&["run", "-d", "--name", "base", "busybox", "sleep", "300"])
        .ok();
    let ip = d.inspect("base", "{{.NetworkSettings.IPAddress}}");
    // container:<id> shares the namespace.
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "container:base",
            "busybox",
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .ok();
    assert!(o.contains(&format!("inet {ip}/")), "{o}");
    let e = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "container:nosuch",
            "busybox",
            "true",
        ])
        .err();
    assert!(e.contains("No such container: nosuch"), "{e}");
    // none: only lo; host: the host's interfaces.
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert_eq!(o.lines().count(), 1, "{o}");
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert!(o.contains(&id.bridge), "{o}");
    // Resolver and hosts flags.
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "example.test",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db.local:10.8.8.8",
            "--hostname",
            "box",
            "--domainname",
            "corp.test",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts; hostname",
        ])
        .ok();
    assert!(o.contains("nameserver 10.9.9.9"), "{o}");
    assert!(o.contains("search example.test"), "{o}");
    assert!(o.contains("options ndots:2"), "{o}");
    assert!(o.contains("10.8.8.8\tdb.local"), "{o}");
    assert!(o.contains("\tbox.corp.test box"), "{o}");
    d.docker(&["rm", "-f", "base"]).ok();
}

#[test]
fn berth_cli_network_commands() {
    let Some((d, id)) = setup_net() else { return };
    let s = subnet(&id, 8);
    let gw = ip_in(&id, 8, 254);
    let nid = d
        .berth(&[
            "network",
            "create",
            "--subnet",
            &s,
            "--gateway",
            &gw,
            "--label",
            "k=v",
            "bn",
        ])
        .ok();
    assert_eq!(nid.trim().len(), 64);
    let ls = d.berth(&["network", "ls"]).ok();
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    assert!(
        ls.contains(&format!("{}   bn        bridge    local", &nid[..12])),
        "{ls}"
    );
    let f = d
        .berth(&[
            "network",
            "ls",
            "--filter",
            "label=k=v",
            "--format",
            "{{.Name}} {{.Labels}}",
        ])
        .ok();
    assert_eq!(f.trim(), "bn k=v");
    assert_eq!(
        d.berth(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            "bn"
        ])
        .ok()
        .trim(),
        gw
    );
    let e = d
        .berth(&[
            "network",
            "create",
            "--subnet",
            &s,
            "--gateway",
            &ip_in(&id, 9, 1),
            "bad",
        ])
        .err();
    assert!(e.contains("no matching subnet for gateway"), "{e}");
    let ip = ip_in(&id, 8, 77);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "bw",
        "--network",
        "bn",
        "--ip",
        &ip,
        "--network-alias",
        "bwa",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    assert_eq!(
        d.inspect("bw", "{{.NetworkSettings.Networks.bn.IPAddress}}"),
        ip
    );
    let p = d.berth(&["port", "bw"]).ok();
    assert!(p.starts_with("80/tcp -> 127.0.0.1:"), "{p}");
    assert_eq!(
        d.berth(&["port", "bw", "80"]).ok().trim(),
        p.trim().trim_start_matches("80/tcp -> ")
    );
    let e = d.berth(&["port", "bw", "81"]).err();
    assert!(e.contains("No public port '81' published for bw"), "{e}");
    let o = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "bn",
            "busybox",
            "nslookup",
            "bwa",
        ])
        .ok();
    assert!(o.contains(&ip), "{o}");
    d.berth(&["network", "connect", "bridge", "bw"]).ok();
    assert!(!d.inspect("bw", "{{.NetworkSettings.IPAddress}}").is_empty());
    d.berth(&["network", "disconnect", "bridge", "bw"]).ok();
    let e = d.berth(&["network", "rm", "bn"]).err();
    assert!(e.contains("has active endpoints"), "{e}");
    d.berth(&["rm", "-f", "bw"]).ok();
    assert_eq!(d.berth(&["network", "rm", "bn"]).ok().trim(), "bn");
    // -o com.docker.network.bridge.name names the bridge; a second use is refused.
    let custom = format!("{}c", id.bridge);
    let opt = format!("com.docker.network.bridge.name={custom}");
    d.docker(&["network", "create", "-o", &opt, "named"]).ok();
    assert!(link_exists(&custom));
    assert_eq!(
        d.inspect(
            "named",
            "{{index .Options \"com.docker.network.bridge.name\"}}"
        ),
        custom
    );
    let e = d.docker(&["network", "create", "-o", &opt, "named2"]).err();
    assert!(e.contains("already in use"), "{e}");
    d.docker(&["network", "rm", "named"]).ok();
    assert!(!link_exists(&custom));
    d.berth(&["network", "create", "spare"]).ok();
    assert_eq!(
        d.berth(&["network", "prune", "-f"]).ok(),
        "Deleted Networks:\nspare"
    );
}

/// A one-name DNS responder on a loopback address: answers every A query with `answer`
/// and counts what it saw. Stops when the test ends (the thread is detached).
fn fake_resolver(
    answer: [u8; 4],
) -> (
    std::net::Ipv4Addr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut k = (std::process::id() as u32).wrapping_mul(2654435761) ^ u32::from_be_bytes(answer);
    let sock = loop {
        k = k.wrapping_mul(1103515245).wrapping_add(12345);
        let ip = std::net::Ipv4Addr::new(127, 53, (k >> 8) as u8, 1 + (k >> 16) as u8 % 250);
        if let Ok(s) = std::net::UdpSocket::bind((ip, 53)) {
            break s;
        }
    };
    let ip = match sock.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(v) => v,
        _ => unreachable!(),
    };
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        sock.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            // Question: name labels from offset 12, then qtype, qclass.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && buf[i] != 0 {
                let l = buf[i] as usize;
                labels.push(String::from_utf8_lossy(&buf[i + 1..(i + 1 + l).min(n)]).into_owned());
                i += 1 + l;
            }
            let qend = (i + 5).min(n);
            let qtype = u16::from_be_bytes([buf[i + 1], buf[i + 2]]);
            seen2.lock().unwrap().push(labels.join("."));
            let mut r = Vec::new();
            r.extend_from_slice(&buf[0..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, (qtype == 1) as u8, 0, 0, 0, 0]);
            r.extend_from_slice(&buf[12..qend]);
            if qtype == 1 {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (ip, seen)
}

#[test]
fn embedded_dns_forwards_to_the_host_resolvers() {
    if is_reference() || skip_unless_root() {
        return;
    }
    let (up, seen) = fake_resolver([10, 11, 12, 13]);
    let (mine, seen_mine) = fake_resolver([10, 11, 12, 14]);
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("resolv.conf");
    std::fs::write(
        &rc,
        format!("search corp.example\nnameserver {up}\noptions timeout:2\n"),
    )
    .unwrap();
    let d = Daemon::start_with_args(&["--resolv-conf", rc.to_str().unwrap()]);
    d.busybox_image();
    let id = d.net.clone().unwrap();
    d.docker(&["network", "create", "--subnet", &subnet(&id, 8), "fw"])
        .ok();
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fw",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf; nslookup outside.example.",
        ])
        .ok();
    assert!(o.contains("search corp.example"), "{o}");
    assert!(o.contains("options timeout:2"), "{o}");
    assert!(
        o.contains("Address: 10.11.12.13"),
        "forwarded to the host's resolver: {o}"
    );
    assert!(seen.lock().unwrap().iter().any(|n| n == "outside.example"));
    // --dns on a user-defined network: the embedded server forwards to it instead.
    let ms = mine.to_string();
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fw",
            "--dns",
            &ms,
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf; nslookup other.example.",
        ])
        .ok();
    assert!(o.contains("Address: 10.11.12.14"), "{o}");
    assert!(
        !o.contains(&format!("nameserver {ms}")),
        "embedded DNS stays the nameserver: {o}"
    );
    assert!(seen_mine
        .lock()
        .unwrap()
        .iter()
        .any(|n| n == "other.example"));
    assert!(!seen.lock().unwrap().iter().any(|n| n == "other.example"));
    // Container names are answered locally, never forwarded.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "local1",
        "--network",
        "fw",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fw",
            "busybox",
            "nslookup",
            "local1.",
        ])
        .ok();
    assert!(
        o.contains(&d.inspect("local1", "{{.NetworkSettings.Networks.fw.IPAddress}}")),
        "{o}"
    );
    assert!(!seen.lock().unwrap().iter().any(|n| n.starts_with("local1")));
    // --link to something that does not exist / is not running fails the start.
    let e = d
        .docker(&["run", "--rm", "--link", "nosuch:x", "busybox", "true"])
        .err();
    assert!(e.contains("could not get container for nosuch"), "{e}");
    d.docker(&["create", "--name", "stopped", "busybox", "true"])
        .ok();
    let e = d
        .docker(&["run", "--rm", "--link", "stopped:x", "busybox", "true"])
        .err();
    assert!(e.contains("Cannot link to a non running container"), "{e}");
    d.docker(&["rm", "-f", "local1", "stopped"]).ok();
}
