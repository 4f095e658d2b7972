//! The TURN protocol core (RFC 8656), sans-IO: one `Shard` per thread owns its allocations,
//! permissions, channels and timers. It never opens a socket or reads a clock; the engine passes
//! packets, `now` and a `RelayIo` in, and sends the `Output` it gets back (`io.rs`).

mod allocate;
mod allocation;
mod auth_flow;
mod binding;
mod hash;
mod indication;
mod io;
mod relay;
mod report;
mod request;
mod reservation;
mod response;
mod settings;
mod shard;
mod shared;
mod table;
mod timer;

pub use io::*;
pub use report::{Event, EventKind};
pub use settings::Settings;
pub use shard::Shard;
pub use shared::Shared;
