//! What a client asks a STUN/TURN server (RFC 8489 §6, RFC 8656 §7-§12, RFC 6062 §4), encoded
//! into the caller's buffer; the indications and ChannelData it sends without a transaction.

use std::net::SocketAddr;

use crate::stun::TransactionId;
use crate::stun::{attr, channel, Class, EncodeError, Family, MessageBuilder, MessageType, Method};

use super::credentials::Auth;

/// REQUESTED-TRANSPORT (RFC 8656 §14.7): the relay's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Udp,
    /// RFC 6062 TCP relaying.
    Tcp,
}

impl Transport {
    /// The IANA protocol number carried in the attribute's first byte.
    pub fn protocol(self) -> u8 {
        match self {
            Transport::Udp => 17,
            Transport::Tcp => 6,
        }
    }
}

/// An Allocate's attributes (RFC 8656 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Allocate {
    pub transport: Transport,
    /// REQUESTED-ADDRESS-FAMILY (§18.8).
    pub family: Option<Family>,
    /// ADDITIONAL-ADDRESS-FAMILY (§18.12): a dual allocation.
    pub additional: Option<Family>,
    /// EVEN-PORT, with its R bit (reserve the next port too).
    pub even_port: Option<bool>,
    /// RESERVATION-TOKEN of an earlier EVEN-PORT allocation.
    pub reservation_token: Option<[u8; 8]>,
    pub lifetime: Option<u32>,
}

/// A request, by method and the attributes that make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Binding,
    Allocate(Allocate),
    /// Refresh with this LIFETIME (0 deallocates).
    Refresh(u32),
    CreatePermission(SocketAddr),
    ChannelBind {
        channel: u16,
        peer: SocketAddr,
    },
    /// RFC 6062 Connect to a TCP peer.
    Connect(SocketAddr),
    /// RFC 6062 ConnectionBind of a new data connection to CONNECTION-ID.
    ConnectionBind(u32),
}

impl Allocate {
    /// A plain UDP Allocate.
    pub const ALLOCATE_UDP: Allocate = Allocate {
        transport: Transport::Udp,
        family: None,
        additional: None,
        even_port: None,
        reservation_token: None,
        lifetime: None,
    };
}

impl Request {
    /// A plain UDP Allocate.
    pub const ALLOCATE: Request = Request::Allocate(Allocate::ALLOCATE_UDP);

    pub fn method(&self) -> Method {
        match self {
            Request::Binding => Method::BINDING,
            Request::Allocate(_) => Method::ALLOCATE,
            Request::Refresh(_) => Method::REFRESH,
            Request::CreatePermission(_) => Method::CREATE_PERMISSION,
            Request::ChannelBind { .. } => Method::CHANNEL_BIND,
            Request::Connect(_) => Method::CONNECT,
            Request::ConnectionBind(_) => Method::CONNECTION_BIND,
        }
    }

    /// Adds the request's own attributes (those before the credentials) to `b`.
    pub fn attrs(&self, b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
        match *self {
            Request::Binding => Ok(()),
            Request::Allocate(a) => {
                b.add_raw(
                    attr::REQUESTED_TRANSPORT,
                    &[a.transport.protocol(), 0, 0, 0],
                )?;
                if let Some(f) = a.family {
                    b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[f.to_wire(), 0, 0, 0])?;
                }
                if let Some(f) = a.additional {
                    b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[f.to_wire(), 0, 0, 0])?;
                }
                if let Some(reserve) = a.even_port {
                    b.add_raw(attr::EVEN_PORT, &[if reserve { 0x80 } else { 0 }])?;
                }
                if let Some(token) = a.reservation_token {
                    b.add_raw(attr::RESERVATION_TOKEN, &token)?;
                }
                match a.lifetime {
                    Some(l) => b.add_u32(attr::LIFETIME, l),
                    None => Ok(()),
                }
            }
            Request::Refresh(lifetime) => b.add_u32(attr::LIFETIME, lifetime),
            Request::CreatePermission(peer) | Request::Connect(peer) => {
                b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            }
            Request::ChannelBind { channel, peer } => {
                let [hi, lo] = channel.to_be_bytes();
                b.add_raw(attr::CHANNEL_NUMBER, &[hi, lo, 0, 0])?;
                b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            }
            Request::ConnectionBind(id) => b.add_u32(attr::CONNECTION_ID, id),
        }
    }
}

/// Writes `req` as transaction `tid` into `out`, signed by `auth` when it holds a nonce, with
/// FINGERPRINT when `fingerprint`; the length written.
pub fn encode(
    out: &mut [u8],
    tid: &TransactionId,
    req: &Request,
    auth: Option<&Auth>,
    fingerprint: bool,
) -> Result<usize, EncodeError> {
    let mut b = MessageBuilder::new(out, MessageType::new(req.method(), Class::Request), tid)?;
    req.attrs(&mut b)?;
    if let Some(a) = auth.filter(|a| a.is_signing()) {
        a.sign(&mut b)?;
    }
    if fingerprint {
        b.add_fingerprint()?;
    }
    Ok(b.finish())
}

/// A Send indication carrying `payload` to `peer` (no integrity: RFC 8656 §11.1).
pub fn send_indication(
    out: &mut [u8],
    tid: &TransactionId,
    peer: SocketAddr,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let mut b = MessageBuilder::new(out, MessageType::new(Method::SEND, Class::Indication), tid)?;
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?;
    b.add_raw(attr::DATA, payload)?;
    Ok(b.finish())
}

/// Writes the ChannelData header for a payload already at `buf[4..4 + len]`; the length to send
/// over UDP, where no padding is needed (RFC 8656 §12.5).
pub fn channel_data(buf: &mut [u8], number: u16, len: usize) -> usize {
    channel::write_header(buf, number, len as u16);
    channel::HEADER_LEN + len
}

/// As [`channel_data`] for TCP and TLS, where each ChannelData message is padded to a multiple
/// of 4 bytes (RFC 8656 §12.5) with zeros; `buf` must hold the padded length.
pub fn channel_data_padded(buf: &mut [u8], number: u16, len: usize) -> usize {
    let end = channel_data(buf, number, len);
    let padded = channel::HEADER_LEN + channel::padded_len(len);
    if let Some(pad) = buf.get_mut(end..padded) {
        pad.fill(0);
    }
    padded.min(buf.len())
}

/// `payload` framed as ChannelData on `number` in a new buffer, padded when `padded` (streams).
pub fn channel_frame(number: u16, payload: &[u8], padded: bool) -> Vec<u8> {
    let len = channel::HEADER_LEN + channel::padded_len(payload.len());
    let mut frame = vec![0u8; len];
    frame[channel::HEADER_LEN..channel::HEADER_LEN + payload.len()].copy_from_slice(payload);
    let n = if padded {
        channel_data_padded(&mut frame, number, payload.len())
    } else {
        channel_data(&mut frame, number, payload.len())
    };
    frame.truncate(n);
    frame
}
