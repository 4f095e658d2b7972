//! Permissions (RFC 8656 §9), channels (§11) and the data path both ways: Send and Data
//! indications (§10), ChannelData (§12), expiry on the virtual clock, and the peer policy.

use std::net::SocketAddr;

use crate::turn_harness::*;
use tern_proto::stun::{attr, channel, Class, Message, Method};
use tern_proto::turn::{Client, Transport, Via};

const PEER: &str = "198.51.100.7:9000";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn setup() -> (Harness, TestClient, SocketAddr) {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let relayed = c.allocated(&mut h);
    (h, c, relayed)
}

fn channel_data(ch: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 4];
    channel::write_header(&mut v, ch, payload.len() as u16);
    v.extend_from_slice(payload);
    v
}

fn send_indication(to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let payload = payload.to_vec();
    build(
        Method::SEND,
        Class::Indication,
        [4; 12],
        &move |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, to)?;
            b.add_raw(attr::DATA, &payload)
        },
        None,
        false,
    )
}

#[test]
fn channel_data_round_trip_is_byte_exact_for_odd_lengths() {
    let (mut h, mut c, relayed) = setup();
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    let relay = relay_id_of(&h, relayed);
    for len in [0usize, 1, 2, 3, 5, 7, 160, 1201] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let out = h.client_in(&c.client, &channel_data(0x4001, &payload));
        assert_eq!(
            out,
            Out::Peer {
                relay,
                to: peer(),
                bytes: payload.clone()
            },
            "len {len}"
        );
        let back = h.peer_in(relay, peer(), &payload);
        let Out::Client { via, to, bytes } = back else {
            panic!("{back:?}")
        };
        assert_eq!((via, to), (c.client.via, c.client.remote));
        assert_eq!(bytes, channel_data(0x4001, &payload), "len {len}");
    }
    let k = h.shard.counters();
    assert_eq!((k.peer_tx_packets, k.peer_rx_packets), (8, 8));
    assert_eq!(k.peer_tx_bytes, k.peer_rx_bytes);
}

#[test]
fn channel_data_over_streams_is_padded_with_zeros() {
    let mut h = Harness::new(config());
    let client = Client {
        via: Via::Stream(3),
        transport: Transport::Tcp,
        local: "192.0.2.1:3478".parse().unwrap(),
        remote: "203.0.113.5:40000".parse().unwrap(),
    };
    let mut c = TestClient::with(client, USER, PASSWORD);
    let relayed = c.allocated(&mut h);
    assert!(is_success(&c.bind(&mut h, 0x7FFF, peer())));
    let relay = relay_id_of(&h, relayed);
    for len in [1usize, 2, 3, 4, 5] {
        let payload = vec![0xAB; len];
        let back = h.peer_in(relay, peer(), &payload);
        let mut want = channel_data(0x7FFF, &payload);
        want.resize(4 + channel::padded_len(len), 0);
        assert_eq!(back.client_bytes(), &want[..], "len {len}");
        // And client -> peer: the padding the client sends is not relayed.
        let out = h.client_in(&c.client, &want);
        assert_eq!(
            out,
            Out::Peer {
                relay,
                to: peer(),
                bytes: payload
            }
        );
    }
}

#[test]
fn send_and_data_indications_round_trip() {
    let (mut h, mut c, relayed) = setup();
    let relay = relay_id_of(&h, relayed);
    // No permission yet: dropped.
    assert_eq!(
        h.client_in(&c.client, &send_indication(peer(), b"hi")),
        Out::Nothing
    );
    assert_eq!(h.peer_in(relay, peer(), b"hi"), Out::Nothing);
    assert_eq!(h.shard.counters().dropped, 2);
    assert!(is_success(&c.permit(&mut h, peer())));
    for payload in [&b""[..], b"a", b"hello", b"12345678"] {
        let out = h.client_in(&c.client, &send_indication(peer(), payload));
        assert_eq!(
            out,
            Out::Peer {
                relay,
                to: peer(),
                bytes: payload.to_vec()
            }
        );
        let back = h.peer_in(relay, peer(), payload);
        let m = back.message();
        assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
        assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(peer())));
        assert_eq!(m.data(), Some(payload));
        assert!(!m.has_fingerprint());
    }
    // An unknown comprehension-required attribute discards the indication.
    let odd = build(
        Method::SEND,
        Class::Indication,
        [4; 12],
        &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer())?;
            b.add_raw(0x0031, &[0; 4])?;
            b.add_raw(attr::DATA, b"x")
        },
        None,
        false,
    );
    assert_eq!(h.client_in(&c.client, &odd), Out::Nothing);
    // A permission is per IP: another port of the same peer passes too.
    let other: SocketAddr = "198.51.100.7:9001".parse().unwrap();
    assert!(matches!(h.peer_in(relay, other, b"x"), Out::Client { .. }));
}

#[test]
fn data_indications_carry_fingerprint_when_configured() {
    let mut cfg = config();
    cfg.fingerprint = true;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("203.0.113.5:40000");
    let relayed = c.allocated(&mut h);
    assert!(is_success(&c.permit(&mut h, peer())));
    let back = h.peer_in(relay_id_of(&h, relayed), peer(), b"odd");
    let m = Message::parse(back.client_bytes()).expect("FINGERPRINT verifies");
    assert!(m.has_fingerprint());
    assert_eq!(m.data(), Some(&b"odd"[..]));
}

#[test]
fn create_permission_takes_several_peers_all_or_nothing() {
    let (mut h, mut c, relayed) = setup();
    let relay = relay_id_of(&h, relayed);
    let a: SocketAddr = "198.51.100.1:1".parse().unwrap();
    let b: SocketAddr = "198.51.100.2:2".parse().unwrap();
    let out = c.request(&mut h, Method::CREATE_PERMISSION, &move |m| {
        m.add_xor_address(attr::XOR_PEER_ADDRESS, a)?;
        m.add_xor_address(attr::XOR_PEER_ADDRESS, b)
    });
    assert!(is_success(&out));
    assert_eq!(out.message().verify_integrity(&c.key), Ok(()));
    assert!(matches!(h.peer_in(relay, a, b"1"), Out::Client { .. }));
    assert!(matches!(h.peer_in(relay, b, b"2"), Out::Client { .. }));
    // One refused peer refuses the whole request.
    let d: SocketAddr = "198.51.100.4:4".parse().unwrap();
    let out = c.request(&mut h, Method::CREATE_PERMISSION, &move |m| {
        m.add_xor_address(attr::XOR_PEER_ADDRESS, d)?;
        m.add_xor_address(
            attr::XOR_PEER_ADDRESS,
            "169.254.169.254:80".parse().unwrap(),
        )
    });
    assert_eq!(code(&out), 403);
    assert_eq!(h.peer_in(relay, d, b"4"), Out::Nothing);
    assert_eq!(
        code(&c.request(&mut h, Method::CREATE_PERMISSION, &|_| Ok(()))),
        400
    );
}

#[test]
fn peer_policy_refuses_loopback_unless_allowed() {
    let lo: SocketAddr = "127.0.0.1:3480".parse().unwrap();
    // 127.0.0.1 is a relay address here (it listens there), so only the address-level checks
    // (ChannelBind, Send) refuse it: port 3480 is outside the relay port range.
    let (mut h, mut c, _) = setup();
    assert_eq!(code(&c.bind(&mut h, 0x4000, lo)), 403);
    let dropped = h.shard.counters().dropped;
    assert_eq!(
        h.client_in(&c.client, &send_indication(lo, b"x")),
        Out::Nothing
    );
    assert_eq!(h.shard.counters().dropped, dropped + 1);

    let mut cfg = config();
    cfg.relay_ips = vec![ip("192.0.2.1")];
    let mut h = Harness::new(cfg.clone());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    assert_eq!(code(&c.permit(&mut h, lo)), 403);
    assert_eq!(code(&c.bind(&mut h, 0x4000, lo)), 403);
    let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
    assert_eq!(code(&c.permit(&mut h, metadata)), 403);

    cfg.allow_loopback_peers = true;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("203.0.113.5:40000");
    let relayed = c.allocated(&mut h);
    assert!(is_success(&c.permit(&mut h, lo)));
    assert!(is_success(&c.bind(&mut h, 0x4000, lo)));
    let out = h.client_in(&c.client, &channel_data(0x4000, b"echo"));
    let relay = relay_id_of(&h, relayed);
    assert_eq!(
        out,
        Out::Peer {
            relay,
            to: lo,
            bytes: b"echo".to_vec()
        }
    );
}

#[test]
fn peer_family_must_match_the_relay() {
    let (mut h, mut c, _) = setup();
    let v6: SocketAddr = "[2001:db8::99]:9".parse().unwrap();
    assert_eq!(code(&c.permit(&mut h, v6)), 443);
    assert_eq!(code(&c.bind(&mut h, 0x4000, v6)), 443);
}

#[test]
fn channel_bind_rules() {
    let (mut h, mut c, _) = setup();
    let other: SocketAddr = "198.51.100.8:9000".parse().unwrap();
    assert_eq!(code(&c.bind(&mut h, 0x3FFF, peer())), 400);
    assert_eq!(code(&c.bind(&mut h, 0x8000, peer())), 400);
    assert!(is_success(&c.bind(&mut h, 0x4000, peer())));
    // Refreshing the same binding is fine.
    assert!(is_success(&c.bind(&mut h, 0x4000, peer())));
    // The channel is taken by another peer; the peer has another channel.
    assert_eq!(code(&c.bind(&mut h, 0x4000, other)), 400);
    assert_eq!(code(&c.bind(&mut h, 0x4001, peer())), 400);
    assert!(is_success(&c.bind(&mut h, 0x4001, other)));
    // Missing attributes.
    let out = c.request(&mut h, Method::CHANNEL_BIND, &|b| {
        b.add_raw(attr::CHANNEL_NUMBER, &[0x40, 0x02, 0, 0])
    });
    assert_eq!(code(&out), 400);
    // An unbound channel number is dropped.
    assert_eq!(
        h.client_in(&c.client, &channel_data(0x4005, b"x")),
        Out::Nothing
    );
}

#[test]
fn permissions_expire_after_300_seconds() {
    let (mut h, mut c, relayed) = setup();
    let relay = relay_id_of(&h, relayed);
    assert!(is_success(&c.permit(&mut h, peer())));
    h.advance(299);
    assert!(matches!(h.peer_in(relay, peer(), b"x"), Out::Client { .. }));
    assert!(matches!(
        h.client_in(&c.client, &send_indication(peer(), b"x")),
        Out::Peer { .. }
    ));
    h.advance(2);
    assert_eq!(h.peer_in(relay, peer(), b"x"), Out::Nothing);
    assert_eq!(
        h.client_in(&c.client, &send_indication(peer(), b"x")),
        Out::Nothing
    );
    // CreatePermission again restores it.
    assert!(is_success(&c.permit(&mut h, peer())));
    assert!(matches!(h.peer_in(relay, peer(), b"x"), Out::Client { .. }));
}

#[test]
fn channel_bind_installs_a_permission_and_channels_expire_after_600_seconds() {
    let (mut h, mut c, relayed) = setup();
    let relay = relay_id_of(&h, relayed);
    assert!(is_success(&c.bind(&mut h, 0x4000, peer())));
    assert!(matches!(h.peer_in(relay, peer(), b"x"), Out::Client { .. }));
    assert!(is_success(&c.refresh(&mut h, Some(3600))));
    // The permission the bind installed lapses at 300 s; the channel lives on.
    h.advance(301);
    assert_eq!(
        h.client_in(&c.client, &channel_data(0x4000, b"x")),
        Out::Nothing
    );
    assert!(is_success(&c.permit(&mut h, peer())));
    assert_eq!(
        h.client_in(&c.client, &channel_data(0x4000, b"x")),
        Out::Peer {
            relay,
            to: peer(),
            bytes: b"x".to_vec()
        }
    );
    // At 600 s the channel is gone: peer data arrives as a Data indication, ChannelData drops.
    h.advance(298);
    assert_eq!(
        h.peer_in(relay, peer(), b"y").client_bytes(),
        &channel_data(0x4000, b"y")[..]
    );
    assert!(is_success(&c.permit(&mut h, peer())));
    h.advance(2);
    assert_eq!(
        h.client_in(&c.client, &channel_data(0x4000, b"x")),
        Out::Nothing
    );
    let back = h.peer_in(relay, peer(), b"y");
    assert_eq!(back.message().method(), Method::DATA);
    // Once expired, the number can be bound to another peer.
    assert!(is_success(&c.bind(
        &mut h,
        0x4000,
        "198.51.100.9:1".parse().unwrap()
    )));
}

#[test]
fn data_for_unknown_relays_and_clients_is_dropped() {
    let (mut h, c, relayed) = setup();
    let stranger = udp_client("203.0.113.99:1");
    assert_eq!(
        h.client_in(&stranger, &channel_data(0x4000, b"x")),
        Out::Nothing
    );
    assert_eq!(
        h.client_in(&stranger, &send_indication(peer(), b"x")),
        Out::Nothing
    );
    assert_eq!(
        h.peer_in(tern_proto::turn::RelayId(999), peer(), b"x"),
        Out::Nothing
    );
    let _ = (c, relayed);
    assert_eq!(h.shard.counters().dropped, 3);
}
