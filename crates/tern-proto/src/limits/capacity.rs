//! `bps-capacity`: one bandwidth budget for the whole server, shared by every shard without an
//! atomic per packet.
//!
//! Why not a fixed share (capacity / shards) per shard: the kernel spreads clients by hash, not
//! by load, so one shard can carry most of the heavy flows and would be cut at 1/N of the
//! capacity while the others idle. Why not one atomic bucket hit by every packet: that puts a
//! contended cache line on the relay path of every core. Instead a global GCRA (one `AtomicU64`,
//! lock-free) hands out chunks of bytes, and each shard spends its chunk locally: one atomic
//! operation per chunk (16 KiB, about a dozen video packets), exact long-run rate, and at most
//! `shards × chunk` bytes held back in shards beyond the burst.

use std::sync::atomic::{AtomicU64, Ordering};

use super::bucket::{clamp_u32, TokenBucket};

const NANOS_PER_S: u64 = 1_000_000_000;

/// The largest chunk a shard takes at once.
pub const MAX_CHUNK: u64 = 16 * 1024;

/// The server-wide budget. Share it with `Arc`; every shard's time must count from the same
/// epoch (one `Instant` taken by the engine before starting the shards). The rate can change
/// while shards spend (a reload): it is one atomic, read with the budget, so a packet sees either
/// the old rate or the new one, never a mix; the burst and the chunk follow from it.
#[derive(Debug)]
pub struct Capacity {
    /// Bytes per second; 0 means unlimited.
    rate: AtomicU64,
    /// GCRA "theoretical arrival time": when the budget will be full again, in ns.
    tat: AtomicU64,
}

impl Capacity {
    /// `rate_bytes_per_s` is `bps-capacity`; 0 means unlimited. The burst is
    /// [`TokenBucket::default_burst`] of the rate; a chunk is at most an eighth of it.
    pub fn new(rate_bytes_per_s: u64) -> Capacity {
        Capacity {
            rate: AtomicU64::new(u64::from(clamp_u32(rate_bytes_per_s))),
            tat: AtomicU64::new(0),
        }
    }

    /// A new `bps-capacity` (SIGHUP), in force for the next chunk every shard takes. Bytes
    /// already in the shards' purses (at most a chunk each) are spent at the old grant.
    pub fn set_rate(&self, rate_bytes_per_s: u64) {
        let rate = u64::from(clamp_u32(rate_bytes_per_s));
        if self.rate.swap(rate, Ordering::AcqRel) != rate {
            // The time owed was counted at the old rate: the new budget starts full.
            self.tat.store(0, Ordering::Release);
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate() == 0
    }

    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Bytes a shard takes from the global budget at once.
    pub fn chunk(&self) -> u64 {
        (burst(self.rate()) / 8).clamp(1, MAX_CHUNK)
    }

    /// Whether the budget is spent at `now_ns`: not one more chunk fits within the burst, so
    /// traffic already runs at the capacity.
    pub fn is_spent(&self, now_ns: u64) -> bool {
        let rate = self.rate();
        if rate == 0 {
            return false;
        }
        let tat = self.tat.load(Ordering::Acquire);
        let after = tat.max(now_ns).saturating_add(cost_ns(self.chunk(), rate));
        after - now_ns > cost_ns(burst(rate), rate)
    }

    /// Takes `bytes` from the budget at `now_ns` if they fit within the burst.
    pub fn try_take(&self, now_ns: u64, bytes: u64) -> bool {
        let rate = self.rate();
        if rate == 0 {
            return true;
        }
        let cost = cost_ns(bytes, rate);
        let tau_ns = cost_ns(burst(rate), rate);
        self.tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let after = tat.max(now_ns).saturating_add(cost);
                (after - now_ns <= tau_ns).then_some(after)
            })
            .is_ok()
    }
}

/// The burst tolerance in bytes at `rate` (see [`TokenBucket::default_burst`]).
fn burst(rate: u64) -> u64 {
    u64::from(TokenBucket::default_burst(clamp_u32(rate)))
}

/// Nanoseconds of `rate` that `bytes` use, rounded up so rounding never grants extra bytes.
fn cost_ns(bytes: u64, rate: u64) -> u64 {
    if rate == 0 {
        return 0;
    }
    let ns = (u128::from(bytes) * u128::from(NANOS_PER_S)).div_ceil(u128::from(rate));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// One shard's purse of bytes taken from a [`Capacity`]. 8 bytes, no heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityShare {
    bytes: u64,
}

impl CapacityShare {
    pub const fn new() -> CapacityShare {
        CapacityShare { bytes: 0 }
    }

    /// Whether a packet of `bytes` may pass at `now_ns`; spends from the purse and refills it
    /// from `cap` a chunk at a time.
    pub fn allow(&mut self, cap: &Capacity, now_ns: u64, bytes: usize) -> bool {
        if cap.is_unlimited() {
            return true;
        }
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if let Some(left) = self.bytes.checked_sub(bytes) {
            self.bytes = left;
            return true;
        }
        let need = bytes - self.bytes;
        // Near the limit a whole chunk may not fit while the packet alone does.
        for take in [need.max(cap.chunk()), need] {
            if cap.try_take(now_ns, take) {
                self.bytes = self.bytes + take - bytes;
                return true;
            }
        }
        false
    }

    /// Fills the purse from `cap` toward `want` bytes and returns how many of them may pass at
    /// `now_ns` (at most `want`), without spending them: a stream relay (RFC 6062) reads at most
    /// that much instead of dropping, then spends what it read with [`CapacityShare::allow`],
    /// which the purse then covers.
    pub fn reserve(&mut self, cap: &Capacity, now_ns: u64, want: u64) -> u64 {
        if cap.is_unlimited() {
            return want;
        }
        if self.bytes < want {
            let need = want - self.bytes;
            // Near the limit a chunk may fit where the whole want does not.
            for take in [need.max(cap.chunk()), need, cap.chunk().min(need)] {
                if cap.try_take(now_ns, take) {
                    self.bytes += take;
                    break;
                }
            }
        }
        self.bytes.min(want)
    }

    /// Bytes held in this shard's purse.
    pub fn held(&self) -> u64 {
        self.bytes
    }
}
