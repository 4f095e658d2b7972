//! A small TURN client over UDP for tests against the real binary (RFC 8656 §7-§12): signs
//! requests with the long-term key, fetches the nonce on 401/438 as a real client does, and
//! reports each answer as success or its ERROR-CODE.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tern::auth::{long_term_key, Key};
use tern::stun::{attr, Class, EncodeError, Message, MessageBuilder, MessageType, Method};

use super::{transaction_id, PASSWORD, REALM, USER};

/// Per-try wait for an answer; UDP requests are retransmitted a few times.
const TRY_TIMEOUT: Duration = Duration::from_millis(1000);
const TRIES: usize = 5;

pub type Attrs<'f> = &'f dyn Fn(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

pub struct TurnClient {
    pub socket: UdpSocket,
    server: SocketAddr,
    user: String,
    key: Key,
    nonce: Vec<u8>,
}

impl TurnClient {
    /// The harness's static user, from a fresh loopback socket.
    pub fn new(server: SocketAddr) -> TurnClient {
        TurnClient::with(server, USER, PASSWORD)
    }

    pub fn with(server: SocketAddr, user: &str, password: &str) -> TurnClient {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let socket = UdpSocket::bind(bind).expect("client socket");
        socket
            .set_read_timeout(Some(TRY_TIMEOUT))
            .expect("read timeout");
        TurnClient {
            socket,
            server,
            user: user.into(),
            key: long_term_key(user, REALM, password),
            nonce: Vec::new(),
        }
    }

    /// Sends one request (signed once a nonce is known) and returns the answer's bytes.
    fn exchange(&self, method: Method, attrs: Attrs<'_>) -> io::Result<Vec<u8>> {
        let tid = transaction_id();
        let mut buf = [0u8; 1500];
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), &tid)
            .expect("header fits");
        attrs(&mut b).expect("attributes fit");
        if !self.nonce.is_empty() {
            b.add_str(attr::USERNAME, &self.user).expect("fits");
            b.add_str(attr::REALM, REALM).expect("fits");
            b.add_raw(attr::NONCE, &self.nonce).expect("fits");
            b.add_message_integrity(&self.key).expect("fits");
        }
        let n = b.finish();
        let mut answer = [0u8; 1500];
        for _ in 0..TRIES {
            self.socket.send_to(&buf[..n], self.server)?;
            loop {
                match self.socket.recv_from(&mut answer) {
                    Ok((len, _)) => {
                        let Ok(msg) = Message::parse(&answer[..len]) else {
                            continue;
                        };
                        if *msg.transaction_id() == tid {
                            return Ok(answer[..len].to_vec());
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"))
    }

    /// A request as a real client makes it: unsigned first, again with the nonce on 401/438.
    /// Ok(success bytes) or Err(error code).
    pub fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Result<Vec<u8>, u16> {
        for _ in 0..3 {
            let answer = self
                .exchange(method, attrs)
                .unwrap_or_else(|e| panic!("{method:?} to {}: {e}", self.server));
            let msg = Message::parse(&answer).expect("a valid STUN answer");
            if msg.class() == Class::Success {
                return Ok(answer);
            }
            let code = msg
                .error_code()
                .and_then(Result::ok)
                .map_or(0, |(code, _)| code.0);
            let fresh = self.nonce.is_empty() && code == 401;
            match msg.nonce() {
                Some(nonce) if fresh || code == 438 => self.nonce = nonce.to_vec(),
                _ => return Err(code),
            }
        }
        Err(0)
    }

    /// Allocate (UDP relay), with REQUESTED-ADDRESS-FAMILY IPv6 when `ipv6`; the relayed address.
    pub fn allocate(&mut self, ipv6: bool) -> Result<SocketAddr, u16> {
        let answer = self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])?;
            if ipv6 {
                b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[0x02, 0, 0, 0])?;
            }
            Ok(())
        })?;
        let msg = Message::parse(&answer).expect("a valid STUN answer");
        Ok(msg
            .xor_address(attr::XOR_RELAYED_ADDRESS)
            .expect("XOR-RELAYED-ADDRESS")
            .expect("well formed"))
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.request(Method::CREATE_PERMISSION, &move |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
        .map(drop)
    }

    pub fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), u16> {
        self.request(Method::CHANNEL_BIND, &move |b| {
            b.add_raw(
                attr::CHANNEL_NUMBER,
                &[(channel >> 8) as u8, channel as u8, 0, 0],
            )?;
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
        .map(drop)
    }
}
