//! MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5), MESSAGE-INTEGRITY-SHA256 (§14.6) and
//! FINGERPRINT (§14.7), computed over slices of the message without copying it.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::{padded, IntegrityError, ATTR_HEADER_LEN, HEADER_LEN};

pub(crate) type HmacSha1 = Hmac<Sha1>;
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of a MESSAGE-INTEGRITY value.
pub(crate) const SHA1_LEN: usize = 20;
/// Length of a full MESSAGE-INTEGRITY-SHA256 value; receivers accept truncation down to 16.
pub(crate) const SHA256_LEN: usize = 32;
const SHA256_MIN_LEN: usize = 16;

const FINGERPRINT_XOR: u32 = 0x5354_554e;
pub(crate) const FINGERPRINT_LEN: usize = 4;

/// HMAC state over `msg[..at]` (the message before the integrity attribute) with the header's
/// length field patched to end at `end` (just after that attribute). Only the 20-byte header is
/// copied. None when the offsets do not fit the message.
pub(crate) fn mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8], at: usize, end: usize) -> Option<M> {
    let header: [u8; HEADER_LEN] = msg.get(..HEADER_LEN)?.try_into().ok()?;
    let body = msg.get(HEADER_LEN..at)?;
    let len = u16::try_from(end.checked_sub(HEADER_LEN)?).ok()?;
    let mut patched = header;
    patched[2..4].copy_from_slice(&len.to_be_bytes());
    // HMAC takes keys of any length, so this never fails.
    let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
    m.update(&patched);
    m.update(body);
    Some(m)
}

/// Checks the integrity attribute whose header starts at `at` and whose value is `value`.
fn verify<M: Mac + KeyInit>(
    key: &[u8],
    msg: &[u8],
    at: usize,
    value: &[u8],
) -> Result<(), IntegrityError> {
    let end = at + ATTR_HEADER_LEN + padded(value.len());
    let m = mac::<M>(key, msg, at, end).ok_or(IntegrityError::Mismatch)?;
    // Constant-time comparison (hmac uses `subtle`).
    m.verify_truncated_left(value)
        .map_err(|_| IntegrityError::Mismatch)
}

pub(crate) fn verify_sha1(
    key: &[u8],
    msg: &[u8],
    at: usize,
    value: &[u8],
) -> Result<(), IntegrityError> {
    if value.len() != SHA1_LEN {
        return Err(IntegrityError::Mismatch);
    }
    verify::<HmacSha1>(key, msg, at, value)
}

/// RFC 8489 §14.6: the value may be truncated to a multiple of 4 of at least 16 bytes.
pub(crate) fn verify_sha256(
    key: &[u8],
    msg: &[u8],
    at: usize,
    value: &[u8],
) -> Result<(), IntegrityError> {
    if value.len() < SHA256_MIN_LEN || value.len() > SHA256_LEN || value.len() % 4 != 0 {
        return Err(IntegrityError::Mismatch);
    }
    verify::<HmacSha256>(key, msg, at, value)
}

/// FINGERPRINT value for the message bytes before the FINGERPRINT attribute, whose header length
/// already includes it.
pub(crate) fn fingerprint(prefix: &[u8]) -> u32 {
    crc32fast::hash(prefix) ^ FINGERPRINT_XOR
}
