//! The fleet as the core sees it (the server's docs/fleet.md): a node among others that share
//! allocation quotas, publish their load for redirects and their `external-ip` mappings for
//! relaying between nodes. The core asks through [`FleetView`] and never blocks on it: an
//! answer not in yet parks the request, as a user database lookup does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Who asks: one Allocate request, by its client and transaction id.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Ask {
    pub client: SocketAddr,
    pub tid: [u8; 12],
}

/// One allocation counted in the fleet. Neither `Clone` nor `Copy`: [`Fleet::release`] takes
/// it, so an allocation is released once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a fleet lease must be given back to Fleet::release"]
pub struct Lease(u64);

/// What an Allocate gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted in the fleet (or admitted under `fleet-redis-down=open`, counted once Redis is
    /// back).
    Granted(Lease),
    /// The user holds `user-quota` allocations across the fleet (486).
    UserQuota,
    /// The fleet holds `total-quota` allocations (486).
    TotalQuota,
    /// Redis cannot be reached under `fleet-redis-down=closed` (508).
    Unavailable,
    /// Asked: park the request; the shard is woken when the answer is in.
    Pending,
}

/// What the node publishes about its load, read by the engine at every beat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub allocations: u64,
    /// The allocations it takes at most (`total-quota`, else its file-descriptor ceiling); 0
    /// when unknown.
    pub capacity: u64,
    pub draining: bool,
    /// Bytes per second relayed (to clients and to peers) over the last beat.
    pub bps: u64,
    /// `bps-capacity`; 0 when unlimited.
    pub bps_capacity: u64,
}

/// Another live node, as it published itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub load: Load,
    /// Its UDP/TCP listeners as clients reach them (`external-ip` applied).
    pub listen: Vec<SocketAddr>,
    /// Its TLS listeners as clients reach them.
    pub tls: Vec<SocketAddr>,
    /// (public, private) relay addresses (`external-ip`).
    pub relay: Vec<(IpAddr, IpAddr)>,
    /// Its relay port range.
    pub ports: (u16, u16),
}

impl Node {
    /// Allocations per unit of capacity (allocations alone when the capacity is unknown), for
    /// choosing the least loaded node.
    fn fill(&self) -> f64 {
        let n = self.load.allocations as f64;
        if self.load.capacity == 0 {
            n
        } else {
            n / self.load.capacity as f64
        }
    }

    /// At its allocation capacity, or relaying its whole `bps-capacity`.
    pub fn full(&self) -> bool {
        let l = &self.load;
        (l.capacity != 0 && l.allocations >= l.capacity)
            || (l.bps_capacity != 0 && l.bps >= l.bps_capacity)
    }
}

/// Another node's relay address: a peer naming `public` on a port of `ports` is sent to
/// `private`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerNode {
    pub public: IpAddr,
    pub private: IpAddr,
    pub ports: (u16, u16),
}

/// The least full node that takes allocations.
pub fn least_loaded(nodes: &[Node]) -> Option<Node> {
    nodes
        .iter()
        .filter(|n| !n.load.draining && !n.full() && !n.listen.is_empty())
        .min_by(|a, b| a.fill().total_cmp(&b.fill()))
        .cloned()
}

impl Lease {
    /// The lease numbered `n` by the fleet that grants it (0: admitted uncounted).
    pub fn new(n: u64) -> Lease {
        Lease(n)
    }

    pub fn number(&self) -> u64 {
        self.0
    }
}

/// The fleet behind the core: implemented by the server's Redis-backed fleet thread. Every
/// method answers at once from memory.
pub trait FleetView: Send + Sync {
    /// Whether Allocates are counted against fleet-wide quotas (`fleet-quotas`).
    fn counts_quotas(&self) -> bool;
    /// Counts one allocation of `user` against the fleet's quotas, or says why not; `Pending`
    /// the first time `ask` is seen (park the request and run it again when shard `shard` is
    /// woken).
    fn admit(
        &self,
        ask: Ask,
        user: &str,
        user_quota: u32,
        total_quota: u32,
        shard: usize,
    ) -> Admission;
    /// Gives a lease back.
    fn release(&self, lease: Lease);
    /// The other live nodes.
    fn nodes(&self) -> Vec<Node>;
    /// The other nodes' relay addresses and their generation.
    fn peers(&self) -> (u64, Arc<Vec<PeerNode>>);
    /// The current generation of [`FleetView::peers`].
    fn generation(&self) -> u64;
}
