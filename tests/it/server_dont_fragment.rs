//! DONT-FRAGMENT in a Send indication applies to that datagram (RFC 8656 §10.2, §18.10),
//! through the real binary in a private network namespace whose loopback has an MTU of 1280:
//! without it a 1400-byte payload is fragmented and arrives; with it the datagram is not
//! fragmented, the peer receives nothing, and the client hears of the MTU in a Data indication
//! with ICMP fragmentation needed (3/4, the MTU). Linux refuses such a datagram before it leaves
//! the host (EMSGSIZE with the first hop's MTU), and tern reports that as the ICMP error a router
//! would have sent. Runs on the engine `TERN_TEST_ENGINE` names; needs root (SKIP otherwise).

#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use support::lab::skip;
use support::turn_client::TurnClient;
use support::{transaction_id, Server, PASSWORD, USER};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

const MTU: u32 = 1280;
const PAYLOAD: usize = 1400;

/// Moves this thread into a new network namespace whose loopback is up with an MTU of 1280.
fn small_mtu_loopback() -> Result<(), String> {
    // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling thread's network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "cannot create a network namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mtu = MTU.to_string();
    let out = Command::new("ip")
        .args(["link", "set", "lo", "up", "mtu", &mtu])
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip link: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn send_indication(c: &TurnClient, server: SocketAddr, peer: SocketAddr, dont_fragment: bool) {
    let mut buf = vec![0u8; 256 + PAYLOAD];
    let typ = MessageType::new(Method::SEND, Class::Indication);
    let mut b = MessageBuilder::new(&mut buf, typ, &transaction_id()).unwrap();
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).unwrap();
    if dont_fragment {
        b.add_raw(attr::DONT_FRAGMENT, &[]).unwrap();
    }
    b.add_raw(attr::DATA, &[7; PAYLOAD]).unwrap();
    let n = b.finish();
    c.socket.send_to(&buf[..n], server).unwrap();
}

/// The length of the next datagram `peer` receives within `wait`.
fn received(peer: &UdpSocket, wait: Duration) -> Option<usize> {
    peer.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    peer.recv(&mut buf).ok()
}

/// The ICMP value and XOR-PEER-ADDRESS of the first Data indication with ICMP within 3 s.
fn icmp_report(c: &TurnClient) -> Option<([u8; 8], SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok(n) = c.socket.recv(&mut buf) else {
            continue;
        };
        match Message::parse(&buf[..n]) {
            Ok(m) if m.method() == Method::DATA => {
                let icmp = m.get(attr::ICMP)?.try_into().ok()?;
                return Some((icmp, m.xor_address(attr::XOR_PEER_ADDRESS)?.ok()?));
            }
            _ => continue,
        }
    }
    None
}

fn dont_fragment_in_a_private_namespace() {
    if let Err(why) = small_mtu_loopback() {
        return skip(&why);
    }
    let server = Server::start(&["--allow-loopback-peers"]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    c.allocate().expect("an allocation");
    c.create_permission(peer_addr).expect("a permission");
    let log = || server.log();

    send_indication(&c, server.udp_addr(), peer_addr, false);
    let got = received(&peer, Duration::from_secs(3));
    assert_eq!(
        got,
        Some(PAYLOAD),
        "fragmented and reassembled; log:\n{}",
        log()
    );

    send_indication(&c, server.udp_addr(), peer_addr, true);
    let mtu = MTU.to_be_bytes();
    let want = [0, 0, 3, 4, mtu[0], mtu[1], mtu[2], mtu[3]];
    // The kernel does not say the peer's port for an error it raised itself: 0 (§11.5).
    let peer_ip = SocketAddr::new(peer_addr.ip(), 0);
    assert_eq!(icmp_report(&c), Some((want, peer_ip)), "log:\n{}", log());
    assert_eq!(received(&peer, Duration::from_millis(500)), None);

    // DONT-FRAGMENT was for that datagram only.
    send_indication(&c, server.udp_addr(), peer_addr, false);
    let got = received(&peer, Duration::from_secs(3));
    assert_eq!(got, Some(PAYLOAD), "log:\n{}", log());
}

#[test]
fn a_send_indication_with_dont_fragment_is_not_fragmented() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("DONT-FRAGMENT needs root (a network namespace with a small MTU)");
    }
    // The namespace is the thread's: the test runs on a thread of its own.
    std::thread::spawn(dont_fragment_in_a_private_namespace)
        .join()
        .expect("the test thread");
}
