//! The TURN protocol core (RFC 8656), sans-IO. PLACEHOLDER: the types in `io.rs` are the contract
//! with the engines; `Shard` below is replaced by the real state machine.

mod io;

pub use io::*;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;

/// Everything a shard needs that comes from the configuration; rebuilt on reload.
#[derive(Debug)]
pub struct Settings {}

impl Settings {
    /// `listeners`: every transport address the server listens on (UDP, TCP and TLS), used by the
    /// peer policy to refuse relaying into the server's own control ports.
    pub fn from_config(_cfg: &Config, _listeners: &[SocketAddr]) -> Result<Settings, String> {
        Ok(Settings {})
    }
}

/// State shared by every shard (control plane only): quotas, the nonce key.
#[derive(Debug, Default)]
pub struct Shared {}

/// One shard's protocol state.
pub struct Shard {
    _settings: Arc<Settings>,
}

impl Shard {
    pub fn new(settings: Arc<Settings>, _shared: Arc<Shared>, _index: usize) -> Shard {
        Shard {
            _settings: settings,
        }
    }

    /// A datagram or stream frame from a client. The bytes are `buf[HEADROOM..HEADROOM + len]`;
    /// `buf` may be longer (room for padding). A response is written into `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_client(
        &mut self,
        _now: Instant,
        _unix: u64,
        _client: &Client,
        _buf: &mut [u8],
        _len: usize,
        _scratch: &mut [u8],
        _io: &mut dyn RelayIo,
    ) -> Output {
        Output::Nothing
    }

    /// A datagram that arrived on relay socket `relay` from `from`, at `buf[HEADROOM..HEADROOM+len]`.
    pub fn handle_peer(
        &mut self,
        _now: Instant,
        _relay: RelayId,
        _from: SocketAddr,
        _buf: &mut [u8],
        _len: usize,
    ) -> Output {
        Output::Nothing
    }

    /// Expire what is due at `now`; relay sockets of expired allocations are closed through `io`.
    pub fn handle_timeout(&mut self, _now: Instant, _io: &mut dyn RelayIo) {}

    /// A stream connection closed: its allocations end.
    pub fn handle_stream_closed(&mut self, _via: Via, _io: &mut dyn RelayIo) {}

    /// When `handle_timeout` must be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        None
    }

    pub fn counters(&self) -> &Counters {
        &COUNTERS_ZERO
    }
}

static COUNTERS_ZERO: Counters = Counters::ZERO;
