//! Property tests of the STUN codec (RFC 8489, RFC 8656 §12): builder -> parser round trips with
//! random attribute sets, and arbitrary or mutated bytes through every decoder without a panic.

use crate::fuzz_targets as exercise;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use tern::stun::{
    attr, channel, framing, Class, ErrorCode, IntegrityError, Message, MessageBuilder, MessageType,
    Method, TransactionId,
};

#[derive(Clone, Debug)]
enum Attr {
    XorAddress(u16, SocketAddr),
    Address(u16, SocketAddr),
    Text(u16, String),
    U32(u16, u32),
    Error(u16, String),
    Raw(u16, Vec<u8>),
}

/// Types the typed variants use; `Raw` avoids them and the integrity/fingerprint types so that
/// every typed getter sees a value of its own kind.
const XOR_TYPES: [u16; 2] = [attr::XOR_PEER_ADDRESS, attr::XOR_RELAYED_ADDRESS];
const ADDRESS_TYPES: [u16; 2] = [attr::ALTERNATE_SERVER, attr::OTHER_ADDRESS];
const TEXT_TYPES: [u16; 3] = [attr::USERNAME, attr::REALM, attr::SOFTWARE];
const U32_TYPES: [u16; 2] = [attr::LIFETIME, attr::CONNECTION_ID];
const RESERVED: [u16; 4] = [
    attr::ERROR_CODE,
    attr::MESSAGE_INTEGRITY,
    attr::MESSAGE_INTEGRITY_SHA256,
    attr::FINGERPRINT,
];

impl Attr {
    fn typ(&self) -> u16 {
        match self {
            Attr::XorAddress(t, _) | Attr::Address(t, _) | Attr::Text(t, _) => *t,
            Attr::U32(t, _) | Attr::Raw(t, _) => *t,
            Attr::Error(..) => attr::ERROR_CODE,
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
    ]
}

fn one_of(types: &'static [u16]) -> impl Strategy<Value = u16> {
    proptest::sample::select(types)
}

fn attribute() -> impl Strategy<Value = Attr> {
    let raw_type = any::<u16>().prop_filter("typed or reserved", |t| {
        ![
            &XOR_TYPES[..],
            &ADDRESS_TYPES,
            &TEXT_TYPES,
            &U32_TYPES,
            &RESERVED,
        ]
        .iter()
        .any(|set| set.contains(t))
    });
    prop_oneof![
        (one_of(&XOR_TYPES), socket_addr()).prop_map(|(t, a)| Attr::XorAddress(t, a)),
        (one_of(&ADDRESS_TYPES), socket_addr()).prop_map(|(t, a)| Attr::Address(t, a)),
        (one_of(&TEXT_TYPES), "\\PC{0,60}").prop_map(|(t, s)| Attr::Text(t, s)),
        (one_of(&U32_TYPES), any::<u32>()).prop_map(|(t, v)| Attr::U32(t, v)),
        (300u16..700, "\\PC{0,40}").prop_map(|(c, r)| Attr::Error(c, r)),
        (raw_type, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(t, v)| Attr::Raw(t, v)),
    ]
}

#[derive(Clone, Debug)]
struct Spec {
    typ: MessageType,
    tid: TransactionId,
    attrs: Vec<Attr>,
    integrity: Option<Vec<u8>>,
    integrity_sha256: Option<Vec<u8>>,
    fingerprint: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let class = prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ];
    let key = proptest::collection::vec(any::<u8>(), 0..80);
    (
        (0u16..0x1000, class).prop_map(|(m, c)| MessageType::new(Method(m), c)),
        any::<TransactionId>(),
        proptest::collection::vec(attribute(), 0..12),
        proptest::option::of(key.clone()),
        proptest::option::of(key),
        any::<bool>(),
    )
        .prop_map(
            |(typ, tid, attrs, integrity, integrity_sha256, fingerprint)| Spec {
                typ,
                tid,
                attrs,
                integrity,
                integrity_sha256,
                fingerprint,
            },
        )
}

fn build(s: &Spec) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, s.typ, &s.tid).unwrap();
    for a in &s.attrs {
        match a {
            Attr::XorAddress(t, addr) => b.add_xor_address(*t, *addr),
            Attr::Address(t, addr) => b.add_address(*t, *addr),
            Attr::Text(t, text) => b.add_str(*t, text),
            Attr::U32(t, v) => b.add_u32(*t, *v),
            Attr::Error(code, reason) => b.add_error_code(ErrorCode(*code), reason),
            Attr::Raw(t, v) => b.add_raw(*t, v),
        }
        .unwrap();
    }
    if let Some(key) = &s.integrity {
        b.add_message_integrity(key).unwrap();
    }
    if let Some(key) = &s.integrity_sha256 {
        b.add_message_integrity_sha256(key).unwrap();
    }
    if s.fingerprint {
        b.add_fingerprint().unwrap();
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// The typed getter for the first attribute of `a`'s type returns what was written.
fn assert_getter(m: &Message<'_>, a: &Attr) {
    match a {
        Attr::XorAddress(t, addr) => assert_eq!(m.xor_address(*t), Some(Ok(*addr))),
        Attr::Address(t, addr) => assert_eq!(m.address(*t), Some(Ok(*addr))),
        Attr::Text(t, text) => {
            let got = match *t {
                attr::USERNAME => m.username(),
                attr::REALM => m.realm(),
                _ => m.software(),
            };
            assert_eq!(got, Some(Ok(text.as_str())));
        }
        Attr::U32(t, v) => assert_eq!(m.u32_attr(*t), Some(Ok(*v))),
        Attr::Error(code, reason) => {
            assert_eq!(
                m.error_code(),
                Some(Ok((ErrorCode(*code), reason.as_str())))
            )
        }
        Attr::Raw(t, v) => assert_eq!(m.get(*t), Some(&v[..])),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_then_parse_round_trips(s in spec()) {
        let bytes = build(&s);
        let m = Message::parse(&bytes).unwrap();
        prop_assert_eq!(m.msg_type(), s.typ);
        prop_assert_eq!(m.transaction_id(), &s.tid);
        prop_assert_eq!(framing::frame_len(&bytes), Ok(Some(bytes.len())));

        let mut types: Vec<u16> = s.attrs.iter().map(Attr::typ).collect();
        types.extend(s.integrity.as_ref().map(|_| attr::MESSAGE_INTEGRITY));
        types.extend(s.integrity_sha256.as_ref().map(|_| attr::MESSAGE_INTEGRITY_SHA256));
        types.extend(s.fingerprint.then_some(attr::FINGERPRINT));
        prop_assert_eq!(m.attributes().map(|a| a.typ).collect::<Vec<_>>(), types);

        for (i, a) in s.attrs.iter().enumerate() {
            if s.attrs[..i].iter().all(|b| b.typ() != a.typ()) {
                assert_getter(&m, a);
            }
        }
        let expected_unknown: Vec<u16> = s.attrs.iter().map(Attr::typ)
            .filter(|&t| attr::is_comprehension_required(t) && !attr::is_known(t))
            .collect();
        prop_assert_eq!(m.unknown_required().collect::<Vec<_>>(), expected_unknown);

        match &s.integrity {
            Some(key) => {
                prop_assert_eq!(m.verify_integrity(key), Ok(()));
                // Not a zero: HMAC pads short keys with zeros, so `key || 0` is the same key.
                let mut wrong = key.clone();
                wrong.push(1);
                prop_assert_eq!(m.verify_integrity(&wrong), Err(IntegrityError::Mismatch));
            }
            None => prop_assert_eq!(m.verify_integrity(b"k"), Err(IntegrityError::Missing)),
        }
        match &s.integrity_sha256 {
            Some(key) => prop_assert_eq!(m.verify_integrity_sha256(key), Ok(())),
            None => prop_assert_eq!(m.verify_integrity_sha256(b"k"), Err(IntegrityError::Missing)),
        }
        prop_assert_eq!(m.has_fingerprint(), s.fingerprint);
        exercise::stun(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise::stun(&data);
        exercise::channel(&data);
    }

    #[test]
    fn stun_shaped_bytes_never_panic(
        typ in 0u16..0x4000,
        tid in any::<TransactionId>(),
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        // A valid header over a random body reaches the attribute walk.
        let len = (body.len() & !3) as u16;
        let mut data = typ.to_be_bytes().to_vec();
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        data.extend_from_slice(&tid);
        data.extend_from_slice(&body[..usize::from(len)]);
        exercise::stun(&data);
    }

    #[test]
    fn classic_binding_shaped_bytes_never_panic(
        cookie in any::<u32>(),
        tid in any::<TransactionId>(),
        attrs in proptest::collection::vec((0u16..0x10, proptest::collection::vec(any::<u8>(), 0..24)), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        // An RFC 3489 Binding header (any cookie) over TLVs of RFC 3489's low types.
        let mut data = vec![0, 1, 0, 0];
        data.extend_from_slice(&cookie.to_be_bytes());
        data.extend_from_slice(&tid);
        for (typ, value) in &attrs {
            data.extend_from_slice(&typ.to_be_bytes());
            data.extend_from_slice(&(value.len() as u16).to_be_bytes());
            data.extend_from_slice(value);
            data.resize(data.len().next_multiple_of(4), 0);
        }
        let len = (data.len() - 20) as u16;
        data[2..4].copy_from_slice(&len.to_be_bytes());
        exercise::stun(&data);
        exercise::stun(&data[..cut.index(data.len() + 1)]);
    }

    #[test]
    fn mutated_messages_never_panic(
        s in spec(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = build(&s);
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        exercise::stun(&bytes);
        exercise::channel(&bytes);
        let end = cut.index(bytes.len() + 1);
        exercise::stun(&bytes[..end]);
        exercise::channel(&bytes[..end]);
    }

    #[test]
    fn channel_data_round_trips(
        ch in 0x4000u16..=0x7FFF,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut data = vec![0u8; channel::HEADER_LEN];
        channel::write_header(&mut data, ch, payload.len() as u16);
        data.extend_from_slice(&payload);
        data.extend_from_slice(&tail);
        prop_assert_eq!(channel::parse(&data), Ok((ch, &payload[..])));
        let frame = channel::HEADER_LEN + channel::padded_len(payload.len());
        prop_assert_eq!(framing::frame_len(&data), Ok(Some(frame)));
        exercise::channel(&data);
    }
}
