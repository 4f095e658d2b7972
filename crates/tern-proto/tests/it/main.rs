//! The protocol core, tested without sockets: each module drives `tern_proto` through the
//! shard harness (`turn_harness`) or calls its parts directly.

mod auth_credentials;
mod auth_no_alloc;
mod auth_nonce;
mod auth_sha256;
mod fuzz_regressions;
mod limits_bucket;
mod limits_quota;
mod limits_ratelimit;
mod pair;
mod peer_policy;
mod stun_vectors;
mod turn_addresses;
mod turn_binding;
mod turn_core;
mod turn_data;
mod turn_fast;
mod turn_harness;
mod turn_icmp;
mod turn_limits;
mod turn_malformed;
mod turn_reservation;
mod turn_tcp_relay;
