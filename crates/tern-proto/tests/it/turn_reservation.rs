//! RESERVATION-TOKENs across shards (RFC 8656 §7.2): the token table is shared, so an Allocate
//! claiming a token from another 5-tuple (hashed by SO_REUSEPORT to another shard) gets the port.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::turn_harness::*;
use tern_proto::stun::{attr, EncodeError, MessageBuilder, Method};
use tern_proto::turn::{PortWish, Settings, Shard, Shared};

fn udp(b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
}

/// Two harnesses whose shards (index 0 and 1) share one `Shared`, on the same virtual clock.
fn two_shards() -> (Harness, Harness) {
    let shared = Arc::new(Shared::new([3; 32]));
    let settings = Arc::new(Settings::from_options(&config(), &listeners(), &[]).unwrap());
    let mut a = Harness::new(config());
    let mut b = Harness::new(config());
    a.shard = Shard::new(Arc::clone(&settings), Arc::clone(&shared), 0);
    b.shard = Shard::new(settings, shared, 1);
    b.now = a.now;
    (a, b)
}

fn reserve(h: &mut Harness) -> (SocketAddr, [u8; 8]) {
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(h, Method::ALLOCATE, &|b| {
        udp(b)?;
        b.add_raw(attr::EVEN_PORT, &[0x80, 0, 0, 0])
    });
    assert!(is_success(&out), "{:?}", out.error_code());
    let relayed = out
        .message()
        .xor_address(attr::XOR_RELAYED_ADDRESS)
        .unwrap()
        .unwrap();
    let token = out.message().reservation_token().unwrap().unwrap();
    (relayed, token)
}

fn claim(h: &mut Harness, from: &str, token: [u8; 8]) -> Out {
    let mut d = TestClient::new(from);
    d.request(h, Method::ALLOCATE, &move |b| {
        udp(b)?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    })
}

#[test]
fn a_token_issued_on_one_shard_is_claimed_on_another() {
    let (mut a, mut b) = two_shards();
    let (first, token) = reserve(&mut a);
    let out = claim(&mut b, "203.0.113.6:40001", token);
    assert!(is_success(&out), "{:?}", out.error_code());
    let second = out
        .message()
        .xor_address(attr::XOR_RELAYED_ADDRESS)
        .unwrap()
        .unwrap();
    assert_eq!(second, SocketAddr::new(first.ip(), first.port() + 1));
    assert_eq!(b.io.binds[0].0.port, PortWish::Exact(first.port() + 1));
    assert_eq!(b.shard.allocation_count(), 1);
    // Used once, on any shard.
    assert_eq!(code(&claim(&mut a, "203.0.113.7:40002", token)), 508);
    assert_eq!(code(&claim(&mut b, "203.0.113.8:40003", token)), 508);
    // The issuing shard's timer finds it claimed and releases nothing.
    a.advance(31);
    b.advance(31);
    assert!(a.io.released.is_empty());
    assert!(b.io.released.is_empty());
}

#[test]
fn an_unclaimed_token_expires_through_the_issuing_shard() {
    let (mut a, mut b) = two_shards();
    let (first, token) = reserve(&mut a);
    a.advance(29);
    b.advance(29);
    assert!(a.io.released.is_empty());
    // Past 30 s the claim fails even before the issuing shard's timer has run.
    b.advance(2);
    assert_eq!(code(&claim(&mut b, "203.0.113.6:40001", token)), 508);
    assert!(b.io.released.is_empty());
    a.advance(2);
    assert_eq!(
        a.io.released,
        vec![SocketAddr::new(first.ip(), first.port() + 1)]
    );
    assert_eq!(code(&claim(&mut b, "203.0.113.7:40002", token)), 508);
}
