//! The embedded DNS server of user-defined networks (hickory-proto messages).
//!
//! One server per network gateway address, UDP and TCP port 53. The asker is known by its
//! source address: a name (container name, short ID, alias) is answered with the addresses
//! of every matching container on the networks the asker shares (shuffled: round-robin);
//! everything else is relayed to the host's resolvers as read from its resolv.conf.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Docker's TTL for container records.
const TTL: u32 = 600;

/// The name table, asked per query.
pub trait Names: Send + Sync + 'static {
    /// The addresses `name` (lowercase, without the trailing dot) has for the asker at `src`,
    /// or None when the name is not a container's (then the query is forwarded).
    fn lookup(&self, src: IpAddr, name: &str) -> Option<Vec<IpAddr>>;
    /// The resolvers this asker's other queries go to (its `--dns`), if not the host's.
    fn upstreams(&self, _src: IpAddr) -> Option<Vec<SocketAddr>> {
        None
    }
    /// Whether to serve `src` at all (containers only: the server must not become an open
    /// resolver for whoever can route to the gateway address).
    fn allowed(&self, _src: IpAddr) -> bool {
        true
    }
}

/// The nameservers of a resolv.conf, port 53; loopback ones included (berthd runs on the
/// host, where they are reachable).
pub fn upstreams_from(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver"))
                .then(|| f.next())
                .flatten()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .map(|a| SocketAddr::new(a, 53))
        })
        .collect()
}

/// A running server; stops when dropped.
pub struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `addr`:53 (UDP and TCP) and serves.
pub async fn serve(
    addr: IpAddr,
    names: Arc<dyn Names>,
    upstreams: Vec<SocketAddr>,
) -> std::io::Result<DnsServer> {
    let sa = SocketAddr::new(addr, 53);
    let udp = Arc::new(bind_udp(sa)?);
    let tcp = TcpListener::bind(sa).await?;
    let upstreams = Arc::new(upstreams);
    let mut tasks = Vec::new();
    {
        let names = names.clone();
        let upstreams = upstreams.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if !names.allowed(from.ip()) {
                    continue;
                }
                let req = buf[..n].to_vec();
                let names = names.clone();
                let upstreams = upstreams.clone();
                let udp = udp.clone();
                // Local answers inline (no task switch); forwarded queries in a task.
                match answer_local(&*names, from.ip(), &req) {
                    Some(resp) => {
                        let _ = udp.send_to(&resp, from).await;
                    }
                    None => {
                        let ups = names.upstreams(from.ip());
                        tokio::spawn(async move {
                            let ups = ups.as_deref().unwrap_or(&upstreams);
                            let resp = forward_udp(ups, &req)
                                .await
                                .unwrap_or_else(|| servfail(&req));
                            if !resp.is_empty() {
                                let _ = udp.send_to(&resp, from).await;
                            }
                        });
                    }
                }
            }
        }));
    }
    tasks.push(tokio::spawn(async move {
        loop {
            let Ok((mut s, from)) = tcp.accept().await else {
                continue;
            };
            if !names.allowed(from.ip()) {
                continue;
            }
            let names = names.clone();
            let upstreams = upstreams.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut req = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    let resp = match answer_local(&*names, from.ip(), &req) {
                        Some(r) => r,
                        None => forward_tcp(
                            names.upstreams(from.ip()).as_deref().unwrap_or(&upstreams),
                            &req,
                        )
                        .await
                        .unwrap_or_else(|| servfail(&req)),
                    };
                    if resp.is_empty() {
                        return;
                    }
                    let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&resp);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    }));
    Ok(DnsServer { tasks })
}

fn bind_udp(sa: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(sa)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// The answer for a query about a container name, or None to forward it.
fn answer_local(names: &dyn Names, src: IpAddr, req: &[u8]) -> Option<Vec<u8>> {
    let msg = match Message::from_vec(req) {
        Ok(m) => m,
        Err(_) => return Some(Vec::new()),
    };
    if msg.metadata.message_type != MessageType::Query || msg.metadata.op_code != OpCode::Query {
        return None;
    }
    let query = msg.queries.first()?.clone();
    let name = query
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let qtype = query.query_type();
    let mut addrs = names.lookup(src, &name)?;
    addrs.shuffle(&mut rand::thread_rng());
    let mut resp = Message::response(msg.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.metadata.authoritative = true;
    resp.add_query(query.clone());
    for a in addrs {
        let rdata = match (a, qtype) {
            (IpAddr::V4(v), RecordType::A | RecordType::ANY) => RData::A(A(v)),
            (IpAddr::V6(v), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v)),
            _ => continue,
        };
        resp.add_answer(Record::from_rdata(query.name().clone(), TTL, rdata));
    }
    resp.to_vec().ok()
}

fn servfail(req: &[u8]) -> Vec<u8> {
    match Message::from_vec(req) {
        Ok(m) => {
            let mut r =
                Message::error_msg(m.metadata.id, m.metadata.op_code, ResponseCode::ServFail);
            r.queries = m.queries.clone();
            r.metadata.recursion_desired = m.metadata.recursion_desired;
            r.to_vec().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

async fn forward_udp(upstreams: &[SocketAddr], req: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(up).await.is_err() || s.send(req).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), s.recv(&mut buf)).await {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

async fn forward_tcp(upstreams: &[SocketAddr], req: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let r = tokio::time::timeout(Duration::from_secs(3), async {
            let mut s = tokio::net::TcpStream::connect(up).await?;
            let mut out = (req.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(req);
            s.write_all(&out).await?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut resp).await?;
            Ok::<_, std::io::Error>(resp)
        })
        .await;
        if let Ok(Ok(resp)) = r {
            return Some(resp);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    struct T;
    impl Names for T {
        fn lookup(&self, src: IpAddr, name: &str) -> Option<Vec<IpAddr>> {
            (name == "web" && src.is_loopback()).then(|| {
                vec![
                    "10.0.0.2".parse().unwrap(),
                    "10.0.0.3".parse().unwrap(),
                    "fd00:1::2".parse().unwrap(),
                ]
            })
        }
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_local_names_by_family() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let r = answer_local(&T, lo, &query("WEB.", RecordType::A)).unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.answers.len(), 2);
        let r = answer_local(&T, lo, &query("web", RecordType::AAAA)).unwrap();
        assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 1);
        assert!(answer_local(&T, lo, &query("other.", RecordType::A)).is_none());
        assert!(answer_local(
            &T,
            "10.9.9.9".parse().unwrap(),
            &query("web.", RecordType::A)
        )
        .is_none());
        assert_eq!(
            upstreams_from("search x\nnameserver 10.255.255.53\nnameserver ::1\n"),
            vec![
                "10.255.255.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
