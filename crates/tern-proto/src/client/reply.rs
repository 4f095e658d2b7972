//! What a client receives, reduced to what it acts on: a response (RFC 8489 §6.3) as success or
//! refusal, a Data indication (RFC 8656 §11.4) or ChannelData (§12.6), and frames cut from a
//! TCP/TLS byte stream (§12.5).

use std::net::SocketAddr;

use crate::stun::framing::{frame_len, FrameError};
use crate::stun::{attr, channel, Class, Message, Method, TransactionId};

/// A success response's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Success {
    /// XOR-RELAYED-ADDRESS (an Allocate); the second one of a dual allocation in `also_relayed`.
    pub relayed: Option<SocketAddr>,
    pub also_relayed: Option<SocketAddr>,
    /// XOR-MAPPED-ADDRESS (Binding, Allocate), or a classic server's MAPPED-ADDRESS.
    pub mapped: Option<SocketAddr>,
    /// LIFETIME (Allocate, Refresh).
    pub lifetime: Option<u32>,
    /// RFC 6062 CONNECTION-ID (Connect).
    pub connection_id: Option<u32>,
    /// RESERVATION-TOKEN (an Allocate with EVEN-PORT R).
    pub reservation_token: Option<[u8; 8]>,
}

/// An error response's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Refusal {
    /// ERROR-CODE (0 when absent or malformed).
    pub code: u16,
    /// ALTERNATE-SERVER of a 300 Try Alternate.
    pub alternate: Option<SocketAddr>,
    /// REALM, NONCE and PASSWORD-ALGORITHMS of a 401 or 438.
    pub realm: Option<String>,
    pub nonce: Option<Vec<u8>>,
    pub algorithms: Option<Vec<u8>>,
}

impl Refusal {
    /// A 401 or 438 that carries a nonce to sign the retry with.
    pub fn is_challenge(&self) -> bool {
        matches!(self.code, 401 | 438) && self.nonce.is_some()
    }
}

/// A response to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub tid: TransactionId,
    pub method: Method,
    pub outcome: Result<Success, Refusal>,
}

/// Reads a STUN response; None for anything else (requests, indications, garbage).
pub fn response(bytes: &[u8]) -> Option<Response> {
    let msg = Message::parse(bytes).ok()?;
    let outcome = match msg.class() {
        Class::Success => Ok(success(&msg)),
        Class::Error => Err(refusal(&msg)),
        _ => return None,
    };
    Some(Response {
        tid: *msg.transaction_id(),
        method: msg.method(),
        outcome,
    })
}

fn success(msg: &Message<'_>) -> Success {
    let mut relayed = msg
        .xor_addresses(attr::XOR_RELAYED_ADDRESS)
        .filter_map(Result::ok);
    Success {
        relayed: relayed.next(),
        also_relayed: relayed.next(),
        mapped: msg
            .xor_address(attr::XOR_MAPPED_ADDRESS)
            .or_else(|| msg.address(attr::MAPPED_ADDRESS))
            .and_then(Result::ok),
        lifetime: msg.u32_attr(attr::LIFETIME).and_then(Result::ok),
        connection_id: msg.connection_id().and_then(Result::ok),
        reservation_token: msg.reservation_token().and_then(Result::ok),
    }
}

fn refusal(msg: &Message<'_>) -> Refusal {
    Refusal {
        code: msg
            .error_code()
            .and_then(Result::ok)
            .map_or(0, |(c, _)| c.0),
        alternate: msg.address(attr::ALTERNATE_SERVER).and_then(Result::ok),
        realm: msg.realm().and_then(Result::ok).map(str::to_owned),
        nonce: msg.nonce().map(<[u8]>::to_vec),
        algorithms: msg.get(attr::PASSWORD_ALGORITHMS).map(<[u8]>::to_vec),
    }
}

/// Data from a peer, as the server relays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// ChannelData on `channel`.
    Channel { channel: u16, payload: &'a [u8] },
    /// A Data indication from `peer` (None when its XOR-PEER-ADDRESS is missing or malformed).
    Data {
        peer: Option<SocketAddr>,
        payload: &'a [u8],
    },
}

impl<'a> Incoming<'a> {
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            Incoming::Channel { payload, .. } | Incoming::Data { payload, .. } => payload,
        }
    }
}

/// Reads ChannelData or a Data indication; None for anything else.
pub fn incoming(bytes: &[u8]) -> Option<Incoming<'_>> {
    if channel::is_channel_data(*bytes.first()?) {
        let (channel, payload) = channel::parse(bytes).ok()?;
        return Some(Incoming::Channel { channel, payload });
    }
    let msg = Message::parse(bytes).ok()?;
    if msg.method() != Method::DATA || msg.class() != Class::Indication {
        return None;
    }
    Some(Incoming::Data {
        peer: msg.xor_address(attr::XOR_PEER_ADDRESS).and_then(Result::ok),
        payload: msg.data()?,
    })
}

/// Cuts a TCP or TLS byte stream into whole STUN and (padded) ChannelData frames.
#[derive(Debug, Default)]
pub struct Deframer {
    pending: Vec<u8>,
}

impl Deframer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next whole frame, Ok(None) until enough bytes have come, Err when the stream holds
    /// something that is neither STUN nor ChannelData (the connection is beyond repair).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match frame_len(&self.pending)? {
            Some(n) if self.pending.len() >= n => Ok(Some(self.pending.drain(..n).collect())),
            _ => Ok(None),
        }
    }

    /// How many bytes to read at least before the next frame can be whole (a hint for streams
    /// read with `read_exact`).
    pub fn wanted(&self) -> usize {
        let need = match frame_len(&self.pending) {
            Ok(Some(n)) => n,
            Ok(None) => 4,
            Err(_) => 0,
        };
        need.saturating_sub(self.pending.len())
    }
}
