//! The borrowed STUN message: header and attribute validation, attribute lookup, integrity checks
//! (RFC 8489 §5, §14, §14.5–§14.7).

use super::integrity::{self, FINGERPRINT_LEN};
use super::iter::{AttrIter, UnknownIter};
use super::{
    attr, Class, DecodeError, IntegrityError, MessageType, Method, TransactionId, ATTR_HEADER_LEN,
    HEADER_LEN, MAGIC_COOKIE,
};

/// A validated message borrowing the packet. Offsets point at attribute headers.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    typ: MessageType,
    tid: &'a TransactionId,
    /// End of the attributes `get` looks at: the first integrity attribute or FINGERPRINT.
    limit: usize,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

impl<'a> Message<'a> {
    /// `buf` is exactly one message (20 + length). Checks the top two bits, the cookie, the length
    /// (a multiple of 4, equal to `buf.len() - 20`), that every attribute fits, and when
    /// FINGERPRINT is present, that it is last and correct.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let header: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::TooShort)?;
        let [t0, t1, l0, l1, c0, c1, c2, c3, tid @ ..] = header;
        let typ =
            MessageType::from_u16(u16::from_be_bytes([*t0, *t1])).ok_or(DecodeError::NotStun)?;
        if u32::from_be_bytes([*c0, *c1, *c2, *c3]) != MAGIC_COOKIE {
            return Err(DecodeError::BadCookie);
        }
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if len % 4 != 0 {
            return Err(DecodeError::Misaligned);
        }
        if HEADER_LEN + len != buf.len() {
            return Err(DecodeError::BadLength);
        }
        let mut m = Message {
            buf,
            typ,
            tid,
            limit: buf.len(),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        m.index_attributes()?;
        m.check_fingerprint()?;
        Ok(m)
    }

    /// Finds the integrity attributes and FINGERPRINT. After MESSAGE-INTEGRITY only
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count, after MESSAGE-INTEGRITY-SHA256 only
    /// FINGERPRINT (RFC 8489 §14.5, §14.6); nothing may follow FINGERPRINT (§14.7).
    fn index_attributes(&mut self) -> Result<(), DecodeError> {
        let mut it = self.attributes();
        while let Some((at, a)) = it.next_at() {
            if self.fingerprint.is_some() {
                return Err(DecodeError::BadFingerprint);
            }
            let slot = match a.typ {
                attr::FINGERPRINT => &mut self.fingerprint,
                attr::MESSAGE_INTEGRITY if self.integrity_sha256.is_none() => &mut self.integrity,
                attr::MESSAGE_INTEGRITY_SHA256 => &mut self.integrity_sha256,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(at);
                self.limit = self.limit.min(at);
            }
        }
        if it.pos() != self.buf.len() {
            return Err(DecodeError::AttrOverflow);
        }
        Ok(())
    }

    fn check_fingerprint(&self) -> Result<(), DecodeError> {
        let Some((at, value)) = self.value_at(self.fingerprint) else {
            return Ok(());
        };
        let prefix = self.buf.get(..at).ok_or(DecodeError::BadFingerprint)?;
        let expected = integrity::fingerprint(prefix).to_be_bytes();
        if value.len() != FINGERPRINT_LEN || value != expected {
            return Err(DecodeError::BadFingerprint);
        }
        Ok(())
    }

    pub fn msg_type(&self) -> MessageType {
        self.typ
    }

    pub fn method(&self) -> Method {
        self.typ.method
    }

    pub fn class(&self) -> Class {
        self.typ.class
    }

    pub fn transaction_id(&self) -> &'a TransactionId {
        self.tid
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Every attribute in order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> AttrIter<'a> {
        AttrIter::new(self.buf, HEADER_LEN, self.buf.len())
    }

    /// The attributes before the integrity attributes and FINGERPRINT.
    pub(super) fn checked_attributes(&self) -> AttrIter<'a> {
        AttrIter::new(self.buf, HEADER_LEN, self.limit)
    }

    /// Header offset and value of the attribute whose header is at `at`.
    fn value_at(&self, at: Option<usize>) -> Option<(usize, &'a [u8])> {
        AttrIter::new(self.buf, at?, self.buf.len())
            .next_at()
            .map(|(at, a)| (at, a.value))
    }

    /// Header offset and value of the first attribute of that type that counts (see `get`).
    pub(super) fn find(&self, typ: u16) -> Option<(usize, &'a [u8])> {
        match typ {
            attr::MESSAGE_INTEGRITY => self.value_at(self.integrity),
            attr::MESSAGE_INTEGRITY_SHA256 => self.value_at(self.integrity_sha256),
            attr::FINGERPRINT => self.value_at(self.fingerprint),
            _ => {
                let mut it = self.checked_attributes();
                std::iter::from_fn(|| it.next_at())
                    .find(|(_, a)| a.typ == typ)
                    .map(|(at, a)| (at, a.value))
            }
        }
    }

    /// Value of the first attribute of that type before MESSAGE-INTEGRITY(-SHA256); attributes
    /// after the integrity attributes are ignored (RFC 8489 §14.5), except FINGERPRINT.
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        self.find(typ).map(|(_, v)| v)
    }

    /// Comprehension-required types before integrity that `attr::is_known` does not know (420).
    pub fn unknown_required(&self) -> UnknownIter<'a> {
        UnknownIter {
            inner: self.checked_attributes(),
        }
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// HMAC-SHA1 over the message up to MESSAGE-INTEGRITY with the length field patched,
    /// compared in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let (at, value) = self
            .value_at(self.integrity)
            .ok_or(IntegrityError::Missing)?;
        integrity::verify_sha1(key, self.buf, at, value)
    }

    /// HMAC-SHA256 likewise; a value truncated to 16..32 bytes (a multiple of 4) is accepted.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let (at, value) = self
            .value_at(self.integrity_sha256)
            .ok_or(IntegrityError::Missing)?;
        integrity::verify_sha256(key, self.buf, at, value)
    }

    /// Byte range of the DATA value inside `as_bytes()` (for zero-copy relaying of Send).
    pub fn data_range(&self) -> Option<core::ops::Range<usize>> {
        self.find(attr::DATA).map(|(at, v)| {
            let start = at + ATTR_HEADER_LEN;
            start..start + v.len()
        })
    }
}
