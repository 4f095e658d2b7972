//! tern: a TURN/STUN relay server (RFC 8489, RFC 8656) that reads coturn's configuration.
//!
//! The protocol core (`stun`, `turn`, `auth`, `limits`) performs no I/O and never reads a clock;
//! `engine` drives it with real sockets.

pub mod auth;
pub mod client;
pub mod config;
pub mod engine;
pub mod fleet;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod stun;
pub mod tools;
pub mod turn;
