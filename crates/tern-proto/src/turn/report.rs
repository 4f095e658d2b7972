//! What the core reports to its engine at control-plane rate: allocation life-cycle events for
//! the log (RFC 8656 §7: created, refreshed, deleted), live allocations by client transport, and
//! per-allocation traffic for the per-user metrics. The data path only bumps plain integers.

use std::net::SocketAddr;

use super::allocation::Allocation;
use super::io::{FastId, Transport};
use super::shard::Shard;
use super::traffic::Traffic;

/// Events kept between two drains; beyond it events are counted as lost (the engine drains every
/// loop turn, so only a stalled engine loses any).
const MAX_EVENTS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    AllocationCreated,
    AllocationRefreshed,
    AllocationDeleted,
    /// A Binding request answered (logged only with `log-binding`).
    Binding,
    /// An RFC 6062 Connect refused with 403 because the peer is an address of this host; the
    /// first of the allocation only. `named` is what the client sent, `peer` the address it
    /// stands for here (they differ behind `external-ip`).
    TcpOwnAddressRefused {
        named: SocketAddr,
        peer: SocketAddr,
    },
}

/// One thing worth a log line. Never carries a password or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// Empty under `no-auth` and for Binding.
    pub username: Box<str>,
    pub transport: Transport,
    pub client: SocketAddr,
    /// The relayed transport addresses (as advertised to the client): both of a dual
    /// allocation, IPv4 first.
    pub relays: [Option<SocketAddr>; 2],
    /// Seconds granted (created, refreshed); 0 when deleted.
    pub lifetime: u32,
    /// Traffic over the allocation's whole life so far.
    pub traffic: Traffic,
}

/// The shard's reporting state.
#[derive(Debug, Default)]
pub(crate) struct Report {
    events: Vec<Event>,
    events_lost: u64,
    /// Live allocations by client transport: UDP, TCP, TLS.
    live: [u64; 3],
    /// Traffic of deleted allocations not drained yet: (quota user, unreported delta).
    retired: Vec<(Box<str>, Traffic)>,
}

fn index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

/// `a - b`, field by field (wrapping: the counters only grow).
fn minus(a: &Traffic, b: &Traffic) -> Traffic {
    let [x0, x1, x2, x3, x4, x5, x6, x7] = a.fields();
    let [y0, y1, y2, y3, y4, y5, y6, y7] = b.fields();
    Traffic {
        rcvp: x0.wrapping_sub(y0),
        rcvb: x1.wrapping_sub(y1),
        sentp: x2.wrapping_sub(y2),
        sentb: x3.wrapping_sub(y3),
        peer_rcvp: x4.wrapping_sub(y4),
        peer_rcvb: x5.wrapping_sub(y5),
        peer_sentp: x6.wrapping_sub(y6),
        peer_sentb: x7.wrapping_sub(y7),
    }
}

impl Report {
    pub(crate) fn push(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        } else {
            self.events_lost += 1;
        }
    }
}

/// The event for `alloc` (which still exists, or is being removed).
pub(crate) fn allocation_event(kind: EventKind, alloc: &Allocation, lifetime: u32) -> Event {
    Event {
        kind,
        username: alloc.username.clone(),
        transport: alloc.client.transport,
        client: alloc.client.remote,
        relays: alloc.relays.map(|r| r.map(|r| r.advertised)),
        lifetime,
        traffic: alloc.traffic,
    }
}

impl Shard {
    pub(crate) fn binding_event(&mut self, transport: Transport, client: SocketAddr) {
        self.report.push(Event {
            kind: EventKind::Binding,
            username: Box::from(""),
            transport,
            client,
            relays: [None; 2],
            lifetime: 0,
            traffic: Traffic::default(),
        });
    }

    pub(crate) fn allocation_added(&mut self, transport: Transport) {
        if let Some(n) = self.report.live.get_mut(index(transport)) {
            *n += 1;
        }
    }

    /// Bookkeeping for an allocation removed from the table. With `fast`, the fast path still
    /// holds counts of it: the deletion event and the last traffic wait for them
    /// (`Shard::fast_forgotten`).
    pub(crate) fn allocation_removed(&mut self, alloc: Allocation, fast: Option<FastId>) {
        if let Some(n) = self.report.live.get_mut(index(alloc.client.transport)) {
            *n = n.saturating_sub(1);
        }
        let event = allocation_event(EventKind::AllocationDeleted, &alloc, 0);
        let delta = minus(&alloc.traffic, &alloc.reported);
        match fast {
            Some(id) => self.fast_wait(id, alloc.quota_user, event, delta),
            None => self.retired(alloc.quota_user, event, delta),
        }
    }

    /// A deleted allocation's event and its traffic not yet handed to the per-user metrics.
    pub(crate) fn retired(&mut self, quota_user: Box<str>, event: Event, delta: Traffic) {
        self.report.push(event);
        if !delta.is_zero() {
            self.report.retired.push((quota_user, delta));
        }
    }

    /// Hands every event since the last call to `f`, oldest first.
    pub fn drain_events(&mut self, f: &mut dyn FnMut(&Event)) {
        for e in self.report.events.drain(..) {
            f(&e);
        }
    }

    /// Events dropped because nobody drained them.
    pub fn events_lost(&self) -> u64 {
        self.report.events_lost
    }

    /// Live allocations by the transport their client used: (UDP, TCP, TLS).
    pub fn allocations_by_transport(&self) -> [(Transport, u64); 3] {
        let [udp, tcp, tls] = self.report.live;
        [
            (Transport::Udp, udp),
            (Transport::Tcp, tcp),
            (Transport::Tls, tls),
        ]
    }

    /// Hands `f(realm, quota user, traffic since the last call)` for every allocation that moved
    /// data, including those deleted since (call about once a second: it visits every allocation).
    pub fn drain_user_traffic(&mut self, f: &mut dyn FnMut(&str, &str, Traffic)) {
        let realm = self.settings.credentials.realm();
        for (user, delta) in self.report.retired.drain(..) {
            f(realm, &user, delta);
        }
        for alloc in self.table.iter_mut() {
            let delta = minus(&alloc.traffic, &alloc.reported);
            if !delta.is_zero() {
                alloc.reported = alloc.traffic;
                f(realm, &alloc.quota_user, delta);
            }
        }
    }
}
