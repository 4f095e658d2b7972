//! Stateless nonces (RFC 8489 §9.2): a MAC over the issue time and the client's transport
//! address under a per-process key, so a 401 creates no server state.
//!
//! Layout: the RFC 8489 §9.2 nonce cookie `obMatJos2` with the 24 STUN security-feature bits
//! base64-encoded as `AAAA` (no feature offered: RFC 8489 clients fall back to MD5 and
//! MESSAGE-INTEGRITY), then the issue time as 16 lowercase hex digits, then 12 bytes of
//! HMAC-SHA256 as 24 lowercase hex digits. RFC 5389 clients treat the value as opaque; it is
//! plain ASCII letters and digits, well under the 128-character limit.

use std::net::{IpAddr, SocketAddr};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The nonce cookie and the all-zero security features.
pub const NONCE_COOKIE: &[u8; 13] = b"obMatJos2AAAA";
const TIME_HEX: usize = 16;
const MAC_LEN: usize = 12;
/// Length of every nonce tern issues.
pub const NONCE_LEN: usize = NONCE_COOKIE.len() + TIME_HEX + 2 * MAC_LEN;
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

    pub fn issue(&self, unix_now: u64, client: SocketAddr) -> Nonce {
        let mut bytes = [0u8; NONCE_LEN];
        let (cookie, rest) = bytes.split_at_mut(NONCE_COOKIE.len());
        cookie.copy_from_slice(NONCE_COOKIE);
        let (time, mac) = rest.split_at_mut(TIME_HEX);
        write_hex(time, &unix_now.to_be_bytes());
        write_hex(mac, &self.tag(unix_now, client));
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
        let Some(rest) = nonce.strip_prefix(NONCE_COOKIE.as_slice()) else {
            return NonceCheck::Invalid;
        };
        if rest.len() != TIME_HEX + 2 * MAC_LEN {
            return NonceCheck::Invalid;
        }
        let (time_hex, mac_hex) = rest.split_at(TIME_HEX);
        let mut time = [0u8; 8];
        let mut mac = [0u8; MAC_LEN];
        if !read_hex(time_hex, &mut time) || !read_hex(mac_hex, &mut mac) {
            return NonceCheck::Invalid;
        }
        let issued = u64::from_be_bytes(time);
        if !bool::from(self.tag(issued, client).ct_eq(&mac)) {
            return NonceCheck::Invalid;
        }
        if issued > unix_now.saturating_add(FUTURE_SLACK_S)
            || unix_now.saturating_sub(issued) > u64::from(stale_after_s)
        {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }

    fn tag(&self, issued: u64, client: SocketAddr) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(&issued.to_be_bytes());
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
        let mut out = [0u8; MAC_LEN];
        for (dst, src) in out.iter_mut().zip(full) {
            *dst = src;
        }
        out
    }
}

/// Never prints the key.
impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `out` holds exactly two digits per byte of `bytes`.
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex only (what `issue` writes); false on any other byte or a length mismatch.
fn read_hex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != 2 * out.len() {
        return false;
    }
    for (b, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => *b = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}
