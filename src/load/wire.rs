//! The client side of STUN and TURN (RFC 8489 §6, RFC 8656 §7-§12) as the load generator and
//! `tern probe` speak it: Binding and TURN requests with long-term credentials (RFC 8489 §9.2),
//! ChannelData and Send indications out, and the server's replies, ChannelData and Data
//! indications in. Built with `tern::stun`.

use std::net::SocketAddr;

use crate::stun::{
    attr, channel, Class, EncodeError, Message, MessageBuilder, MessageType, Method,
};
use crate::stun::{ErrorCode, Family, TransactionId};

/// The channel every client binds (one peer per allocation).
pub const CHANNEL: u16 = 0x4000;
/// REQUESTED-TRANSPORT: UDP (protocol 17 in the first byte).
const UDP: [u8; 4] = [17, 0, 0, 0];

/// USERNAME, REALM, NONCE and the key of MESSAGE-INTEGRITY for an authenticated request.
pub struct Signed<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a [u8],
    pub key: &'a [u8],
}

/// What a request asks for.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    Binding,
    Allocate,
    /// An Allocate asking for an IPv6 relayed address (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1).
    AllocateIpv6,
    CreatePermission(SocketAddr),
    ChannelBind(SocketAddr),
    Refresh(u32),
}

/// Writes `req` into `buf`; unsigned (the first Allocate) when `auth` is None.
pub fn request(
    buf: &mut [u8],
    tid: &TransactionId,
    req: Request,
    auth: Option<&Signed<'_>>,
) -> Result<usize, EncodeError> {
    let method = match req {
        Request::Binding => Method::BINDING,
        Request::Allocate | Request::AllocateIpv6 => Method::ALLOCATE,
        Request::CreatePermission(_) => Method::CREATE_PERMISSION,
        Request::ChannelBind(_) => Method::CHANNEL_BIND,
        Request::Refresh(_) => Method::REFRESH,
    };
    let mut b = MessageBuilder::new(buf, MessageType::new(method, Class::Request), tid)?;
    match req {
        Request::Binding => {}
        Request::Allocate => b.add_raw(attr::REQUESTED_TRANSPORT, &UDP)?,
        Request::AllocateIpv6 => {
            b.add_raw(attr::REQUESTED_TRANSPORT, &UDP)?;
            b.add_raw(
                attr::REQUESTED_ADDRESS_FAMILY,
                &[Family::V6.to_wire(), 0, 0, 0],
            )?;
        }
        Request::CreatePermission(peer) => b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?,
        Request::ChannelBind(peer) => {
            b.add_raw(
                attr::CHANNEL_NUMBER,
                &[(CHANNEL >> 8) as u8, CHANNEL as u8, 0, 0],
            )?;
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?;
        }
        Request::Refresh(lifetime) => b.add_u32(attr::LIFETIME, lifetime)?,
    }
    if let Some(a) = auth {
        b.add_str(attr::USERNAME, a.username)?;
        b.add_str(attr::REALM, a.realm)?;
        b.add_raw(attr::NONCE, a.nonce)?;
        b.add_message_integrity(a.key)?;
    }
    b.add_fingerprint()?;
    Ok(b.finish())
}

/// A Send indication carrying `payload` to `peer` (no integrity: RFC 8656 §11.1).
pub fn send_indication(
    buf: &mut [u8],
    tid: &TransactionId,
    peer: SocketAddr,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let mut b = MessageBuilder::new(buf, MessageType::new(Method::SEND, Class::Indication), tid)?;
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?;
    b.add_raw(attr::DATA, payload)?;
    Ok(b.finish())
}

/// ChannelData header in front of a payload already at `buf[4..4 + len]`; returns the length to
/// send (padding is not needed over UDP, RFC 8656 §12.5).
pub fn channel_data(buf: &mut [u8], len: usize) -> usize {
    channel::write_header(buf, CHANNEL, len as u16);
    channel::HEADER_LEN + len
}

/// As [`channel_data`] for TCP and TLS, where each ChannelData message is padded to a multiple
/// of 4 bytes (RFC 8656 §12.5); the padding bytes are zeroed. `buf` must hold the padded length.
pub fn channel_data_padded(buf: &mut [u8], len: usize) -> usize {
    let end = channel_data(buf, len);
    let padded = channel::HEADER_LEN + channel::padded_len(len);
    if let Some(pad) = buf.get_mut(end..padded) {
        pad.fill(0);
    }
    padded.min(buf.len())
}

/// The server's answer to a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Success {
        /// XOR-RELAYED-ADDRESS (an Allocate).
        relayed: Option<SocketAddr>,
        /// XOR-MAPPED-ADDRESS (Binding, Allocate), or a classic server's MAPPED-ADDRESS.
        mapped: Option<SocketAddr>,
        /// LIFETIME (Allocate, Refresh).
        lifetime: Option<u32>,
    },
    /// 401 or 438 (`code`) with the realm and nonce to sign the retry with.
    Challenge {
        code: u16,
        realm: &'a str,
        nonce: &'a [u8],
    },
    Error(u16),
}

/// The reply to transaction `tid` in `bytes`, or None for anything else. The integrity of a
/// success is checked when `key` is given.
pub fn reply<'a>(bytes: &'a [u8], tid: &TransactionId, key: Option<&[u8]>) -> Option<Reply<'a>> {
    let msg = Message::parse(bytes).ok()?;
    if msg.transaction_id() != tid {
        return None;
    }
    match msg.class() {
        Class::Success => {
            if let Some(key) = key {
                msg.verify_integrity(key).ok()?;
            }
            let relayed = msg
                .xor_address(attr::XOR_RELAYED_ADDRESS)
                .and_then(Result::ok);
            let mapped = msg
                .xor_address(attr::XOR_MAPPED_ADDRESS)
                .or_else(|| msg.address(attr::MAPPED_ADDRESS))
                .and_then(Result::ok);
            let lifetime = msg.u32_attr(attr::LIFETIME).and_then(Result::ok);
            Some(Reply::Success {
                relayed,
                mapped,
                lifetime,
            })
        }
        Class::Error => {
            let code = msg
                .error_code()
                .and_then(Result::ok)
                .map_or(0, |(c, _)| c.0);
            let realm = msg.realm().and_then(Result::ok);
            match (ErrorCode(code), realm, msg.nonce()) {
                (ErrorCode::UNAUTHORIZED | ErrorCode::STALE_NONCE, Some(realm), Some(nonce)) => {
                    Some(Reply::Challenge { code, realm, nonce })
                }
                _ => Some(Reply::Error(code)),
            }
        }
        _ => None,
    }
}

/// The payload of a packet from the peer: ChannelData on `CHANNEL`, or a Data indication.
pub fn incoming(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.first() {
        Some(&b) if channel::is_channel_data(b) => match channel::parse(bytes) {
            Ok((CHANNEL, payload)) => Some(payload),
            _ => None,
        },
        Some(_) => {
            let msg = Message::parse(bytes).ok()?;
            (msg.method() == Method::DATA && msg.class() == Class::Indication)
                .then(|| msg.data())
                .flatten()
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_and_indications_round_trip() {
        let tid = [7u8; 12];
        let key = [1u8; 16];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let auth = Signed {
            username: "u",
            realm: "r",
            nonce: b"n0nce",
            key: &key,
        };
        let mut buf = [0u8; 512];
        let n = request(&mut buf, &tid, Request::ChannelBind(peer), Some(&auth)).unwrap();
        let msg = Message::parse(&buf[..n]).unwrap();
        assert_eq!(msg.method(), Method::CHANNEL_BIND);
        assert!(msg.verify_integrity(&key).is_ok());
        assert_eq!(msg.channel_number().unwrap().unwrap(), CHANNEL);

        let n = send_indication(&mut buf, &tid, peer, b"hello").unwrap();
        assert!(
            incoming(&buf[..n]).is_none(),
            "a Send is not a Data indication"
        );
        buf[4..9].copy_from_slice(b"hello");
        let n = channel_data(&mut buf, 5);
        assert_eq!(incoming(&buf[..n]), Some(&b"hello"[..]));
        buf[9..12].fill(0xff);
        let n = channel_data_padded(&mut buf, 5);
        assert_eq!((n, &buf[9..12]), (12, &[0u8; 3][..]));
        assert_eq!(incoming(&buf[..n]), Some(&b"hello"[..]));
    }

    #[test]
    fn a_challenge_carries_realm_and_nonce() {
        let tid = [9u8; 12];
        let mut buf = [0u8; 256];
        let typ = MessageType::new(Method::ALLOCATE, Class::Error);
        let mut b = MessageBuilder::new(&mut buf, typ, &tid).unwrap();
        b.add_error_code(ErrorCode::UNAUTHORIZED, "Unauthorized")
            .unwrap();
        b.add_str(attr::REALM, "tern").unwrap();
        b.add_raw(attr::NONCE, b"abc").unwrap();
        let n = b.finish();
        assert_eq!(
            reply(&buf[..n], &tid, None),
            Some(Reply::Challenge {
                code: 401,
                realm: "tern",
                nonce: b"abc"
            })
        );
        assert_eq!(reply(&buf[..n], &[0; 12], None), None);
    }
}
