//! Latencies in an HDR histogram (three significant digits, so a percentile is off by under
//! 0.1%, in fixed memory whatever the number of samples). Values are plain integers (the caller's
//! unit); the `_duration` forms record and report microseconds.

use std::time::Duration;

#[derive(Clone)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Default for Histogram {
    fn default() -> Self {
        // Auto-resizing with three significant digits cannot fail to construct.
        let mut h = hdrhistogram::Histogram::new(3).expect("3 significant digits are valid");
        h.auto(true);
        Histogram(h)
    }
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        // Auto-resizing records any value; a failure to grow keeps the sample at the top.
        if self.0.record(v).is_err() {
            self.0.saturating_record(v);
        }
    }

    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: &Histogram) {
        // Both auto-resize, so adding never runs out of range.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn max(&self) -> u64 {
        self.0.max()
    }

    pub fn mean(&self) -> f64 {
        self.0.mean()
    }

    /// The value at quantile `q` (0..=1), 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.value_at_quantile(q.clamp(0.0, 1.0))
    }

    pub fn quantile_duration(&self, q: f64) -> Duration {
        Duration::from_micros(self.quantile(q))
    }

    pub fn max_duration(&self) -> Duration {
        Duration::from_micros(self.max())
    }

    /// `p50 1.20ms p99 3.40ms max 9.90ms (n=N)`, of microsecond samples.
    pub fn summary(&self) -> String {
        format!(
            "p50 {} p99 {} max {} (n={})",
            ms(self.quantile_duration(0.5)),
            ms(self.quantile_duration(0.99)),
            ms(self.max_duration()),
            self.count()
        )
    }
}

/// A duration as milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::default();
        assert_eq!((h.quantile(0.5), h.count()), (0, 0));
        for v in 1..=10_000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.002, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.002, "{p99}");
        // The max is its bucket's top: within the same 0.1%.
        assert!(h.max().abs_diff(10_000) <= 10, "{}", h.max());
        assert_eq!(h.count(), 10_000);
        assert!((h.mean() - 5000.5).abs() < 5.0);
    }

    #[test]
    fn durations_are_microseconds_and_slow_samples_count() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record_duration(Duration::from_micros(us * 100));
        }
        let p50 = h.quantile_duration(0.5).as_micros() as f64;
        assert!((p50 - 5000.0).abs() < 10.0, "{p50}");
        h.record_duration(Duration::from_secs(5));
        let max = h.max_duration().as_secs_f64();
        assert!((max - 5.0).abs() < 0.01, "{max}");
        assert_eq!(h.quantile_duration(1.0), h.max_duration());
        let mut all = Histogram::default();
        all.merge(&h);
        assert_eq!(all.count(), 101);
        assert!(h.summary().ends_with("(n=101)"), "{}", h.summary());
    }
}
