//! The I/O half of tern's TURN client (`tern_proto::client` is the sans-IO half): blocking UDP and
//! stream clients with timeouts and retransmissions, echo peers, the one latency histogram, and
//! the `tern` process under test, which the tests, the drills (`tern-drill`) and the load
//! generator (`tern-load`) share.
// Clients and peers time real packets: the clock ban is for the protocol core.
#![allow(clippy::disallowed_methods)]

pub mod histogram;
pub mod peers;
pub mod process;
pub mod stream;
pub mod udp;

pub use histogram::Histogram;
pub use peers::EchoPeers;
pub use stream::StreamClient;
pub use udp::UdpClient;

use tern_proto::client::TidGen;

/// A transaction id generator seeded from the OS: ids unique across processes and runs.
pub fn tid_gen() -> TidGen {
    let mut seed = [0u8; 8];
    // Uniqueness, not secrecy: a failed read leaves a zero seed, still unique within the run.
    let _ = getrandom::fill(&mut seed);
    TidGen::new(u64::from_le_bytes(seed))
}
