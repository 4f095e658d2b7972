//! Limits on what clients may do: the peer-address policy (RFC 8656 §21, "Security
//! Considerations", and coturn's allowed/denied-peer-ip), allocation quotas, bandwidth buckets
//! and the rate limit on answers to unauthenticated senders.

mod bucket;
mod capacity;
mod peer;
mod quota;
mod range;
mod ratelimit;

pub use bucket::{nanos_since, TokenBucket, BURST_MS, MIN_BURST};
pub use capacity::{Capacity, CapacityShare, MAX_CHUNK};
pub use peer::{internal_range, PeerPolicy, Refusal};
pub use quota::{QuotaExceeded, QuotaTicket, Quotas};
pub use range::{normalize, Range};
pub use ratelimit::{SourceRateLimit, DEFAULT_PER_SECOND, SLOTS};
