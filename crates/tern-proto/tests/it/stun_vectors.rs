//! Acceptance tests against the published STUN test vectors: RFC 5769 §2.1–§2.4 and RFC 8489
//! Appendix B.1 (with erratum 6268). Each vector is decoded, its integrity and fingerprint are
//! checked, and the builder re-creates it (byte for byte where the vector allows).

use std::net::SocketAddr;

use md5::{Digest, Md5};
use sha2::Sha256;
use tern_proto::stun::{
    attr, Class, DecodeError, IntegrityError, Message, MessageBuilder, MessageType, Method,
    TransactionId, HEADER_LEN,
};

/// Bytes from an RFC-style hex dump; the text after the hex on each line is a comment.
fn hex(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| line.split_whitespace().take_while(|w| w.len() == 2))
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn tid(msg: &[u8]) -> TransactionId {
    msg[8..20].try_into().unwrap()
}

/// RFC 5769 §2.1–§2.3 short-term credential: the password is the key.
const SHORT_TERM_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1 Sample Request (padding bytes are 0x20, on purpose).
const REQUEST: &str = "
00 01 00 58     Request type and message length
21 12 a4 42     Magic cookie
b7 e7 a7 01  }
bc 34 d6 86  }  Transaction ID
fa 87 df ae  }
80 22 00 10     SOFTWARE attribute header
53 54 55 4e  }
20 74 65 73  }  User-agent...
74 20 63 6c  }  ...name
69 65 6e 74  }
00 24 00 04     PRIORITY attribute header
6e 00 01 ff     ICE priority value
80 29 00 08     ICE-CONTROLLED attribute header
93 2f f9 b1  }  Pseudo-random tie breaker...
51 26 3b 36  }   ...for ICE control
00 06 00 09     USERNAME attribute header
65 76 74 6a  }
3a 68 36 76  }  Username (9 bytes) and padding (3 bytes)
59 20 20 20  }
00 08 00 14     MESSAGE-INTEGRITY attribute header
9a ea a7 0c  }
bf d8 cb 56  }
78 1e f2 b5  }  HMAC-SHA1 fingerprint
b2 d3 f2 49  }
c1 b5 71 a2  }
80 28 00 04     FINGERPRINT attribute header
e5 7a 3b cf     CRC32 fingerprint
";

/// RFC 5769 §2.2 Sample IPv4 Response.
const RESPONSE_V4: &str = "
01 01 00 3c     Response type and message length
21 12 a4 42     Magic cookie
b7 e7 a7 01  }
bc 34 d6 86  }  Transaction ID
fa 87 df ae  }
80 22 00 0b     SOFTWARE attribute header
74 65 73 74  }
20 76 65 63  }  UTF-8 server name
74 6f 72 20  }
00 20 00 08     XOR-MAPPED-ADDRESS attribute header
00 01 a1 47     Address family (IPv4) and xor'd mapped port number
e1 12 a6 43     Xor'd mapped IPv4 address
00 08 00 14     MESSAGE-INTEGRITY attribute header
2b 91 f5 99  }
fd 9e 90 c3  }
8c 74 89 f9  }  HMAC-SHA1 fingerprint
2a f9 ba 53  }
f0 6b e7 d7  }
80 28 00 04     FINGERPRINT attribute header
c0 7d 4c 96     CRC32 fingerprint
";

/// RFC 5769 §2.3 Sample IPv6 Response.
const RESPONSE_V6: &str = "
01 01 00 48     Response type and message length
21 12 a4 42     Magic cookie
b7 e7 a7 01  }
bc 34 d6 86  }  Transaction ID
fa 87 df ae  }
80 22 00 0b     SOFTWARE attribute header
74 65 73 74  }
20 76 65 63  }  UTF-8 server name
74 6f 72 20  }
00 20 00 14     XOR-MAPPED-ADDRESS attribute header
00 02 a1 47     Address family (IPv6) and xor'd mapped port number
01 13 a9 fa  }
a5 d3 f1 79  }  Xor'd mapped IPv6 address
bc 25 f4 b5  }
be d2 b9 d9  }
00 08 00 14     MESSAGE-INTEGRITY attribute header
a3 82 95 4e  }
4b e6 7b f1  }
17 84 c9 7c  }  HMAC-SHA1 fingerprint
82 92 c2 75  }
bf e3 ed 41  }
80 28 00 04     FINGERPRINT attribute header
c8 fb 0b 4c     CRC32 fingerprint
";

/// RFC 5769 §2.4 Sample Request with Long-Term Authentication.
const REQUEST_LONG_TERM: &str = "
00 01 00 60     Request type and message length
21 12 a4 42     Magic cookie
78 ad 34 33  }
c6 ad 72 c0  }  Transaction ID
29 da 41 2e  }
00 06 00 12     USERNAME attribute header
e3 83 9e e3  }
83 88 e3 83  }
aa e3 83 83  }  Username value (18 bytes) and padding (2 bytes)
e3 82 af e3  }
82 b9 00 00  }
00 15 00 1c     NONCE attribute header
66 2f 2f 34  }
39 39 6b 39  }
35 34 64 36  }
4f 4c 33 34  }  Nonce value
6f 4c 39 46  }
53 54 76 79  }
36 34 73 41  }
00 14 00 0b     REALM attribute header
65 78 61 6d  }
70 6c 65 2e  }  Realm value (11 bytes) and padding (1 byte)
6f 72 67 00  }
00 08 00 14     MESSAGE-INTEGRITY attribute header
f6 70 24 65  }
6d d6 4a 3e  }
02 b8 e0 71  }  HMAC-SHA1 fingerprint
2e 85 c9 a2  }
8c a8 96 66  }
";

/// "マトリックス": unaffected by SASLprep / OpaqueString.
const MATRIX_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
/// "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep.
const MATRIX_PASSWORD: &str = "TheMatrIX";
const MATRIX_REALM: &str = "example.org";

/// The vector with every padding byte before MESSAGE-INTEGRITY set to zero, as the builder
/// writes it (RFC 5769 pads with 0x20 to show that receivers must ignore padding).
fn zero_padding_before_integrity(msg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    let mut at = HEADER_LEN;
    while at + 4 <= msg.len() {
        let typ = u16::from_be_bytes([msg[at], msg[at + 1]]);
        if typ == attr::MESSAGE_INTEGRITY {
            break;
        }
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        let padded = (len + 3) & !3;
        out[at + 4 + len..at + 4 + padded].fill(0);
        at += 4 + padded;
    }
    out
}

/// Offset of the MESSAGE-INTEGRITY attribute header.
fn integrity_offset(m: &Message<'_>) -> usize {
    let bytes = m.as_bytes();
    let value = m.get(attr::MESSAGE_INTEGRITY).unwrap();
    value.as_ptr() as usize - bytes.as_ptr() as usize - 4
}

/// Checks a builder output against a vector whose padding is not zero: identical up to
/// MESSAGE-INTEGRITY once the vector's padding is zeroed, and self-consistent after it.
fn assert_rebuilt(vector: &[u8], built: &[u8], key: &[u8]) {
    assert_eq!(built.len(), vector.len());
    let expected = zero_padding_before_integrity(vector);
    let m = Message::parse(built).unwrap();
    let mi = integrity_offset(&m);
    assert_eq!(&built[..mi], &expected[..mi]);
    assert_eq!(m.verify_integrity(key), Ok(()));
    assert!(m.has_fingerprint());
}

fn build(
    typ: MessageType,
    tid: &TransactionId,
    f: impl FnOnce(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(&mut buf, typ, tid).unwrap();
    f(&mut b);
    let n = b.finish();
    buf[..n].to_vec()
}

#[test]
fn rfc5769_sample_request() {
    let v = hex(REQUEST);
    assert_eq!(v.len(), 108);
    let m = Message::parse(&v).unwrap();
    assert_eq!(m.method(), Method::BINDING);
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.software(), Some(Ok("STUN test client")));
    assert_eq!(m.u32_attr(attr::PRIORITY), Some(Ok(0x6e00_01ff)));
    let tie_breaker = [0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36];
    assert_eq!(m.get(attr::ICE_CONTROLLED), Some(&tie_breaker[..]));
    assert_eq!(m.username(), Some(Ok("evtj:h6vY")));
    assert_eq!(m.unknown_required().count(), 0);
    assert_eq!(m.verify_integrity(SHORT_TERM_PASSWORD), Ok(()));
    assert_eq!(
        m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"),
        Err(IntegrityError::Mismatch)
    );

    let built = build(m.msg_type(), &tid(&v), |b| {
        b.add_str(attr::SOFTWARE, "STUN test client").unwrap();
        b.add_u32(attr::PRIORITY, 0x6e00_01ff).unwrap();
        b.add_raw(attr::ICE_CONTROLLED, &tie_breaker).unwrap();
        b.add_str(attr::USERNAME, "evtj:h6vY").unwrap();
        b.add_message_integrity(SHORT_TERM_PASSWORD).unwrap();
        b.add_fingerprint().unwrap();
    });
    assert_rebuilt(&v, &built, SHORT_TERM_PASSWORD);
}

#[test]
fn rfc5769_fingerprint_is_checked() {
    for vector in [REQUEST, RESPONSE_V4, RESPONSE_V6] {
        let mut v = hex(vector);
        let last = v.len() - 1;
        v[last] ^= 0x01;
        assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadFingerprint));
        // A changed padding byte is covered by the CRC as well.
        let mut v = hex(vector);
        let zeroed = zero_padding_before_integrity(&v);
        let padding = v.iter().zip(&zeroed).position(|(a, b)| a != b).unwrap();
        v[padding] ^= 0x01;
        assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadFingerprint));
    }
}

fn check_response(vector: &str, mapped: &str) {
    let v = hex(vector);
    let mapped: SocketAddr = mapped.parse().unwrap();
    let m = Message::parse(&v).unwrap();
    assert_eq!(
        m.msg_type(),
        MessageType::new(Method::BINDING, Class::Success)
    );
    assert_eq!(m.software(), Some(Ok("test vector")));
    assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(mapped)));
    assert_eq!(m.verify_integrity(SHORT_TERM_PASSWORD), Ok(()));
    assert_eq!(m.verify_integrity(b"wrong"), Err(IntegrityError::Mismatch));

    let built = build(m.msg_type(), &tid(&v), |b| {
        b.add_str(attr::SOFTWARE, "test vector").unwrap();
        b.add_xor_address(attr::XOR_MAPPED_ADDRESS, mapped).unwrap();
        b.add_message_integrity(SHORT_TERM_PASSWORD).unwrap();
        b.add_fingerprint().unwrap();
    });
    assert_rebuilt(&v, &built, SHORT_TERM_PASSWORD);
}

#[test]
fn rfc5769_sample_ipv4_response() {
    check_response(RESPONSE_V4, "192.0.2.1:32853");
}

#[test]
fn rfc5769_sample_ipv6_response() {
    check_response(RESPONSE_V6, "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
}

#[test]
fn rfc5769_sample_request_long_term() {
    let v = hex(REQUEST_LONG_TERM);
    assert_eq!(v.len(), 116);
    let m = Message::parse(&v).unwrap();
    assert_eq!(
        m.msg_type(),
        MessageType::new(Method::BINDING, Class::Request)
    );
    assert_eq!(m.username(), Some(Ok(MATRIX_USER)));
    assert_eq!(m.realm(), Some(Ok(MATRIX_REALM)));
    assert_eq!(m.nonce(), Some(&b"f//499k954d6OL34oL9FSTvy64sA"[..]));
    assert!(!m.has_fingerprint());

    let key = Md5::digest(format!("{MATRIX_USER}:{MATRIX_REALM}:{MATRIX_PASSWORD}"));
    assert_eq!(m.verify_integrity(&key), Ok(()));
    let wrong = Md5::digest(format!("{MATRIX_USER}:{MATRIX_REALM}:TheMatrix"));
    assert_eq!(m.verify_integrity(&wrong), Err(IntegrityError::Mismatch));

    // Zero padding here, so the builder reproduces the vector exactly.
    let built = build(m.msg_type(), &tid(&v), |b| {
        b.add_str(attr::USERNAME, MATRIX_USER).unwrap();
        b.add_str(attr::NONCE, "f//499k954d6OL34oL9FSTvy64sA")
            .unwrap();
        b.add_str(attr::REALM, MATRIX_REALM).unwrap();
        b.add_message_integrity(&key).unwrap();
    });
    assert_eq!(built, v);
}

/// RFC 8489 Appendix B.1 as corrected by erratum 6268 (verified): the published vector's length
/// field counts the header (0x9c instead of 0x88) and it lacks the PASSWORD-ALGORITHM attribute
/// its SHA-256 key needs, so its HMAC cannot be reproduced; the erratum fixes both.
const REQUEST_SHA256: &str = "
00 01 00 90     Request type and message length
21 12 a4 42     Magic cookie
78 ad 34 33  }
c6 ad 72 c0  }  Transaction ID
29 da 41 2e  }
00 1e 00 20     USERHASH attribute header
4a 3c f3 8f  }
ef 69 92 bd  }
a9 52 c6 78  }
04 17 da 0f  }  Userhash value (32  bytes)
24 81 94 15  }
56 9e 60 b2  }
05 c4 6e 41  }
40 7f 17 04  }
00 15 00 29     NONCE attribute header
6f 62 4d 61  }
74 4a 6f 73  }
32 41 41 41  }
43 66 2f 2f  }
34 39 39 6b  }  Nonce value and padding (3 bytes)
39 35 34 64  }
36 4f 4c 33  }
34 6f 4c 39  }
46 53 54 76  }
79 36 34 73  }
41 00 00 00  }
00 14 00 0b     REALM attribute header
65 78 61 6d  }
70 6c 65 2e  }  Realm value (11  bytes) and padding (1 byte)
6f 72 67 00  }
00 1d 00 04     PASSWORD-ALGORITHM attribute header
00 02 00 00     PASSWORD-ALGORITHM value (4 bytes)
00 1c 00 20     MESSAGE-INTEGRITY-SHA256 attribute header
b5 c7 bf 00  }
5b 6c 52 a2  }
1c 51 c5 e8  }
92 f8 19 24  }  HMAC-SHA256 value
13 62 96 cb  }
92 7c 43 14  }
93 09 27 8c  }
c6 51 8e 65  }
";

const SHA256_NONCE: &str = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

#[test]
fn rfc8489_sample_request_sha256_userhash() {
    let v = hex(REQUEST_SHA256);
    let m = Message::parse(&v).unwrap();
    assert_eq!(
        m.msg_type(),
        MessageType::new(Method::BINDING, Class::Request)
    );
    let userhash = Sha256::digest(format!("{MATRIX_USER}:{MATRIX_REALM}"));
    assert_eq!(m.get(attr::USERHASH), Some(&userhash[..]));
    assert_eq!(m.username(), None);
    assert_eq!(m.nonce(), Some(SHA256_NONCE.as_bytes()));
    assert_eq!(m.realm(), Some(Ok(MATRIX_REALM)));
    assert_eq!(m.get(attr::PASSWORD_ALGORITHM), Some(&[0, 2, 0, 0][..]));
    assert!(m.has_integrity_sha256() && !m.has_integrity());

    // PASSWORD-ALGORITHM SHA-256: key = SHA-256(username ":" realm ":" password), §9.2.2.
    let key = Sha256::digest(format!("{MATRIX_USER}:{MATRIX_REALM}:{MATRIX_PASSWORD}"));
    assert_eq!(m.verify_integrity_sha256(&key), Ok(()));
    assert_eq!(m.verify_integrity(&key), Err(IntegrityError::Missing));
    let wrong = Sha256::digest(format!("{MATRIX_USER}:{MATRIX_REALM}:TheMatrix"));
    assert_eq!(
        m.verify_integrity_sha256(&wrong),
        Err(IntegrityError::Mismatch)
    );

    let built = build(m.msg_type(), &tid(&v), |b| {
        b.add_raw(attr::USERHASH, &userhash).unwrap();
        b.add_str(attr::NONCE, SHA256_NONCE).unwrap();
        b.add_str(attr::REALM, MATRIX_REALM).unwrap();
        b.add_raw(attr::PASSWORD_ALGORITHM, &[0, 2, 0, 0]).unwrap();
        b.add_message_integrity_sha256(&key).unwrap();
    });
    assert_eq!(built, v);
}

#[test]
fn rfc8489_published_length_is_rejected() {
    // As published (before erratum 6268) the length field is 0x9c, the whole message size.
    let mut v = hex(REQUEST_SHA256);
    v[3] = 0x9c;
    assert_eq!(Message::parse(&v).err(), Some(DecodeError::BadLength));
}
