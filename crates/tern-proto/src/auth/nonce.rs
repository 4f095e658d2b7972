//! Stateless nonces (RFC 8489 §9.2): a MAC over the issue time and the client's transport
//! address under a per-process key, so a 401 creates no server state.
//!
//! Layout, 32 bytes: the RFC 8489 §9.2 nonce cookie `obMatJos2` with the 24 STUN
//! security-feature bits base64-encoded in 4 characters (bit 0, "Password algorithms", is the
//! least significant, as RFC 8489's erratum on the bit order fixes it): `AAAA` offers nothing
//! (clients use MD5 and MESSAGE-INTEGRITY, as with RFC 5389), `AAAB` password algorithms, `AAAD`
//! password algorithms and username anonymity (bit 1, USERHASH; `AAAC` alone). Then 19 base64url digits
//! (RFC 4648 §5) holding 114 bits: the low 24 bits of the issue time in seconds, then 90 bits of
//! HMAC-SHA256 over the whole issue time, the feature bits and the client's address and port.
//! The tag covers the feature bits, so a nonce whose offer was edited on the way is refused
//! like any forged one: a client always answers the offer the server made. The nonce is short because every 401 echoes it to
//! whoever a spoofed request names: with no SOFTWARE nor reason phrase, a 401 to a 20-byte
//! Allocate is 80 bytes under a 9-character realm. RFC 5389 clients treat the value as opaque;
//! it is plain ASCII letters, digits, `-` and `_`, all `qdtext`.
//!
//! What the nonce must keep:
//! - unforgeable: a guessed tag passes with probability 2^-90, and each guess is a request;
//! - bound to the client: the tag covers its address and port;
//! - expiring: the checker takes the issue time with the nonce's 24 bits nearest to now (within
//!   2^23 s, 97 days). The tag covers the whole time, so a nonce older than that reads as a later
//!   time, fails the tag and is answered 401 with a fresh nonce, as any unknown nonce is;
//!   `stale-nonce` beyond 97 days therefore ends there.
//!
//! No version field: the key lives only as long as the process, so every nonce a process checks
//! was written by this code.

use std::net::{IpAddr, SocketAddr};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The RFC 8489 §9.2 nonce cookie; the security-feature bits follow it.
pub const NONCE_COOKIE: &[u8; 9] = b"obMatJos2";
/// Base64 characters of the 24 security-feature bits.
const FEATURE_CHARS: usize = 4;
/// Bits of the issue time carried in the nonce; the rest is found from `now`.
const TIME_BITS: u32 = 24;
/// Bits of HMAC-SHA256 carried in the nonce.
const TAG_BITS: u32 = 90;
/// Base64 digits for the time and the tag (6 bits each).
const DIGITS: usize = ((TIME_BITS + TAG_BITS) / 6) as usize;
/// Length of every nonce tern issues.
pub const NONCE_LEN: usize = NONCE_COOKIE.len() + FEATURE_CHARS + DIGITS;
/// A nonce issued this far ahead of `now` is still accepted: engines on other threads read the
/// clock at slightly different moments.
const FUTURE_SLACK_S: u64 = 5;

/// A nonce as sent in the NONCE attribute: inline ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce {
    bytes: [u8; NONCE_LEN],
}

impl Nonce {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into `bytes`.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", self.as_str())
    }
}

/// The STUN security features a nonce offers (RFC 8489 §9.2, the registry of §18.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features {
    /// "Password algorithms": the 401 lists PASSWORD-ALGORITHMS and the client picks one.
    pub password_algorithms: bool,
    /// "Username anonymity": USERHASH is accepted instead of USERNAME.
    pub username_anonymity: bool,
}

impl Features {
    /// The 24 bits, bit 0 the least significant.
    const fn bits(self) -> u32 {
        self.password_algorithms as u32 | (self.username_anonymity as u32) << 1
    }

    /// Only the combinations tern issues; anything else is no nonce of tern's.
    fn from_bits(bits: u32) -> Option<Features> {
        match bits {
            0..=3 => Some(Features {
                password_algorithms: bits & 1 != 0,
                username_anonymity: bits & 2 != 0,
            }),
            _ => None,
        }
    }

    /// The 4 characters after the cookie: standard base64 of the 3 bytes, big-endian.
    fn chars(self) -> [u8; FEATURE_CHARS] {
        let mut out = [0u8; FEATURE_CHARS];
        let bits = self.bits();
        for (i, c) in out.iter_mut().enumerate() {
            *c = BASE64[((bits >> (18 - 6 * i)) & 63) as usize];
        }
        out
    }

    /// The features a nonce offers, read from its cookie; None when it is not one tern writes.
    /// Trust them only once [`NonceKey::check`] said `Valid`: the tag covers them.
    pub fn of(nonce: &[u8]) -> Option<Features> {
        let rest = nonce.strip_prefix(NONCE_COOKIE.as_slice())?;
        let chars = rest.get(..FEATURE_CHARS)?;
        let bits = chars.iter().try_fold(0u32, |v, &c| {
            let d = BASE64.iter().position(|&b| b == c)?;
            Some(v << 6 | d as u32)
        })?;
        Features::from_bits(bits)
    }
}

/// The verdict on a nonce a client echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Issued by this key for this client, but too old (or too far in the future): answer 438.
    Stale,
    /// Not issued by this key for this client: answer 401 with a fresh nonce.
    Invalid,
}

/// The per-process nonce key; the HMAC key schedule is computed once.
#[derive(Clone)]
pub struct NonceKey {
    mac: Hmac<Sha256>,
}

impl NonceKey {
    /// `key` must be random (the engine fills it from getrandom).
    pub fn from_bytes(key: [u8; 32]) -> NonceKey {
        // HMAC pads a short key with zeros to the block size, so this is HMAC under `key`.
        let mut block = [0u8; 64];
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = src;
        }
        NonceKey {
            mac: <Hmac<Sha256> as KeyInit>::new(&block.into()),
        }
    }

    /// A nonce that offers no security feature: the client uses MD5, as with RFC 5389.
    pub fn issue(&self, unix_now: u64, client: SocketAddr) -> Nonce {
        self.issue_offering(Features::default(), unix_now, client)
    }

    /// A nonce whose cookie offers `features`.
    pub fn issue_offering(&self, features: Features, unix_now: u64, client: SocketAddr) -> Nonce {
        let mut bytes = [0u8; NONCE_LEN];
        let (cookie, rest) = bytes.split_at_mut(NONCE_COOKIE.len());
        cookie.copy_from_slice(NONCE_COOKIE);
        let (feature_chars, digits) = rest.split_at_mut(FEATURE_CHARS);
        feature_chars.copy_from_slice(&features.chars());
        let time = u128::from(unix_now) & ((1 << TIME_BITS) - 1);
        write_base64(
            digits,
            time << TAG_BITS | self.tag(unix_now, features, client),
        );
        Nonce { bytes }
    }

    /// The MAC is compared in constant time; `stale_after_s` is `stale-nonce`.
    pub fn check(
        &self,
        nonce: &[u8],
        unix_now: u64,
        client: SocketAddr,
        stale_after_s: u32,
    ) -> NonceCheck {
        let Some(features) = Features::of(nonce) else {
            return NonceCheck::Invalid;
        };
        let digits = nonce
            .get(NONCE_COOKIE.len() + FEATURE_CHARS..)
            .unwrap_or_default();
        let Some(value) = read_base64(digits) else {
            return NonceCheck::Invalid;
        };
        let issued = nearest(unix_now, (value >> TAG_BITS) as u64);
        let tag = value & ((1 << TAG_BITS) - 1);
        if !bool::from(
            self.tag(issued, features, client)
                .to_be_bytes()
                .ct_eq(&tag.to_be_bytes()),
        ) {
            return NonceCheck::Invalid;
        }
        if issued > unix_now.saturating_add(FUTURE_SLACK_S)
            || unix_now.saturating_sub(issued) > u64::from(stale_after_s)
        {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }

    /// The first `TAG_BITS` bits of HMAC-SHA256 over the whole issue time, the offered features
    /// and the client.
    fn tag(&self, issued: u64, features: Features, client: SocketAddr) -> u128 {
        let mut mac = self.mac.clone();
        mac.update(&issued.to_be_bytes());
        mac.update(&[features.bits() as u8]);
        match client.ip() {
            IpAddr::V4(ip) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            IpAddr::V6(ip) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac.update(&client.port().to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        for (dst, src) in first.iter_mut().zip(full) {
            *dst = src;
        }
        u128::from_be_bytes(first) >> (128 - TAG_BITS)
    }
}

/// The time nearest `now` whose low `TIME_BITS` bits are `low`.
fn nearest(now: u64, low: u64) -> u64 {
    let span = 1u64 << TIME_BITS;
    let ahead = low.wrapping_sub(now) & (span - 1);
    if ahead < span / 2 {
        now.wrapping_add(ahead)
    } else {
        now.wrapping_sub(span - ahead)
    }
}

/// Never prints the key.
impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

/// RFC 4648 §4, the standard alphabet: RFC 8489 §9.2 base64-encodes the feature bits.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 4648 §5, the URL- and filename-safe alphabet: no `"` or `\`, so the nonce is `qdtext`.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The low `6 * out.len()` bits of `value`, most significant digit first.
fn write_base64(out: &mut [u8], value: u128) {
    let mut rest = value;
    for digit in out.iter_mut().rev() {
        *digit = BASE64URL[(rest & 63) as usize];
        rest >>= 6;
    }
}

/// Exactly `DIGITS` base64url digits (what `issue` writes); None on any other byte or length.
fn read_base64(digits: &[u8]) -> Option<u128> {
    if digits.len() != DIGITS {
        return None;
    }
    digits.iter().try_fold(0u128, |value, &c| {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(value << 6 | u128::from(d))
    })
}
