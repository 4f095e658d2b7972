//! Builds a Data indication (RFC 8656 §10.3) in place around a peer's payload: the STUN header,
//! XOR-PEER-ADDRESS and the DATA attribute header go into the headroom, zero padding and the
//! optional FINGERPRINT (RFC 8489 §14.7) after the payload. No copy of the payload.

use std::net::SocketAddr;
use std::ops::Range;

use super::io::HEADROOM;
use crate::stun::address::{encode_xor_address, MAX_ADDRESS_LEN};
use crate::stun::{attr, HEADER_LEN, MAGIC_COOKIE};

/// Data indication: method 0x007, class indication.
const DATA_INDICATION: u16 = 0x0017;
const FINGERPRINT_XOR: u32 = 0x5354_554E;
const FINGERPRINT_LEN: usize = 8;

/// Writes the indication around `buf[HEADROOM..HEADROOM + len]`; returns the message's range,
/// or None when the buffer lacks room or the payload is too long for one message.
pub(crate) fn write(
    buf: &mut [u8],
    len: usize,
    peer: SocketAddr,
    tid: &[u8; 12],
    fingerprint: bool,
) -> Option<Range<usize>> {
    let mut addr = [0u8; MAX_ADDRESS_LEN];
    let addr_len = encode_xor_address(peer, tid, &mut addr);
    let head = HEADER_LEN + 4 + addr_len + 4;
    let start = HEADROOM.checked_sub(head)?;
    let padded = len.checked_add(3)? & !3;
    let body_end = HEADROOM.checked_add(padded)?;
    let end = body_end + if fingerprint { FINGERPRINT_LEN } else { 0 };
    let msg_len = u16::try_from(end - start - HEADER_LEN).ok()?;
    let data_len = u16::try_from(len).ok()?;
    let out = buf.get_mut(start..end)?;
    let (header, rest) = out.split_at_mut(HEADER_LEN);
    header[0..2].copy_from_slice(&DATA_INDICATION.to_be_bytes());
    header[2..4].copy_from_slice(&msg_len.to_be_bytes());
    header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    header[8..20].copy_from_slice(tid);
    rest[0..2].copy_from_slice(&attr::XOR_PEER_ADDRESS.to_be_bytes());
    rest[2..4].copy_from_slice(&(addr_len as u16).to_be_bytes());
    rest[4..4 + addr_len].copy_from_slice(&addr[..addr_len]);
    let data_hdr = 4 + addr_len;
    rest[data_hdr..data_hdr + 2].copy_from_slice(&attr::DATA.to_be_bytes());
    rest[data_hdr + 2..data_hdr + 4].copy_from_slice(&data_len.to_be_bytes());
    let payload_end = head + len;
    out[payload_end..head + padded].fill(0);
    if fingerprint {
        let crc = crc32fast::hash(&out[..head + padded]) ^ FINGERPRINT_XOR;
        let fp = &mut out[head + padded..];
        fp[0..2].copy_from_slice(&attr::FINGERPRINT.to_be_bytes());
        fp[2..4].copy_from_slice(&4u16.to_be_bytes());
        fp[4..8].copy_from_slice(&crc.to_be_bytes());
    }
    Some(start..end)
}
