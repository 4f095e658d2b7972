//! TURN over TCP and TLS against the real binary with coturn's `turnutils_uclient` (4 clients x
//! 100 messages each, none lost): channels over TCP (`-t`), over TLS (`-S -t`), and RFC 6062 TCP
//! relay allocations between clients (`-T`: Connect on one side, ConnectionAttempt and
//! ConnectionBind on the other). And with our own client: the many frames of one TCP write,
//! sent to their peers together.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::support;

use support::stream_client::{TurnStream, UDP};
use support::tls::TestCert;
use support::uclient::{reported_error, run, tool, totals, Peer};
use support::{Server, PASSWORD, USER};

/// uclient picks a random TLS context per connection, among them TLS 1.0 (`ctx=1`) and TLS 1.1
/// (`ctx=2`), and retries with another when the handshake fails. tern offers TLS 1.2 and 1.3
/// only (docs/architecture.md, "Errors and safety"), so those attempts end in a
/// handshake-failure alert; any other error still fails the test.
const TLS10_PROBES: &[&str] = &[
    "tls_connect: cannot connect: rc=-1, ctx=1",
    "tls_connect: cannot connect: rc=-1, ctx=2",
    "errno=0, err=0, error:0A000410:SSL routines::sslv3 alert handshake failure",
];

const CLIENTS: u64 = 4;
const MESSAGES: u64 = 100;

/// Runs uclient (4 clients x 100 messages of 200 bytes) on `port` with `args` and checks that
/// every message came back and nothing but `expected` lines mention an error.
fn echo_all(server: &Server, port: u16, args: &[&str], expected: &[&str]) {
    let (Some(tool), Some(peer)) = (tool(), Peer::start()) else {
        return;
    };
    let (m, n) = (CLIENTS.to_string(), MESSAGES.to_string());
    let mut all = vec!["-u", USER, "-w", PASSWORD, "-m", &m, "-n", &n, "-l", "200"];
    all.extend_from_slice(args);
    let text = run(&tool, port, peer.port, &all);
    let fail = |why: &str| -> ! {
        panic!(
            "{why} (uclient {all:?}):\n{text}\nserver log:\n{}",
            server.log()
        )
    };
    let unexpected: String = text
        .lines()
        .filter(|l| !expected.iter().any(|e| l.contains(e)))
        .collect::<Vec<_>>()
        .join("\n");
    if reported_error(&unexpected) {
        fail("uclient reported an error");
    }
    let Some((sent, received)) = totals(&text) else {
        fail("no totals line");
    };
    if sent != CLIENTS * MESSAGES || received != sent {
        fail(&format!("sent {sent}, received {received}"));
    }
    if !text.contains("Total lost packets 0 ") {
        fail("lost packets");
    }
}

#[test]
fn uclient_over_tcp_loses_nothing() {
    let server = Server::start(&["--allow-loopback-peers"]);
    echo_all(&server, server.tcp_addr().port(), &["-t", "-c"], &[]);
}

#[test]
fn uclient_over_tls_loses_nothing() {
    let cert = TestCert::new("uclient");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    echo_all(
        &server,
        server.tls_addr().port(),
        &["-S", "-t", "-c"],
        TLS10_PROBES,
    );
}

#[test]
fn uclient_tcp_relay_allocations_lose_nothing() {
    let server = Server::start(&["--allow-loopback-peers"]);
    echo_all(&server, server.tcp_addr().port(), &["-T"], &[]);
}

#[test]
fn uclient_tcp_relay_over_tls_loses_nothing() {
    let cert = TestCert::new("uclient-6062");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    echo_all(
        &server,
        server.tls_addr().port(),
        &["-T", "-S"],
        TLS10_PROBES,
    );
}

/// One datagram a peer must receive: its size and its place in the client's write.
type Expected = (usize, u16);

/// The payload of datagram `seq`: its number, then its low byte repeated.
fn numbered(len: usize, seq: u16) -> Vec<u8> {
    let mut p = vec![seq as u8; len];
    p[..2].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Reads `expected.len()` datagrams from `peer` and checks each one's size and number, in order.
fn receive_in_order(peer: &UdpSocket, expected: &[Expected], server: &support::Server) {
    let mut buf = [0u8; 2048];
    for (k, &(len, seq)) in expected.iter().enumerate() {
        let n = match peer.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!(
                "datagram {k} of {} (#{seq}) never came: {e}\nserver log:\n{}",
                expected.len(),
                server.log()
            ),
        };
        assert_eq!(
            &buf[..n],
            &numbered(len, seq)[..],
            "datagram {k}: expected #{seq} of {len} bytes, got {n} bytes"
        );
    }
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    assert!(
        peer.recv(&mut buf).is_err(),
        "a datagram more than was sent"
    );
}

/// The frames that arrive in one read from a TCP client reach their peers together
/// (docs/architecture.md, "One relayed packet"): runs of equal-sized datagrams for one peer
/// share a send. Every datagram must still arrive whole, in order and with its own size,
/// across everything that ends a run: a shorter datagram, another peer, a Send indication, a
/// datagram too large to share a send, the 64-datagram limit. On both engines (the stream
/// shards are the same in both).
#[test]
fn frames_of_one_write_reach_their_peers_whole_and_in_order() {
    for engine in ["--io-engine=epoll", "--io-engine=uring"] {
        let server = support::Server::start(&["--allow-loopback-peers", engine]);
        let peers: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("peer socket"))
            .collect();
        for p in &peers {
            p.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
        }
        let addr: Vec<SocketAddr> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
        let mut client = TurnStream::new(TcpStream::connect(server.tcp_addr()).expect("connect"));
        client.allocate(UDP).expect("io").expect("allocation");
        for (k, a) in addr.iter().enumerate() {
            let channel = 0x4000 + k as u16;
            client
                .channel_bind(channel, *a)
                .expect("io")
                .expect("bound");
        }
        // (peer, size, as a Send indication) in the order written.
        let mut plan: Vec<(usize, usize, bool)> = Vec::new();
        plan.extend([(0, 100, false); 4]);
        plan.push((0, 60, false));
        plan.extend([(0, 100, false); 2]);
        plan.extend([(1, 100, false); 2]);
        plan.push((1, 80, true));
        plan.push((0, 1500, false));
        plan.extend([(0, 100, false); 70]);
        plan.extend([(0, 1472, false); 2]);
        plan.push((1, 200, false));
        let mut bytes = Vec::new();
        let mut expected: [Vec<Expected>; 2] = [Vec::new(), Vec::new()];
        for (seq, &(peer, len, indication)) in plan.iter().enumerate() {
            let payload = numbered(len, seq as u16);
            if indication {
                let m = client.send_indication_message(addr[peer], &payload);
                bytes.extend(m.expect("Send indication"));
            } else {
                let channel = 0x4000 + peer as u16;
                bytes.extend(tern::client::channel_frame(channel, &payload, true));
            }
            expected[peer].push((len, seq as u16));
        }
        client.stream.write_all(&bytes).expect("write");
        for (peer, want) in peers.iter().zip(&expected) {
            receive_in_order(peer, want, &server);
        }
    }
}

/// A client that writes a request and closes its end at once gets its answer and then the end
/// of the stream: the shard stops reading after a read that emptied the socket, and must still
/// notice an end that came with the data (`EPOLLRDHUP` in the same event). Many times, so that
/// the end arrives both with the request and after it.
#[test]
fn a_request_and_the_end_of_the_stream_together_are_answered_then_closed() {
    let server = support::Server::start(&[]);
    for k in 0..50 {
        let mut s = TcpStream::connect(server.tcp_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let tid = support::transaction_id();
        s.write_all(&support::binding_request(&tid, false))
            .expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let answer = support::read_stun(&mut s).expect("the Binding answer");
        assert_eq!(
            support::mapped_address(&answer, &tid),
            s.local_addr().unwrap()
        );
        let mut rest = [0u8; 16];
        match std::io::Read::read(&mut s, &mut rest) {
            Ok(0) => {}
            other => panic!("connection {k}: no end of stream after the answer: {other:?}"),
        }
    }
}
