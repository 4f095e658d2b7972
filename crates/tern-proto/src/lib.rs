//! tern's protocol core (STUN, RFC 8489; TURN, RFC 8656; TCP relays, RFC 6062), sans-IO: it
//! opens no socket, starts no thread and reads no clock. The server (the `tern` crate) feeds it
//! packets and the time, and carries out what it asks for; the same core runs in the fuzz
//! targets, the benchmarks and the in-memory tests.
//!
//! - [`stun`]: messages, attributes, integrity and framing;
//! - [`turn`]: the shard that owns allocations, permissions, channels and timers;
//! - [`limits`]: the peer policy, quotas, bandwidth buckets and rate limits;
//! - [`auth`]: long-term and REST credentials, nonces, and the face of a user database;
//! - [`client`]: the other side, a sans-IO STUN/TURN client for tools and tests;
//! - [`fleet`]: the face of the fleet of nodes (shared quotas, redirects, relaying between
//!   nodes);
//! - [`options`]: what the operator configures, as plain values with documented defaults.
#![forbid(unsafe_code)]

pub mod addrs;
pub mod auth;
pub mod client;
pub mod fleet;
pub mod limits;
pub mod options;
pub mod stun;
pub mod turn;
