//! Builder -> parser round trips and the parser's rejections (RFC 8489 §5, §14).

use std::net::SocketAddr;

use super::*;

const TID: TransactionId = *b"0123456789ab";
const KEY: &[u8] = b"key";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn request() -> MessageType {
    MessageType::new(Method::ALLOCATE, Class::Request)
}

/// Builds with `f`, returns the bytes.
fn build(f: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), EncodeError>) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut b = MessageBuilder::new(&mut buf, request(), &TID).unwrap();
    f(&mut b).unwrap();
    let n = b.finish();
    buf[..n].to_vec()
}

#[test]
fn round_trip_every_getter() {
    let peer4 = addr("198.51.100.7:5000");
    let peer6 = addr("[2001:db8::9]:6000");
    let bytes = build(|b| {
        b.add_str(attr::USERNAME, "alice")?;
        b.add_str(attr::REALM, "example.org")?;
        b.add_raw(attr::NONCE, b"n0nce")?;
        b.add_str(attr::SOFTWARE, "tern")?;
        b.add_xor_address(attr::XOR_PEER_ADDRESS, peer4)?;
        b.add_xor_address(attr::XOR_PEER_ADDRESS, peer6)?;
        b.add_address(attr::ALTERNATE_SERVER, peer6)?;
        b.add_u32(attr::LIFETIME, 600)?;
        b.add_error_code(ErrorCode::STALE_NONCE, "Stale Nonce")?;
        b.add_raw(attr::CHANNEL_NUMBER, &[0x40, 0x01, 0, 0])?;
        b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0])?;
        b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[1, 0, 0, 0])?;
        b.add_raw(attr::EVEN_PORT, &[0x80])?;
        b.add_raw(attr::RESERVATION_TOKEN, &[1, 2, 3, 4, 5, 6, 7, 8])?;
        b.add_raw(attr::DONT_FRAGMENT, &[])?;
        b.add_u32(attr::CONNECTION_ID, 77)?;
        b.add_raw(attr::DATA, b"payload")?;
        b.add_message_integrity(KEY)?;
        b.add_message_integrity_sha256(KEY)?;
        b.add_fingerprint()
    });
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.msg_type(), request());
    assert_eq!(m.transaction_id(), &TID);
    assert_eq!(m.username(), Some(Ok("alice")));
    assert_eq!(m.realm(), Some(Ok("example.org")));
    assert_eq!(m.nonce(), Some(&b"n0nce"[..]));
    assert_eq!(m.software(), Some(Ok("tern")));
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(peer4)));
    let all: Vec<_> = m.xor_addresses(attr::XOR_PEER_ADDRESS).collect();
    assert_eq!(all, vec![Ok(peer4), Ok(peer6)]);
    assert_eq!(m.address(attr::ALTERNATE_SERVER), Some(Ok(peer6)));
    assert_eq!(m.u32_attr(attr::LIFETIME), Some(Ok(600)));
    assert_eq!(
        m.error_code(),
        Some(Ok((ErrorCode::STALE_NONCE, "Stale Nonce")))
    );
    assert_eq!(m.channel_number(), Some(Ok(0x4001)));
    assert_eq!(m.requested_transport(), Some(Ok(17)));
    assert_eq!(m.requested_address_family(), Some(Ok(Family::V6)));
    assert_eq!(m.additional_address_family(), Some(Ok(Family::V4)));
    assert_eq!(m.even_port(), Some(Ok(true)));
    assert_eq!(m.reservation_token(), Some(Ok([1, 2, 3, 4, 5, 6, 7, 8])));
    assert!(m.dont_fragment());
    assert_eq!(m.connection_id(), Some(Ok(77)));
    assert_eq!(m.data(), Some(&b"payload"[..]));
    let range = m.data_range().unwrap();
    assert_eq!(&bytes[range], b"payload");
    assert!(m.has_integrity() && m.has_integrity_sha256() && m.has_fingerprint());
    assert_eq!(m.verify_integrity(KEY), Ok(()));
    assert_eq!(m.verify_integrity_sha256(KEY), Ok(()));
    assert_eq!(m.verify_integrity(b"other"), Err(IntegrityError::Mismatch));
    assert_eq!(
        m.verify_integrity_sha256(b"other"),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(m.unknown_required().count(), 0);
}

#[test]
fn absent_attributes_and_missing_integrity() {
    let bytes = build(|_| Ok(()));
    assert_eq!(bytes.len(), HEADER_LEN);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.username(), None);
    assert!(!m.dont_fragment());
    assert_eq!(m.data_range(), None);
    assert_eq!(m.verify_integrity(KEY), Err(IntegrityError::Missing));
    assert_eq!(m.verify_integrity_sha256(KEY), Err(IntegrityError::Missing));
}

#[test]
fn attributes_after_integrity_are_ignored_except_fingerprint() {
    let bytes = build(|b| {
        b.add_str(attr::USERNAME, "alice")?;
        b.add_message_integrity(KEY)?;
        b.add_str(attr::SOFTWARE, "sneaky")?;
        b.add_raw(0x0777, &[])?;
        b.add_fingerprint()
    });
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.software(), None);
    assert_eq!(m.unknown_required().count(), 0);
    assert!(m.get(attr::FINGERPRINT).is_some());
    assert!(m.get(attr::MESSAGE_INTEGRITY).is_some());
    let types: Vec<u16> = m.attributes().map(|a| a.typ).collect();
    assert_eq!(
        types,
        [
            attr::USERNAME,
            attr::MESSAGE_INTEGRITY,
            attr::SOFTWARE,
            0x0777,
            attr::FINGERPRINT
        ]
    );
    // MI covers only what precedes it, so the later attributes do not break it.
    assert_eq!(m.verify_integrity(KEY), Ok(()));
}

#[test]
fn integrity_detects_tampering() {
    let mut bytes = build(|b| {
        b.add_str(attr::USERNAME, "alice")?;
        b.add_message_integrity(KEY)
    });
    bytes[HEADER_LEN + 4] ^= 1;
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.verify_integrity(KEY), Err(IntegrityError::Mismatch));
}

#[test]
fn truncated_sha256_is_accepted() {
    use hmac::Mac;
    let mut v = build(|b| b.add_str(attr::USERNAME, "bob"));
    let at = v.len();
    v.extend_from_slice(&[0x00, 0x1C, 0x00, 16]);
    let mac = integrity::mac::<integrity::HmacSha256>(KEY, &v, at, at + 20).unwrap();
    v.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    let len = (v.len() - HEADER_LEN) as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    let m = Message::parse(&v).unwrap();
    assert_eq!(m.verify_integrity_sha256(KEY), Ok(()));
    assert_eq!(
        m.verify_integrity_sha256(b"x"),
        Err(IntegrityError::Mismatch)
    );
}

#[test]
fn unknown_required_lists_only_required_unknowns() {
    let bytes = build(|b| {
        b.add_raw(0x7F01, &[1])?;
        b.add_raw(0xC001, &[])?;
        b.add_raw(attr::CHANGE_REQUEST, &[0, 0, 0, 4])?;
        b.add_str(attr::USERNAME, "u")
    });
    let m = Message::parse(&bytes).unwrap();
    let unknown: Vec<u16> = m.unknown_required().collect();
    assert_eq!(unknown, [0x7F01, attr::CHANGE_REQUEST]);
}

#[test]
fn header_rejections() {
    let good = build(|b| b.add_str(attr::SOFTWARE, "x"));
    assert_eq!(
        Message::parse(&good[..19]).err(),
        Some(DecodeError::TooShort)
    );
    let mut v = good.clone();
    v[0] |= 0x80;
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::NotStun));
    let mut v = good.clone();
    v[4] ^= 1;
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadCookie));
    let mut v = good.clone();
    v[3] += 1;
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::Misaligned));
    let mut v = good.clone();
    v.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadLength));
    let mut v = good.clone();
    v[HEADER_LEN + 3] = 5;
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::AttrOverflow));
}

#[test]
fn fingerprint_rejections() {
    let good = build(|b| {
        b.add_str(attr::SOFTWARE, "x")?;
        b.add_fingerprint()
    });
    assert!(Message::parse(&good).is_ok());
    let mut v = good.clone();
    v[HEADER_LEN + 4] = b'y';
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadFingerprint));
    let after = build(|b| {
        b.add_fingerprint()?;
        b.add_str(attr::SOFTWARE, "x")
    });
    assert_eq!(
        Message::parse(&after).err(),
        Some(DecodeError::BadFingerprint)
    );
}

#[test]
fn malformed_values_are_attr_errors() {
    let bytes = build(|b| {
        b.add_raw(attr::USERNAME, &[0xFF, 0xFE])?;
        b.add_raw(attr::LIFETIME, &[0, 0, 1])?;
        b.add_raw(attr::ERROR_CODE, &[0, 0, 7, 0])?;
        b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0])?;
        b.add_raw(attr::XOR_PEER_ADDRESS, &[0, 1, 0])?;
        b.add_raw(attr::REALM, &[b'r'; 764])
    });
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.username(), Some(Err(AttrError::BadUtf8)));
    assert_eq!(m.u32_attr(attr::LIFETIME), Some(Err(AttrError::BadLength)));
    assert_eq!(m.error_code(), Some(Err(AttrError::BadValue)));
    assert_eq!(
        m.requested_address_family(),
        Some(Err(AttrError::BadFamily))
    );
    assert_eq!(
        m.xor_address(attr::XOR_PEER_ADDRESS),
        Some(Err(AttrError::BadLength))
    );
    assert_eq!(m.realm(), Some(Err(AttrError::BadLength)));
    let long_user = build(|b| b.add_raw(attr::USERNAME, &[b'u'; 513]));
    let m = Message::parse(&long_user).unwrap();
    assert_eq!(m.username(), Some(Err(AttrError::BadLength)));
}

#[test]
fn builder_reports_small_buffers() {
    let mut small = [0u8; 19];
    assert!(MessageBuilder::new(&mut small, request(), &TID).is_err());
    let mut buf = [0u8; 31];
    let mut b = MessageBuilder::new(&mut buf, request(), &TID).unwrap();
    assert_eq!(b.add_raw(attr::DATA, &[0; 7]), Err(EncodeError));
    assert_eq!(b.len(), HEADER_LEN);
    assert_eq!(b.add_message_integrity(KEY), Err(EncodeError));
    assert_eq!(b.add_fingerprint(), Ok(()));
    assert_eq!(b.len(), 28);
    let mut big = vec![0u8; 70_000];
    let mut b = MessageBuilder::new(&mut big, request(), &TID).unwrap();
    // The body length field is 16 bits: 4 + 65528 is the largest padded attribute.
    assert_eq!(b.add_raw(attr::DATA, &[0; 65_529]), Err(EncodeError));
    assert_eq!(b.add_raw(attr::DATA, &[0; 65_528]), Ok(()));
    assert_eq!(b.finish(), HEADER_LEN + 65_532);
}

#[test]
fn error_code_and_unknown_attributes_encoding() {
    let bytes = build(|b| {
        b.add_error_code(ErrorCode::UNKNOWN_ATTRIBUTE, "Unknown Attribute")?;
        b.add_unknown_attributes(&[0x7F01, 0x0003, 0x0004])
    });
    assert_eq!(
        &bytes[HEADER_LEN..HEADER_LEN + 8],
        &[0, 9, 0, 21, 0, 0, 4, 20]
    );
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(
        m.get(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x7F, 0x01, 0, 3, 0, 4][..])
    );
    // Six bytes of types, zero-padded to eight.
    assert_eq!(&bytes[bytes.len() - 8..], &[0x7F, 0x01, 0, 3, 0, 4, 0, 0]);
}

#[test]
fn data_written_in_place_is_kept() {
    let peer = addr("203.0.113.5:4000");
    let mut buf = [0xAAu8; 128];
    // Data indication header with an IPv4 peer: 20 + 12 + 4 bytes before the payload.
    buf[36..41].copy_from_slice(b"hello");
    let typ = MessageType::new(Method::DATA, Class::Indication);
    let mut b = MessageBuilder::new(&mut buf, typ, &TID).unwrap();
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).unwrap();
    b.add_in_place(attr::DATA, 5).unwrap();
    let n = b.finish();
    assert_eq!(n, 44);
    assert_eq!(&buf[41..44], &[0, 0, 0]);
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(peer)));
    assert_eq!(m.data(), Some(&b"hello"[..]));
    assert_eq!(m.data_range(), Some(36..41));
}
