//! A small TURN-over-UDP client for tests against the real binary, over `tern::client` and
//! `tern_testkit::UdpClient`: long-term credentials (401 challenge, then signed requests; MD5
//! unless told to negotiate RFC 8489 SHA-256, with USERHASH or not), Allocate, Refresh,
//! CreatePermission, ChannelBind and ChannelData. Every surprise panics, as a test wants.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use tern::client::{self, Algorithm, Allocate, Client, Credentials, Incoming, Request, Success};
use tern::stun::Family;
use tern_testkit::UdpClient;

pub use tern::client::Echo;

/// An error response: the code and, for 300, the ALTERNATE-SERVER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub code: u16,
    pub alternate: Option<SocketAddr>,
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
    inner: UdpClient,
    credentials: Credentials,
    /// None: MD5 and MESSAGE-INTEGRITY with USERNAME, as every browser does.
    sha256: Option<Sha256>,
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
        let credentials = Credentials::long_term(user, password);
        let shared = socket.try_clone().expect("clone the client socket");
        let inner = UdpClient::on(shared, server, Some(credentials.clone()), Algorithm::Md5)
            .timing(Duration::from_secs(5), 5, false);
        TurnClient {
            socket,
            inner,
            credentials,
            sha256: None,
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
        let algorithm = Algorithm::Sha256 {
            userhash: how.userhash,
            echo: how.echo,
        };
        let creds = Some(self.credentials.clone());
        self.inner.client = Client::new(creds, algorithm, tern_testkit::tid_gen());
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
        self.inner.client.auth().offered()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    /// Allocates a UDP relay; the relayed address on success.
    pub fn allocate(&mut self) -> Result<SocketAddr, Refused> {
        self.request(Request::ALLOCATE).map(relayed)
    }

    /// Refresh with LIFETIME `lifetime`; the granted lifetime on success.
    pub fn refresh(&mut self, lifetime: u32) -> Result<u32, Refused> {
        let s = self.request(Request::Refresh(lifetime))?;
        Ok(s.lifetime.expect("LIFETIME"))
    }

    /// Allocates a UDP relay of the family REQUESTED-ADDRESS-FAMILY names (RFC 8656 §18.8):
    /// IPv6 when `ipv6`, else IPv4.
    pub fn allocate_family(&mut self, ipv6: bool) -> Result<SocketAddr, Refused> {
        let family = Some(if ipv6 { Family::V6 } else { Family::V4 });
        self.request(Request::Allocate(Allocate {
            family,
            ..Allocate::ALLOCATE_UDP
        }))
        .map(relayed)
    }

    /// A dual allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY IPv6): every
    /// XOR-RELAYED-ADDRESS of the answer, IPv4 first.
    pub fn allocate_dual(&mut self) -> Result<Vec<SocketAddr>, Refused> {
        let s = self.request(Request::Allocate(Allocate {
            additional: Some(Family::V6),
            ..Allocate::ALLOCATE_UDP
        }))?;
        Ok(s.relayed.into_iter().chain(s.also_relayed).collect())
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Refused> {
        self.request(Request::CreatePermission(peer)).map(|_| ())
    }

    pub fn channel_bind(&mut self, number: u16, peer: SocketAddr) -> Result<(), Refused> {
        self.request(Request::ChannelBind {
            channel: number,
            peer,
        })
        .map(|_| ())
    }

    pub fn send_channel(&self, number: u16, payload: &[u8]) {
        self.socket
            .send_to(
                &client::channel_frame(number, payload, false),
                self.inner.server,
            )
            .expect("send ChannelData");
    }

    /// The next ChannelData from the server: (channel, payload).
    pub fn recv_channel(&self) -> (u16, Vec<u8>) {
        let mut buf = [0u8; 2048];
        loop {
            let n = self.socket.recv(&mut buf).expect("ChannelData from tern");
            if let Some(Incoming::Channel { channel, payload }) = client::incoming(&buf[..n]) {
                return (channel, payload.to_vec());
            }
        }
    }

    /// Sends a request, answering 401/438 challenges; the success's attributes.
    fn request(&mut self, request: Request) -> Result<Success, Refused> {
        let method = request.method();
        let Some(answer) = self.inner.request(request) else {
            panic!("{method:?}: no response from {}", self.inner.server);
        };
        match answer.response.outcome {
            Ok(success) => {
                if self.sha256.is_some() {
                    // RFC 8489 §9.2.4: the answer is signed with the request's algorithm.
                    assert_ne!(
                        answer.verified,
                        Some(false),
                        "{method:?}: the success is not signed with the SHA-256 key"
                    );
                }
                self.last = answer.bytes;
                Ok(success)
            }
            Err(refusal) => {
                assert_ne!(refusal.code, 0, "error response without ERROR-CODE");
                let signed_with = self.inner.client.auth().nonce();
                if refusal.is_challenge() && refusal.nonce.as_deref() != Some(signed_with) {
                    panic!("{method:?}: challenged three times in a row");
                }
                self.last_refusal = answer.bytes;
                Err(Refused {
                    code: refusal.code,
                    alternate: refusal.alternate,
                })
            }
        }
    }
}

/// The XOR-RELAYED-ADDRESS of an Allocate success response.
fn relayed(s: Success) -> SocketAddr {
    s.relayed.expect("XOR-RELAYED-ADDRESS")
}
