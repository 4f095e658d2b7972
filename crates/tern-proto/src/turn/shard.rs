//! One shard's TURN state machine (RFC 8656): the entry points the engine calls, dispatch of each
//! input, and expiry. Requests live in `request.rs` and `allocate.rs`, the data path in `relay.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::drops::{DropReason, Drops};
use super::fleet::FleetPeers;
use super::io::{
    Binder, Client, Command, ConnectionId, Counters, Icmp, Output, RelayId, Span, Transport, Via,
    HEADROOM,
};
use super::parked::{Parked, ParkedQueue};
use super::report::Report;
use super::reservation::Token;
use super::response::Responder;
use super::settings::Settings;
use super::shared::Shared;
use super::table::{Handle, Table};
use super::tcp_relay::TcpConns;
use super::timer::Wheel;
use crate::limits::{nanos_since, CapacityShare, SourceRateLimit};
use crate::stun::classic::ClassicBinding;
use crate::stun::{channel, Class, DecodeError, Message, Method};

#[derive(Clone, Copy, Debug)]
pub(crate) enum TimerKey {
    Alloc(Handle),
    Token(Token),
    /// RFC 6062: the ConnectionBind deadline of a peer connection.
    Connection(ConnectionId),
}

/// One shard's protocol state: allocations, permissions, channels and their timers.
pub struct Shard {
    pub(crate) settings: Arc<Settings>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    pub(crate) table: Table,
    pub(crate) wheel: Wheel<TimerKey>,
    /// Reused by `handle_timeout`.
    due: Vec<(u64, TimerKey)>,
    pub(crate) counters: Counters,
    pub(crate) drops: Drops,
    /// This shard's purse of the server-wide `bps-capacity`.
    pub(crate) capacity: CapacityShare,
    /// Answers to unauthenticated UDP sources, per source IP; fixed memory.
    unauth: SourceRateLimit,
    /// User database questions about names it has not confirmed, per source IP (any
    /// transport): a nonce lets anyone ask about any name.
    pub(crate) lookups: SourceRateLimit,
    /// `shared.epoch`, cached so the data path does not touch shared memory.
    epoch: Option<Instant>,
    /// Requests waiting for the user database or the fleet.
    pub(crate) parked: ParkedQueue,
    /// Other nodes' relay addresses (`fleet-relay`).
    pub(crate) fleet_peers: FleetPeers,
    pub(crate) report: Report,
    /// State of the generator for Data indication transaction ids.
    tid_state: u64,
    /// RFC 6062 peer connections.
    pub(crate) tcp: TcpConns,
    /// Set by a request whose answer comes later (Connect): not a dropped request.
    pub(crate) deferred: bool,
    /// What the engine is to do (see [`Command`]), oldest first.
    commands: VecDeque<Command>,
    /// The engine relays bound channels itself (`set_fast_path`).
    pub(crate) fast_on: bool,
    /// Deleted allocations waiting for the fast path's last counts.
    pub(crate) retiring: Vec<super::fast::Retiring>,
}

impl Shard {
    pub fn new(settings: Arc<Settings>, shared: Arc<Shared>, index: usize) -> Shard {
        let unauth = SourceRateLimit::new(settings.unauth_rps);
        let lookups = SourceRateLimit::new(settings.lookup_rps);
        let secret = shared.token_secret();
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&secret[24..32]);
        Shard {
            settings,
            shared,
            index,
            table: Table::default(),
            wheel: Wheel::new(),
            due: Vec::new(),
            counters: Counters::ZERO,
            drops: Drops::ZERO,
            capacity: CapacityShare::new(),
            unauth,
            lookups,
            epoch: None,
            parked: ParkedQueue::default(),
            fleet_peers: FleetPeers::default(),
            report: Report::default(),
            tid_state: u64::from_le_bytes(seed) ^ (index as u64),
            tcp: TcpConns::default(),
            deferred: false,
            commands: VecDeque::with_capacity(8),
            fast_on: false,
            retiring: Vec::new(),
        }
    }

    /// The next thing the engine is to do; the engine drains these after every call into the
    /// shard, before its next one.
    #[inline]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    pub(crate) fn command(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    /// A message without the magic cookie: answered when it is an RFC 3489 Binding request and
    /// `stun-backward-compatibility` and STUN are on, dropped otherwise.
    fn classic_from_client(
        &mut self,
        now: Instant,
        client: &Client,
        packet: &[u8],
        scratch: &mut [u8],
    ) -> Output {
        let request = ClassicBinding::parse(packet)
            .filter(|_| self.settings.stun_backward_compatibility && !self.settings.no_stun);
        let Some(request) = request else {
            return self.drop_for(DropReason::BadCookie);
        };
        match self.classic_binding(now, client, &request, scratch) {
            Some(n) => self.send_client(client.via, client.remote, Span::Scratch(n), n),
            None => {
                self.counters.dropped += 1;
                Output::Nothing
            }
        }
    }

    /// A datagram or stream frame from a client. The bytes are `buf[HEADROOM..HEADROOM + len]`;
    /// `buf` may be longer (room for padding). A response is written into `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_client(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        buf: &mut [u8],
        len: usize,
        scratch: &mut [u8],
        io: &mut dyn Binder,
    ) -> Output {
        self.counters.client_rx_packets += 1;
        self.counters.client_rx_bytes += len as u64;
        let Some(packet) = buf.get(HEADROOM..HEADROOM.saturating_add(len)) else {
            return self.drop_for(DropReason::Truncated);
        };
        match packet.first() {
            Some(&b) if channel::is_channel_data(b) => {
                self.channel_from_client(now, client, packet)
            }
            Some(&b) if b & 0xC0 == 0 => {
                self.stun_from_client(now, unix, client, packet, scratch, io)
            }
            Some(_) => self.drop_for(DropReason::NotStun),
            None => self.drop_for(DropReason::Truncated),
        }
    }

    fn stun_from_client(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        packet: &[u8],
        scratch: &mut [u8],
        io: &mut dyn Binder,
    ) -> Output {
        let msg = match Message::parse(packet) {
            Ok(msg) => msg,
            Err(DecodeError::BadCookie) => {
                return self.classic_from_client(now, client, packet, scratch)
            }
            Err(e) => return self.drop_for(decode_reason(e)),
        };
        let binding = msg.method() == Method::BINDING;
        let disabled = if binding {
            self.settings.no_stun
        } else {
            self.settings.stun_only
        };
        match msg.class() {
            _ if disabled => return self.drop_for(DropReason::Disabled),
            Class::Request => {}
            Class::Indication if msg.method() == Method::SEND => {
                return self.send_indication(now, client, &msg);
            }
            // Binding indications are keep-alives (RFC 8489 §6.3.2): nothing to answer.
            Class::Indication if binding => return Output::Nothing,
            _ => return self.drop_for(DropReason::UnexpectedMessage),
        }
        let r = Responder::new(
            scratch,
            &msg,
            self.settings.software,
            self.settings.fingerprint,
        );
        let written = if binding {
            self.binding(now, unix, &msg, client, r)
        } else {
            self.request(now, unix, client, &msg, r, io)
        };
        match written {
            Some(n) => self.send_client(client.via, client.remote, Span::Scratch(n), n),
            None if std::mem::take(&mut self.deferred) => Output::Nothing,
            None => {
                self.counters.dropped += 1;
                Output::Nothing
            }
        }
    }

    /// A datagram that arrived on relay socket `relay` from `from`, at `buf[HEADROOM..HEADROOM+len]`.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: RelayId,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Output {
        self.relay_from_peer(now, relay, from, buf, len)
    }

    /// An ICMP error the kernel reported for a datagram relay socket `relay` sent to `peer`
    /// (RFC 8656 §11.5; the port may be 0 where the kernel does not know it). The answer, a Data
    /// indication for the client, is written into `scratch`.
    pub fn handle_peer_icmp(
        &mut self,
        now: Instant,
        relay: RelayId,
        peer: SocketAddr,
        icmp: Icmp,
        scratch: &mut [u8],
    ) -> Output {
        self.icmp_from_peer(now, relay, peer, icmp, scratch)
    }

    /// Expire what is due at `now`; the relay sockets of expired allocations are closed by
    /// the commands this leaves.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sync_fleet();
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now, &mut due);
        for (tick, key) in due.drain(..) {
            match key {
                TimerKey::Alloc(handle) => self.allocation_timer(now, handle, tick),
                TimerKey::Token(token) => {
                    if let Some(addr) = self.shared.expire_token(&token, now) {
                        self.command(Command::ReleasePort(addr));
                    }
                }
                TimerKey::Connection(id) => self.connection_timer(id),
            }
        }
        self.due = due;
    }

    fn allocation_timer(&mut self, now: Instant, handle: Handle, tick: u64) {
        let Some(alloc) = self.table.resolve(handle) else {
            return;
        };
        if alloc.timer != Some(tick) {
            return;
        }
        alloc.timer = None;
        if alloc.expires <= now {
            self.deallocate(handle.slot);
            return;
        }
        alloc.sweep(now);
        self.end_expired_relays(handle.slot, now);
        self.fast_sync(now, handle.slot);
        self.schedule(handle.slot);
    }

    /// Ends the relays of the allocation in `slot` whose own lifetime ran out by `now` (a dual
    /// allocation refreshed for one family only).
    pub(crate) fn end_expired_relays(&mut self, slot: u32, now: Instant) {
        while let Some(id) = self.table.get(slot).and_then(|a| a.expired_relay(now)) {
            self.end_relay(slot, id);
        }
    }

    /// Ends relay `id` of the allocation in `slot`; the allocation ends with its last relay.
    pub(crate) fn end_relay(&mut self, slot: u32, id: RelayId) {
        if self.table.get(slot).is_some_and(|a| a.relays().count() < 2) {
            self.deallocate(slot);
        } else if self.table.remove_relay(slot, id).is_some() {
            self.command(Command::CloseRelay(id));
        }
    }

    /// A stream connection closed: its allocations end.
    pub fn handle_stream_closed(&mut self, via: Via) {
        if let Via::Stream(conn) = via {
            if let Some(slot) = self.table.find_stream(conn) {
                self.deallocate(slot);
            }
        }
    }

    /// Requests parked while the user database was asked, to be fed again through
    /// `handle_client` (each as a fresh packet at `HEADROOM`) when the resolver wakes the shard.
    /// Those waiting too long are dropped; the client retransmits them.
    pub fn take_parked(&mut self, now: Instant) -> Vec<Parked> {
        self.parked.take(now)
    }

    /// Whether any request waits for the user database.
    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// When `handle_timeout` must be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Replaces the settings (reload): new requests use them, and so do the per-source limits
    /// (`unauthorized-ratelimit-rps`, `userdb-lookup-rps`); existing allocations keep the key
    /// they were created with, their relays and their lifetimes.
    pub fn set_settings(&mut self, settings: Arc<Settings>) {
        self.unauth.set_per_second(settings.unauth_rps);
        self.lookups.set_per_second(settings.lookup_rps);
        self.settings = settings;
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The engine dropped an output to a client that this shard counted as sent (a stream
    /// client's write queue was full): counted as dropped instead.
    pub fn frame_dropped(&mut self, bytes: usize) {
        self.counters.client_tx_packets = self.counters.client_tx_packets.saturating_sub(1);
        self.counters.client_tx_bytes = self.counters.client_tx_bytes.saturating_sub(bytes as u64);
        self.counters.dropped += 1;
    }

    /// Whether stream connection `conn` carries an allocation (an engine closes idle streams
    /// that do not).
    pub fn stream_has_allocation(&self, conn: u32) -> bool {
        self.table.find_stream(conn).is_some()
    }

    /// Live allocations on this shard.
    pub fn allocation_count(&self) -> usize {
        self.table.len()
    }

    /// Makes sure the wheel wakes this allocation at its next deadline.
    pub(crate) fn schedule(&mut self, slot: u32) {
        let Some(handle) = self.table.handle(slot) else {
            return;
        };
        let Some(alloc) = self.table.get_mut(slot) else {
            return;
        };
        let deadline = alloc.next_deadline();
        let tick = self.wheel.tick_of(deadline);
        if alloc.timer.is_none_or(|t| tick < t) {
            alloc.timer = Some(self.wheel.insert(deadline, TimerKey::Alloc(handle)));
        }
    }

    pub(crate) fn deallocate(&mut self, slot: u32) {
        if self.table.get(slot).is_some_and(|a| a.tcp) {
            self.close_connections(slot);
        }
        let handle = self.table.handle(slot);
        if let (Some(handle), Some(mut alloc)) = (handle, self.table.remove(slot)) {
            let fast = self.fast_retire(handle, &mut alloc);
            for relay in alloc.relays() {
                self.commands.push_back(Command::CloseRelay(relay.id));
            }
            if let Some(ticket) = alloc.budget.quota.take() {
                self.shared.quotas().release(ticket);
            }
            self.fleet_release(alloc.budget.lease.take());
            self.counters.allocations = self.table.len() as u64;
            self.allocation_removed(alloc, fast);
        }
    }

    /// Ends every allocation (the engine is shutting down): relay sockets close and the quota
    /// counts go back, so a `Shared` that outlives this shard stays exact.
    pub fn shutdown(&mut self) {
        for slot in self.table.slots() {
            self.deallocate(slot);
        }
    }

    /// Nanoseconds since the shared epoch, the time base of the buckets and rate limits.
    #[inline]
    pub(crate) fn nanos(&mut self, now: Instant) -> u64 {
        let epoch = match self.epoch {
            Some(epoch) => epoch,
            None => *self.epoch.insert(self.shared.epoch(now)),
        };
        nanos_since(epoch, now)
    }

    /// Whether an answer may go to `client`, which has not authenticated: UDP sources may be
    /// spoofed, so each source IP gets `unauthorized-ratelimit-rps` answers per second. Streams
    /// completed a handshake, and loopback sources cannot be spoofed from the network (the
    /// kernel drops them as martians), so neither can aim a reflection and neither is limited.
    pub(crate) fn may_answer_unauthenticated(&mut self, now: Instant, client: &Client) -> bool {
        if client.transport != Transport::Udp
            || crate::limits::normalize(client.remote.ip()).is_loopback()
        {
            return true;
        }
        let ns = self.nanos(now);
        if self.unauth.allow(ns, client.remote.ip()) {
            return true;
        }
        self.drops.count(DropReason::RateLimited);
        false
    }

    /// A client datagram the engine shed unprocessed under overload (counted like any drop).
    pub fn shed(&mut self) {
        self.drop_for(DropReason::Overload);
    }

    /// `n` datagrams the kernel dropped at this shard's full listener queues (the engine reads
    /// the kernel's count). Counted by reason only: tern never received them, so the totals
    /// behind coturn's `turn_packet_dropped` keep coturn's meaning.
    pub fn kernel_dropped(&mut self, n: u64) {
        self.drops.add(DropReason::ListenerQueue, n);
    }

    /// A TLS client refused at the handshake over its certificate (`CA-file`). Counted by
    /// reason only: no packet reached the core.
    pub fn client_certificate_refused(&mut self) {
        self.drops.count(DropReason::ClientCertificate);
    }

    /// Input dropped for `reason`, counted in `drops` and in the matching `Counters` total.
    #[inline]
    pub(crate) fn drop_for(&mut self, reason: DropReason) -> Output {
        self.drops.count(reason);
        if reason.is_malformed() {
            self.counters.malformed += 1;
        } else {
            self.counters.dropped += 1;
        }
        Output::Nothing
    }

    /// Counts per reason (see [`DropReason`]).
    pub fn drops(&self) -> &Drops {
        &self.drops
    }

    #[inline]
    pub(crate) fn send_client(&mut self, via: Via, to: SocketAddr, data: Span, n: usize) -> Output {
        self.counters.client_tx_packets += 1;
        self.counters.client_tx_bytes += n as u64;
        Output::Client { via, to, data }
    }

    #[inline]
    pub(crate) fn send_peer(
        &mut self,
        relay: RelayId,
        to: SocketAddr,
        (data, n): (Span, usize),
        dont_fragment: bool,
    ) -> Output {
        self.counters.peer_tx_packets += 1;
        self.counters.peer_tx_bytes += n as u64;
        Output::Peer {
            relay,
            to,
            data,
            dont_fragment,
        }
    }

    /// A transaction id for a Data indication: splitmix64 over a per-shard secret seed.
    #[inline]
    pub(crate) fn next_tid(&mut self) -> [u8; 12] {
        let a = self.splitmix();
        let b = self.splitmix();
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&a.to_le_bytes());
        tid[8..].copy_from_slice(&b.to_le_bytes()[..4]);
        tid
    }

    pub(crate) fn splitmix(&mut self) -> u64 {
        self.tid_state = self.tid_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.tid_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn decode_reason(e: DecodeError) -> DropReason {
    match e {
        DecodeError::TooShort => DropReason::Truncated,
        DecodeError::NotStun => DropReason::NotStun,
        DecodeError::BadCookie => DropReason::BadCookie,
        DecodeError::BadLength | DecodeError::Misaligned | DecodeError::AttrOverflow => {
            DropReason::BadLength
        }
        DecodeError::BadFingerprint => DropReason::BadFingerprint,
    }
}
