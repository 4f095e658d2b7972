//! A small TURN client over any byte stream (TCP or TLS), over `tern::client` and
//! `tern_testkit::StreamClient`: long-term authentication (401, then the request again with
//! MESSAGE-INTEGRITY), Allocate, CreatePermission, Send/Data indications, and RFC 6062
//! Connect / ConnectionBind.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use tern::client::Transport;
use tern::client::{self, Algorithm, Allocate, Client, Credentials, Deframer, Request, Success};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

use super::{PASSWORD, USER};

/// REQUESTED-TRANSPORT values.
pub const UDP: u8 = 17;
pub const TCP: u8 = 6;

pub struct TurnStream<S> {
    pub stream: S,
    /// Messages read while waiting for a response (indications).
    pub backlog: Vec<Vec<u8>>,
    client: Client,
    deframer: Deframer,
}

type Attrs<'a> = &'a dyn Fn(&mut MessageBuilder<'_>);

impl<S: Read + Write> TurnStream<S> {
    pub fn new(stream: S) -> Self {
        let creds = Credentials::long_term(USER, PASSWORD);
        TurnStream {
            stream,
            backlog: Vec::new(),
            client: Client::new(Some(creds), Algorithm::Md5, tern_testkit::tid_gen()),
            deframer: Deframer::default(),
        }
    }

    /// Reads the next STUN message (or ChannelData) from the stream, never past its end.
    pub fn read_message(&mut self) -> io::Result<Vec<u8>> {
        tern_testkit::stream::read_frame(&mut self.stream, &mut self.deframer)
    }

    /// Sends a request of `method` with the attributes `attrs` adds and returns its response;
    /// answers 401/438 challenges with a fresh nonce.
    pub fn request(&mut self, method: Method, attrs: Attrs<'_>) -> io::Result<Vec<u8>> {
        for _ in 0..=client::MAX_CHALLENGES {
            let tid = self.client.next_tid();
            let mut buf = vec![0u8; 1500];
            let typ = MessageType::new(method, Class::Request);
            let mut b = MessageBuilder::new(&mut buf, typ, &tid).expect("header");
            attrs(&mut b);
            if self.client.auth().is_signing() {
                self.client.auth().sign(&mut b).expect("credentials fit");
            }
            let n = b.finish();
            self.stream.write_all(&buf[..n])?;
            self.stream.flush()?;
            let (response, bytes) = loop {
                let m = self.read_message()?;
                match client::response(&m) {
                    Some(r) if r.tid == tid => break (r, m),
                    _ => self.backlog.push(m),
                }
            };
            match response.outcome {
                Err(r) if r.is_challenge() => {
                    let realm = r.realm.as_deref().unwrap_or_default();
                    let nonce = r.nonce.as_deref().unwrap_or_default();
                    if !self.client.auth_mut().challenge(realm, nonce, None) {
                        break;
                    }
                }
                _ => return Ok(bytes),
            }
        }
        Err(io::Error::other("still unauthorized after the challenge"))
    }

    fn typed(&mut self, request: Request) -> io::Result<Vec<u8>> {
        self.request(request.method(), &|b| {
            request.attrs(b).expect("attributes fit");
        })
    }

    /// Sets the realm and nonce from another client's challenge (a ConnectionBind may reuse them).
    pub fn credentials_from<T>(&mut self, other: &TurnStream<T>) {
        self.client.auth_mut().adopt(other.client.auth());
    }

    /// Allocate; the relayed address, or the error code.
    pub fn allocate(&mut self, transport: u8) -> io::Result<Result<SocketAddr, u16>> {
        let transport = if transport == TCP {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let r = self.typed(Request::Allocate(Allocate {
            transport,
            ..Allocate::ALLOCATE_UDP
        }))?;
        Ok(outcome(&r).map(|s| s.relayed.expect("XOR-RELAYED-ADDRESS")))
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> io::Result<Result<(), u16>> {
        let r = self.typed(Request::CreatePermission(peer))?;
        Ok(outcome(&r).map(|_| ()))
    }

    /// ChannelBind of `channel` to `peer`; the error code if refused.
    pub fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> io::Result<Result<(), u16>> {
        let r = self.typed(Request::ChannelBind { channel, peer })?;
        Ok(outcome(&r).map(|_| ()))
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> io::Result<()> {
        let message = self.send_indication_message(peer, data)?;
        self.stream.write_all(&message)?;
        self.stream.flush()
    }

    /// A Send indication to `peer` carrying `data`, to write later (with other frames).
    pub fn send_indication_message(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
    ) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 + data.len()];
        let tid = self.client.next_tid();
        let n = client::send_indication(&mut buf, &tid, peer, data)
            .map_err(|e| io::Error::other(e.to_string()))?;
        buf.truncate(n);
        Ok(buf)
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
        let r = self.typed(Request::Connect(peer))?;
        Ok(outcome(&r).map(|s| s.connection_id.expect("CONNECTION-ID")))
    }

    /// RFC 6062 ConnectionBind on this (new) connection.
    pub fn connection_bind(&mut self, id: u32) -> io::Result<Result<(), u16>> {
        let r = self.typed(Request::ConnectionBind(id))?;
        Ok(outcome(&r).map(|_| ()))
    }
}

/// The success's attributes, or the error code of an error response.
fn outcome(response: &[u8]) -> Result<Success, u16> {
    client::response(response)
        .ok_or(0u16)?
        .outcome
        .map_err(|r| r.code)
}

/// The DATA of a Data indication.
pub fn data_of(message: &[u8]) -> Vec<u8> {
    client::incoming(message)
        .map(|i| i.payload().to_vec())
        .unwrap_or_default()
}
