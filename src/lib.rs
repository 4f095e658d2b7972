//! tern: a TURN/STUN relay server (RFC 8489, RFC 8656) that reads coturn's configuration.
//!
//! The protocol core is the `tern_proto` crate (re-exported here as `stun`, `turn`, `limits`
//! and the pure half of `auth`): it performs no I/O and never reads a clock. `engine` drives it
//! with real sockets; docs/architecture.md draws the whole picture.

pub mod auth;
pub mod config;
pub mod engine;
pub mod fastpath;
pub mod fleet;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod tools;

pub use tern_proto::{client, limits, options, stun, turn};
