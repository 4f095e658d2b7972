//! Limits on what clients may do: the peer-address policy (RFC 8656 §21, "Security
//! Considerations", and coturn's allowed/denied-peer-ip), later quotas and rate limits.

mod peer;
mod range;

pub use peer::{PeerPolicy, Refusal};
pub use range::{normalize, Range};
