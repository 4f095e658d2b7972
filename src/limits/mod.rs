//! Limits on what clients may do: the peer-address policy (RFC 8656 §21, "Security
//! Considerations", and coturn's allowed/denied-peer-ip), allocation quotas, bandwidth buckets
//! (rate limits on answers to unauthenticated senders: next).

mod bucket;
mod capacity;
mod peer;
mod quota;
mod range;

pub use bucket::{nanos_since, TokenBucket, BURST_MS, MIN_BURST};
pub use capacity::{Capacity, CapacityShare, MAX_CHUNK};
pub use peer::{PeerPolicy, Refusal};
pub use quota::{QuotaExceeded, QuotaTicket, Quotas};
pub use range::{normalize, Range};
