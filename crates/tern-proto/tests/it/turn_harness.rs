//! Test harness for the TURN core: a `Shard` on a virtual clock, a fake `Binder` that hands out
//! relay addresses (and can be told to fail), and a client that builds and signs requests.

#![allow(dead_code, clippy::disallowed_methods)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_proto::auth::{long_term_key, Key};
use tern_proto::options::{Options, User, UserSecret};
use tern_proto::stun::{attr, Class, EncodeError, Message, MessageBuilder, MessageType, Method};
use tern_proto::turn::{
    BindError, BindRequest, Binder, Bound, Client, Command, ConnectionId, Icmp, Output, PortWish,
    RelayId, Settings, Shard, Shared, Span, Transport, Via, HEADROOM,
};

pub const REALM: &str = "example.org";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";
pub const UNIX_START: u64 = 1_700_000_000;

pub fn listeners() -> Vec<SocketAddr> {
    vec![
        "192.0.2.1:3478".parse().unwrap(),
        "127.0.0.1:3478".parse().unwrap(),
        "[2001:db8::1]:3478".parse().unwrap(),
    ]
}

/// Long-term credentials with alice:secret in example.org.
pub fn config() -> Options {
    Options {
        realm: REALM.into(),
        users: vec![User {
            name: USER.into(),
            secret: UserSecret::Password(PASSWORD.into()),
        }],
        ..Options::default()
    }
}

/// Hands out relay addresses from port 50000 up; `fail` makes every bind fail.
#[derive(Default)]
pub struct FakeIo {
    pub fail: Option<BindError>,
    pub binds: Vec<(BindRequest, Bound)>,
    pub closed: Vec<RelayId>,
    pub released: Vec<SocketAddr>,
    /// RFC 6062: TCP relays bound, Connects started, connections closed, ConnectionBinds.
    pub tcp_binds: Vec<(BindRequest, Bound)>,
    pub connects: Vec<(ConnectionId, RelayId, SocketAddr)>,
    pub closed_connections: Vec<ConnectionId>,
    pub splices: Vec<(ConnectionId, Via)>,
    /// Fast-path commands (FastOpen, FastClose, FastForget), in order.
    pub fast: Vec<Command>,
    next_port: u16,
    next_id: u32,
}

impl Binder for FakeIo {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        if self.next_port == 0 {
            self.next_port = 50000;
        }
        let port = match req.port {
            PortWish::Exact(p) => p,
            PortWish::Even { reserve_next } => {
                let p = self.next_port + (self.next_port & 1);
                self.next_port = p + if reserve_next { 2 } else { 1 };
                p
            }
            PortWish::Any => {
                self.next_port += 1;
                self.next_port - 1
            }
        };
        self.next_id += 1;
        let bound = Bound {
            id: RelayId(self.next_id),
            addr: SocketAddr::new(req.ip, port),
        };
        self.binds.push((*req, bound));
        Ok(bound)
    }

    fn bind_tcp_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        let bound = self.bind_relay(req)?;
        self.binds.pop();
        self.tcp_binds.push((*req, bound));
        Ok(bound)
    }
}

impl FakeIo {
    /// Records what the core asked for, as an engine would carry it out; a Connect fails at once
    /// while `fail` is set (the engine then reports it as a failed connection).
    fn run(&mut self, command: Command) -> Option<ConnectionId> {
        match command {
            Command::CloseRelay(id) => self.closed.push(id),
            Command::ReleasePort(addr) => self.released.push(addr),
            Command::Connect { id, relay, peer } => {
                if self.fail.is_some() {
                    return Some(id);
                }
                self.connects.push((id, relay, peer));
            }
            Command::CloseConnection(id) => self.closed_connections.push(id),
            Command::Splice { id, via } => self.splices.push((id, via)),
            Command::FastOpen(_) | Command::FastClose(_) | Command::FastForget(_) => {
                self.fast.push(command)
            }
        }
        None
    }
}

/// What one input produced, with the bytes copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Nothing,
    Client {
        via: Via,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    Peer {
        relay: RelayId,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
}

impl Out {
    /// The bytes sent to the client (panics otherwise: a test failure).
    pub fn client_bytes(&self) -> &[u8] {
        match self {
            Out::Client { bytes, .. } => bytes,
            other => panic!("expected a client transmit, got {other:?}"),
        }
    }

    pub fn message(&self) -> Message<'_> {
        Message::parse(self.client_bytes()).expect("a valid STUN message")
    }

    pub fn error_code(&self) -> Option<u16> {
        let msg = self.message();
        msg.error_code().map(|r| r.expect("valid ERROR-CODE").0 .0)
    }
}

pub struct Harness {
    pub shard: Shard,
    pub io: FakeIo,
    pub now: Instant,
    pub unix: u64,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Harness {
    pub fn new(cfg: Options) -> Harness {
        Harness::with_shared(cfg, Arc::new(Shared::new([9; 32])), 0)
    }

    /// A shard of index `index` on `shared` (quotas and capacity across shards).
    pub fn with_shared(cfg: Options, shared: Arc<Shared>, index: usize) -> Harness {
        let settings = Settings::from_options(&cfg, &listeners(), &[]).expect("settings");
        Harness::with_settings(settings, shared, index)
    }

    /// A server on a host whose interface addresses are `addrs` (in getifaddrs order), listening
    /// on each at port 3478.
    pub fn on_host(cfg: Options, addrs: &[&str]) -> Harness {
        let host: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        let listeners: Vec<SocketAddr> = host.iter().map(|ip| SocketAddr::new(*ip, 3478)).collect();
        let settings = Settings::from_options(&cfg, &listeners, &host).expect("settings");
        Harness::with_settings(settings, Arc::new(Shared::new([9; 32])), 0)
    }

    fn with_settings(settings: Settings, shared: Arc<Shared>, index: usize) -> Harness {
        Harness {
            shard: Shard::new(Arc::new(settings), shared, index),
            io: FakeIo::default(),
            now: Instant::now(),
            unix: UNIX_START,
            buf: vec![0; HEADROOM + 65536 + 64],
            scratch: vec![0; 1500],
        }
    }

    pub fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.unix += secs;
        self.shard.handle_timeout(self.now);
        self.run_commands();
    }

    /// Carries out every command the shard left; the answer to a Connect that failed at once,
    /// if any, as the engine would send it.
    pub fn run_commands(&mut self) -> Option<Out> {
        let mut late = None;
        while let Some(command) = self.shard.poll_command() {
            if let Some(id) = self.io.run(command) {
                late = Some(self.connected(id, false));
            }
        }
        late
    }

    pub fn client_in(&mut self, client: &Client, bytes: &[u8]) -> Out {
        self.buf.fill(0xEE);
        self.buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        let out = self.shard.handle_client(
            self.now,
            self.unix,
            client,
            &mut self.buf,
            bytes.len(),
            &mut self.scratch,
            &mut self.io,
        );
        let out = self.collect(out);
        match self.run_commands() {
            Some(late) if out == Out::Nothing => late,
            _ => out,
        }
    }

    pub fn peer_in(&mut self, relay: RelayId, from: SocketAddr, bytes: &[u8]) -> Out {
        self.buf.fill(0xEE);
        self.buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        let out = self
            .shard
            .handle_peer(self.now, relay, from, &mut self.buf, bytes.len());
        self.collect(out)
    }

    /// An ICMP error the engine read for a datagram `relay` sent to `peer` (RFC 8656 §11.5).
    pub fn peer_icmp(&mut self, relay: RelayId, peer: SocketAddr, icmp: Icmp) -> Out {
        let out = self
            .shard
            .handle_peer_icmp(self.now, relay, peer, icmp, &mut self.scratch);
        self.collect(out)
    }

    /// The engine's report on a Connect (RFC 6062 §5.2).
    pub fn connected(&mut self, id: ConnectionId, ok: bool) -> Out {
        let out = self
            .shard
            .handle_tcp_connected(self.now, id, ok, &mut self.scratch);
        self.collect(out)
    }

    /// A peer connected to TCP relay `relay` (RFC 6062 §5.3).
    pub fn peer_connects(
        &mut self,
        relay: RelayId,
        from: SocketAddr,
    ) -> Option<(ConnectionId, Out)> {
        let (id, out) =
            self.shard
                .handle_peer_connection(self.now, relay, from, &mut self.scratch)?;
        Some((id, self.collect(out)))
    }

    fn collect(&self, out: Output) -> Out {
        let bytes = |span: Span| match span {
            Span::Packet(r) => self.buf[r].to_vec(),
            Span::Scratch(n) => self.scratch[..n].to_vec(),
        };
        match out {
            Output::Nothing => Out::Nothing,
            Output::Client { via, to, data } => Out::Client {
                via,
                to,
                bytes: bytes(data),
            },
            Output::Peer {
                relay, to, data, ..
            } => Out::Peer {
                relay,
                to,
                bytes: bytes(data),
            },
        }
    }
}

pub fn udp_client(remote: &str) -> Client {
    Client {
        via: Via::Udp(0),
        transport: Transport::Udp,
        local: "192.0.2.1:3478".parse().unwrap(),
        remote: remote.parse().unwrap(),
    }
}

/// A client on TCP connection `conn`.
pub fn tcp_client(remote: &str, conn: u32) -> Client {
    Client {
        via: Via::Stream(conn),
        transport: Transport::Tcp,
        local: "192.0.2.1:3478".parse().unwrap(),
        remote: remote.parse().unwrap(),
    }
}

pub type AttrFn<'f> = &'f dyn Fn(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

/// Builds one message; `sign` adds USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
pub fn build(
    method: Method,
    class: Class,
    tid: [u8; 12],
    attrs: AttrFn<'_>,
    sign: Option<(&str, &[u8], &Key)>,
    fingerprint: bool,
) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, class), &tid).unwrap();
    attrs(&mut b).unwrap();
    if let Some((user, nonce, key)) = sign {
        b.add_str(attr::USERNAME, user).unwrap();
        b.add_str(attr::REALM, REALM).unwrap();
        b.add_raw(attr::NONCE, nonce).unwrap();
        b.add_message_integrity(key).unwrap();
    }
    if fingerprint {
        b.add_fingerprint().unwrap();
    }
    let n = b.finish();
    buf[..n].to_vec()
}

/// A client with credentials that remembers the server's nonce.
pub struct TestClient {
    pub client: Client,
    pub user: String,
    pub key: Key,
    pub nonce: Vec<u8>,
    pub next_tid: u32,
    /// The last request sent, for retransmissions.
    pub last: Vec<u8>,
}

impl TestClient {
    pub fn new(remote: &str) -> TestClient {
        TestClient::with(udp_client(remote), USER, PASSWORD)
    }

    pub fn with(client: Client, user: &str, password: &str) -> TestClient {
        TestClient {
            client,
            user: user.into(),
            key: long_term_key(user, REALM, password),
            nonce: Vec::new(),
            next_tid: 0,
            last: Vec::new(),
        }
    }

    pub fn tid(&mut self) -> [u8; 12] {
        self.next_tid += 1;
        let mut tid = [0x5A; 12];
        tid[8..].copy_from_slice(&self.next_tid.to_be_bytes());
        tid
    }

    pub fn signed(&self, method: Method, tid: [u8; 12], attrs: AttrFn<'_>) -> Vec<u8> {
        build(
            method,
            Class::Request,
            tid,
            attrs,
            Some((&self.user, &self.nonce, &self.key)),
            false,
        )
    }

    /// Sends a request, first fetching a nonce (and again on 438), like a real client.
    pub fn request(&mut self, h: &mut Harness, method: Method, attrs: AttrFn<'_>) -> Out {
        for _ in 0..3 {
            let tid = self.tid();
            let bytes = if self.nonce.is_empty() {
                build(method, Class::Request, tid, attrs, None, false)
            } else {
                self.signed(method, tid, attrs)
            };
            let out = h.client_in(&self.client, &bytes);
            self.last = bytes;
            let code = match &out {
                Out::Client { .. } => out.error_code(),
                _ => return out,
            };
            match code {
                Some(401) | Some(438) if self.nonce.is_empty() || code == Some(438) => {
                    self.nonce = out.message().nonce().expect("NONCE").to_vec();
                }
                _ => return out,
            }
        }
        panic!("no answer after three tries");
    }

    pub fn allocate(&mut self, h: &mut Harness) -> Out {
        self.request(h, Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        })
    }

    /// Allocates and returns the relayed address from the response.
    pub fn allocated(&mut self, h: &mut Harness) -> SocketAddr {
        let out = self.allocate(h);
        assert_eq!(
            out.message().class(),
            Class::Success,
            "{:?}",
            out.error_code()
        );
        out.message()
            .xor_address(attr::XOR_RELAYED_ADDRESS)
            .unwrap()
            .unwrap()
    }

    pub fn permit(&mut self, h: &mut Harness, peer: SocketAddr) -> Out {
        self.request(h, Method::CREATE_PERMISSION, &move |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
    }

    pub fn bind(&mut self, h: &mut Harness, channel: u16, peer: SocketAddr) -> Out {
        self.request(h, Method::CHANNEL_BIND, &move |b| {
            b.add_raw(
                attr::CHANNEL_NUMBER,
                &[(channel >> 8) as u8, channel as u8, 0, 0],
            )?;
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
    }

    pub fn refresh(&mut self, h: &mut Harness, lifetime: Option<u32>) -> Out {
        self.request(h, Method::REFRESH, &move |b| match lifetime {
            Some(l) => b.add_u32(attr::LIFETIME, l),
            None => Ok(()),
        })
    }
}

pub fn is_success(out: &Out) -> bool {
    out.message().class() == Class::Success
}

pub fn code(out: &Out) -> u16 {
    out.error_code()
        .unwrap_or_else(|| panic!("expected an error response, got {out:?}"))
}

pub fn relay_id_of(h: &Harness, relayed: SocketAddr) -> RelayId {
    h.io.binds
        .iter()
        .find(|(_, b)| b.addr.port() == relayed.port())
        .map(|(_, b)| b.id)
        .expect("a bound relay with that port")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
