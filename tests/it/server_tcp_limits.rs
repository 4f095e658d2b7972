//! What a stream client cannot do to the server: a connection that sends nothing, or stops
//! inside the TLS handshake, is closed at its deadline; one that trickles bytes (slowloris) or
//! talks STUN without allocating is closed at the same deadlines, counted from accept; a source
//! address cannot hold more than `stream-connections-per-ip` connections; stream connections
//! cannot take the descriptors relays need; 1,000 idle TCP connections and 100 stalled TLS
//! handshakes neither stop nor slow a new client's allocation (and their memory is reported).
// Deadlines for real processes need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use support::stream_client::{TurnStream, UDP};
use support::tls::TestCert;
use support::turn_client::TurnClient;
use support::{
    binding_request, mapped_address, read_stun, transaction_id, Server, PASSWORD, REALM, USER,
};

/// The first bytes of a TLS ClientHello record, and no more: a handshake that stalls.
const PARTIAL_CLIENT_HELLO: [u8; 9] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

/// A TCP connection from source address `from` to `to`.
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.bind(&SocketAddr::new(from, 0).into())
        .expect("bind source");
    s.connect(&to.into()).expect("connect");
    s.into()
}

/// Waits until the server closes `s` (EOF or reset); how long that took.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed())
            }
            Err(_) => return None,
        }
        if start.elapsed() > limit {
            return None;
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn silent_and_idle_connections_are_closed_at_their_deadline() {
    let cert = TestCert::new("deadline");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--max-allocate-timeout=2"]);
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let opened = Instant::now();
    // Connects and says nothing.
    let mut silent = connect_from(here, server.tcp_addr());
    // Starts a TLS handshake and stops.
    let mut stalled = connect_from(here, server.tls_addr());
    stalled.write_all(&PARTIAL_CLIENT_HELLO).unwrap();
    // Talks STUN once, never allocates.
    let mut idle = connect_from(here, server.tcp_addr());
    let tid = transaction_id();
    idle.write_all(&binding_request(&tid, false)).unwrap();
    mapped_address(&read_stun(&mut idle).unwrap(), &tid);
    for (what, s) in [
        ("silent", &mut silent),
        ("stalled TLS", &mut stalled),
        ("idle", &mut idle),
    ] {
        closed_within(s, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{what} connection still open\n{}", server.log()));
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "{what} closed too early: {took:?}"
        );
    }
    // A connection with an allocation is not idle, however quiet.
    let mut turn = TurnStream::new(connect_from(here, server.tcp_addr()));
    turn.allocate(UDP).unwrap().expect("allocate");
    std::thread::sleep(Duration::from_secs(4));
    let tid = transaction_id();
    turn.stream
        .write_all(&binding_request(&tid, false))
        .unwrap();
    mapped_address(&read_stun(&mut turn.stream).unwrap(), &tid);
}

#[test]
fn a_source_address_holds_at_most_its_limit_of_connections() {
    let server = Server::start(&["--stream-connections-per-ip=3"]);
    let crowded: IpAddr = "127.0.0.5".parse().unwrap();
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| connect_from(crowded, server.tcp_addr()))
        .collect();
    for s in &mut held {
        let tid = transaction_id();
        s.write_all(&binding_request(&tid, false)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        mapped_address(&read_stun(s).unwrap(), &tid);
    }
    let mut fourth = connect_from(crowded, server.tcp_addr());
    assert!(
        closed_within(&mut fourth, Duration::from_secs(10)).is_some(),
        "a fourth connection from one address stayed open"
    );
    // Another address is not affected.
    let mut other = connect_from("127.0.0.6".parse().unwrap(), server.tcp_addr());
    let tid = transaction_id();
    other.write_all(&binding_request(&tid, false)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    mapped_address(&read_stun(&mut other).unwrap(), &tid);
    // A closed connection frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect_from(crowded, server.tcp_addr());
        let tid = transaction_id();
        again
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let answered =
            again.write_all(&binding_request(&tid, false)).is_ok() && read_stun(&mut again).is_ok();
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Connect + 401 + Allocate over TCP from a fresh address: the time from the first byte on the
/// wire to the success response.
fn allocation_time(server: &Server) -> Duration {
    let start = Instant::now();
    let stream = connect_from("127.0.0.1".parse().unwrap(), server.tcp_addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut turn = TurnStream::new(stream);
    turn.allocate(UDP)
        .expect("an answer")
        .unwrap_or_else(|code| panic!("allocate refused: {code}"));
    start.elapsed()
}

#[test]
fn idle_connections_and_stalled_handshakes_do_not_delay_a_new_client() {
    const IDLE: usize = 1000;
    const STALLED: usize = 100;
    let cert = TestCert::new("load");
    let [c, k] = cert.args();
    let server = Server::start(&[
        &c,
        &k,
        "--tls-listening-port=0",
        "--max-allocate-timeout=120",
    ]);
    let warm = allocation_time(&server);
    let before = rss_kib(server.pid());
    // Spread over four source addresses, within the default per-address limit.
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            connect_from(
                format!("127.0.1.{}", 1 + i % 4).parse().unwrap(),
                server.tcp_addr(),
            )
        })
        .collect();
    // Wait until the server has accepted them all: its RSS stops growing.
    std::thread::sleep(Duration::from_millis(500));
    let after_idle = rss_kib(server.pid());
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut s = connect_from("127.0.2.1".parse().unwrap(), server.tls_addr());
            s.write_all(&PARTIAL_CLIENT_HELLO).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let after_stalled = rss_kib(server.pid());
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = allocation_time(&server);
        times.push(t);
        if t <= Duration::from_millis(100) {
            break;
        }
    }
    let per_idle = after_idle.saturating_sub(before) as f64 * 1024.0 / IDLE as f64;
    let per_stalled = after_stalled.saturating_sub(after_idle) as f64 * 1024.0 / STALLED as f64;
    println!(
        "memory: {per_idle:.0} bytes per idle TCP connection, {per_stalled:.0} bytes per stalled \
         TLS handshake (RSS {before} KiB -> {after_idle} KiB -> {after_stalled} KiB); allocation \
         before load {warm:?}, under load {times:?}"
    );
    let best = times.iter().min().copied().unwrap_or(Duration::MAX);
    assert!(
        best <= Duration::from_millis(100),
        "allocation took {times:?} with {IDLE} idle connections and {STALLED} stalled handshakes"
    );
    // They were all still open: the server did not simply drop them.
    let mut probe = idle.into_iter().next().unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(probe.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "an idle connection was closed early"
    );
    drop(stalled);
}

/// A TCP client that stops reading while its peer keeps sending: the server's queue for it stays
/// bounded (excess relayed datagrams are dropped), and the client is served again once it reads.
#[test]
fn a_slow_stream_client_costs_bounded_memory() {
    const DATAGRAMS: usize = 40_000;
    const SIZE: usize = 1000;
    let server = Server::start(&["--allow-loopback-peers"]);
    let stream = connect_from("127.0.0.1".parse().unwrap(), server.tcp_addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut turn = TurnStream::new(stream);
    let relayed = turn.allocate(UDP).unwrap().expect("allocate");
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    turn.create_permission(peer.local_addr().unwrap())
        .unwrap()
        .expect("permission");
    let before = rss_kib(server.pid());
    let payload = [0x5au8; SIZE];
    for _ in 0..DATAGRAMS {
        // The kernel may drop some on the way: what counts is what the server would buffer.
        let _ = peer.send_to(&payload, relayed);
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown = rss_kib(server.pid()).saturating_sub(before);
    println!(
        "RSS grew {grown} KiB while {} MB went to a client that does not read",
        DATAGRAMS * SIZE / 1_000_000
    );
    assert!(
        grown < 10 * 1024,
        "the server buffered {grown} KiB for one slow client"
    );
    // Reading again: what was queued arrives, then the connection answers as before.
    // Reading frees room in the server's queue first; a request sent while it is still full
    // could have its answer dropped like any other frame.
    let mut indications = 0;
    while indications < 100 {
        read_stun(&mut turn.stream).expect("queued Data indications");
        indications += 1;
    }
    let tid = transaction_id();
    turn.stream
        .write_all(&binding_request(&tid, false))
        .unwrap();
    loop {
        let msg = read_stun(&mut turn.stream).expect("the connection still works");
        if msg.get(8..20) == Some(&tid[..]) {
            mapped_address(&msg, &tid);
            break;
        }
        indications += 1;
    }
    println!("{indications} Data indications reached the slow client");
    assert!(indications > 0 && indications < DATAGRAMS);
}

/// Writes `bytes` to a clone of `s`, one every `every`, until the server closes it.
fn trickle(s: &TcpStream, bytes: Vec<u8>, every: Duration) -> std::thread::JoinHandle<()> {
    let mut w = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        for b in bytes.iter().cycle() {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    })
}

/// A STUN Binding request header announcing `len` bytes of attributes, then those bytes.
fn announced(len: u16) -> Vec<u8> {
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&transaction_id());
    m.resize(20 + usize::from(len), 0);
    m
}

#[test]
fn trickling_and_chatty_connections_are_closed_at_deadlines_from_accept() {
    let server = Server::start(&["--max-allocate-timeout=2"]);
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    // One byte every 500 ms: the start of a message that never completes.
    let mut slow = connect_from(here, server.tcp_addr());
    let opened = Instant::now();
    let writer = trickle(&slow, announced(64), Duration::from_millis(500));
    // A complete Binding every 500 ms, each answered, and never an Allocate.
    let mut chatty = connect_from(here, server.tcp_addr());
    let mut w = chatty.try_clone().unwrap();
    let talker = std::thread::spawn(move || loop {
        if w.write_all(&binding_request(&transaction_id(), false))
            .is_err()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    });
    for (what, s) in [("trickling", &mut slow), ("chatty", &mut chatty)] {
        closed_within(s, Duration::from_secs(8))
            .unwrap_or_else(|| panic!("{what} connection still open\n{}", server.log()));
        let took = opened.elapsed();
        // The deadline is 2 s; the sweep runs every second.
        assert!(
            (Duration::from_millis(1500)..Duration::from_millis(4500)).contains(&took),
            "{what} connection closed after {took:?}"
        );
    }
    writer.join().unwrap();
    talker.join().unwrap();
}

#[test]
fn a_large_message_trickled_is_closed_at_the_first_message_deadline() {
    // The allocate deadline is far; the first complete message is due within 2 s.
    let server = Server::start(&[
        "--max-allocate-timeout=120",
        "--stream-first-message-timeout=2",
    ]);
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let mut slow = connect_from(here, server.tcp_addr());
    let opened = Instant::now();
    // Most of a 64 KiB message at once, then the rest one byte at a time.
    let message = announced(65_532);
    let (bulk, rest) = message.split_at(message.len() - 16);
    slow.write_all(bulk).unwrap();
    let writer = trickle(&slow, rest.to_vec(), Duration::from_millis(500));
    closed_within(&mut slow, Duration::from_secs(8))
        .unwrap_or_else(|| panic!("the trickling connection is still open\n{}", server.log()));
    let took = opened.elapsed();
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(4500)).contains(&took),
        "closed after {took:?}"
    );
    writer.join().unwrap();
    // A connection that completed its first message is held to the allocate deadline only.
    let mut talked = connect_from(here, server.tcp_addr());
    let tid = transaction_id();
    talked.write_all(&binding_request(&tid, false)).unwrap();
    mapped_address(&read_stun(&mut talked).unwrap(), &tid);
    assert_eq!(
        closed_within(&mut talked, Duration::from_secs(4)),
        None,
        "a connection that sent a whole message was closed"
    );
}

/// The stream connection ceiling the server logged at start-up.
fn logged_stream_ceiling(server: &Server) -> usize {
    let line = server
        .wait_for_log("TCP/TLS client connections", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no stream ceiling in:\n{}", server.log()));
    line.split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line}"))
}

#[test]
fn idle_connections_cannot_take_the_descriptors_relays_need() {
    let Some(prlimit) = support::interop_tool("prlimit") else {
        return;
    };
    let prlimit = prlimit.to_string_lossy().into_owned();
    let (user, realm) = (
        format!("--user={USER}:{PASSWORD}"),
        format!("--realm={REALM}"),
    );
    let args = [
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--relay-threads=1",
        "--io-engine=epoll",
        "--unauthorized-ratelimit-rps=0",
        &user,
        &realm,
    ];
    let server = Server::start_wrapped(&[&prlimit, "--nofile=200:200", "--"], &args);
    // More idle connections than the descriptors left, from addresses within the per-address cap.
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|i| {
            connect_from(
                format!("127.0.4.{}", 1 + i % 8).parse().unwrap(),
                server.tcp_addr(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Relays still get their descriptors.
    for i in 0..10 {
        let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
        c.allocate().unwrap_or_else(|e| {
            panic!(
                "allocation {i} refused with {} idle connections: {e:?}\n{}",
                idle.len(),
                server.log()
            )
        });
    }
    // The connections past the ceiling were closed at accept, long before any deadline (10 s).
    let ceiling = logged_stream_ceiling(&server);
    assert!((10..=100).contains(&ceiling), "stream ceiling {ceiling}");
    let refused = idle
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(20)))
        .filter(Option::is_some)
        .count();
    assert_eq!(
        refused,
        idle.len() - ceiling,
        "{} connections, ceiling {ceiling}",
        idle.len()
    );
}
