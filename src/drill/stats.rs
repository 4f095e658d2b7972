//! Latency histograms (fixed 10 µs buckets, so millions of samples cost no memory growth) and
//! the RSS series the drills print.

use std::time::Duration;

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 200_000; // 2 s; slower samples land in the last bucket

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = usize::try_from(us / BUCKET_US)
            .unwrap_or(usize::MAX)
            .min(BUCKETS - 1);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1), rounded up to the bucket's upper edge.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank && i < BUCKETS - 1 {
                return Duration::from_micros((i as u64 + 1) * BUCKET_US);
            }
        }
        Duration::from_micros(self.max_us)
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// `p50 1.2ms p99 3.4ms max 9.9ms (n)`.
    pub fn summary(&self) -> String {
        format!(
            "p50 {} p99 {} max {} (n={})",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.max()),
            self.total
        )
    }
}

/// A duration as milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// Percent change from `base` to `now`.
pub fn growth_pct(base: u64, now: u64) -> f64 {
    if base == 0 {
        return 0.0;
    }
    (now as f64 - base as f64) * 100.0 / base as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_samples() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us * 100));
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), Duration::from_micros(5010));
        assert_eq!(h.quantile(0.99), Duration::from_micros(9910));
        assert_eq!(h.max(), Duration::from_millis(10));
        h.record(Duration::from_secs(5));
        assert_eq!(h.max(), Duration::from_secs(5));
        assert_eq!(h.quantile(1.0), Duration::from_secs(5));
    }

    #[test]
    fn growth_is_relative_to_the_base() {
        assert_eq!(growth_pct(100, 105), 5.0);
        assert_eq!(growth_pct(100, 90), -10.0);
        assert_eq!(growth_pct(0, 90), 0.0);
    }
}
