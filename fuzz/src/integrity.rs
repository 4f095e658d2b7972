//! The `integrity` target: MESSAGE-INTEGRITY (RFC 8489 §14.5) and MESSAGE-INTEGRITY-SHA256
//! (§14.6) checks over arbitrary messages and keys never panic, and agree with a re-computation
//! through `MessageBuilder`; messages the builder signs verify, and only with their key.

use tern::stun::{
    attr, Class, IntegrityError, Message, MessageBuilder, MessageType, Method, HEADER_LEN,
};

/// Splits `data` into a key (length from the first byte) and the rest.
fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = data.split_first()?;
    let n = usize::from(n % 64).min(rest.len());
    Some(rest.split_at(n))
}

pub fn integrity(data: &[u8]) {
    let Some((key, rest)) = split(data) else {
        return;
    };
    if let Ok(m) = Message::parse(rest) {
        check_against_builder(&m, key);
    }
    built(key, rest);
}

/// Header offset and value of the integrity attribute `typ` that the parser honours: the first
/// MESSAGE-INTEGRITY not after MESSAGE-INTEGRITY-SHA256, or the first MESSAGE-INTEGRITY-SHA256.
fn integrity_at<'a>(m: &Message<'a>, typ: u16) -> Option<(usize, &'a [u8])> {
    let mut at = HEADER_LEN;
    for a in m.attributes() {
        if a.typ == attr::MESSAGE_INTEGRITY_SHA256 && typ == attr::MESSAGE_INTEGRITY {
            return None;
        }
        if a.typ == typ {
            return Some((at, a.value));
        }
        at += 4 + a.value.len().div_ceil(4) * 4;
    }
    None
}

/// Rebuilds the attributes before the integrity attribute with the builder and signs them;
/// the parser's verdict must be "the tags are equal".
fn check_against_builder(m: &Message<'_>, key: &[u8]) {
    let sha1 = m.verify_integrity(key);
    let sha256 = m.verify_integrity_sha256(key);
    assert_eq!(sha1 == Err(IntegrityError::Missing), !m.has_integrity());
    assert_eq!(
        sha256 == Err(IntegrityError::Missing),
        !m.has_integrity_sha256()
    );
    for (typ, verdict, tag_len) in [
        (attr::MESSAGE_INTEGRITY, sha1, 20),
        (attr::MESSAGE_INTEGRITY_SHA256, sha256, 32),
    ] {
        let Some((at, value)) = integrity_at(m, typ) else {
            assert_eq!(verdict, Err(IntegrityError::Missing), "attribute {typ:#x}");
            continue;
        };
        if value.len() != tag_len {
            // Truncated SHA-256 tags are covered by the parser's own tests; the builder writes
            // full ones only.
            if typ == attr::MESSAGE_INTEGRITY {
                assert_eq!(verdict, Err(IntegrityError::Mismatch));
            }
            continue;
        }
        let Some(tag) = rebuild_tag(m, at, typ, key) else {
            continue;
        };
        assert_eq!(
            verdict.is_ok(),
            tag == value,
            "attribute {typ:#x} verdict {verdict:?}"
        );
    }
}

/// The tag the builder computes over `m`'s bytes before `at`; None when the builder would not
/// write those bytes (non-zero padding, which the HMAC covers as sent).
fn rebuild_tag(m: &Message<'_>, at: usize, typ: u16, key: &[u8]) -> Option<Vec<u8>> {
    let orig = m.as_bytes();
    let mut buf = vec![0u8; at + 64];
    let mut b = MessageBuilder::new(&mut buf, m.msg_type(), m.transaction_id()).ok()?;
    for a in m.attributes() {
        if b.len() >= at {
            break;
        }
        b.add_raw(a.typ, a.value).ok()?;
    }
    let same = |x: &[u8]| x.get(..2) == orig.get(..2) && x.get(4..at) == orig.get(4..at);
    if b.len() != at || !same(b.as_bytes()) {
        return None;
    }
    if typ == attr::MESSAGE_INTEGRITY {
        b.add_message_integrity(key).ok()?;
    } else {
        b.add_message_integrity_sha256(key).ok()?;
    }
    let n = b.finish();
    buf.get(at + 4..n).map(<[u8]>::to_vec)
}

/// Builds a message from `spec` (transaction id, then attributes as type, length, value),
/// signs it with both integrity attributes and checks the parser's verdicts.
fn built(key: &[u8], spec: &[u8]) {
    let mut tid = [0u8; 12];
    let head = spec.get(..12).unwrap_or(spec);
    tid[..head.len()].copy_from_slice(head);
    let mut rest = spec.get(12..).unwrap_or_default();
    let mut buf = vec![0u8; 4096];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let Ok(mut b) = MessageBuilder::new(&mut buf, typ, &tid) else {
        return;
    };
    let mut options = 0u8;
    while let [t0, t1, len, tail @ ..] = rest {
        let typ = u16::from_be_bytes([*t0, *t1]);
        let len = usize::from(*len).min(tail.len());
        let (value, after) = tail.split_at(len);
        rest = after;
        options = options.wrapping_add(*t1);
        let reserved = [
            attr::MESSAGE_INTEGRITY,
            attr::MESSAGE_INTEGRITY_SHA256,
            attr::FINGERPRINT,
        ];
        if !reserved.contains(&typ) && b.add_raw(typ, value).is_err() {
            return;
        }
    }
    let with_sha1 = options & 1 == 0;
    let with_sha256 = options & 2 == 0 || !with_sha1;
    let fingerprint = options & 4 == 0;
    if with_sha1 && b.add_message_integrity(key).is_err() {
        return;
    }
    if with_sha256 && b.add_message_integrity_sha256(key).is_err() {
        return;
    }
    if fingerprint && b.add_fingerprint().is_err() {
        return;
    }
    let n = b.finish();
    let Ok(m) = Message::parse(&buf[..n]) else {
        panic!("the builder wrote a message the parser refuses");
    };
    let other: Vec<u8> = key.iter().map(|k| k ^ 0x5A).chain([0x5A]).collect();
    let expect = |present: bool| {
        if present {
            Ok(())
        } else {
            Err(IntegrityError::Missing)
        }
    };
    let refused = |present: bool| {
        if present {
            Err(IntegrityError::Mismatch)
        } else {
            Err(IntegrityError::Missing)
        }
    };
    assert_eq!(m.verify_integrity(key), expect(with_sha1));
    assert_eq!(m.verify_integrity_sha256(key), expect(with_sha256));
    assert_eq!(m.verify_integrity(&other), refused(with_sha1));
    assert_eq!(m.verify_integrity_sha256(&other), refused(with_sha256));
    check_against_builder(&m, key);
    // One flipped bit in the signed part (FINGERPRINT is not signed): the parser refuses the
    // message or the tags mismatch.
    let signed_end = if fingerprint { n - 8 } else { n };
    let flip = HEADER_LEN + usize::from(options) % (signed_end - HEADER_LEN).max(1);
    if flip < signed_end {
        let mut copy = buf[..n].to_vec();
        copy[flip] ^= 0x01;
        if let Ok(m) = Message::parse(&copy) {
            let both = (m.verify_integrity(key), m.verify_integrity_sha256(key));
            assert!(
                both.0.is_err()
                    || both.1.is_err()
                    || !m.has_integrity() && !m.has_integrity_sha256(),
                "a flipped bit still verifies: {both:?}"
            );
        }
    }
}
