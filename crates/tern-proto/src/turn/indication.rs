//! Builds a Data indication (RFC 8656 §10.3) in place around a peer's payload: the STUN header,
//! XOR-PEER-ADDRESS and the DATA attribute header go into the headroom, zero padding and the
//! optional FINGERPRINT (RFC 8489 §14.7) after the payload. No copy of the payload. Also the
//! Data indication that reports an ICMP error for a peer (RFC 8656 §11.5, §18.13).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use super::io::HEADROOM;
use crate::stun::{attr, Class, MessageBuilder, MessageType, Method, ATTR_HEADER_LEN, HEADER_LEN};

/// Writes the indication around `buf[HEADROOM..HEADROOM + len]`; returns the message's range,
/// or None when the buffer lacks room or the payload is too long for one message.
pub(crate) fn write(
    buf: &mut [u8],
    len: usize,
    peer: SocketAddr,
    tid: &[u8; 12],
    fingerprint: bool,
) -> Option<Range<usize>> {
    let address_len = match peer.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    };
    let head = HEADER_LEN + ATTR_HEADER_LEN + address_len + ATTR_HEADER_LEN;
    let start = HEADROOM.checked_sub(head)?;
    let typ = MessageType::new(Method::DATA, Class::Indication);
    let mut b = MessageBuilder::new(buf.get_mut(start..)?, typ, tid).ok()?;
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).ok()?;
    b.add_in_place(attr::DATA, len).ok()?;
    if fingerprint {
        b.add_fingerprint().ok()?;
    }
    Some(start..start + b.finish())
}

/// Writes a Data indication with XOR-PEER-ADDRESS and ICMP (type, code, error data; no DATA)
/// into `buf`; returns its length.
pub(crate) fn write_icmp(
    buf: &mut [u8],
    peer: SocketAddr,
    tid: &[u8; 12],
    (icmp_type, code, data): (u8, u8, u32),
    fingerprint: bool,
) -> Option<usize> {
    let typ = MessageType::new(Method::DATA, Class::Indication);
    let mut b = MessageBuilder::new(buf, typ, tid).ok()?;
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).ok()?;
    let [d0, d1, d2, d3] = data.to_be_bytes();
    b.add_raw(attr::ICMP, &[0, 0, icmp_type, code, d0, d1, d2, d3])
        .ok()?;
    if fingerprint {
        b.add_fingerprint().ok()?;
    }
    Some(b.finish())
}
