//! A small TURN client over any byte stream (TCP or TLS): long-term authentication (401, then
//! the request again with MESSAGE-INTEGRITY), Allocate, CreatePermission, Send/Data
//! indications, and RFC 6062 Connect / ConnectionBind.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use tern::auth::long_term_key;
use tern::stun::{
    attr, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, TransactionId,
};

use super::{read_stun, transaction_id, PASSWORD, USER};

/// REQUESTED-TRANSPORT values.
pub const UDP: u8 = 17;
pub const TCP: u8 = 6;

pub struct TurnStream<S> {
    pub stream: S,
    realm: String,
    nonce: Vec<u8>,
    /// Messages read while waiting for a response (indications).
    pub backlog: Vec<Vec<u8>>,
}

type Attrs<'a> = &'a dyn Fn(&mut MessageBuilder<'_>);

impl<S: Read + Write> TurnStream<S> {
    pub fn new(stream: S) -> Self {
        TurnStream {
            stream,
            realm: String::new(),
            nonce: Vec::new(),
            backlog: Vec::new(),
        }
    }

    fn build(&self, typ: MessageType, tid: &TransactionId, attrs: Attrs<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let mut b = MessageBuilder::new(&mut buf, typ, tid).expect("header");
        attrs(&mut b);
        if !self.nonce.is_empty() && typ.class == Class::Request {
            b.add_str(attr::USERNAME, USER).expect("username");
            b.add_str(attr::REALM, &self.realm).expect("realm");
            b.add_raw(attr::NONCE, &self.nonce).expect("nonce");
            let key = long_term_key(USER, &self.realm, PASSWORD);
            b.add_message_integrity(&key).expect("integrity");
        }
        let n = b.finish();
        buf.truncate(n);
        buf
    }

    /// Reads the next STUN message from the stream.
    pub fn read_message(&mut self) -> io::Result<Vec<u8>> {
        read_stun(&mut self.stream)
    }

    /// Sends a request and returns its response; answers one 401/438 challenge.
    pub fn request(&mut self, method: Method, attrs: Attrs<'_>) -> io::Result<Vec<u8>> {
        for _ in 0..2 {
            let tid = transaction_id();
            let msg = self.build(MessageType::new(method, Class::Request), &tid, attrs);
            self.stream.write_all(&msg)?;
            self.stream.flush()?;
            let response = loop {
                let m = self.read_message()?;
                if m.get(8..20) == Some(&tid[..]) {
                    break m;
                }
                self.backlog.push(m);
            };
            let parsed =
                Message::parse(&response).map_err(|e| io::Error::other(format!("{e:?}")))?;
            let code = parsed.error_code().and_then(Result::ok).map(|(c, _)| c);
            if matches!(
                code,
                Some(ErrorCode::UNAUTHORIZED) | Some(ErrorCode::STALE_NONCE)
            ) {
                self.realm = parsed.realm().and_then(Result::ok).unwrap_or("").to_owned();
                self.nonce = parsed.nonce().unwrap_or_default().to_vec();
                continue;
            }
            return Ok(response);
        }
        Err(io::Error::other("still unauthorized after the challenge"))
    }

    /// Sets the realm and nonce from another client's challenge (a ConnectionBind may reuse them).
    pub fn credentials_from<T>(&mut self, other: &TurnStream<T>) {
        self.realm = other.realm.clone();
        self.nonce = other.nonce.clone();
    }

    /// Allocate; the relayed address, or the error code.
    pub fn allocate(&mut self, transport: u8) -> io::Result<Result<SocketAddr, u16>> {
        let r = self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[transport, 0, 0, 0])
                .expect("transport");
        })?;
        Ok(outcome(&r).map(|m| {
            m.xor_address(attr::XOR_RELAYED_ADDRESS)
                .and_then(Result::ok)
                .expect("XOR-RELAYED-ADDRESS")
        }))
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> io::Result<Result<(), u16>> {
        let r = self.request(Method::CREATE_PERMISSION, &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
                .expect("peer");
        })?;
        Ok(outcome(&r).map(|_| ()))
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> io::Result<()> {
        let msg = self.build(
            MessageType::new(Method::SEND, Class::Indication),
            &transaction_id(),
            &|b| {
                b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
                    .expect("peer");
                b.add_raw(attr::DATA, data).expect("data");
            },
        );
        self.stream.write_all(&msg)?;
        self.stream.flush()
    }

    /// The next indication of `method` (from the backlog first), as (XOR-PEER-ADDRESS, message).
    pub fn indication(&mut self, method: Method) -> io::Result<(SocketAddr, Vec<u8>)> {
        loop {
            let m = if self.backlog.is_empty() {
                self.read_message()?
            } else {
                self.backlog.remove(0)
            };
            let Ok(parsed) = Message::parse(&m) else {
                continue;
            };
            if parsed.class() == Class::Indication && parsed.method() == method {
                let peer = parsed
                    .xor_address(attr::XOR_PEER_ADDRESS)
                    .and_then(Result::ok)
                    .expect("XOR-PEER-ADDRESS");
                return Ok((peer, m));
            }
        }
    }

    /// RFC 6062 Connect: the CONNECTION-ID, or the error code.
    pub fn connect(&mut self, peer: SocketAddr) -> io::Result<Result<u32, u16>> {
        let r = self.request(Method::CONNECT, &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
                .expect("peer");
        })?;
        Ok(outcome(&r).map(|m| {
            m.connection_id()
                .and_then(Result::ok)
                .expect("CONNECTION-ID")
        }))
    }

    /// RFC 6062 ConnectionBind on this (new) connection.
    pub fn connection_bind(&mut self, id: u32) -> io::Result<Result<(), u16>> {
        let r = self.request(Method::CONNECTION_BIND, &|b| {
            b.add_u32(attr::CONNECTION_ID, id).expect("id");
        })?;
        Ok(outcome(&r).map(|_| ()))
    }
}

/// The parsed success response, or the error code of an error response.
fn outcome(response: &[u8]) -> Result<Message<'_>, u16> {
    let m = Message::parse(response).map_err(|_| 0u16)?;
    match m.class() {
        Class::Success => Ok(m),
        _ => Err(m.error_code().and_then(Result::ok).map_or(0, |(c, _)| c.0)),
    }
}

/// The DATA of a Data indication.
pub fn data_of(message: &[u8]) -> Vec<u8> {
    Message::parse(message)
        .ok()
        .and_then(|m| m.data().map(<[u8]>::to_vec))
        .unwrap_or_default()
}
