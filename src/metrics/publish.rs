//! Per-shard counter slots: each shard copies its plain counters into its own slot once per
//! event-loop turn; a scrape sums the slots. No shared read-modify-write on the packet path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use super::histogram::{Histogram, HistogramSlot, HistogramSnapshot};
use super::users::UserTrafficSink;
use crate::fastpath::FastPath;
use crate::fleet::FleetStats;
use crate::turn::{Counters, DropReason, Transport};

/// Converts between [`Counters`] and a flat array in both directions from one field list. The
/// patterns name every field without `..`, so adding a field to `Counters` fails to compile here
/// instead of silently going unpublished.
macro_rules! counter_fields {
    ($($f:ident),* $(,)?) => {
        const FIELDS: usize = [$(stringify!($f)),*].len();

        fn to_array(c: &Counters) -> [u64; FIELDS] {
            let Counters { $($f),* } = *c;
            [$($f),*]
        }

        fn from_array(a: [u64; FIELDS]) -> Counters {
            let [$($f),*] = a;
            Counters { $($f),* }
        }
    };
}

counter_fields!(
    client_rx_packets,
    client_rx_bytes,
    client_tx_packets,
    client_tx_bytes,
    peer_rx_packets,
    peer_rx_bytes,
    peer_tx_packets,
    peer_tx_bytes,
    malformed,
    dropped,
    binding_requests,
    binding_responses,
    binding_errors,
    unauthenticated_401,
    allocations,
    redirects,
    fast_to_peer_packets,
    fast_to_peer_bytes,
    fast_to_client_packets,
    fast_to_client_bytes,
);

/// Live allocations by the transport the client used (coturn's `turn_total_allocations{type}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocationCounts {
    pub udp: u64,
    pub tcp: u64,
    pub tls: u64,
    pub dtls: u64,
}

impl AllocationCounts {
    /// Every allocation of a shard that serves one transport only (a UDP shard).
    pub fn only(transport: Transport, n: u64) -> AllocationCounts {
        let mut a = AllocationCounts::default();
        *a.get_mut(transport) = n;
        a
    }

    pub fn get_mut(&mut self, transport: Transport) -> &mut u64 {
        match transport {
            Transport::Udp => &mut self.udp,
            Transport::Tcp => &mut self.tcp,
            Transport::Tls => &mut self.tls,
        }
    }

    /// `(label, count)` in the order coturn names them.
    pub fn labelled(&self) -> [(&'static str, u64); 4] {
        [
            ("UDP", self.udp),
            ("TCP", self.tcp),
            ("TLS", self.tls),
            ("DTLS", self.dtls),
        ]
    }

    fn add(&mut self, o: &AllocationCounts) {
        self.udp = self.udp.wrapping_add(o.udp);
        self.tcp = self.tcp.wrapping_add(o.tcp);
        self.tls = self.tls.wrapping_add(o.tls);
        self.dtls = self.dtls.wrapping_add(o.dtls);
    }
}

/// Per-shard values that `Counters` does not carry (yet); the shard owns them as plain integers
/// and publishes them with [`ShardSlot::publish_extra`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardExtra {
    pub allocations: AllocationCounts,
    /// 401 answers suppressed by the unauthenticated-response rate limit.
    pub unauthenticated_401_dropped: u64,
    /// Input dropped, per [`DropReason`] (in `DropReason::ALL` order).
    pub drops: [u64; DropReason::COUNT],
}

/// Which engine a slot belongs to, for the `kind` label of per-shard metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardKind {
    Udp,
    Stream,
}

impl ShardKind {
    pub fn label(self) -> &'static str {
        match self {
            ShardKind::Udp => "udp",
            ShardKind::Stream => "stream",
        }
    }
}

/// One shard's published values. Exactly one thread (the shard's) stores into a slot, so plain
/// Relaxed stores suffice: no read-modify-write, no lock prefix. Aligned so that two shards'
/// slots never share a cache line.
#[repr(align(128))]
#[derive(Debug)]
pub struct ShardSlot {
    kind: ShardKind,
    counters: [AtomicU64; FIELDS],
    allocations: [AtomicU64; 4],
    unauthenticated_401_dropped: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    setup_latency: HistogramSlot,
}

impl ShardSlot {
    fn new(kind: ShardKind) -> ShardSlot {
        ShardSlot {
            kind,
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            allocations: std::array::from_fn(|_| AtomicU64::new(0)),
            unauthenticated_401_dropped: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            setup_latency: HistogramSlot::default(),
        }
    }

    /// Called by the owning shard once per event-loop turn (or less often).
    pub fn publish(&self, c: &Counters) {
        for (slot, v) in self.counters.iter().zip(to_array(c)) {
            slot.store(v, Relaxed);
        }
    }

    pub fn publish_extra(&self, e: &ShardExtra) {
        let a = e.allocations;
        for (slot, v) in self.allocations.iter().zip([a.udp, a.tcp, a.tls, a.dtls]) {
            slot.store(v, Relaxed);
        }
        self.unauthenticated_401_dropped
            .store(e.unauthenticated_401_dropped, Relaxed);
        for (slot, v) in self.drops.iter().zip(e.drops) {
            slot.store(v, Relaxed);
        }
    }

    /// The shard's allocation-setup latency histogram (see [`Histogram`]).
    pub fn publish_setup_latency(&self, h: &Histogram) {
        self.setup_latency.publish(h);
    }

    pub fn kind(&self) -> ShardKind {
        self.kind
    }

    /// What this shard last published.
    pub fn counters(&self) -> Counters {
        from_array(std::array::from_fn(|i| self.counters[i].load(Relaxed)))
    }

    pub fn extra(&self) -> ShardExtra {
        let [udp, tcp, tls, dtls] = std::array::from_fn(|i| self.allocations[i].load(Relaxed));
        ShardExtra {
            allocations: AllocationCounts {
                udp,
                tcp,
                tls,
                dtls,
            },
            unauthenticated_401_dropped: self.unauthenticated_401_dropped.load(Relaxed),
            drops: std::array::from_fn(|i| self.drops[i].load(Relaxed)),
        }
    }
}

/// Every shard's slot, plus the per-user traffic table. Shared by `Arc` between the shards
/// (each touching only its own slot) and the metrics server (reading all of them).
#[derive(Debug)]
pub struct Registry {
    slots: Vec<Arc<ShardSlot>>,
    users: Arc<UserTrafficSink>,
    fleet: OnceLock<Arc<FleetStats>>,
    fast_path: OnceLock<Arc<FastPath>>,
}

impl Registry {
    /// Slots `0..shards` are UDP shards, then `shards..shards + stream_shards` stream shards.
    pub fn new(shards: usize, stream_shards: usize) -> Registry {
        let udp = (0..shards).map(|_| ShardKind::Udp);
        let stream = (0..stream_shards).map(|_| ShardKind::Stream);
        Registry {
            slots: udp
                .chain(stream)
                .map(|k| Arc::new(ShardSlot::new(k)))
                .collect(),
            users: Arc::new(UserTrafficSink::default()),
            fleet: OnceLock::new(),
            fast_path: OnceLock::new(),
        }
    }

    /// The slot of UDP shard `i`, for that shard's thread to keep.
    pub fn slot(&self, i: usize) -> Option<Arc<ShardSlot>> {
        self.slots
            .iter()
            .filter(|s| s.kind == ShardKind::Udp)
            .nth(i)
            .cloned()
    }

    /// The slot of stream shard `i`.
    pub fn stream_slot(&self, i: usize) -> Option<Arc<ShardSlot>> {
        self.slots
            .iter()
            .filter(|s| s.kind == ShardKind::Stream)
            .nth(i)
            .cloned()
    }

    pub fn slots(&self) -> &[Arc<ShardSlot>] {
        &self.slots
    }

    /// Where shards send per-(realm, user) traffic, at control-plane rate.
    pub fn users(&self) -> &Arc<UserTrafficSink> {
        &self.users
    }

    /// Exposes the fleet's counters (`redis-statsdb`).
    pub fn set_fleet(&self, stats: Arc<FleetStats>) {
        let _ = self.fleet.set(stats);
    }

    pub fn fleet(&self) -> Option<&Arc<FleetStats>> {
        self.fleet.get()
    }

    /// Exposes what the kernel fast path's XDP program relayed.
    pub fn set_fast_path(&self, path: Arc<FastPath>) {
        let _ = self.fast_path.set(path);
    }

    pub fn fast_path(&self) -> Option<&Arc<FastPath>> {
        self.fast_path.get()
    }

    /// The sum of every shard's last published counters.
    pub fn snapshot(&self) -> Counters {
        let mut sum = [0u64; FIELDS];
        for slot in &self.slots {
            for (s, v) in sum.iter_mut().zip(to_array(&slot.counters())) {
                *s = s.wrapping_add(v);
            }
        }
        from_array(sum)
    }

    /// The sum of every shard's last published extra values.
    pub fn extra(&self) -> ShardExtra {
        let mut sum = ShardExtra::default();
        for slot in &self.slots {
            let e = slot.extra();
            sum.allocations.add(&e.allocations);
            sum.unauthenticated_401_dropped = sum
                .unauthenticated_401_dropped
                .wrapping_add(e.unauthenticated_401_dropped);
            for (s, v) in sum.drops.iter_mut().zip(e.drops) {
                *s = s.wrapping_add(v);
            }
        }
        sum
    }

    /// The sum of every shard's allocation-setup latency histogram.
    pub fn setup_latency(&self) -> HistogramSnapshot {
        let mut sum = HistogramSnapshot::default();
        for slot in &self.slots {
            sum.add(&slot.setup_latency.load());
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_through_a_slot_to_its_own_place() {
        let distinct = from_array(std::array::from_fn(|i| (i as u64 + 1) * 1000));
        let reg = Registry::new(1, 1);
        let (a, b) = (reg.slot(0), reg.stream_slot(0));
        let (a, b) = (a.expect("udp slot"), b.expect("stream slot"));
        a.publish(&distinct);
        assert_eq!(a.counters(), distinct);
        b.publish(&Counters {
            peer_tx_bytes: 7,
            ..Counters::ZERO
        });
        let sum = reg.snapshot();
        assert_eq!(sum.peer_tx_bytes, distinct.peer_tx_bytes + 7);
        assert_eq!(sum.allocations, distinct.allocations);
        assert_eq!(b.kind(), ShardKind::Stream);
    }

    #[test]
    fn allocation_counts_follow_the_client_transport() {
        let a = AllocationCounts::only(Transport::Tls, 3);
        assert_eq!(
            a.labelled(),
            [("UDP", 0), ("TCP", 0), ("TLS", 3), ("DTLS", 0)]
        );
    }
}
