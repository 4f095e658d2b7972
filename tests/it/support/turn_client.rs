//! A small TURN-over-UDP client for tests against the real binary: long-term credentials
//! (401 challenge, then signed requests; MD5 unless told to negotiate RFC 8489 SHA-256, with
//! USERHASH or not), Allocate, Refresh, CreatePermission, ChannelBind and ChannelData.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tern::auth::{long_term_key, long_term_key_sha256, userhash, Key};
use tern::stun::{attr, channel, Class, EncodeError, Message, MessageBuilder, MessageType, Method};

use super::transaction_id;

/// REQUESTED-TRANSPORT value for UDP.
const UDP: u8 = 17;

type Attrs<'a> = &'a dyn Fn(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

/// An error response: the code and, for 300, the ALTERNATE-SERVER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub code: u16,
    pub alternate: Option<SocketAddr>,
}

/// How a SHA-256 client answers the server's PASSWORD-ALGORITHMS (RFC 8489 §9.2.4): honestly,
/// or as a man in the middle would have it after a downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The list as offered.
    Offered,
    /// No PASSWORD-ALGORITHMS (PASSWORD-ALGORITHM alone).
    Stripped,
    /// A list of MD5 only, as if SHA-256 had been removed on the way.
    Md5Only,
}

/// RFC 8489 SHA-256 negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sha256 {
    /// USERHASH instead of USERNAME.
    pub userhash: bool,
    pub echo: Echo,
}

pub struct TurnClient {
    pub socket: UdpSocket,
    server: SocketAddr,
    user: String,
    password: String,
    realm: Option<String>,
    nonce: Option<Vec<u8>>,
    /// None: MD5 and MESSAGE-INTEGRITY with USERNAME, as every browser does.
    sha256: Option<Sha256>,
    /// The PASSWORD-ALGORITHMS of the last challenge.
    offered: Option<Vec<u8>>,
    /// The last success response, as received.
    last: Vec<u8>,
    /// The last error response a request ended with.
    last_refusal: Vec<u8>,
}

impl TurnClient {
    pub fn new(server: SocketAddr, user: &str, password: &str) -> TurnClient {
        TurnClient::bound(
            "127.0.0.1:0".parse().expect("address"),
            server,
            user,
            password,
        )
    }

    /// A client whose socket is bound to `local` (the wildcard of the server's family, on a host
    /// whose route to the server is not loopback).
    pub fn bound(local: SocketAddr, server: SocketAddr, user: &str, password: &str) -> TurnClient {
        let socket = UdpSocket::bind(local).expect("bind a client socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        TurnClient {
            socket,
            server,
            user: user.into(),
            password: password.into(),
            realm: None,
            nonce: None,
            sha256: None,
            offered: None,
            last: Vec::new(),
            last_refusal: Vec::new(),
        }
    }

    /// Negotiates SHA-256 (PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256), with USERHASH
    /// when `userhash`.
    pub fn sha256(self, userhash: bool) -> TurnClient {
        self.negotiating(Sha256 {
            userhash,
            echo: Echo::Offered,
        })
    }

    pub fn negotiating(mut self, how: Sha256) -> TurnClient {
        self.sha256 = Some(how);
        self
    }

    /// The bytes of the last success response.
    pub fn last_reply(&self) -> &[u8] {
        &self.last
    }

    /// The bytes of the last error response a request ended with (not a 401/438 challenge).
    pub fn last_refusal(&self) -> &[u8] {
        &self.last_refusal
    }

    /// The PASSWORD-ALGORITHMS value of the last 401/438, if it had one.
    pub fn offered(&self) -> Option<&[u8]> {
        self.offered.as_deref()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    /// Allocates a UDP relay; the relayed address on success.
    pub fn allocate(&mut self) -> Result<SocketAddr, Refused> {
        let reply = self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0])
        })?;
        Ok(relayed(&reply))
    }

    /// Refresh with LIFETIME `lifetime`; the granted lifetime on success.
    pub fn refresh(&mut self, lifetime: u32) -> Result<u32, Refused> {
        let reply = self.request(Method::REFRESH, &|b| b.add_u32(attr::LIFETIME, lifetime))?;
        let msg = Message::parse(&reply).expect("valid response");
        Ok(msg
            .u32_attr(attr::LIFETIME)
            .expect("LIFETIME")
            .expect("well formed"))
    }

    /// Allocates a UDP relay of the family REQUESTED-ADDRESS-FAMILY names (RFC 8656 §18.8):
    /// IPv6 when `ipv6`, else IPv4.
    pub fn allocate_family(&mut self, ipv6: bool) -> Result<SocketAddr, Refused> {
        let family = if ipv6 { 0x02 } else { 0x01 };
        let reply = self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0])?;
            b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[family, 0, 0, 0])
        })?;
        Ok(relayed(&reply))
    }

    /// A dual allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY IPv6): every
    /// XOR-RELAYED-ADDRESS of the answer, IPv4 first.
    pub fn allocate_dual(&mut self) -> Result<Vec<SocketAddr>, Refused> {
        let reply = self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0])?;
            b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[0x02, 0, 0, 0])
        })?;
        let msg = Message::parse(&reply).expect("valid response");
        Ok(msg
            .xor_addresses(attr::XOR_RELAYED_ADDRESS)
            .map(|a| a.expect("well formed"))
            .collect())
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Refused> {
        self.request(Method::CREATE_PERMISSION, &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
        .map(|_| ())
    }

    pub fn channel_bind(&mut self, number: u16, peer: SocketAddr) -> Result<(), Refused> {
        self.request(Method::CHANNEL_BIND, &|b| {
            b.add_raw(
                attr::CHANNEL_NUMBER,
                &[(number >> 8) as u8, number as u8, 0, 0],
            )?;
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
        .map(|_| ())
    }

    pub fn send_channel(&self, number: u16, payload: &[u8]) {
        let mut frame = vec![0u8; channel::HEADER_LEN + payload.len()];
        channel::write_header(&mut frame, number, payload.len() as u16);
        frame[channel::HEADER_LEN..].copy_from_slice(payload);
        self.socket
            .send_to(&frame, self.server)
            .expect("send ChannelData");
    }

    /// The next ChannelData from the server: (channel, payload).
    pub fn recv_channel(&self) -> (u16, Vec<u8>) {
        let mut buf = [0u8; 2048];
        loop {
            let n = self.socket.recv(&mut buf).expect("ChannelData from tern");
            if let Ok((ch, payload)) = channel::parse(&buf[..n]) {
                return (ch, payload.to_vec());
            }
        }
    }

    /// Sends a request, answering a 401/438 challenge once; the success response's bytes.
    fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Result<Vec<u8>, Refused> {
        for _ in 0..3 {
            let reply = self.transact(method, attrs);
            let msg = Message::parse(&reply).expect("valid response");
            if msg.class() == Class::Success {
                if let (Some(realm), Some(_)) = (&self.realm, self.sha256) {
                    // RFC 8489 §9.2.4: the answer is signed with the request's algorithm.
                    let key = long_term_key_sha256(&self.user, realm, &self.password);
                    assert_eq!(
                        msg.verify_integrity_sha256(&key),
                        Ok(()),
                        "{method:?}: the success is not signed with the SHA-256 key"
                    );
                }
                self.last.clone_from(&reply);
                return Ok(reply);
            }
            let code = match msg.error_code() {
                Some(Ok((code, _))) => code.0,
                other => panic!("error response without ERROR-CODE: {other:?}"),
            };
            let challenged = code == 401 || code == 438;
            let fresh = msg.nonce().map(<[u8]>::to_vec);
            if challenged && fresh.is_some() && fresh != self.nonce {
                self.nonce = fresh;
                if let Some(Ok(realm)) = msg.realm() {
                    self.realm = Some(realm.to_owned());
                }
                self.offered = msg.get(attr::PASSWORD_ALGORITHMS).map(<[u8]>::to_vec);
                continue;
            }
            let alternate = msg.address(attr::ALTERNATE_SERVER).and_then(Result::ok);
            self.last_refusal.clone_from(&reply);
            return Err(Refused { code, alternate });
        }
        panic!("{method:?}: challenged three times in a row");
    }

    /// One request/response exchange (retransmitted a few times, as RFC 8489 §6.2.1 asks).
    fn transact(&self, method: Method, attrs: Attrs<'_>) -> Vec<u8> {
        let tid = transaction_id();
        let mut buf = vec![0u8; 1024];
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), &tid)
            .expect("header fits");
        attrs(&mut b).expect("attributes fit");
        match (&self.realm, &self.nonce, self.sha256) {
            (Some(realm), Some(nonce), None) => {
                let key: Key = long_term_key(&self.user, realm, &self.password);
                b.add_str(attr::USERNAME, &self.user).expect("fits");
                b.add_str(attr::REALM, realm).expect("fits");
                b.add_raw(attr::NONCE, nonce).expect("fits");
                b.add_message_integrity(&key).expect("fits");
            }
            (Some(realm), Some(nonce), Some(how)) => {
                if how.userhash {
                    b.add_raw(attr::USERHASH, &userhash(&self.user, realm))
                        .expect("fits");
                } else {
                    b.add_str(attr::USERNAME, &self.user).expect("fits");
                }
                b.add_str(attr::REALM, realm).expect("fits");
                b.add_raw(attr::NONCE, nonce).expect("fits");
                let offered = self.offered.as_deref().unwrap_or_default();
                match how.echo {
                    Echo::Offered => b.add_raw(attr::PASSWORD_ALGORITHMS, offered),
                    Echo::Stripped => Ok(()),
                    Echo::Md5Only => b.add_raw(attr::PASSWORD_ALGORITHMS, &[0, 1, 0, 0]),
                }
                .expect("fits");
                b.add_raw(attr::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
                    .expect("fits");
                let key = long_term_key_sha256(&self.user, realm, &self.password);
                b.add_message_integrity_sha256(&key).expect("fits");
            }
            _ => {}
        }
        let n = b.finish();
        let mut reply = [0u8; 2048];
        for _ in 0..5 {
            self.socket
                .send_to(&buf[..n], self.server)
                .expect("send request");
            // Skips ChannelData and late answers to earlier requests until the read times out.
            while let Ok(len) = self.socket.recv(&mut reply) {
                if matches!(Message::parse(&reply[..len]), Ok(m) if *m.transaction_id() == tid) {
                    return reply[..len].to_vec();
                }
            }
        }
        panic!("{method:?}: no response from {}", self.server);
    }
}

/// The XOR-RELAYED-ADDRESS of an Allocate success response.
fn relayed(reply: &[u8]) -> SocketAddr {
    let msg = Message::parse(reply).expect("valid response");
    msg.xor_address(attr::XOR_RELAYED_ADDRESS)
        .expect("XOR-RELAYED-ADDRESS")
        .expect("well formed")
}
