//! Token bucket for `max-bps` (bytes per second per allocation and direction; RFC 8656 §21.3.3
//! lets a server limit the bandwidth it relays): a packet that does not fit is dropped.
//!
//! Time is nanoseconds since an epoch the caller fixes (see [`nanos_since`]). Tokens are counted
//! in nano-bytes (bytes × 10⁹), so a refill is `elapsed_ns × rate` exactly: no division, no
//! rounding, no drift however small the steps between packets.

use std::time::Instant;

const NANOS_PER_S: u64 = 1_000_000_000;

/// The default burst is this much of a second of the rate.
pub const BURST_MS: u64 = 200;

/// The smallest default burst: two full-size Ethernet packets, so a packet up to 1500 bytes
/// always fits eventually, even under a tiny rate.
pub const MIN_BURST: u32 = 3000;

/// Nanoseconds from `epoch` to `now` (0 if `now` is earlier). u64 nanoseconds last 584 years.
pub fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// One allocation's budget in one direction. 24 bytes, no heap.
///
/// Burst: [`TokenBucket::default_burst`] is `max(rate × 200 ms, 3000 B)`. Over any interval T
/// it lets through at most `burst + rate × T` bytes, and under steady overload at least
/// `rate × T − one packet`, because tokens are only lost when the bucket is full. At
/// 20000 B/s that is a 4000 B burst (three 1200-byte packets): a 5 s average is within +4 % of
/// the rate, and a video keyframe's few back-to-back packets still pass. A smaller burst would
/// drop paced RTP that arrives in clumps of two or three; a one-second burst (coturn's window)
/// would let a 5 s average run 20 % over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// 0 means unlimited. u32 bytes/s reaches 34 Gbit/s.
    rate_bytes_per_s: u32,
    burst_bytes: u32,
    /// Nano-bytes; at most `burst_bytes × 10⁹` < 2⁶³.
    tokens: u64,
    /// Nanoseconds since the epoch at the last refill.
    last: u64,
}

impl TokenBucket {
    /// A full bucket with the default burst. `rate` in bytes/s (the `max-bps` value); 0 means
    /// unlimited, rates above u32::MAX bytes/s (34 Gbit/s) are clamped.
    pub fn new(rate_bytes_per_s: u64, now_ns: u64) -> TokenBucket {
        let rate = clamp_u32(rate_bytes_per_s);
        TokenBucket::with_burst(rate, TokenBucket::default_burst(rate), now_ns)
    }

    /// A full bucket with an explicit burst (bytes). A packet larger than the burst never fits.
    pub fn with_burst(rate_bytes_per_s: u32, burst_bytes: u32, now_ns: u64) -> TokenBucket {
        TokenBucket {
            rate_bytes_per_s,
            burst_bytes,
            tokens: u64::from(burst_bytes) * NANOS_PER_S,
            last: now_ns,
        }
    }

    /// A bucket that allows everything (`max-bps` = 0).
    pub const fn unlimited() -> TokenBucket {
        TokenBucket {
            rate_bytes_per_s: 0,
            burst_bytes: 0,
            tokens: 0,
            last: 0,
        }
    }

    /// `max(rate × BURST_MS, MIN_BURST)`, clamped to u32.
    pub fn default_burst(rate_bytes_per_s: u32) -> u32 {
        let burst = u64::from(rate_bytes_per_s) * BURST_MS / 1000;
        clamp_u32(burst).max(MIN_BURST)
    }

    pub fn rate(&self) -> u32 {
        self.rate_bytes_per_s
    }

    pub fn burst(&self) -> u32 {
        self.burst_bytes
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate_bytes_per_s == 0
    }

    /// Takes `bytes` if they fit at `now_ns` and says whether the packet may pass. A refused
    /// packet takes nothing.
    pub fn allow(&mut self, now_ns: u64, bytes: usize) -> bool {
        if self.is_unlimited() {
            return true;
        }
        self.refill(now_ns);
        let cost = u64::try_from(bytes)
            .unwrap_or(u64::MAX)
            .saturating_mul(NANOS_PER_S);
        if cost <= self.tokens {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Whole bytes that would pass now (u64::MAX when unlimited). A stream relay (RFC 6062)
    /// reads at most this much instead of dropping, then calls [`TokenBucket::allow`].
    pub fn available(&mut self, now_ns: u64) -> u64 {
        if self.is_unlimited() {
            return u64::MAX;
        }
        self.refill(now_ns);
        self.tokens / NANOS_PER_S
    }

    fn refill(&mut self, now_ns: u64) {
        // A clock that steps back earns nothing and does not move `last` back.
        let elapsed = now_ns.saturating_sub(self.last);
        self.last = self.last.max(now_ns);
        let cap = u64::from(self.burst_bytes) * NANOS_PER_S;
        // Saturation is exact here: any saturated value is above the cap (< 2⁶³).
        let earned = elapsed.saturating_mul(u64::from(self.rate_bytes_per_s));
        self.tokens = self.tokens.saturating_add(earned).min(cap);
    }
}

pub(super) fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
