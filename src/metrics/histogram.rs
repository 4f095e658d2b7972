//! A fixed-bucket latency histogram owned by one shard and published like its counters
//! (Prometheus histogram semantics: cumulative `le` buckets, `_sum`, `_count`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets in microseconds; the implicit last bucket is `+Inf`.
/// Allocation setup spans the request, the relay-socket bind and the answer: from tens of
/// microseconds on an idle shard to tens of milliseconds when a bind stalls.
pub const BUCKET_BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];
const BUCKETS: usize = BUCKET_BOUNDS_US.len();

/// Shard-local: plain integers, updated without atomics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); above the last bound only `count` grows.
    buckets: [u64; BUCKETS],
    sum_us: u64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKET_BOUNDS_US.iter().position(|&b| us <= b) {
            if let Some(b) = self.buckets.get_mut(i) {
                *b = b.wrapping_add(1);
            }
        }
        self.sum_us = self.sum_us.saturating_add(us);
        self.count = self.count.wrapping_add(1);
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The published copy of one shard's [`Histogram`].
#[derive(Debug, Default)]
pub(crate) struct HistogramSlot {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl HistogramSlot {
    pub(crate) fn publish(&self, h: &Histogram) {
        for (slot, v) in self.buckets.iter().zip(h.buckets) {
            slot.store(v, Relaxed);
        }
        self.sum_us.store(h.sum_us, Relaxed);
        self.count.store(h.count, Relaxed);
    }

    pub(crate) fn load(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
            count: self.count.load(Relaxed),
        }
    }
}

/// A histogram summed over shards, ready to render.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    buckets: [u64; BUCKETS],
    sum_us: u64,
    count: u64,
}

impl HistogramSnapshot {
    pub(crate) fn add(&mut self, o: &HistogramSnapshot) {
        for (s, v) in self.buckets.iter_mut().zip(o.buckets) {
            *s = s.wrapping_add(v);
        }
        self.sum_us = self.sum_us.wrapping_add(o.sum_us);
        self.count = self.count.wrapping_add(o.count);
    }

    /// `(upper bound in seconds, cumulative count)` for every finite bucket.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut acc = 0u64;
        BUCKET_BOUNDS_US
            .iter()
            .zip(self.buckets)
            .map(move |(&bound, n)| {
                acc = acc.wrapping_add(n);
                (bound as f64 / 1e6, acc)
            })
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(3));
        let slot = HistogramSlot::default();
        slot.publish(&h);
        let s = slot.load();
        let cum: Vec<(f64, u64)> = s.cumulative().collect();
        assert_eq!(cum.first(), Some(&(0.00005, 1)));
        assert_eq!(cum.get(1), Some(&(0.0001, 2)));
        assert_eq!(cum.last(), Some(&(0.25, 2)));
        assert_eq!(s.count(), 3);
        assert!((s.sum_seconds() - 3.000101).abs() < 1e-9);
    }
}
