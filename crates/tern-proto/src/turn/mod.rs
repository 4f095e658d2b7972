//! The TURN protocol core (RFC 8656), sans-IO: one `Shard` per thread owns its allocations,
//! permissions, channels and timers. It never opens a socket or reads a clock; the engine passes
//! packets, `now` and a `Binder` in, sends the `Output` it gets back, and carries out the
//! `Command`s it polls (`io.rs`).

mod allocate;
mod allocation;
mod auth_flow;
mod binding;
mod drops;
mod fast;
mod fleet;
mod hash;
mod indication;
mod io;
mod parked;
mod redirect;
mod relay;
mod report;
mod request;
mod reservation;
mod response;
mod settings;
mod shard;
mod shared;
mod table;
mod tcp_relay;
mod timer;
mod traffic;

pub use drops::{DropReason, Drops};
pub use io::*;
pub use parked::Parked;
pub use report::{Event, EventKind};
pub use settings::Settings;
pub use shard::Shard;
pub use shared::Shared;
pub use tcp_relay::{connection_bind_target, Flow, Grant};
pub use traffic::Traffic;
