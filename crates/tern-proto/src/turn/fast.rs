//! The core's side of an engine's fast path (docs/fast-path.md): which channels the engine may
//! relay without calling the shard, kept in step with the channels, permissions, relays and
//! lifetimes the requests and timers change, and the traffic the engine relayed that way folded
//! back into the allocations' counters, so that logs, quotas and metrics see every byte.
//!
//! The core stays the only authority: it says which routes exist and until when
//! ([`Command::FastOpen`] carries the earliest expiry of everything the route depends on, so the
//! engine stops relaying on time even between two timer ticks), and takes them back
//! ([`Command::FastClose`]) when anything ends them. Everything else, every STUN message,
//! Send and Data indications, peers without a channel, stream clients and allocations under a
//! bandwidth limit, goes through the shard as before.

use std::time::Instant;

use super::allocation::{family_of, Allocation};
use super::io::{Command, FastChannel, FastId, FastTraffic, Transport, Via};
use super::report::Event;
use super::shard::Shard;
use super::table::Handle;
use super::traffic::Traffic;
use crate::stun::channel;

/// Bits of a [`FastId`] above the slot and the generation: the shard's index.
const SHARD_SHIFT: u32 = 56;
/// Bits of the slot's generation kept in a [`FastId`].
const GENERATION_MASK: u64 = 0xFF_FFFF;

/// A deleted allocation whose deletion event waits for the fast path's last counts.
#[derive(Debug)]
pub(crate) struct Retiring {
    id: FastId,
    quota_user: Box<str>,
    event: Event,
    delta: Traffic,
}

impl Shard {
    /// Turns the fast path on or off for routes made from now on (the engine calls it once it
    /// knows whether its fast path loaded). Off, the core sends no fast-path command.
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_on = on;
    }

    pub(crate) fn fast_id(&self, handle: Handle) -> FastId {
        let generation = u64::from(handle.generation) & GENERATION_MASK;
        FastId((self.index as u64) << SHARD_SHIFT | generation << 32 | u64::from(handle.slot))
    }

    fn fast_handle(&self, id: FastId) -> Option<Handle> {
        if (id.0 >> SHARD_SHIFT) as usize != self.index {
            return None;
        }
        let slot = id.0 as u32;
        let handle = self.table.handle(slot)?;
        let generation = u64::from(handle.generation) & GENERATION_MASK;
        (generation == (id.0 >> 32) & GENERATION_MASK).then_some(handle)
    }

    /// Brings the engine's routes for the allocation in `slot` in line with its live channels:
    /// FastOpen for a new route or one whose expiry moved, FastClose for one that ended. Called
    /// after every request on the allocation and at its timer.
    pub(crate) fn fast_sync(&mut self, now: Instant, slot: u32) {
        let Some(handle) = self.table.handle(slot) else {
            return;
        };
        let id = self.fast_id(handle);
        let capacity_limited = !self.shared.capacity().is_unlimited();
        let on = self.fast_on && !capacity_limited;
        let Some(alloc) = self.table.get_mut(slot) else {
            return;
        };
        let want = if on {
            routes(alloc, id, now)
        } else {
            Vec::new()
        };
        if want.is_empty() && alloc.fast.is_empty() {
            return;
        }
        let old = std::mem::replace(&mut alloc.fast, want.clone());
        alloc.fast_used |= !want.is_empty();
        for gone in old
            .iter()
            .filter(|o| !want.iter().any(|w| same_route(w, o)))
        {
            self.command(Command::FastClose(*gone));
        }
        for new in want.iter().filter(|w| !old.contains(w)) {
            self.command(Command::FastOpen(*new));
        }
    }

    /// After a reload: every allocation's routes in line with the settings and the shared
    /// `bps-capacity` now in force. A capacity set takes the kernel's routes back at once (the
    /// shards count bytes against it, the kernel does not) instead of at each allocation's next
    /// request or timer, minutes later; a capacity lifted gives them back.
    pub fn fast_resync(&mut self, now: Instant) {
        if !self.fast_on {
            return;
        }
        for slot in self.table.slots() {
            self.fast_sync(now, slot);
        }
    }

    /// The allocation being deleted leaves the fast path: its routes close, and when the fast
    /// path ever relayed for it, its deletion event waits for the last counts (`None` then:
    /// the event is kept here).
    pub(crate) fn fast_retire(&mut self, handle: Handle, alloc: &mut Allocation) -> Option<FastId> {
        for route in alloc.fast.drain(..) {
            self.command(Command::FastClose(route));
        }
        if !alloc.fast_used {
            return None;
        }
        let id = self.fast_id(handle);
        self.command(Command::FastForget(id));
        Some(id)
    }

    pub(crate) fn fast_wait(
        &mut self,
        id: FastId,
        quota_user: Box<str>,
        event: Event,
        delta: Traffic,
    ) {
        self.retiring.push(Retiring {
            id,
            quota_user,
            event,
            delta,
        });
    }

    /// Traffic the engine's fast path relayed for allocation `id` since its last report; counts
    /// for an allocation that is gone are dropped (the engine reports the last ones with
    /// `fast_forgotten`).
    pub fn fast_traffic(&mut self, id: FastId, t: FastTraffic) {
        self.fast_count(&t);
        let Some(handle) = self.fast_handle(id) else {
            return;
        };
        if let Some(alloc) = self.table.resolve(handle) {
            add_fast(&mut alloc.traffic, &t);
        }
    }

    /// The last counts of allocation `id`, after `Command::FastForget(id)`: its deletion event
    /// and per-user traffic go out with them.
    pub fn fast_forgotten(&mut self, id: FastId, t: FastTraffic) {
        self.fast_count(&t);
        let Some(i) = self.retiring.iter().position(|r| r.id == id) else {
            return;
        };
        let mut r = self.retiring.swap_remove(i);
        add_fast(&mut r.event.traffic, &t);
        add_fast(&mut r.delta, &t);
        self.retired(r.quota_user, r.event, r.delta);
    }

    fn fast_count(&mut self, t: &FastTraffic) {
        let c = &mut self.counters;
        c.fast_to_peer_packets += t.to_peer_packets;
        c.fast_to_peer_bytes += t.to_peer_bytes;
        c.fast_to_client_packets += t.to_client_packets;
        c.fast_to_client_bytes += t.to_client_bytes;
    }
}

/// The routes `alloc` may have on the fast path now: none for a stream client, a TCP relay or
/// an allocation with a bandwidth limit; one per live channel whose peer is permitted and whose
/// relay, client and peer share one address family (the kernel rewrites headers in place).
fn routes(alloc: &Allocation, id: FastId, now: Instant) -> Vec<FastChannel> {
    let udp = alloc.client.transport == Transport::Udp && matches!(alloc.client.via, Via::Udp(_));
    let unlimited = alloc.budget.to_peer.is_unlimited() && alloc.budget.to_client.is_unlimited();
    if !udp || alloc.tcp || !unlimited || alloc.expires <= now {
        return Vec::new();
    }
    let client = alloc.client;
    alloc
        .live_channels(now)
        .filter(|(_, peer, _)| peer.is_ipv4() == client.remote.is_ipv4())
        .filter_map(|(number, peer, until)| {
            let relay = alloc.relay_for(family_of(peer.ip()))?;
            (relay.expires > now).then_some(FastChannel {
                alloc: id,
                client: client.remote,
                server: client.local,
                relay: relay.addr,
                peer,
                number,
                until: until.min(relay.expires).min(alloc.expires),
                dont_fragment: alloc.dont_fragment,
            })
        })
        .collect()
}

/// The same route, whatever its expiry.
fn same_route(a: &FastChannel, b: &FastChannel) -> bool {
    (a.number, a.peer, a.relay, a.client, a.server)
        == (b.number, b.peer, b.relay, b.client, b.server)
}

/// Fast-path traffic in coturn's directions: the client's datagrams carried the ChannelData
/// header, the peers' did not.
fn add_fast(t: &mut Traffic, f: &FastTraffic) {
    let header = channel::HEADER_LEN as u64;
    let with_headers = |packets: u64, bytes: u64| bytes.wrapping_add(packets.wrapping_mul(header));
    t.add(&Traffic {
        rcvp: f.to_peer_packets,
        rcvb: with_headers(f.to_peer_packets, f.to_peer_bytes),
        peer_sentp: f.to_peer_packets,
        peer_sentb: f.to_peer_bytes,
        peer_rcvp: f.to_client_packets,
        peer_rcvb: f.to_client_bytes,
        sentp: f.to_client_packets,
        sentb: with_headers(f.to_client_packets, f.to_client_bytes),
    });
}
