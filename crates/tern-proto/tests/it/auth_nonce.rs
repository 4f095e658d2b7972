//! Stateless nonces: issue and check under a fixed key and hand-driven time.

use std::net::SocketAddr;

use tern_proto::auth::{NonceCheck, NonceKey, NONCE_LEN};

const T0: u64 = 1_700_000_000;
const STALE: u32 = 600;

fn key() -> NonceKey {
    NonceKey::from_bytes([7; 32])
}

fn client() -> SocketAddr {
    "192.0.2.10:50000".parse().unwrap()
}

#[test]
fn format_is_cookie_then_base64url() {
    let nonce = key().issue(T0, client());
    let s = nonce.as_str();
    assert_eq!(s.len(), NONCE_LEN);
    // Short, since every 401 echoes it: 36 bytes as an attribute.
    assert_eq!(NONCE_LEN, 32);
    assert_eq!(&s[..13], "obMatJos2AAAA");
    assert!(s[13..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(nonce.as_bytes(), s.as_bytes());
    // A nonce of another time or client differs in its digits, not only its cookie.
    assert_ne!(key().issue(T0 + 1, client()).as_str()[13..], s[13..]);
}

#[test]
fn fresh_nonce_is_valid_until_stale() {
    let k = key();
    let n = k.issue(T0, client());
    assert_eq!(
        k.check(n.as_bytes(), T0, client(), STALE),
        NonceCheck::Valid
    );
    assert_eq!(
        k.check(n.as_bytes(), T0 + 600, client(), STALE),
        NonceCheck::Valid
    );
    assert_eq!(
        k.check(n.as_bytes(), T0 + 601, client(), STALE),
        NonceCheck::Stale
    );
    assert_eq!(
        k.check(n.as_bytes(), T0 + 100_000, client(), STALE),
        NonceCheck::Stale
    );
}

#[test]
fn nonce_from_the_future_is_stale_beyond_slack() {
    let k = key();
    let n = k.issue(T0 + 3, client());
    assert_eq!(
        k.check(n.as_bytes(), T0, client(), STALE),
        NonceCheck::Valid
    );
    let n = k.issue(T0 + 60, client());
    assert_eq!(
        k.check(n.as_bytes(), T0, client(), STALE),
        NonceCheck::Stale
    );
}

#[test]
fn other_client_is_invalid() {
    let k = key();
    let n = k.issue(T0, client());
    for other in [
        "192.0.2.10:50001",
        "192.0.2.11:50000",
        "[2001:db8::1]:50000",
    ] {
        let other: SocketAddr = other.parse().unwrap();
        assert_eq!(
            k.check(n.as_bytes(), T0, other, STALE),
            NonceCheck::Invalid,
            "{other}"
        );
    }
}

#[test]
fn other_key_is_invalid() {
    let n = key().issue(T0, client());
    let other = NonceKey::from_bytes([8; 32]);
    assert_eq!(
        other.check(n.as_bytes(), T0, client(), STALE),
        NonceCheck::Invalid
    );
}

#[test]
fn tampered_nonce_is_invalid() {
    let k = key();
    let n = k.issue(T0, client());
    // Flip every position in turn, to another valid lowercase hex digit or cookie letter.
    for i in 0..NONCE_LEN {
        let mut bytes = n.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            k.check(&bytes, T0, client(), STALE),
            NonceCheck::Invalid,
            "byte {i}"
        );
    }
    // A later time with the old MAC must not pass as fresh (the time is the first 4 digits).
    let later = k.issue(T0 + 10_000, client());
    let mut spliced = later.as_bytes()[..17].to_vec();
    spliced.extend_from_slice(&n.as_bytes()[17..]);
    assert_ne!(spliced, later.as_bytes());
    assert_ne!(spliced, n.as_bytes());
    assert_eq!(
        k.check(&spliced, T0 + 10_000, client(), STALE),
        NonceCheck::Invalid
    );
}

#[test]
fn garbage_is_invalid() {
    let k = key();
    let n = k.issue(T0, client());
    let upper = n.as_str()[..13].to_string() + &n.as_str()[13..].to_uppercase();
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"obMatJos2AAAA".to_vec(),
        n.as_bytes()[..NONCE_LEN - 1].to_vec(),
        [n.as_bytes(), b"0"].concat(),
        upper.into_bytes(),
        vec![0xff; NONCE_LEN],
        vec![b'0'; 1000],
    ];
    for c in cases {
        assert_eq!(
            k.check(&c, T0, client(), STALE),
            NonceCheck::Invalid,
            "{c:?}"
        );
    }
}

/// The nonce carries 24 bits of the issue time; the checker finds the rest from `now`.
#[test]
fn the_time_carried_wraps_without_reviving_old_nonces() {
    let k = key();
    let wrap = 1u64 << 24;
    // Issued one second before the carried bits wrap, checked two seconds later.
    let edge = (T0 / wrap + 1) * wrap - 1;
    let n = k.issue(edge, client());
    assert_eq!(
        k.check(n.as_bytes(), edge + 2, client(), STALE),
        NonceCheck::Valid
    );
    assert_eq!(
        k.check(n.as_bytes(), edge - 2, client(), STALE),
        NonceCheck::Valid
    );
    // Exactly one wrap later the carried bits read as now, but the MAC covers the whole time:
    // no stale-nonce makes it valid again.
    let n = k.issue(T0, client());
    assert_eq!(
        k.check(n.as_bytes(), T0 + wrap, client(), u32::MAX),
        NonceCheck::Invalid
    );
    // Within half a wrap either way the real time is found: stale, or valid under a long
    // stale-nonce.
    let half = wrap / 2;
    assert_eq!(
        k.check(n.as_bytes(), T0 + half - 1, client(), STALE),
        NonceCheck::Stale
    );
    assert_eq!(
        k.check(n.as_bytes(), T0 + half - 1, client(), u32::MAX),
        NonceCheck::Valid
    );
    assert_eq!(
        k.check(n.as_bytes(), T0 + half + 1, client(), u32::MAX),
        NonceCheck::Invalid
    );
}

#[test]
fn ipv6_client_round_trips() {
    let k = key();
    let c: SocketAddr = "[2001:db8::5]:3478".parse().unwrap();
    let n = k.issue(T0, c);
    assert_eq!(k.check(n.as_bytes(), T0 + 1, c, STALE), NonceCheck::Valid);
}
