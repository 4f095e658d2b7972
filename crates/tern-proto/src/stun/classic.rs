//! Classic STUN (RFC 3489 §11.1, §11.2.1): a Binding request sent without the magic cookie, and
//! the MAPPED-ADDRESS answer to it. Only a Binding request is recognised: no other method and no
//! attribute a classic Binding request could not carry.

use std::net::SocketAddr;

use super::address::{encode_address, MAX_ADDRESS_LEN};
use super::iter::AttrIter;
use super::{attr, padded, EncodeError, ATTR_HEADER_LEN, HEADER_LEN, MAGIC_COOKIE};

/// RFC 3489's 128-bit transaction id: where RFC 5389 put the cookie, it is part of the id.
pub type ClassicTransactionId = [u8; 16];

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_RESPONSE: u16 = 0x0101;
/// RFC 3489 §11.2.2: asks for the answer at another address (never honoured: a reflection).
const RESPONSE_ADDRESS: u16 = 0x0002;

/// A classic Binding request, borrowing the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassicBinding<'a> {
    tid: &'a ClassicTransactionId,
}

impl<'a> ClassicBinding<'a> {
    /// `buf` is exactly one classic Binding request: type 0x0001, anything but the magic cookie
    /// in bytes 4..8, a length that is a multiple of 4 and matches, and attributes that fit and
    /// are of the types RFC 3489 §11.1 allows in it (RESPONSE-ADDRESS, which is ignored;
    /// CHANGE-REQUEST asking for no change, since tern has no other address; USERNAME and
    /// MESSAGE-INTEGRITY, which are not checked). None otherwise.
    pub fn parse(buf: &'a [u8]) -> Option<ClassicBinding<'a>> {
        let header: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let [t0, t1, l0, l1, tid @ ..] = header;
        let typ = u16::from_be_bytes([*t0, *t1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let cookie = u32::from_be_bytes([tid[0], tid[1], tid[2], tid[3]]);
        if typ != BINDING_REQUEST
            || cookie == MAGIC_COOKIE
            || len % 4 != 0
            || HEADER_LEN + len != buf.len()
        {
            return None;
        }
        let mut attrs = AttrIter::new(buf, HEADER_LEN, buf.len());
        for a in attrs.by_ref() {
            let allowed = match a.typ {
                RESPONSE_ADDRESS | attr::USERNAME | attr::MESSAGE_INTEGRITY => true,
                attr::CHANGE_REQUEST => a.value.iter().all(|b| *b == 0),
                // FINGERPRINT and the rest came with RFC 5389: with them, a missing cookie is
                // a damaged modern message, not a classic one.
                _ => false,
            };
            if !allowed {
                return None;
            }
        }
        (attrs.pos() == buf.len()).then_some(ClassicBinding { tid })
    }

    pub fn transaction_id(&self) -> &'a ClassicTransactionId {
        self.tid
    }
}

/// Writes the success response to a classic Binding request into `out`: the 16-byte
/// transaction id echoed whole and MAPPED-ADDRESS only, since a classic client cannot read
/// XOR-MAPPED-ADDRESS. Returns its length (32 bytes for IPv4, 44 for IPv6), never more than the
/// RFC 5389 answer with both address attributes.
pub fn write_binding_response(
    out: &mut [u8],
    tid: &ClassicTransactionId,
    mapped: SocketAddr,
) -> Result<usize, EncodeError> {
    let mut value = [0u8; MAX_ADDRESS_LEN];
    let n = encode_address(mapped, &mut value);
    let body = ATTR_HEADER_LEN + padded(n);
    let total = HEADER_LEN + body;
    let msg = out.get_mut(..total).ok_or(EncodeError)?;
    let body = u16::try_from(body).map_err(|_| EncodeError)?;
    let n16 = u16::try_from(n).map_err(|_| EncodeError)?;
    msg[0..2].copy_from_slice(&BINDING_RESPONSE.to_be_bytes());
    msg[2..4].copy_from_slice(&body.to_be_bytes());
    msg[4..20].copy_from_slice(tid);
    msg[20..22].copy_from_slice(&attr::MAPPED_ADDRESS.to_be_bytes());
    msg[22..24].copy_from_slice(&n16.to_be_bytes());
    msg[24..24 + n].copy_from_slice(&value[..n]);
    msg[24 + n..].fill(0);
    Ok(total)
}
