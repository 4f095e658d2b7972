//! TCP relay allocations (RFC 6062): Connect (§5.2), ConnectionAttempt for peer-initiated
//! connections (§5.3), ConnectionBind (§5.4), the CONNECTION-ID bookkeeping, and the budget of
//! the spliced bytes (§5.5: `max-bps`, `bps-capacity`, the allocation's traffic). The engine owns
//! the sockets; the core decides which connection may exist, how many bytes may move, and
//! answers the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::{family_of, Sign};
use super::auth_flow::Authed;
use super::drops::DropReason;
use super::hash::FxHashMap;
use super::io::{
    Client, Command, ConnectionId, Output, RelayId, Span, Transport, Via, CONNECTION_SHARD_SHIFT,
};
use super::report::{allocation_event, EventKind};
use super::response::Responder;
use super::shard::{Shard, TimerKey};
use super::table::Handle;
use crate::limits::{Refusal, TokenBucket, MAX_CHUNK};
use crate::stun::{attr, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

/// RFC 6062 §5.2/§5.3: a peer connection without a ConnectionBind after 30 s is closed.
pub(crate) const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest pause of a spliced direction over its budget.
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// Which way the bytes of a spliced connection flow (RFC 6062 §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read from the client's data connection, written to the peer.
    ToPeer,
    /// Read from the peer, written to the client's data connection.
    ToClient,
}

/// What a spliced direction may move now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Read at most this many bytes (at least 1).
    Go(usize),
    /// Over `max-bps` or `bps-capacity`: read nothing until then. A stream cannot drop the
    /// excess as a datagram relay does; not reading lets TCP's window slow the sender.
    Wait(Instant),
}

/// What is needed to answer a Connect once the engine knows whether the peer accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferred {
    tid: [u8; 12],
    sign: Sign,
    fingerprint: bool,
    via: Via,
    to: SocketAddr,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum State {
    /// Connect sent; the engine is connecting.
    Connecting(Deferred),
    /// Connected (or accepted from the peer): waiting for the client's ConnectionBind.
    Waiting,
    /// A client data connection is spliced to it.
    Bound,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpConn {
    alloc: Handle,
    peer: SocketAddr,
    state: State,
}

/// The shard's peer connections by CONNECTION-ID.
#[derive(Default)]
pub(crate) struct TcpConns {
    map: FxHashMap<u32, TcpConn>,
}

impl TcpConns {
    /// Connections of allocation `slot`, removed.
    fn take_of(&mut self, slot: u32) -> Vec<ConnectionId> {
        let ids: Vec<u32> = self
            .map
            .iter()
            .filter(|(_, c)| c.alloc.slot == slot)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.map.remove(id);
        }
        ids.into_iter().map(ConnectionId).collect()
    }
}

impl Shard {
    /// Connect (RFC 6062 §5.2): checks, then asks the engine to connect; the answer is deferred
    /// to `handle_tcp_connected`. No permission is needed: §5.2 refuses (403) only what local
    /// policy forbids, and coturn's handle_turn_connect checks the peer policy alone.
    pub(super) fn connect(
        &mut self,
        client: &Client,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        let settings = Arc::clone(&self.settings);
        let Some(Ok(named)) = msg.xor_address(attr::XOR_PEER_ADDRESS) else {
            return r.error(ErrorCode::BAD_REQUEST);
        };
        let peer = settings.internal(named);
        let alloc = self.table.get(slot)?;
        if !alloc.tcp {
            return r.error(ErrorCode::BAD_REQUEST);
        }
        let Some(relay) = alloc.relay_for(family_of(peer.ip())).map(|r| r.id) else {
            return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        };
        match settings.policy.check_tcp(peer) {
            Ok(()) => {}
            Err(Refusal::OwnAddress) => {
                self.own_address_refused(slot, named, peer);
                return r.error(ErrorCode::FORBIDDEN);
            }
            Err(_) => return r.error(ErrorCode::FORBIDDEN),
        }
        let handle = self.table.handle(slot)?;
        let taken = self
            .tcp
            .map
            .values()
            .any(|c| c.alloc == handle && c.peer == peer);
        if taken {
            return r.error(ErrorCode::CONNECTION_ALREADY_EXISTS);
        }
        let id = self.new_connection_id();
        self.command(Command::Connect { id, relay, peer });
        let deferred = Deferred {
            tid: *msg.transaction_id(),
            sign: r.sign,
            fingerprint: self.settings.fingerprint || msg.has_fingerprint(),
            via: client.via,
            to: client.remote,
        };
        self.tcp.map.insert(
            id.0,
            TcpConn {
                alloc: handle,
                peer,
                state: State::Connecting(deferred),
            },
        );
        self.deferred = true;
        None
    }

    /// Reports a Connect refused because `peer` (named `named` by the client) is this host, once
    /// per allocation: the operator learns which `allowed-peer-ip` would admit it, and a client
    /// retrying cannot flood the log.
    fn own_address_refused(&mut self, slot: u32, named: SocketAddr, peer: SocketAddr) {
        let Some(alloc) = self.table.get_mut(slot) else {
            return;
        };
        if std::mem::replace(&mut alloc.own_address_reported, true) {
            return;
        }
        let event = allocation_event(EventKind::TcpOwnAddressRefused { named, peer }, alloc, 0);
        self.report.push(event);
    }

    /// ConnectionBind (RFC 6062 §5.4) on a new client connection that has no allocation.
    pub(super) fn connection_bind(
        &mut self,
        client: &Client,
        msg: &Message<'_>,
        auth: &Authed<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        if client.transport == Transport::Udp
            || self.table.find_client(client.via, client.remote).is_some()
        {
            return r.error(ErrorCode::BAD_REQUEST);
        }
        let Some(Ok(id)) = msg.connection_id() else {
            return r.error(ErrorCode::BAD_REQUEST);
        };
        let Some(conn) = self.tcp.map.get(&id) else {
            return r.error(ErrorCode::BAD_REQUEST);
        };
        if !matches!(conn.state, State::Waiting) {
            return r.error(ErrorCode::BAD_REQUEST);
        }
        let handle = conn.alloc;
        let Some(alloc) = self.table.resolve(handle) else {
            return r.error(ErrorCode::BAD_REQUEST);
        };
        if *alloc.username != *auth.username {
            return r.error(ErrorCode::WRONG_CREDENTIALS);
        }
        if let Some(conn) = self.tcp.map.get_mut(&id) {
            conn.state = State::Bound;
        }
        self.command(Command::Splice {
            id: ConnectionId(id),
            via: client.via,
        });
        r.success(&mut |_| Ok(()))
    }

    /// The client address an allocation owning connection `id` was made from: a ConnectionBind
    /// may carry the nonce issued on the control connection.
    pub(super) fn connection_owner(&mut self, id: u32) -> Option<SocketAddr> {
        let handle = self.tcp.map.get(&id)?.alloc;
        Some(self.table.resolve(handle)?.client.remote)
    }

    /// The engine's outcome of `Command::Connect`: the deferred Connect response (success
    /// with CONNECTION-ID, or 447) written into `scratch`.
    pub fn handle_tcp_connected(
        &mut self,
        now: Instant,
        id: ConnectionId,
        connected: bool,
        scratch: &mut [u8],
    ) -> Output {
        let Some(conn) = self.tcp.map.get_mut(&id.0) else {
            return Output::Nothing;
        };
        let State::Connecting(d) = conn.state else {
            return Output::Nothing;
        };
        if connected {
            conn.state = State::Waiting;
            self.wheel
                .insert(now + BIND_TIMEOUT, TimerKey::Connection(id));
        } else {
            self.tcp.map.remove(&id.0);
        }
        let mut r = Responder::deferred(
            scratch,
            Method::CONNECT,
            d.tid,
            self.settings.software,
            d.fingerprint,
        );
        r.sign = d.sign;
        let written = if connected {
            r.success(&mut |b| b.add_u32(attr::CONNECTION_ID, id.0))
        } else {
            r.error(ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE)
        };
        match written {
            Some(n) => self.send_client(d.via, d.to, Span::Scratch(n), n),
            None => Output::Nothing,
        }
    }

    /// A peer connected to TCP relay `relay` from `from` (RFC 6062 §5.3). With a permission for
    /// the peer's IP: the new CONNECTION-ID and a ConnectionAttempt indication for the client.
    /// None: the engine closes the connection.
    pub fn handle_peer_connection(
        &mut self,
        now: Instant,
        relay: RelayId,
        from: SocketAddr,
        scratch: &mut [u8],
    ) -> Option<(ConnectionId, Output)> {
        let slot = self.table.find_relay(relay)?;
        let handle = self.table.handle(slot)?;
        let alloc = self.table.get(slot)?;
        if !alloc.tcp || alloc.expires <= now || !alloc.is_permitted(from.ip(), now) {
            self.drop_for(DropReason::NoPermission);
            return None;
        }
        let (via, to) = (alloc.client.via, alloc.client.remote);
        let peer = self.settings.advertised(from);
        let id = self.new_connection_id();
        let tid = self.next_tid();
        let typ = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
        let mut b = MessageBuilder::new(scratch, typ, &tid).ok()?;
        b.add_xor_address(attr::XOR_PEER_ADDRESS, peer).ok()?;
        b.add_u32(attr::CONNECTION_ID, id.0).ok()?;
        if self.settings.fingerprint {
            b.add_fingerprint().ok()?;
        }
        let n = b.finish();
        self.tcp.map.insert(
            id.0,
            TcpConn {
                alloc: handle,
                peer: from,
                state: State::Waiting,
            },
        );
        self.wheel
            .insert(now + BIND_TIMEOUT, TimerKey::Connection(id));
        Some((id, self.send_client(via, to, Span::Scratch(n), n)))
    }

    /// The engine closed peer connection `id` (either side ended it).
    pub fn handle_tcp_connection_closed(&mut self, id: ConnectionId) {
        self.tcp.map.remove(&id.0);
    }

    /// The ConnectionBind deadline of `id` passed.
    pub(super) fn connection_timer(&mut self, id: ConnectionId) {
        if let Some(conn) = self.tcp.map.get(&id.0) {
            if matches!(conn.state, State::Waiting) {
                self.tcp.map.remove(&id.0);
                self.command(Command::CloseConnection(id));
            }
        }
    }

    /// Closes every peer connection of allocation `slot` (the allocation is going away).
    pub(super) fn close_connections(&mut self, slot: u32) {
        for id in self.tcp.take_of(slot) {
            self.command(Command::CloseConnection(id));
        }
    }

    /// A CONNECTION-ID unused on this shard, carrying the shard index in its top bits.
    fn new_connection_id(&mut self) -> ConnectionId {
        let shard = ((self.index & 0xFF) as u32) << CONNECTION_SHARD_SHIFT;
        loop {
            let low = (self.splitmix() as u32) & ((1 << CONNECTION_SHARD_SHIFT) - 1);
            let id = shard | low;
            if low != 0 && !self.tcp.map.contains_key(&id) {
                return ConnectionId(id);
            }
        }
    }

    /// How many of `want` bytes spliced connection `id` may move `flow`-wards at `now`: the
    /// allocation's `max-bps` bucket for that direction and the shard's share of `bps-capacity`,
    /// the same budgets a datagram spends (RFC 8656 §21.3.3 lets a server limit what it
    /// relays). Nothing is spent until [`Shard::tcp_relayed`]. None: the connection or its
    /// allocation is gone.
    pub fn tcp_grant(
        &mut self,
        now: Instant,
        id: ConnectionId,
        flow: Flow,
        want: usize,
    ) -> Option<Grant> {
        let ns = self.nanos(now);
        let handle = self.tcp.map.get(&id.0)?.alloc;
        let alloc = self.table.resolve(handle)?;
        let bucket = match flow {
            Flow::ToPeer => &mut alloc.budget.to_peer,
            Flow::ToClient => &mut alloc.budget.to_client,
        };
        let want = want as u64;
        let by_allocation = bucket.available(ns).min(want);
        let blocked = if by_allocation == 0 {
            u64::from(bucket.rate())
        } else {
            let cap = self.shared.capacity();
            match self.capacity.reserve(cap, ns, by_allocation) {
                0 => cap.rate(),
                n => return Some(Grant::Go(usize::try_from(n).unwrap_or(usize::MAX))),
            }
        };
        Some(Grant::Wait(now + pause(blocked)))
    }

    /// `n` bytes of spliced connection `id` (at most what [`Shard::tcp_grant`] allowed) moved
    /// `flow`-wards at `now`: spent from the budgets and counted in the allocation's traffic
    /// (logs and per-user metrics) and the shard's totals. Each read counts as one packet.
    pub fn tcp_relayed(&mut self, now: Instant, id: ConnectionId, flow: Flow, n: usize) {
        let ns = self.nanos(now);
        let Some(handle) = self.tcp.map.get(&id.0).map(|c| c.alloc) else {
            return;
        };
        let Some(alloc) = self.table.resolve(handle) else {
            return;
        };
        let bytes = n as u64;
        let (bucket, t, c) = (&mut alloc.budget, &mut alloc.traffic, &mut self.counters);
        // Both fit: the grant reserved them and nothing else ran since.
        let _ = self.capacity.allow(self.shared.capacity(), ns, n);
        match flow {
            Flow::ToPeer => {
                let _ = bucket.to_peer.allow(ns, n);
                t.rcvp += 1;
                t.rcvb += bytes;
                t.peer_sentp += 1;
                t.peer_sentb += bytes;
                c.client_rx_packets += 1;
                c.client_rx_bytes += bytes;
                c.peer_tx_packets += 1;
                c.peer_tx_bytes += bytes;
            }
            Flow::ToClient => {
                let _ = bucket.to_client.allow(ns, n);
                t.peer_rcvp += 1;
                t.peer_rcvb += bytes;
                t.sentp += 1;
                t.sentb += bytes;
                c.peer_rx_packets += 1;
                c.peer_rx_bytes += bytes;
                c.client_tx_packets += 1;
                c.client_tx_bytes += bytes;
            }
        }
    }

    /// Peer connections on this shard (every state).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.map.len()
    }
}

/// How long a direction over a budget of `rate` bytes/s waits: until a quarter of the default
/// burst (at most a capacity chunk) has been earned, so a paused connection wakes a few dozen
/// times a second at most and then reads a useful amount.
fn pause(rate: u64) -> Duration {
    let rate = u32::try_from(rate).unwrap_or(u32::MAX);
    if rate == 0 {
        return MIN_PAUSE;
    }
    let quantum = (u64::from(TokenBucket::default_burst(rate)) / 4).min(MAX_CHUNK);
    Duration::from_nanos(quantum * 1_000_000_000 / u64::from(rate)).max(MIN_PAUSE)
}

/// Whether `msg` is a ConnectionBind request, and for which CONNECTION-ID: an engine uses it to
/// hand a new data connection to the shard that owns the connection.
pub fn connection_bind_target(frame: &[u8]) -> Option<ConnectionId> {
    // The method and class bits of a ConnectionBind request: cheap to test before parsing.
    if frame.get(..2)? != [0x00, 0x0B] {
        return None;
    }
    let msg = Message::parse(frame).ok()?;
    if msg.class() != Class::Request || msg.method() != Method::CONNECTION_BIND {
        return None;
    }
    msg.connection_id()?.ok().map(ConnectionId)
}
