//! Per-source limit on answers to unauthenticated senders (401/438 challenges, Binding
//! responses), so tern cannot be used to reflect traffic at a spoofed victim (RFC 8489 §16.1.2,
//! RFC 8656 §21.1), with no state per source.
//!
//! coturn's `unauthorized-ratelimit` semantics: at most N answers per source IP (any port) per
//! one-second window (`unauthorized-ratelimit-rps`, default 10); the rest are dropped unanswered.
//! Here the counters live in a fixed table indexed by a keyed hash of the IP: memory does not
//! depend on the number of sources. Each source maps to one slot in each of two rows and is
//! judged by the smaller count (a count-min sketch): sources that share a slot can only be
//! limited sooner, and a source is only cut short by a flood it does not take part in if the
//! flood's sources also hold its slot in the other row.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use super::range::normalize;

/// coturn's default for `unauthorized-ratelimit-rps`.
pub const DEFAULT_PER_SECOND: u32 = 100;

/// Slots per row (a power of two).
pub const SLOTS: usize = 4096;

const ROWS: usize = 2;

const NANOS_PER_S: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The one-second window `count` belongs to.
    window: u32,
    count: u32,
}

/// One shard's limiter. It holds server-wide because the engine steers every port of a source IP
/// to one shard (`engine/steer.rs`); where the kernel refuses that program (logged at start-up)
/// the kernel spreads a source's ports over the shards and each shard grants this budget.
/// 64 KiB of counters, allocated once.
#[derive(Debug)]
pub struct SourceRateLimit {
    per_second: u32,
    hasher: RandomState,
    slots: Box<[[Slot; SLOTS]; ROWS]>,
    refused: u64,
}

impl SourceRateLimit {
    /// At most `per_second` answers per source IP per second; 0 means unlimited.
    pub fn new(per_second: u32) -> SourceRateLimit {
        SourceRateLimit {
            per_second,
            hasher: RandomState::new(),
            slots: Box::new([[Slot::default(); SLOTS]; ROWS]),
            refused: 0,
        }
    }

    /// Bytes of counters, the same for any number of sources.
    pub const fn table_bytes() -> usize {
        ROWS * SLOTS * std::mem::size_of::<Slot>()
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// A new budget (SIGHUP), in force from the next answer; counts already made in the current
    /// second stay, so a lower budget cannot be dodged by reloading.
    pub fn set_per_second(&mut self, per_second: u32) {
        self.per_second = per_second;
    }

    /// Answers refused so far (for a metric).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether an unauthenticated answer may go to `ip` at `now_ns` (nanoseconds since the
    /// shard's epoch); counts it if so. IPv4-mapped IPv6 forms count as the IPv4 address.
    pub fn allow(&mut self, now_ns: u64, ip: IpAddr) -> bool {
        if self.per_second == 0 {
            return true;
        }
        // Windows wrap after 136 years of uptime; a wrapped window only resets a count early.
        let window = (now_ns / NANOS_PER_S) as u32;
        let hash = self.hasher.hash_one(normalize(ip));
        let index = [hash as usize % SLOTS, (hash >> 32) as usize % SLOTS];
        let mut least = u32::MAX;
        for (row, &i) in self.slots.iter_mut().zip(&index) {
            let slot = &mut row[i];
            if slot.window != window {
                *slot = Slot { window, count: 0 };
            }
            least = least.min(slot.count);
        }
        if least >= self.per_second {
            self.refused += 1;
            return false;
        }
        for (row, &i) in self.slots.iter_mut().zip(&index) {
            row[i].count = row[i].count.saturating_add(1);
        }
        true
    }
}
