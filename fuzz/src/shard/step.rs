//! The inputs of the `shard` target: an arbitrary sequence of steps, and well-formed TURN
//! requests (RFC 8656 §7-§11) built from arbitrary fields so the fuzzer reaches deep states.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use arbitrary::Arbitrary;
use tern::auth::{long_term_key, Key, NonceKey};
use tern::stun::{attr, Class, MessageBuilder, MessageType, Method};

pub const REALM: &str = "example.org";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";
/// Seed of the shard's `Shared`; the harness issues valid nonces with the same key.
pub const SHARED_KEY: [u8; 32] = [9; 32];

/// The long-term key of the only user.
pub fn user_key() -> Key {
    long_term_key(USER, REALM, PASSWORD)
}

/// Peer addresses: allowed ones, and one of each kind the default policy refuses.
pub const PEERS: [&str; 12] = [
    "198.51.100.7:5000",
    "203.0.113.9:6000",
    "[2001:db8:1::9]:7000",
    "10.1.2.3:80",
    "127.0.0.1:9",
    "169.254.169.254:80",
    "192.0.2.1:3478",
    "224.0.0.1:5",
    "[::ffff:127.0.0.1]:9",
    "[::]:1",
    "100.64.0.1:1",
    "255.255.255.255:1",
];

#[derive(Arbitrary, Debug)]
pub enum Step {
    /// Arbitrary bytes from client `who`.
    Raw {
        who: u8,
        bytes: Vec<u8>,
    },
    Request {
        who: u8,
        req: Request,
    },
    ChannelData {
        who: u8,
        channel: ChannelSel,
        payload: Vec<u8>,
        /// Extra bytes after the payload (padding, or junk a datagram may carry).
        tail: u8,
    },
    /// A datagram from a peer to a relay socket the engine bound (by index).
    Peer {
        relay: u8,
        from: PeerSel,
        payload: Vec<u8>,
    },
    /// Milliseconds, up to 4000 s.
    Advance(u32),
    StreamClosed(u8),
    /// Makes the engine's next relay binds fail (or succeed again).
    BindFailure(Option<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ChannelSel {
    Small(u8),
    Raw(u16),
}

impl ChannelSel {
    pub fn number(self) -> u16 {
        match self {
            ChannelSel::Small(n) => 0x4000 + u16::from(n % 4),
            ChannelSel::Raw(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PeerSel {
    Fixed(u8),
    /// The address of a relay the engine bound (relaying between two allocations).
    Relay(u8),
    V4(u32, u16),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meth {
    Allocate,
    Refresh,
    CreatePermission,
    ChannelBind,
    Send,
    Binding,
    Other(u16),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    None,
    Valid,
    Sha256,
    WrongPassword,
    OtherUser,
    StaleNonce,
    OtherClientNonce,
    GarbageNonce,
    WrongRealm,
    NoUsername,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TokenSel {
    /// A RESERVATION-TOKEN the server handed out earlier.
    Issued(u8),
    Raw([u8; 8]),
}

#[derive(Arbitrary, Debug)]
pub struct Request {
    pub method: Meth,
    pub tid: u8,
    pub cred: Cred,
    pub transport: Option<u8>,
    pub lifetime: Option<u32>,
    pub family: Option<u8>,
    pub additional: Option<u8>,
    pub even_port: Option<u8>,
    pub token: Option<TokenSel>,
    pub dont_fragment: bool,
    pub peer: Option<PeerSel>,
    pub more_peers: Vec<PeerSel>,
    pub channel: Option<ChannelSel>,
    pub data: Option<Vec<u8>>,
    pub unknown: Option<u16>,
    pub fingerprint: bool,
}

/// What a request needs from the harness's state.
pub struct Context<'c> {
    pub unix: u64,
    pub client: SocketAddr,
    pub nonces: &'c NonceKey,
    pub relays: &'c [SocketAddr],
    pub tokens: &'c [[u8; 8]],
}

impl PeerSel {
    pub fn addr(self, relays: &[SocketAddr]) -> SocketAddr {
        match self {
            PeerSel::Fixed(i) => fixed_peer(i),
            PeerSel::Relay(i) if !relays.is_empty() => relays[usize::from(i) % relays.len()],
            PeerSel::Relay(i) => fixed_peer(i),
            PeerSel::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
        }
    }
}

fn fixed_peer(i: u8) -> SocketAddr {
    let s = PEERS[usize::from(i) % PEERS.len()];
    s.parse()
        .unwrap_or(SocketAddr::from(([198, 51, 100, 7], 5000)))
}

impl Request {
    /// Writes the request into `buf`; None when it does not fit.
    pub fn build(&self, ctx: &Context<'_>, buf: &mut [u8]) -> Option<usize> {
        let (method, class) = match self.method {
            Meth::Allocate => (Method::ALLOCATE, Class::Request),
            Meth::Refresh => (Method::REFRESH, Class::Request),
            Meth::CreatePermission => (Method::CREATE_PERMISSION, Class::Request),
            Meth::ChannelBind => (Method::CHANNEL_BIND, Class::Request),
            Meth::Send => (Method::SEND, Class::Indication),
            Meth::Binding => (Method::BINDING, Class::Request),
            Meth::Other(m) => (Method(m & 0x0FFF), Class::Request),
        };
        let mut tid = [0x5A; 12];
        tid[11] = self.tid;
        let mut b = MessageBuilder::new(buf, MessageType::new(method, class), &tid).ok()?;
        if let Some(p) = self.transport {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[p, 0, 0, 0]).ok()?;
        }
        if let Some(l) = self.lifetime {
            b.add_u32(attr::LIFETIME, l).ok()?;
        }
        if let Some(f) = self.family {
            b.add_raw(attr::REQUESTED_ADDRESS_FAMILY, &[f % 4, 0, 0, 0])
                .ok()?;
        }
        if let Some(f) = self.additional {
            b.add_raw(attr::ADDITIONAL_ADDRESS_FAMILY, &[f % 4, 0, 0, 0])
                .ok()?;
        }
        if let Some(e) = self.even_port {
            b.add_raw(attr::EVEN_PORT, &[e & 0x80]).ok()?;
        }
        match self.token {
            None => {}
            Some(TokenSel::Issued(i)) if !ctx.tokens.is_empty() => {
                let token = ctx.tokens[usize::from(i) % ctx.tokens.len()];
                b.add_raw(attr::RESERVATION_TOKEN, &token).ok()?;
            }
            Some(TokenSel::Issued(_)) => {}
            Some(TokenSel::Raw(t)) => b.add_raw(attr::RESERVATION_TOKEN, &t).ok()?,
        }
        if self.dont_fragment {
            b.add_raw(attr::DONT_FRAGMENT, &[]).ok()?;
        }
        for peer in self.peer.iter().chain(self.more_peers.iter().take(3)) {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer.addr(ctx.relays))
                .ok()?;
        }
        if let Some(ch) = self.channel {
            let [hi, lo] = ch.number().to_be_bytes();
            b.add_raw(attr::CHANNEL_NUMBER, &[hi, lo, 0, 0]).ok()?;
        }
        if let Some(d) = &self.data {
            b.add_raw(attr::DATA, d.get(..d.len().min(1200))?).ok()?;
        }
        if let Some(t) = self.unknown {
            b.add_raw(t, &[1, 2, 3, 4]).ok()?;
        }
        self.sign(ctx, &mut b)?;
        if self.fingerprint {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    fn sign(&self, ctx: &Context<'_>, b: &mut MessageBuilder<'_>) -> Option<()> {
        if self.cred == Cred::None {
            return Some(());
        }
        let user = if self.cred == Cred::OtherUser {
            "bob"
        } else {
            USER
        };
        if self.cred != Cred::NoUsername {
            b.add_str(attr::USERNAME, user).ok()?;
        }
        let realm = if self.cred == Cred::WrongRealm {
            "example.com"
        } else {
            REALM
        };
        b.add_str(attr::REALM, realm).ok()?;
        let other: SocketAddr = SocketAddr::from(([203, 0, 113, 200], 1));
        let nonce = match self.cred {
            Cred::StaleNonce => ctx
                .nonces
                .issue(ctx.unix.saturating_sub(100_000), ctx.client),
            Cred::OtherClientNonce => ctx.nonces.issue(ctx.unix, other),
            _ => ctx.nonces.issue(ctx.unix, ctx.client),
        };
        if self.cred == Cred::GarbageNonce {
            b.add_raw(attr::NONCE, b"obviously-not-a-nonce").ok()?;
        } else {
            b.add_raw(attr::NONCE, nonce.as_bytes()).ok()?;
        }
        let key = if self.cred == Cred::WrongPassword {
            long_term_key(USER, REALM, "wrong")
        } else {
            user_key()
        };
        if self.cred == Cred::Sha256 {
            b.add_message_integrity_sha256(&key).ok()
        } else {
            b.add_message_integrity(&key).ok()
        }
    }
}
