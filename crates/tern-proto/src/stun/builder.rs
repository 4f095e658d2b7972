//! Writing one STUN message into a caller-owned buffer (RFC 8489 §5, §14), with
//! MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT computed in place.

use std::net::SocketAddr;

use hmac::Mac;

use super::address::{encode_address, encode_xor_address, MAX_ADDRESS_LEN};
use super::integrity::{self, HmacSha1, HmacSha256, FINGERPRINT_LEN, SHA1_LEN, SHA256_LEN};
use super::{
    attr, padded, EncodeError, ErrorCode, MessageType, TransactionId, ATTR_HEADER_LEN, HEADER_LEN,
    MAGIC_COOKIE,
};

/// Writes one message into `buf`; the header's length field is current after every call.
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
}

impl<'b> MessageBuilder<'b> {
    pub fn new(
        buf: &'b mut [u8],
        typ: MessageType,
        tid: &TransactionId,
    ) -> Result<Self, EncodeError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(EncodeError)?;
        header[0..2].copy_from_slice(&typ.to_u16().to_be_bytes());
        header[2..4].fill(0);
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        header[8..20].copy_from_slice(tid);
        Ok(MessageBuilder {
            buf,
            len: HEADER_LEN,
            tid: *tid,
        })
    }

    /// Appends an attribute header and a zero-padded value area of `value_len` bytes, updates
    /// the header length, returns where the value starts.
    fn reserve(&mut self, typ: u16, value_len: usize) -> Result<usize, EncodeError> {
        let wire_len = u16::try_from(value_len).map_err(|_| EncodeError)?;
        let end = self.len + ATTR_HEADER_LEN + padded(value_len);
        let body_len = u16::try_from(end - HEADER_LEN).map_err(|_| EncodeError)?;
        let area = self.buf.get_mut(self.len..end).ok_or(EncodeError)?;
        area[0..2].copy_from_slice(&typ.to_be_bytes());
        area[2..4].copy_from_slice(&wire_len.to_be_bytes());
        area[ATTR_HEADER_LEN + value_len..].fill(0);
        self.buf[2..4].copy_from_slice(&body_len.to_be_bytes());
        let start = self.len + ATTR_HEADER_LEN;
        self.len = end;
        Ok(start)
    }

    /// An attribute with `value` padded with zeros to 4 bytes.
    pub fn add_raw(&mut self, typ: u16, value: &[u8]) -> Result<(), EncodeError> {
        let start = self.reserve(typ, value.len())?;
        self.buf[start..start + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// An attribute whose value the caller has already written where it belongs, at
    /// `buf[len() + 4..][..value_len]` (a relayed payload behind a Data indication header): only
    /// the attribute header and the zero padding are written.
    pub fn add_in_place(&mut self, typ: u16, value_len: usize) -> Result<(), EncodeError> {
        self.reserve(typ, value_len).map(|_| ())
    }

    pub fn add_str(&mut self, typ: u16, s: &str) -> Result<(), EncodeError> {
        self.add_raw(typ, s.as_bytes())
    }

    pub fn add_xor_address(&mut self, typ: u16, addr: SocketAddr) -> Result<(), EncodeError> {
        let mut v = [0u8; MAX_ADDRESS_LEN];
        let n = encode_xor_address(addr, &self.tid, &mut v);
        self.add_raw(typ, &v[..n])
    }

    pub fn add_address(&mut self, typ: u16, addr: SocketAddr) -> Result<(), EncodeError> {
        let mut v = [0u8; MAX_ADDRESS_LEN];
        let n = encode_address(addr, &mut v);
        self.add_raw(typ, &v[..n])
    }

    pub fn add_u32(&mut self, typ: u16, v: u32) -> Result<(), EncodeError> {
        self.add_raw(typ, &v.to_be_bytes())
    }

    /// ERROR-CODE: class (hundreds) and number (RFC 8489 §14.8).
    pub fn add_error_code(&mut self, code: ErrorCode, reason: &str) -> Result<(), EncodeError> {
        let start = self.reserve(attr::ERROR_CODE, 4 + reason.len())?;
        let value = &mut self.buf[start..start + 4 + reason.len()];
        value[0..2].fill(0);
        // Both fit in a byte for any code below 25600; the class field is 3 bits.
        value[2] = ((code.0 / 100) & 0x07) as u8;
        value[3] = (code.0 % 100) as u8;
        value[4..].copy_from_slice(reason.as_bytes());
        Ok(())
    }

    pub fn add_unknown_attributes(&mut self, types: &[u16]) -> Result<(), EncodeError> {
        let start = self.reserve(attr::UNKNOWN_ATTRIBUTES, 2 * types.len())?;
        let value = &mut self.buf[start..start + 2 * types.len()];
        for (slot, t) in value.chunks_exact_mut(2).zip(types) {
            slot.copy_from_slice(&t.to_be_bytes());
        }
        Ok(())
    }

    /// The HMAC is computed with the header length already covering the attribute.
    fn add_mac<M: Mac + hmac::digest::KeyInit>(
        &mut self,
        typ: u16,
        key: &[u8],
        tag_len: usize,
    ) -> Result<(), EncodeError> {
        let at = self.len;
        let end = at + ATTR_HEADER_LEN + tag_len;
        let tag = integrity::mac::<M>(key, self.buf, at, end)
            .ok_or(EncodeError)?
            .finalize()
            .into_bytes();
        self.add_raw(typ, &tag)
    }

    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<(), EncodeError> {
        self.add_mac::<HmacSha1>(attr::MESSAGE_INTEGRITY, key, SHA1_LEN)
    }

    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), EncodeError> {
        self.add_mac::<HmacSha256>(attr::MESSAGE_INTEGRITY_SHA256, key, SHA256_LEN)
    }

    /// Must be the last attribute; the CRC covers the header with its final length.
    pub fn add_fingerprint(&mut self) -> Result<(), EncodeError> {
        let at = self.len;
        let start = self.reserve(attr::FINGERPRINT, FINGERPRINT_LEN)?;
        let crc = integrity::fingerprint(&self.buf[..at]);
        self.buf[start..start + FINGERPRINT_LEN].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Bytes written so far; never less than the 20-byte header.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The message so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Bytes written at `buf[..n]`.
    pub fn finish(self) -> usize {
        self.len
    }
}
