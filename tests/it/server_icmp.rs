//! ICMP errors about peers reach the client through the real binary (RFC 8656 §11.5, §18.13):
//! a Send indication to a closed port on loopback draws an ICMP port unreachable, which the
//! relay socket's error queue reports and tern answers with a Data indication carrying ICMP and
//! XOR-PEER-ADDRESS. Runs on the engine `TERN_TEST_ENGINE` names (epoll or the default
//! io_uring).

#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::turn_client::TurnClient;
use support::{transaction_id, Server, PASSWORD, USER};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

/// A UDP port on `ip` that nobody listens on (bound, read, closed).
fn closed_port(ip: &str) -> SocketAddr {
    UdpSocket::bind((ip, 0)).unwrap().local_addr().unwrap()
}

fn send_indication(c: &TurnClient, server: SocketAddr, peer: SocketAddr, payload: &[u8]) {
    let mut buf = vec![0u8; 256 + payload.len()];
    let typ = MessageType::new(Method::SEND, Class::Indication);
    let mut b = MessageBuilder::new(&mut buf, typ, &transaction_id()).unwrap();
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).unwrap();
    b.add_raw(attr::DATA, payload).unwrap();
    let n = b.finish();
    c.socket.send_to(&buf[..n], server).unwrap();
}

/// The ICMP value and XOR-PEER-ADDRESS of the first Data indication with ICMP within 5 s.
fn icmp_report(c: &TurnClient) -> Option<([u8; 8], SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok(n) = c.socket.recv(&mut buf) else {
            continue;
        };
        let Ok(m) = Message::parse(&buf[..n]) else {
            continue;
        };
        if (m.method(), m.class()) != (Method::DATA, Class::Indication) {
            continue;
        }
        let icmp = m.get(attr::ICMP)?.try_into().ok()?;
        assert_eq!(m.data(), None, "an ICMP report carries no DATA");
        let peer = m.xor_address(attr::XOR_PEER_ADDRESS)?.ok()?;
        return Some((icmp, peer));
    }
    None
}

/// A Send indication to `peer` through `to` draws a report with ICMP value `icmp` for `peer`.
fn reported(server: &Server, c: &TurnClient, to: SocketAddr, peer: SocketAddr, icmp: [u8; 8]) {
    send_indication(c, to, peer, b"anyone there?");
    let got = icmp_report(c);
    assert_eq!(got, Some((icmp, peer)), "server log:\n{}", server.log());
}

#[test]
fn a_closed_peer_port_is_reported_as_port_unreachable() {
    let server = Server::start(&["--allow-loopback-peers"]);
    let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    c.allocate().expect("an allocation");
    let peer = closed_port("127.0.0.1");
    c.create_permission(peer).expect("a permission");
    reported(
        &server,
        &c,
        server.udp_addr(),
        peer,
        [0, 0, 3, 3, 0, 0, 0, 0],
    );
}

#[test]
fn without_a_permission_nothing_is_reported() {
    let server = Server::start(&["--allow-loopback-peers"]);
    let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    c.allocate().expect("an allocation");
    let (permitted, closed) = (closed_port("127.0.0.1"), closed_port("127.0.0.2"));
    c.create_permission(permitted).expect("a permission");
    // The Send indication to a peer without a permission is not relayed at all; the one to the
    // permitted peer shows that reports do arrive.
    send_indication(&c, server.udp_addr(), closed, b"x");
    send_indication(&c, server.udp_addr(), permitted, b"x");
    let got = icmp_report(&c);
    assert_eq!(got.map(|(_, peer)| peer), Some(permitted));
}

#[test]
fn a_closed_peer_port_on_ipv6_is_reported_as_port_unreachable() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let server = Server::start(&["--listening-ip=::1", "--allow-loopback-peers"]);
    let to = *server
        .udp
        .iter()
        .find(|a| a.is_ipv6())
        .expect("a ::1 listener");
    let mut c = TurnClient::bound("[::1]:0".parse().unwrap(), to, USER, PASSWORD);
    let relayed = c.allocate_family(true).expect("an IPv6 allocation");
    assert!(relayed.is_ipv6(), "{relayed}");
    let peer = closed_port("::1");
    c.create_permission(peer).expect("a permission");
    // ICMPv6 destination unreachable (1), port unreachable (4).
    reported(&server, &c, to, peer, [0, 0, 1, 4, 0, 0, 0, 0]);
}
