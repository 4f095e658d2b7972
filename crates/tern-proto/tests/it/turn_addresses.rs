//! Relay address choice (coturn `relay-ip`, `external-ip`), address families (RFC 8656 §7.2:
//! REQUESTED-ADDRESS-FAMILY, ADDITIONAL-ADDRESS-FAMILY), EVEN-PORT and RESERVATION-TOKEN, and
//! MESSAGE-INTEGRITY-SHA256.

use std::net::SocketAddr;

use crate::turn_harness::*;
use tern_proto::options::{ExternalIp, Options};
use tern_proto::stun::{attr, Class, EncodeError, MessageBuilder, MessageType, Method};
use tern_proto::turn::{Client, PortWish, Settings, Transport, Via};

fn udp(b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
}

fn client_at(local: &str, remote: &str) -> Client {
    Client {
        via: Via::Udp(1),
        transport: Transport::Udp,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
    }
}

fn relayed(out: &Out) -> Vec<SocketAddr> {
    let m = out.message();
    m.xor_addresses(attr::XOR_RELAYED_ADDRESS)
        .map(|a| a.unwrap())
        .collect()
}

#[test]
fn relay_ip_is_the_address_the_client_reached_else_the_first_non_loopback() {
    let mut h = Harness::new(config());
    let mut lo = TestClient::with(
        client_at("127.0.0.1:3478", "127.0.0.1:5000"),
        USER,
        PASSWORD,
    );
    assert_eq!(lo.allocated(&mut h).ip(), ip("127.0.0.1"));
    let mut public = TestClient::with(client_at("192.0.2.1:3478", "203.0.113.5:1"), USER, PASSWORD);
    assert_eq!(public.allocated(&mut h).ip(), ip("192.0.2.1"));
    // Reached through an address that is not a relay address (e.g. unspecified listener).
    let mut other = TestClient::with(client_at("0.0.0.0:3478", "203.0.113.6:1"), USER, PASSWORD);
    assert_eq!(other.allocated(&mut h).ip(), ip("192.0.2.1"));
}

#[test]
fn settings_need_a_relay_address() {
    let none = Settings::from_options(&config(), &["0.0.0.0:3478".parse().unwrap()], &[]);
    assert!(none.is_err());
    let mut cfg = config();
    cfg.relay_ips = vec![ip("198.51.100.20")];
    let s = Settings::from_options(&cfg, &["0.0.0.0:3478".parse().unwrap()], &[]).unwrap();
    assert_eq!(s.relay_ips(), &[ip("198.51.100.20")]);
    // An explicit loopback relay-ip serves every client.
    cfg.relay_ips = vec![ip("127.0.0.1")];
    let s = Settings::from_options(&cfg, &[], &[]).unwrap();
    assert_eq!(
        s.relay_ip(ip("192.0.2.1"), tern_proto::stun::Family::V4),
        Some(ip("127.0.0.1"))
    );
}

#[test]
fn requested_address_family_ipv6_and_440_without_a_v6_relay() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
    });
    assert_eq!(relayed(&out)[0].ip(), ip("2001:db8::1"));

    let mut cfg = config();
    cfg.relay_ips = vec![ip("192.0.2.1")];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
    });
    assert_eq!(code(&out), 440);
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x07, 0, 0, 0])
    });
    assert_eq!(code(&out), 440);
    assert_eq!(h.shard.allocation_count(), 0);
}

#[test]
fn additional_address_family_gives_two_relays() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
    });
    let addrs = relayed(&out);
    assert_eq!(addrs.len(), 2);
    assert_eq!(
        (addrs[0].ip(), addrs[1].ip()),
        (ip("192.0.2.1"), ip("2001:db8::1"))
    );
    // Both families relay; each peer goes out of the relay of its family.
    let v6_peer: SocketAddr = "[2001:db8:5::7]:9".parse().unwrap();
    assert!(is_success(&c.permit(&mut h, v6_peer)));
    assert!(is_success(
        &c.permit(&mut h, "198.51.100.7:9".parse().unwrap())
    ));
    let v6_relay = relay_id_of(&h, addrs[1]);
    let back = h.peer_in(v6_relay, v6_peer, b"six");
    assert_eq!(
        back.message().xor_address(attr::XOR_PEER_ADDRESS),
        Some(Ok(v6_peer))
    );
    // Refresh with lifetime 0 closes both.
    assert!(is_success(&c.refresh(&mut h, Some(0))));
    assert_eq!(h.io.closed.len(), 2);

    // IPv4 in ADDITIONAL-ADDRESS-FAMILY, or with REQUESTED-ADDRESS-FAMILY: 400.
    let mut d = TestClient::new("203.0.113.6:40000");
    let out = d.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[0x01, 0, 0, 0])
    });
    assert_eq!(code(&out), 400);
    let out = d.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x01, 0, 0, 0])?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
    });
    assert_eq!(code(&out), 400);
}

#[test]
fn additional_family_without_a_v6_relay_reports_address_error_code() {
    let mut cfg = config();
    cfg.relay_ips = vec![ip("192.0.2.1")];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
    });
    assert!(is_success(&out));
    assert_eq!(relayed(&out).len(), 1);
    let value = out.message().get(attr::ADDRESS_ERROR_CODE).unwrap();
    assert_eq!(&value[..4], &[0x02, 0, 4, 40]);
}

#[test]
fn even_port_with_reservation_token() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::EVEN_PORT, &[0x80, 0, 0, 0])
    });
    let first = relayed(&out)[0];
    assert_eq!(first.port() % 2, 0);
    assert_eq!(h.io.binds[0].0.port, PortWish::Even { reserve_next: true });
    let token = out.message().reservation_token().unwrap().unwrap();

    let mut d = TestClient::new("203.0.113.6:40000");
    let out = d.request(&mut h, Method::ALLOCATE, &move |b| {
        udp(b)?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    });
    assert_eq!(
        relayed(&out)[0],
        SocketAddr::new(first.ip(), first.port() + 1)
    );
    assert_eq!(h.io.binds[1].0.port, PortWish::Exact(first.port() + 1));
    // A token is used once.
    let mut e = TestClient::new("203.0.113.7:40000");
    let out = e.request(&mut h, Method::ALLOCATE, &move |b| {
        udp(b)?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    });
    assert_eq!(code(&out), 508);
    // With EVEN-PORT as well: 400.
    let out = e.request(&mut h, Method::ALLOCATE, &move |b| {
        udp(b)?;
        b.add_raw(attr::EVEN_PORT, &[0x00, 0, 0, 0])?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    });
    assert_eq!(code(&out), 400);
    assert!(h.io.released.is_empty());
}

#[test]
fn unclaimed_reservations_are_released_after_30_seconds() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::EVEN_PORT, &[0x80, 0, 0, 0])
    });
    let first = relayed(&out)[0];
    let token = out.message().reservation_token().unwrap().unwrap();
    h.advance(29);
    assert!(h.io.released.is_empty());
    h.advance(2);
    assert_eq!(
        h.io.released,
        vec![SocketAddr::new(first.ip(), first.port() + 1)]
    );
    let mut d = TestClient::new("203.0.113.6:40000");
    let out = d.request(&mut h, Method::ALLOCATE, &move |b| {
        udp(b)?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    });
    assert_eq!(code(&out), 508);
}

#[test]
fn external_ip_is_advertised_and_mapped_back() {
    let mut cfg = config();
    cfg.relay_ips = vec![ip("10.0.0.5")];
    cfg.external_ips = vec![ExternalIp {
        public: ip("203.0.113.100"),
        private: Some(ip("10.0.0.5")),
    }];
    let mut h = Harness::new(cfg);
    let mut a = TestClient::with(
        client_at("10.0.0.5:3478", "198.51.100.1:1000"),
        USER,
        PASSWORD,
    );
    let mut b = TestClient::with(
        client_at("10.0.0.5:3478", "198.51.100.2:2000"),
        USER,
        PASSWORD,
    );
    let a_pub = a.allocated(&mut h);
    let b_pub = b.allocated(&mut h);
    assert_eq!(a_pub.ip(), ip("203.0.113.100"));
    assert_eq!(h.io.binds[0].1.addr.ip(), ip("10.0.0.5"));
    // A names B by its public relayed address; packets go to B's real socket address.
    assert!(is_success(&a.bind(&mut h, 0x4000, b_pub)));
    assert!(is_success(&b.permit(&mut h, a_pub)));
    let out = h.client_in(&a.client, &{
        let mut v = vec![0x40, 0x00, 0, 3];
        v.extend_from_slice(b"abc");
        v
    });
    let b_real = h.io.binds[1].1.addr;
    let a_real = h.io.binds[0].1.addr;
    assert_eq!(
        out,
        Out::Peer {
            relay: h.io.binds[0].1.id,
            to: b_real,
            bytes: b"abc".to_vec()
        }
    );
    // B receives it from A's real address and learns A's public one.
    let back = h.peer_in(h.io.binds[1].1.id, a_real, b"abc");
    assert_eq!(
        back.message().xor_address(attr::XOR_PEER_ADDRESS),
        Some(Ok(a_pub))
    );
}

#[test]
fn a_bare_external_ip_is_advertised_for_one_relay_address() {
    let mut cfg = config();
    cfg.external_ips = vec![ExternalIp {
        public: ip("203.0.113.100"),
        private: None,
    }];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("203.0.113.5:40000");
    assert_eq!(c.allocated(&mut h).ip(), ip("203.0.113.100"));
    // Loopback advertises itself: a peer naming the public address must map back to one socket.
    let mut lo = TestClient::with(
        client_at("127.0.0.1:3478", "127.0.0.1:5000"),
        USER,
        PASSWORD,
    );
    assert_eq!(lo.allocated(&mut h).ip(), ip("127.0.0.1"));
}

/// A cloud VM: 10.0.0.10 on the interface, 1:1 NAT from 203.0.113.10, `external-ip=203.0.113.10`
/// and loopback listed first, as getifaddrs does.
fn behind_nat(cfg: Options) -> Harness {
    let mut cfg = cfg;
    cfg.external_ips = vec![ExternalIp {
        public: ip("203.0.113.10"),
        private: None,
    }];
    Harness::on_host(cfg, &["127.0.0.1", "10.0.0.10"])
}

fn nat_client(remote: &str) -> TestClient {
    TestClient::with(client_at("10.0.0.10:3478", remote), USER, PASSWORD)
}

fn channel_data(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x40, 0x00, 0, payload.len() as u8];
    v.extend_from_slice(payload);
    v
}

#[test]
fn two_relays_behind_a_nat_reach_each_other_through_the_public_address() {
    let mut h = behind_nat(config());
    let mut a = nat_client("198.51.100.1:1000");
    let mut b = nat_client("198.51.100.2:2000");
    let a_pub = a.allocated(&mut h);
    let b_pub = b.allocated(&mut h);
    assert_eq!(
        (a_pub.ip(), b_pub.ip()),
        (ip("203.0.113.10"), ip("203.0.113.10"))
    );
    assert!(is_success(&a.bind(&mut h, 0x4000, b_pub)));
    assert!(is_success(&b.permit(&mut h, a_pub)));
    let out = h.client_in(&a.client, &channel_data(b"abc"));
    let b_real = h.io.binds[1].1.addr;
    assert_eq!(b_real.ip(), ip("10.0.0.10"));
    assert_eq!(
        out,
        Out::Peer {
            relay: h.io.binds[0].1.id,
            to: b_real,
            bytes: b"abc".to_vec()
        }
    );
}

#[test]
fn an_sfu_on_the_public_address_is_reached_but_the_listeners_are_not() {
    let mut h = behind_nat(config());
    let mut a = nat_client("198.51.100.1:1000");
    a.allocated(&mut h);
    let sfu: SocketAddr = "203.0.113.10:10000".parse().unwrap();
    assert!(is_success(&a.permit(&mut h, sfu)));
    assert!(is_success(&a.bind(&mut h, 0x4000, sfu)));
    assert_eq!(
        h.client_in(&a.client, &channel_data(b"rtp")),
        Out::Peer {
            relay: h.io.binds[0].1.id,
            to: "10.0.0.10:10000".parse().unwrap(),
            bytes: b"rtp".to_vec()
        }
    );
    let listener: SocketAddr = "203.0.113.10:3478".parse().unwrap();
    assert_eq!(code(&a.bind(&mut h, 0x4001, listener)), 403);
    // Another private address of the network stays refused.
    let neighbour: SocketAddr = "10.0.0.11:10000".parse().unwrap();
    assert_eq!(code(&a.bind(&mut h, 0x4002, neighbour)), 403);
}

#[test]
fn message_integrity_sha256_is_verified_and_answered_in_kind() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let mut buf = [0u8; 512];
    let probe = build(Method::ALLOCATE, Class::Request, [1; 12], &udp, None, false);
    c.nonce = h
        .client_in(&c.client, &probe)
        .message()
        .nonce()
        .unwrap()
        .to_vec();
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        &[2; 12],
    )
    .unwrap();
    udp(&mut b).unwrap();
    b.add_str(attr::USERNAME, USER).unwrap();
    b.add_str(attr::REALM, REALM).unwrap();
    b.add_raw(attr::NONCE, &c.nonce).unwrap();
    b.add_message_integrity_sha256(&c.key).unwrap();
    let n = b.finish();
    let out = h.client_in(&c.client, &buf[..n]);
    let m = out.message();
    assert_eq!(m.class(), Class::Success, "{:?}", out.error_code());
    assert!(m.has_integrity_sha256() && !m.has_integrity());
    assert_eq!(m.verify_integrity_sha256(&c.key), Ok(()));
}

/// The Allocate of coturn 4.6's `turnutils_uclient -Z`: ADDITIONAL-ADDRESS-FAMILY IPv6 under the
/// draft number 0x8032, no REQUESTED-ADDRESS-FAMILY, a one-byte EVEN-PORT without R (sent at
/// random), LIFETIME 777.
fn uclient_dual(b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
    udp(b)?;
    b.add_u32(attr::LIFETIME, 777)?;
    b.add_raw(attr::EVEN_PORT, &[0x00])?;
    b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY_DRAFT, &[0x02, 0, 0, 0])
}

/// Refresh with REQUESTED-ADDRESS-FAMILY `family` (0x01 IPv4, 0x02 IPv6), as uclient -Z sends.
fn refresh_family(c: &mut TestClient, h: &mut Harness, family: u8, lifetime: u32) -> Out {
    c.request(h, Method::REFRESH, &move |b| {
        b.add_u32(attr::LIFETIME, lifetime)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[family, 0, 0, 0])
    })
}

/// A dual allocation in uclient's form, with a live permission for one peer of each family:
/// (client, IPv4 relay, IPv6 relay).
fn dual_with_peers(
    h: &mut Harness,
) -> (
    TestClient,
    tern_proto::turn::RelayId,
    tern_proto::turn::RelayId,
) {
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(h, Method::ALLOCATE, &uclient_dual);
    let addrs = relayed(&out);
    assert_eq!(addrs.len(), 2, "{:?}", out.error_code());
    let (v4, v6) = (relay_id_of(h, addrs[0]), relay_id_of(h, addrs[1]));
    permit_both(&mut c, h);
    (c, v4, v6)
}

fn v4_peer() -> SocketAddr {
    "198.51.100.7:9".parse().unwrap()
}

fn v6_peer() -> SocketAddr {
    "[2001:db8:5::7]:9".parse().unwrap()
}

/// Permissions last 300 s: tests that outlive them permit again, for the relays still held.
fn permit_both(c: &mut TestClient, h: &mut Harness) {
    for peer in [v4_peer(), v6_peer()] {
        let out = c.permit(h, peer);
        assert!(
            is_success(&out) || code(&out) == 443,
            "{:?}",
            out.error_code()
        );
    }
}

/// Whether a datagram from `peer` on `relay` reaches the client.
fn relays_from(h: &mut Harness, relay: tern_proto::turn::RelayId, peer: SocketAddr) -> bool {
    match h.peer_in(relay, peer, b"ping") {
        Out::Client { bytes, .. } => tern_proto::stun::Message::parse(&bytes)
            .is_ok_and(|m| m.xor_address(attr::XOR_PEER_ADDRESS) == Some(Ok(peer))),
        _ => false,
    }
}

fn logged_relays(h: &mut Harness) -> Vec<Vec<SocketAddr>> {
    let mut lines = Vec::new();
    h.shard
        .drain_events(&mut |e| lines.push(e.relays.iter().flatten().copied().collect()));
    lines
}

#[test]
fn uclient_dual_allocation_under_the_draft_number_gets_both_relays() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &uclient_dual);
    assert!(is_success(&out), "{:?}", out.error_code());
    let addrs = relayed(&out);
    assert_eq!(
        addrs.iter().map(SocketAddr::ip).collect::<Vec<_>>(),
        vec![ip("192.0.2.1"), ip("2001:db8::1")]
    );
    assert_eq!(out.message().u32_attr(attr::LIFETIME), Some(Ok(777)));
    assert_eq!(
        logged_relays(&mut h),
        vec![addrs.clone()],
        "the created line names both"
    );
    // Each family relays through its own socket.
    permit_both(&mut c, &mut h);
    let (v4, v6) = (relay_id_of(&h, addrs[0]), relay_id_of(&h, addrs[1]));
    assert!(relays_from(&mut h, v4, v4_peer()));
    assert!(relays_from(&mut h, v6, v6_peer()));

    // With REQUESTED-ADDRESS-FAMILY the draft attribute is a 400, as in coturn.
    let mut d = TestClient::new("203.0.113.6:40000");
    let out = d.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x01, 0, 0, 0])?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY_DRAFT, &[0x02, 0, 0, 0])
    });
    assert_eq!(code(&out), 400);
    // A value that is no address family (MS-TURN's MS-ALTERNATE-HOST-NAME) is not a dual request.
    let out = d.request(&mut h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY_DRAFT, b"turn.example.net")
    });
    assert_eq!(relayed(&out).len(), 1);
}

#[test]
fn refresh_naming_a_family_refreshes_only_that_relay() {
    let mut h = Harness::new(config());
    let (mut c, v4, v6) = dual_with_peers(&mut h);
    h.advance(700);
    let out = refresh_family(&mut c, &mut h, 0x02, 777);
    assert_eq!(out.message().u32_attr(attr::LIFETIME), Some(Ok(777)));
    // The IPv4 relay ends at its own 777 s; the IPv6 one lives on.
    h.advance(78);
    assert_eq!(h.io.closed, vec![v4]);
    assert_eq!(h.shard.allocation_count(), 1);
    permit_both(&mut c, &mut h);
    assert!(!relays_from(&mut h, v4, v4_peer()));
    assert!(relays_from(&mut h, v6, v6_peer()));
    assert_eq!(code(&c.permit(&mut h, v4_peer())), 443);
    assert_eq!(code(&refresh_family(&mut c, &mut h, 0x01, 777)), 443);
    // A Refresh without a family refreshes what is left.
    assert!(is_success(&c.refresh(&mut h, Some(600))));
    h.advance(599);
    assert_eq!(h.shard.allocation_count(), 1);
    h.advance(2);
    assert_eq!(h.io.closed, vec![v4, v6]);
    assert_eq!(h.shard.allocation_count(), 0);
}

#[test]
fn refresh_zero_naming_a_family_deletes_only_that_relay() {
    let mut h = Harness::new(config());
    let (mut c, v4, v6) = dual_with_peers(&mut h);
    logged_relays(&mut h);
    let out = refresh_family(&mut c, &mut h, 0x01, 0);
    assert_eq!(out.message().u32_attr(attr::LIFETIME), Some(Ok(0)));
    assert_eq!(h.io.closed, vec![v4]);
    assert_eq!(h.shard.allocation_count(), 1);
    assert!(!relays_from(&mut h, v4, v4_peer()));
    assert!(relays_from(&mut h, v6, v6_peer()));
    assert_eq!(code(&refresh_family(&mut c, &mut h, 0x01, 600)), 443);
    assert!(is_success(&refresh_family(&mut c, &mut h, 0x02, 600)));
    let v6_addr = h.io.binds[1].1.addr;
    assert_eq!(logged_relays(&mut h), vec![vec![v6_addr]]);
    // Deleting the last relay ends the allocation.
    assert!(is_success(&refresh_family(&mut c, &mut h, 0x02, 0)));
    assert_eq!(h.io.closed, vec![v4, v6]);
    assert_eq!(h.shard.allocation_count(), 0);
    assert_eq!(h.shard.counters().allocations, 0);
    assert_eq!(code(&c.refresh(&mut h, Some(600))), 437);
}

#[test]
fn refresh_naming_a_family_the_allocation_lacks_gets_443() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    for lifetime in [600, 0] {
        assert_eq!(code(&refresh_family(&mut c, &mut h, 0x02, lifetime)), 443);
    }
    assert!(h.io.closed.is_empty());
    assert_eq!(h.shard.allocation_count(), 1);
    assert!(is_success(&refresh_family(&mut c, &mut h, 0x01, 600)));
}
