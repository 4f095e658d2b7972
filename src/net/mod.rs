//! The host's own addresses: listing its interface addresses, and what the wildcards
//! `0.0.0.0` and `::` stand for in `listening-ip` and `relay-ip` (coturn binds each address
//! separately, so a reply leaves from the address the client reached).
//!
//! Listing is I/O and belongs to the engine and the configuration checks; [`expand`] and
//! [`is_local`] are pure, so the sans-IO core may use them on a list it was handed.

mod interfaces;

pub use interfaces::{local_addresses, named_addresses};
pub use tern_proto::addrs::{expand, is_local};
