//! RFC 6062 TCP relay allocations against the real binary with a hand-written client and a TCP
//! echo peer: Connect then ConnectionBind carries raw bytes both ways (§5.2, §5.4); a peer that
//! connects to the relayed address is announced with ConnectionAttempt only when a permission
//! admits it (§5.3); `no-tcp-relay` refuses TCP allocations with 442 (§5.1); a Connect into an
//! address of this host is refused (403) and logged unless `allowed-peer-ip` admits it.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::stream_client::{TurnStream, TCP, UDP};
use support::Server;
use tern::stun::{Message, Method};

/// A TCP echo peer on loopback: echoes every connection until it closes.
fn echo_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo peer");
    let addr = listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn control(server: &Server) -> TurnStream<TcpStream> {
    let s = TcpStream::connect(server.tcp_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    TurnStream::new(s)
}

fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("bytes from the other side");
    buf
}

/// Four shards, so that most data connections land on a shard other than the allocation's and
/// are handed over (the CONNECTION-ID names the owner).
#[test]
fn connect_and_connection_bind_carry_raw_bytes_to_tcp_peers() {
    let server = Server::start(&["--allow-loopback-peers", "--relay-threads=4"]);
    let mut ctl = control(&server);
    let relayed = ctl
        .allocate(TCP)
        .unwrap()
        .unwrap_or_else(|code| panic!("TCP allocate: {code}\n{}", server.log()));
    assert_eq!(relayed.ip(), server.tcp_addr().ip());
    let mut spliced = Vec::new();
    for _ in 0..6 {
        let peer = echo_peer();
        let id = ctl
            .connect(peer)
            .unwrap()
            .unwrap_or_else(|code| panic!("Connect: {code}\n{}", server.log()));
        // A second Connect to the same peer is refused: 446 Connection Already Exists.
        assert_eq!(ctl.connect(peer).unwrap(), Err(446));
        let mut data = control(&server);
        data.credentials_from(&ctl);
        data.connection_bind(id)
            .unwrap()
            .unwrap_or_else(|code| panic!("ConnectionBind: {code}\n{}", server.log()));
        // The connection id is spent: a second ConnectionBind is refused.
        let mut again = control(&server);
        again.credentials_from(&ctl);
        assert_eq!(again.connection_bind(id).unwrap(), Err(400));
        spliced.push(data.stream);
    }
    for round in 0..20u32 {
        for (k, raw) in spliced.iter_mut().enumerate() {
            let message: Vec<u8> = (0..1000u32)
                .map(|i| (i * 7 + round + k as u32) as u8)
                .collect();
            raw.write_all(&message).unwrap();
            assert_eq!(
                read_exact(raw, message.len()),
                message,
                "round {round}, peer {k}"
            );
        }
    }
}

#[test]
fn a_peer_connection_needs_a_permission_and_is_announced() {
    let server = Server::start(&["--allow-loopback-peers"]);
    let mut ctl = control(&server);
    let relayed = ctl.allocate(TCP).unwrap().expect("TCP allocate");

    // Without a permission the connection is closed and nothing is announced.
    let mut intruder = TcpStream::connect(relayed).expect("the relay listens");
    intruder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(intruder.read(&mut byte), Ok(0) | Err(_)));

    ctl.create_permission("127.0.0.1:1".parse().unwrap())
        .unwrap()
        .expect("CreatePermission");
    let mut peer = TcpStream::connect(relayed).expect("the relay listens");
    let peer_addr = peer.local_addr().unwrap();
    let (announced, attempt) = ctl.indication(Method::CONNECTION_ATTEMPT).unwrap();
    assert_eq!(announced, peer_addr);
    let id = Message::parse(&attempt)
        .unwrap()
        .connection_id()
        .expect("CONNECTION-ID")
        .unwrap();

    let mut data = control(&server);
    data.credentials_from(&ctl);
    data.connection_bind(id).unwrap().expect("ConnectionBind");
    let mut raw = data.stream;
    peer.write_all(b"from the peer").unwrap();
    assert_eq!(read_exact(&mut raw, 13), b"from the peer");
    raw.write_all(b"from the client").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_exact(&mut peer, 15), b"from the client");
    // The client closing its data connection closes the peer's.
    drop(raw);
    assert!(matches!(peer.read(&mut byte), Ok(0) | Err(_)));
}

#[test]
fn no_tcp_relay_refuses_tcp_allocations_with_442() {
    let server = Server::start(&["--allow-loopback-peers", "--no-tcp-relay"]);
    let mut ctl = control(&server);
    assert_eq!(ctl.allocate(TCP).unwrap(), Err(442));
    assert!(ctl.allocate(UDP).unwrap().is_ok());
}

#[test]
fn no_udp_relay_leaves_tcp_relays() {
    let server = Server::start(&["--allow-loopback-peers", "--no-udp-relay"]);
    let mut ctl = control(&server);
    assert_eq!(ctl.allocate(UDP).unwrap(), Err(442));
    let mut other = control(&server);
    assert!(other.allocate(TCP).unwrap().is_ok());
}

/// A non-loopback IPv4 address of this machine, if it has one.
fn host_address() -> Option<IpAddr> {
    tern::net::local_addresses()
        .ok()?
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[test]
fn a_connect_into_this_host_is_refused_and_logged_once_with_the_line_that_admits_it() {
    let Some(own) = host_address() else {
        eprintln!("SKIP: no non-loopback IPv4 address on this host");
        return;
    };
    // A service of this host bound to every address, as a database often is.
    let service = TcpListener::bind("0.0.0.0:0").expect("bind the host's service");
    let target = SocketAddr::new(own, service.local_addr().unwrap().port());
    let server = Server::start(&[]);
    let mut ctl = control(&server);
    ctl.allocate(TCP).unwrap().expect("TCP allocate");
    assert_eq!(ctl.connect(target).unwrap(), Err(403));
    assert_eq!(ctl.connect(target).unwrap(), Err(403));
    let line = format!(
        "refused TCP relaying to {target}, an address of this host; allowed-peer-ip={own} admits it"
    );
    server
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no {line:?} in:\n{}", server.log()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.log().matches(&line).count(), 1, "{}", server.log());

    let admits = format!("--allowed-peer-ip={own}");
    let server = Server::start(&[&admits]);
    let mut ctl = control(&server);
    ctl.allocate(TCP).unwrap().expect("TCP allocate");
    ctl.connect(target)
        .unwrap()
        .unwrap_or_else(|code| panic!("Connect with {admits}: {code}\n{}", server.log()));
}
