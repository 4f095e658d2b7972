//! Drives every decoder of `tern::stun` over arbitrary bytes and checks what must hold for any
//! input (RFC 8489 §5/§14, RFC 8656 §12); the other targets' checks live in the modules below.
//! Used by the fuzz targets, by tests/it/stun_props.rs and by tests/it/fuzz_corpus.rs (which replays
//! the committed corpus under stable `cargo test`).

// tests/it/stun_props.rs includes this file for the decoders only.
#[allow(dead_code)]
pub mod config;
#[allow(dead_code)]
pub mod frames;
#[allow(dead_code)]
pub mod integrity;
#[allow(dead_code)]
pub mod shard;

use tern::stun::classic::{self, ClassicBinding};
use tern::stun::{attr, channel, framing, Message};

/// A fixed key: random inputs almost never verify, but the HMAC path runs to the end.
const KEY: &[u8] = b"fuzz-key";

const ADDRESS_TYPES: [u16; 4] = [
    attr::XOR_PEER_ADDRESS,
    attr::XOR_RELAYED_ADDRESS,
    attr::XOR_MAPPED_ADDRESS,
    attr::MAPPED_ADDRESS,
];

/// `Message::parse`, then every getter and both integrity checks; the classic (RFC 3489) decoder.
pub fn stun(data: &[u8]) {
    classic_binding(data);
    let Ok(m) = Message::parse(data) else {
        return;
    };
    assert_eq!(m.as_bytes(), data);
    assert_eq!(framing::frame_len(data), Ok(Some(data.len())));
    for a in m.attributes() {
        assert!(a.value.len() <= data.len());
    }
    let _ = m.unknown_required().count();
    for typ in ADDRESS_TYPES {
        let _ = m.xor_address(typ);
        let _ = m.address(typ);
        let _ = m.xor_addresses(typ).count();
    }
    let _ = (
        m.username(),
        m.realm(),
        m.nonce(),
        m.software(),
        m.error_code(),
    );
    let _ = (
        m.u32_attr(attr::LIFETIME),
        m.channel_number(),
        m.requested_transport(),
    );
    let _ = (m.requested_address_family(), m.additional_address_family());
    let _ = (
        m.even_port(),
        m.reservation_token(),
        m.dont_fragment(),
        m.connection_id(),
    );
    match (m.data(), m.data_range()) {
        (Some(d), Some(r)) => assert_eq!(data.get(r), Some(d)),
        (None, None) => {}
        other => panic!("data and data_range disagree: {other:?}"),
    }
    let _ = (m.verify_integrity(KEY), m.verify_integrity_sha256(KEY));
    assert_eq!(m.has_integrity(), m.get(attr::MESSAGE_INTEGRITY).is_some());
    assert_eq!(m.has_fingerprint(), m.get(attr::FINGERPRINT).is_some());
}

/// `ClassicBinding::parse` takes only a Binding request that RFC 5389 would not, and the answer
/// to it is never larger than the RFC 5389 answer (IPv6: 20 + 24 bytes of MAPPED-ADDRESS).
fn classic_binding(data: &[u8]) {
    let Some(req) = ClassicBinding::parse(data) else {
        return;
    };
    assert_eq!(data.get(..2), Some(&[0u8, 1][..]));
    assert!(Message::parse(data).is_err());
    assert_eq!(data.get(4..20), Some(&req.transaction_id()[..]));
    let mapped = std::net::SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 3478));
    let mut out = [0u8; 64];
    let n = classic::write_binding_response(&mut out, req.transaction_id(), mapped);
    assert_eq!(n, Ok(44));
}

/// `channel::parse` and `framing::frame_len`.
pub fn channel(data: &[u8]) {
    if let Ok((ch, payload)) = channel::parse(data) {
        assert!(channel::is_valid_channel(ch));
        assert!(channel::HEADER_LEN + payload.len() <= data.len());
        let frame = framing::frame_len(data);
        assert_eq!(
            frame,
            Ok(Some(
                channel::HEADER_LEN + channel::padded_len(payload.len())
            ))
        );
    }
    if let Ok(Some(n)) = framing::frame_len(data) {
        assert!(n >= channel::HEADER_LEN);
    }
}
