//! Bugs the fuzz targets found, each stated as a plain test on the public API (RFC 8656 §7.2
//! reservations). The fuzz input that found each is named in its comment.

use std::net::SocketAddr;

use crate::turn_harness::*;
use tern_proto::stun::{attr, Method};
use tern_proto::turn::BindError;

/// Found by `shard` (EVEN-PORT R=1 allocation, engine binds failing, an Allocate with the
/// RESERVATION-TOKEN, then time passing): the Allocate takes the token, the engine cannot bind
/// the reserved port, the client gets 508, and the port is never handed back: neither claimed
/// by a relay nor passed to `Binder::release_port`, so an engine that keeps reserved ports
/// leaks one per such failure.
#[test]
fn a_reserved_port_whose_claim_fails_is_released() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    let out = c.request(&mut h, Method::ALLOCATE, &|b| {
        b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])?;
        b.add_raw(attr::EVEN_PORT, &[0x80, 0, 0, 0])
    });
    let first = out
        .message()
        .xor_address(attr::XOR_RELAYED_ADDRESS)
        .unwrap()
        .unwrap();
    let token = out.message().reservation_token().unwrap().unwrap();
    let reserved = SocketAddr::new(first.ip(), first.port() + 1);

    h.io.fail = Some(BindError::Resources);
    let mut d = TestClient::new("203.0.113.6:40000");
    let out = d.request(&mut h, Method::ALLOCATE, &move |b| {
        b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])?;
        b.add_raw(attr::RESERVATION_TOKEN, &token)
    });
    assert_eq!(code(&out), 508);
    h.io.fail = None;

    h.advance(31);
    assert_eq!(
        h.io.released,
        vec![reserved],
        "the reserved port was neither bound nor released"
    );
}
