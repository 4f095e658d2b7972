//! Drives every decoder of `tern::stun` over arbitrary bytes and checks what must hold for any
//! input (RFC 8489 §5/§14, RFC 8656 §12); the other targets' checks live in the modules below.
//! Used by the fuzz targets, by tests/stun_props.rs and by tests/fuzz_corpus.rs (which replays
//! the committed corpus under stable `cargo test`).

// tests/stun_props.rs includes this file for the decoders only.
#[allow(dead_code)]
pub mod config;
#[allow(dead_code)]
pub mod frames;
#[allow(dead_code)]
pub mod integrity;
#[allow(dead_code)]
pub mod shard;

use tern::stun::{attr, channel, framing, Message};

/// A fixed key: random inputs almost never verify, but the HMAC path runs to the end.
const KEY: &[u8] = b"fuzz-key";

const ADDRESS_TYPES: [u16; 4] = [
    attr::XOR_PEER_ADDRESS,
    attr::XOR_RELAYED_ADDRESS,
    attr::XOR_MAPPED_ADDRESS,
    attr::MAPPED_ADDRESS,
];

/// `Message::parse`, then every getter and both integrity checks.
pub fn stun(data: &[u8]) {
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
