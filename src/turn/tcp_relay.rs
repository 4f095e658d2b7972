//! TCP relay allocations (RFC 6062): Connect (§5.2), ConnectionAttempt for peer-initiated
//! connections (§5.3), ConnectionBind (§5.4) and the CONNECTION-ID bookkeeping. The engine owns
//! the sockets; the core decides which connection may exist and answers the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::{family_of, Sign};
use super::auth_flow::Authed;
use super::drops::DropReason;
use super::hash::FxHashMap;
use super::io::{
    Client, ConnectionId, Output, RelayId, RelayIo, Span, Transport, Via, CONNECTION_SHARD_SHIFT,
};
use super::report::{allocation_event, EventKind};
use super::response::Responder;
use super::shard::{Shard, TimerKey};
use super::table::Handle;
use crate::limits::Refusal;
use crate::stun::{attr, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

/// RFC 6062 §5.2/§5.3: a peer connection without a ConnectionBind after 30 s is closed.
pub(crate) const BIND_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// to `handle_tcp_connected`.
    pub(super) fn connect(
        &mut self,
        client: &Client,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
        io: &mut dyn RelayIo,
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
        if io.connect_peer(id, relay, peer).is_err() {
            return r.error(ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE);
        }
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
        io: &mut dyn RelayIo,
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
        io.splice(ConnectionId(id), client.via);
        r.success(&mut |_| Ok(()))
    }

    /// The client address an allocation owning connection `id` was made from: a ConnectionBind
    /// may carry the nonce issued on the control connection.
    pub(super) fn connection_owner(&mut self, id: u32) -> Option<SocketAddr> {
        let handle = self.tcp.map.get(&id)?.alloc;
        Some(self.table.resolve(handle)?.client.remote)
    }

    /// The engine's outcome of `RelayIo::connect_peer`: the deferred Connect response (success
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
    pub(super) fn connection_timer(&mut self, id: ConnectionId, io: &mut dyn RelayIo) {
        if let Some(conn) = self.tcp.map.get(&id.0) {
            if matches!(conn.state, State::Waiting) {
                self.tcp.map.remove(&id.0);
                io.close_connection(id);
            }
        }
    }

    /// Closes every peer connection of allocation `slot` (the allocation is going away).
    pub(super) fn close_connections(&mut self, slot: u32, io: &mut dyn RelayIo) {
        for id in self.tcp.take_of(slot) {
            io.close_connection(id);
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

    /// Peer connections on this shard (every state).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.map.len()
    }
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
