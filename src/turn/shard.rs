//! One shard's TURN state machine (RFC 8656): the entry points the engine calls, dispatch of each
//! input, and expiry. Requests live in `request.rs` and `allocate.rs`, the data path in `relay.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::io::{Client, Counters, Output, RelayId, RelayIo, Span, Via, HEADROOM};
use super::report::Report;
use super::reservation::{Reservations, Token};
use super::response::Responder;
use super::settings::Settings;
use super::shared::Shared;
use super::table::{Handle, Table};
use super::timer::Wheel;
use crate::stun::{channel, Class, Message, Method};

#[derive(Clone, Copy, Debug)]
pub(crate) enum TimerKey {
    Alloc(Handle),
    Token(Token),
}

/// One shard's protocol state: allocations, permissions, channels and their timers.
pub struct Shard {
    pub(crate) settings: Arc<Settings>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    pub(crate) table: Table,
    pub(crate) wheel: Wheel<TimerKey>,
    pub(crate) reservations: Reservations,
    /// Reused by `handle_timeout`.
    due: Vec<(u64, TimerKey)>,
    pub(crate) counters: Counters,
    pub(crate) report: Report,
    /// State of the generator for Data indication transaction ids.
    tid_state: u64,
}

impl Shard {
    pub fn new(settings: Arc<Settings>, shared: Arc<Shared>, index: usize) -> Shard {
        let secret = shared.token_secret();
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&secret[24..32]);
        Shard {
            settings,
            shared,
            index,
            table: Table::default(),
            wheel: Wheel::new(),
            reservations: Reservations::default(),
            due: Vec::new(),
            counters: Counters::ZERO,
            report: Report::default(),
            tid_state: u64::from_le_bytes(seed) ^ (index as u64),
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
        io: &mut dyn RelayIo,
    ) -> Output {
        self.counters.client_rx_packets += 1;
        self.counters.client_rx_bytes += len as u64;
        let Some(packet) = buf.get(HEADROOM..HEADROOM.saturating_add(len)) else {
            self.counters.malformed += 1;
            return Output::Nothing;
        };
        match packet.first() {
            Some(&b) if channel::is_channel_data(b) => {
                self.channel_from_client(now, client, packet)
            }
            Some(&b) if b & 0xC0 == 0 => {
                self.stun_from_client(now, unix, client, packet, scratch, io)
            }
            _ => {
                self.counters.malformed += 1;
                Output::Nothing
            }
        }
    }

    fn stun_from_client(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        packet: &[u8],
        scratch: &mut [u8],
        io: &mut dyn RelayIo,
    ) -> Output {
        let Ok(msg) = Message::parse(packet) else {
            self.counters.malformed += 1;
            return Output::Nothing;
        };
        match msg.class() {
            Class::Request => {}
            Class::Indication if msg.method() == Method::SEND => {
                return self.send_indication(now, client, &msg);
            }
            // Binding indications are keep-alives (RFC 8489 §6.3.2): nothing to answer.
            Class::Indication if msg.method() == Method::BINDING => return Output::Nothing,
            _ => {
                self.counters.dropped += 1;
                return Output::Nothing;
            }
        }
        let r = Responder::new(
            scratch,
            &msg,
            self.settings.software,
            self.settings.fingerprint,
        );
        let written = if msg.method() == Method::BINDING {
            self.binding(&msg, client, r)
        } else {
            self.request(now, unix, client, &msg, r, io)
        };
        match written {
            Some(n) => self.send_client(client.via, client.remote, Span::Scratch(n), n),
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

    /// Expire what is due at `now`; relay sockets of expired allocations are closed through `io`.
    pub fn handle_timeout(&mut self, now: Instant, io: &mut dyn RelayIo) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now, &mut due);
        for (tick, key) in due.drain(..) {
            match key {
                TimerKey::Alloc(handle) => self.allocation_timer(now, handle, tick, io),
                TimerKey::Token(token) => {
                    if let Some(addr) = self.reservations.expire(&token, now) {
                        io.release_port(addr);
                    }
                }
            }
        }
        self.due = due;
    }

    fn allocation_timer(&mut self, now: Instant, handle: Handle, tick: u64, io: &mut dyn RelayIo) {
        let Some(alloc) = self.table.resolve(handle) else {
            return;
        };
        if alloc.timer != Some(tick) {
            return;
        }
        alloc.timer = None;
        if alloc.expires <= now {
            self.deallocate(handle.slot, io);
        } else {
            alloc.sweep(now);
            self.schedule(handle.slot);
        }
    }

    /// A stream connection closed: its allocations end.
    pub fn handle_stream_closed(&mut self, via: Via, io: &mut dyn RelayIo) {
        if let Via::Stream(conn) = via {
            if let Some(slot) = self.table.find_stream(conn) {
                self.deallocate(slot, io);
            }
        }
    }

    /// When `handle_timeout` must be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Replaces the settings (reload): new requests use them; existing allocations keep the key
    /// they were created with, their relays and their lifetimes.
    pub fn set_settings(&mut self, settings: Arc<Settings>) {
        self.settings = settings;
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
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

    pub(crate) fn deallocate(&mut self, slot: u32, io: &mut dyn RelayIo) {
        if let Some(alloc) = self.table.remove(slot) {
            for relay in alloc.relays() {
                io.close_relay(relay.id);
            }
            self.shared.release(&alloc.quota_user);
            self.counters.allocations = self.table.len() as u64;
            self.allocation_removed(alloc);
        }
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
        data: Span,
        n: usize,
    ) -> Output {
        self.counters.peer_tx_packets += 1;
        self.counters.peer_tx_bytes += n as u64;
        Output::Peer { relay, to, data }
    }

    #[inline]
    pub(crate) fn drop_packet(&mut self) -> Output {
        self.counters.dropped += 1;
        Output::Nothing
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

    fn splitmix(&mut self) -> u64 {
        self.tid_state = self.tid_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.tid_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
