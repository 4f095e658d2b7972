//! The contract between the sans-IO core and the engines that drive it.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// Bytes kept free in front of every received payload, so that a ChannelData header (4 bytes) or
/// a Data indication header (up to 36 bytes + XOR-PEER-ADDRESS for IPv6) is written in place.
pub const HEADROOM: usize = 48;

/// An engine-chosen handle for one relay socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelayId(pub u32);

/// How a client reached the server: which UDP listener socket, or which stream connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// Index of the shard's UDP listener socket.
    Udp(u32),
    /// Engine-chosen id of a TCP or TLS connection.
    Stream(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// One client transport address as seen by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    pub via: Via,
    pub transport: Transport,
    /// The server address the client reached.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortWish {
    Any,
    /// EVEN-PORT; with `reserve_next` the next port is kept for a RESERVATION-TOKEN.
    Even {
        reserve_next: bool,
    },
    /// A port reserved earlier (RESERVATION-TOKEN).
    Exact(u16),
}

/// Ask the engine for a relay socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindRequest {
    /// The local relay address to bind (port chosen by the engine per `port`).
    pub ip: IpAddr,
    pub port: PortWish,
    /// DONT-FRAGMENT: set DF / IP_PMTUDISC_DO on the socket.
    pub dont_fragment: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    pub id: RelayId,
    /// The local address actually bound.
    pub addr: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// No free port in `min-port..=max-port` (508).
    Exhausted,
    /// No file descriptors or other resources (508).
    Resources,
    /// The address cannot be bound (440/508 depending on the request).
    Unavailable,
}

/// A CONNECTION-ID (RFC 6062 §6.2.1): names one TCP connection between a TCP relay and a peer.
/// Its top 8 bits are the index of the shard that owns the allocation, so that an engine can hand
/// a client's data connection (ConnectionBind) to that shard ([`connection_shard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u32);

/// Bits of a [`ConnectionId`] below the shard index.
pub const CONNECTION_SHARD_SHIFT: u32 = 24;

/// The shard that owns connection `id`.
pub fn connection_shard(id: ConnectionId) -> usize {
    (id.0 >> CONNECTION_SHARD_SHIFT) as usize
}

/// The one thing the core asks of the engine synchronously: a relay socket, because the answer
/// to an Allocate carries its address. Everything else the core wants done is a [`Command`].
///
/// The TCP relay (RFC 6062) has a default that refuses, so an engine without TCP relaying still
/// builds; the core answers 442 then.
pub trait Binder {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError>;
    /// A listening TCP relay socket (RFC 6062 §5.1); `Command::CloseRelay` closes it, and with
    /// it every peer connection the engine holds for it.
    fn bind_tcp_relay(&mut self, _req: &BindRequest) -> Result<Bound, BindError> {
        Err(BindError::Unavailable)
    }
}

/// What the core asks the engine to do, in order; polled with `Shard::poll_command` after each
/// call into the shard (control plane only: never one per relayed packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Close relay socket `id` (a UDP relay, or a TCP relay and its peer connections).
    CloseRelay(RelayId),
    /// The port kept after a relay bound with `PortWish::Even { reserve_next: true }` for a
    /// RESERVATION-TOKEN that no Allocate claimed within 30 s, or whose claim failed: the
    /// engine may free `addr`.
    ReleasePort(SocketAddr),
    /// Start a non-blocking TCP connection from TCP relay `relay`'s address to `peer` (RFC 6062
    /// §5.2). The engine reports the outcome, a failure to start included, with
    /// `Shard::handle_tcp_connected(id, ..)`, which answers the Connect.
    Connect {
        id: ConnectionId,
        relay: RelayId,
        peer: SocketAddr,
    },
    /// Close peer connection `id` and, once spliced, the client data connection with it.
    CloseConnection(ConnectionId),
    /// ConnectionBind succeeded (RFC 6062 §5.4): the response to the current request comes
    /// first, then stream `via` carries raw bytes to and from peer connection `id`.
    Splice { id: ConnectionId, via: Via },
    /// The engine may relay this channel's ChannelData both ways without calling the core,
    /// until `until` (a fast path; only with `Shard::set_fast_path(true)`). Sent again with the
    /// same route and a later `until` when a request refreshes it.
    FastOpen(FastChannel),
    /// The channel is no longer the engine's to relay (ended, rebound, or its allocation went).
    FastClose(FastChannel),
    /// Allocation `id` ended: the engine hands its last fast-path counts to
    /// `Shard::fast_forgotten(id, ..)`, which completes its deletion event and per-user traffic.
    FastForget(FastId),
}

/// Names one allocation to the fast path: which shard, and the slot and generation it has
/// there, so that counts arriving after the slot was reused do not land on another allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FastId(pub u64);

/// One channel binding as the fast path relays it (RFC 8656 §12): ChannelData `number` from
/// `client` to `server` goes out from `relay` to `peer` as a plain datagram, and a datagram from
/// `peer` to `relay` goes to `client` from `server` as ChannelData. Only UDP clients, one address
/// family throughout, allocations without `max-bps`, and no `bps-capacity` (docs/fast-path.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastChannel {
    pub alloc: FastId,
    /// The client's address.
    pub client: SocketAddr,
    /// The listener address the client reached.
    pub server: SocketAddr,
    /// The relay socket's local address (the wire address, not the advertised one).
    pub relay: SocketAddr,
    pub peer: SocketAddr,
    pub number: u16,
    /// The earliest end of the channel, the permission for the peer's IP, the relay and the
    /// allocation: no datagram may be relayed from then on.
    pub until: std::time::Instant,
    /// Datagrams to the peer leave with DF set (DONT-FRAGMENT in the Allocate).
    pub dont_fragment: bool,
}

/// What the fast path relayed for one allocation since it last reported: payload bytes, the
/// ChannelData header not included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastTraffic {
    pub to_peer_packets: u64,
    pub to_peer_bytes: u64,
    pub to_client_packets: u64,
    pub to_client_bytes: u64,
}

/// An ICMP error the kernel reported about a datagram a relay socket sent to a peer (RFC 8656
/// §11.5): the ICMP (IPv4 peer) or ICMPv6 (IPv6 peer) type and code, and the kernel's extra
/// value (the next-hop MTU for "fragmentation needed" and "packet too big").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub icmp_type: u8,
    pub code: u8,
    pub info: u32,
}

/// Where the bytes of an [`Output`] are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    /// A range of the packet buffer that was passed in (headers written into the headroom).
    Packet(Range<usize>),
    /// The first `n` bytes of the scratch buffer.
    Scratch(usize),
}

/// What to send after one input; at most one datagram or frame per input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Nothing,
    /// To a client, through the listener socket or connection it used.
    Client {
        via: Via,
        to: SocketAddr,
        data: Span,
    },
    /// To a peer, from an allocation's relay socket.
    Peer {
        relay: RelayId,
        to: SocketAddr,
        data: Span,
        /// Send with the DF bit set, unfragmented (RFC 8656 §10.2, §14.8): DONT-FRAGMENT was in
        /// this Send indication or in the allocation's Allocate.
        dont_fragment: bool,
    },
}

/// Per-shard counters: plain integers owned by the shard, summed across shards when scraped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams/frames received from clients, and their bytes.
    pub client_rx_packets: u64,
    pub client_rx_bytes: u64,
    /// Sent to clients.
    pub client_tx_packets: u64,
    pub client_tx_bytes: u64,
    /// Received from peers on relay sockets.
    pub peer_rx_packets: u64,
    pub peer_rx_bytes: u64,
    /// Sent to peers.
    pub peer_tx_packets: u64,
    pub peer_tx_bytes: u64,
    /// Malformed input dropped without an answer.
    pub malformed: u64,
    /// Well-formed input dropped (no allocation, no permission, policy).
    pub dropped: u64,
    pub binding_requests: u64,
    pub binding_responses: u64,
    pub binding_errors: u64,
    pub unauthenticated_401: u64,
    pub allocations: u64,
    /// Allocates answered 300 Try Alternate (`alternate-server`).
    pub redirects: u64,
    /// ChannelData relayed by the fast path without reaching the shard (payload bytes), client
    /// to peer and peer to client; not in the counters above.
    pub fast_to_peer_packets: u64,
    pub fast_to_peer_bytes: u64,
    pub fast_to_client_packets: u64,
    pub fast_to_client_bytes: u64,
}

impl Counters {
    pub const ZERO: Counters = Counters {
        client_rx_packets: 0,
        client_rx_bytes: 0,
        client_tx_packets: 0,
        client_tx_bytes: 0,
        peer_rx_packets: 0,
        peer_rx_bytes: 0,
        peer_tx_packets: 0,
        peer_tx_bytes: 0,
        malformed: 0,
        dropped: 0,
        binding_requests: 0,
        binding_responses: 0,
        binding_errors: 0,
        unauthenticated_401: 0,
        allocations: 0,
        redirects: 0,
        fast_to_peer_packets: 0,
        fast_to_peer_bytes: 0,
        fast_to_client_packets: 0,
        fast_to_client_bytes: 0,
    };
}
