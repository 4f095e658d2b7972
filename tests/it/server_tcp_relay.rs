//! RFC 6062 TCP relay allocations against the real binary with a hand-written client and a TCP
//! echo peer: Connect then ConnectionBind carries raw bytes both ways (§5.2, §5.4); a peer that
//! connects to the relayed address is announced with ConnectionAttempt only when a permission
//! admits it (§5.3); `no-tcp-relay` refuses TCP allocations with 442 (§5.1); a Connect into an
//! address of this host is refused (403) and logged unless `allowed-peer-ip` admits it. A Connect
//! needs no permission (§5.2 refuses only what local policy forbids, as coturn does). Spliced
//! bytes are paced by `max-bps` and `bps-capacity` without loss (§5.5), counted in the
//! allocation's traffic and the per-user metrics, and a half-close crosses the relay.
// Pacing bounds against a real process need the real clock (the clock ban is for the core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::metrics::{fetch, find, start_with_metrics};
use support::stream_client::{TurnStream, TCP, UDP};
use support::{Server, REALM, USER};
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

/// A TCP allocation with one connection, made by Connect, to a peer the test holds: the control
/// connection, the client's spliced data connection and the peer's end.
fn spliced(server: &Server) -> (TurnStream<TcpStream>, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the peer");
    let mut ctl = control(server);
    ctl.allocate(TCP).unwrap().expect("TCP allocate");
    let id = ctl
        .connect(listener.local_addr().unwrap())
        .unwrap()
        .unwrap_or_else(|code| panic!("Connect: {code}\n{}", server.log()));
    let (peer, _) = listener.accept().expect("tern connects to the peer");
    let mut data = control(server);
    data.credentials_from(&ctl);
    data.connection_bind(id)
        .unwrap()
        .unwrap_or_else(|code| panic!("ConnectionBind: {code}\n{}", server.log()));
    peer.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    data.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    (ctl, data.stream, peer)
}

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// Writes `data` into `from` on one thread and reads it back from `to` on another; the reader
/// checks every byte and returns how long after `start` the last one arrived.
fn transfer(
    from: &TcpStream,
    to: &TcpStream,
    data: Vec<u8>,
    start: Instant,
) -> JoinHandle<Duration> {
    let mut from = from.try_clone().unwrap();
    let mut to = to.try_clone().unwrap();
    let expected = data.clone();
    std::thread::spawn(move || from.write_all(&data).expect("write through the relay"));
    std::thread::spawn(move || {
        let got = read_exact(&mut to, expected.len());
        let elapsed = start.elapsed();
        assert!(got == expected, "the relayed bytes differ from those sent");
        elapsed
    })
}

/// `max-bps` holds on a spliced connection in each direction: the sender is slowed (tern stops
/// reading, TCP pushes back), nothing is lost. 200 KB at 20000 B/s with a 4000-byte burst take at
/// least 9.8 s; the bound leaves 0.8 s of slack.
#[test]
fn max_bps_paces_spliced_bytes_each_way_without_loss() {
    const BYTES: usize = 200_000;
    let server = Server::start(&["--allow-loopback-peers", "--max-bps=20000"]);
    let (_ctl, client, peer) = spliced(&server);
    let start = Instant::now();
    let up = transfer(&client, &peer, pattern(BYTES, 1), start);
    let down = transfer(&peer, &client, pattern(BYTES, 2), start);
    for (way, elapsed) in [("client to peer", up), ("peer to client", down)] {
        let elapsed = elapsed.join().expect("all bytes relayed intact");
        assert!(
            elapsed >= Duration::from_secs(9),
            "{way}: {BYTES} bytes in {elapsed:?} under max-bps=20000"
        );
    }
}

/// `bps-capacity` holds on spliced connections too: 100 KB at 20000 B/s server-wide (a 4000-byte
/// burst, 500-byte chunks held by the shards) take at least 4.7 s. `max-bps` (required with
/// `bps-capacity`) is set far above it: its 200 KB burst covers the whole transfer.
#[test]
fn bps_capacity_paces_spliced_bytes_without_loss() {
    const BYTES: usize = 100_000;
    let args = [
        "--allow-loopback-peers",
        "--bps-capacity=20000",
        "--max-bps=1000000",
    ];
    let server = Server::start(&args);
    let (_ctl, client, peer) = spliced(&server);
    let start = Instant::now();
    let elapsed = transfer(&peer, &client, pattern(BYTES, 3), start)
        .join()
        .expect("all bytes relayed intact");
    assert!(
        elapsed >= Duration::from_millis(4200),
        "{BYTES} bytes in {elapsed:?} under bps-capacity=20000"
    );
}

/// The value of `key=N` in a log line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Spliced bytes count as the allocation's traffic: the per-user `turn_traffic_*` rows, the
/// `turn_total_traffic_*` totals and the allocation's deletion log line.
#[test]
fn spliced_bytes_count_in_the_allocation_traffic_and_the_metrics() {
    const BYTES: usize = 30_000;
    let (server, addr) = start_with_metrics(&["--prometheus-username-labels", "--verbose"]);
    let (ctl, client, peer) = spliced(&server);
    let start = Instant::now();
    transfer(&client, &peer, pattern(BYTES, 4), start)
        .join()
        .expect("client to peer");
    transfer(&peer, &client, pattern(BYTES, 5), start)
        .join()
        .expect("peer to client");

    let user = [("realm", REALM), ("user", USER)];
    let wanted = [
        ("turn_traffic_rcvb", &user[..]),
        ("turn_traffic_peer_sentb", &user[..]),
        ("turn_traffic_peer_rcvb", &user[..]),
        ("turn_traffic_sentb", &user[..]),
        ("turn_total_traffic_rcvb", &[][..]),
        ("turn_total_traffic_peer_sentb", &[][..]),
        ("turn_total_traffic_peer_rcvb", &[][..]),
        ("turn_total_traffic_sentb", &[][..]),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (body, scrape) = fetch(addr);
        let short: Vec<_> = wanted
            .iter()
            .filter(|(name, labels)| find(&scrape, name, labels).unwrap_or(0.0) < BYTES as f64)
            .collect();
        if short.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "under {BYTES} bytes: {short:?}\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Closing the control connection deletes the allocation; its line carries the traffic.
    drop(ctl);
    let line = server
        .wait_for_log("allocation deleted", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no deletion line:\n{}", server.log()));
    for key in ["rcvb", "sentb", "peer_rcvb", "peer_sentb"] {
        assert!(field(&line, key) >= BYTES as u64, "{key} in {line:?}");
    }
    drop((client, peer));
}

/// A half-close crosses the relay each way (RFC 6062 §5.5 relays a TCP stream, and a stream's
/// end is part of it): the other side reads everything, then end of stream, and can still
/// answer; once both directions ended the pair is gone and the peer may be connected again.
#[test]
fn a_half_close_is_carried_to_the_other_side() {
    let server = Server::start(&["--allow-loopback-peers"]);

    // The client ends first; the peer answers after reading to the end.
    let (mut ctl, mut client, mut peer) = spliced(&server);
    let peer_addr = peer.local_addr().unwrap();
    client.write_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("the peer reads to the end");
    assert_eq!(got, b"request");
    peer.write_all(b"response after the client's end").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("the client reads to the end");
    assert_eq!(got, b"response after the client's end");
    // Both directions ended: the connection is released, so the same peer may be connected.
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    let listener = TcpListener::bind(peer_addr).ok();
    loop {
        match ctl.connect(peer_addr).unwrap() {
            Err(446) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(446) => panic!("the pair is still open after both ends:\n{}", server.log()),
            _ => break,
        }
    }
    drop(listener);

    // The peer ends first; the client answers after reading to the end.
    let (_ctl, mut client, mut peer) = spliced(&server);
    peer.write_all(b"greeting").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("the client reads to the end");
    assert_eq!(got, b"greeting");
    client.write_all(b"reply after the peer's end").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("the peer reads to the end");
    assert_eq!(got, b"reply after the peer's end");
}

/// A TCP relay that cannot be bound (here the whole range is one port, and another socket
/// listens there) refuses the Allocate with 508 and says why in the log, as a UDP relay does.
#[test]
fn a_tcp_relay_that_cannot_be_bound_is_refused_with_508_and_logged() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = holder.local_addr().expect("held address").port();
    let (min, max) = (format!("--min-port={port}"), format!("--max-port={port}"));
    let server = Server::start(&["--allow-loopback-peers", "--relay-threads=1", &min, &max]);
    let mut ctl = control(&server);
    assert_eq!(ctl.allocate(TCP).unwrap(), Err(508), "{}", server.log());
    let line = format!(
        "cannot open a TCP relay on 127.0.0.1: no free port found in this shard's share \
         {port}-{port} of min-port..max-port; the Allocate is refused (1 refused by this shard)"
    );
    server
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no `{line}` in:\n{}", server.log()));
}
