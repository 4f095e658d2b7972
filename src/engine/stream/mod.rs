//! Stream clients and TCP relaying: TCP and TLS client connections (RFC 8656 §3.1, §12.5; RFC
//! 8489 §6.2), their limits and deadlines, and RFC 6062 TCP relay allocations. Each shard owns
//! its connections; the same sans-IO core serves them as it serves UDP.

mod conn;
mod guard;
mod handoff;
mod listen;
mod serve;
mod tcp_relay;

pub(crate) use conn::{Conn, Layer, SendError, MAX_FRAME};
pub(crate) use guard::{Admission, Deadlines};
pub(crate) use handoff::Handoff;
pub(crate) use listen::{bind_tls, TlsListeners};
pub(crate) use tcp_relay::TcpRelays;

use std::sync::Arc;
use std::time::Instant;

use super::gso::Train;
use super::slab::Slab;
use super::tls::Tls;
use super::token::MAX_ID;

/// Bytes read from a socket per call, into the shard's one scratch buffer.
const READ_CHUNK: usize = 16 * 1024;

/// What every shard's stream side shares.
pub(crate) struct StreamShared {
    pub(crate) tls: Option<Arc<Tls>>,
    pub(crate) admission: Admission,
    pub(crate) deadlines: Deadlines,
    pub(crate) handoff: Handoff,
}

/// What a connection accepted on one listener may speak.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Accept {
    /// TLS, told by the first byte.
    pub(crate) tls: bool,
    /// Plain TCP.
    pub(crate) plain: bool,
}

/// One shard's stream state.
pub(crate) struct Streams {
    pub(crate) conns: Slab<Conn>,
    /// Connections the last sweep found past a deadline and not yet closed, closed a bounded
    /// number per loop turn (`CLOSES_PER_TURN`).
    expired: Vec<usize>,
    pub(crate) shared: Arc<StreamShared>,
    pub(crate) tcp: TcpRelays,
    /// Per TCP listener index (the shard's `tcp` list): what its connections may speak.
    pub(crate) accept: Vec<Accept>,
    chunk: Box<[u8]>,
    next_sweep: Instant,
    /// Spliced pairs over their budget (`max-bps`, `bps-capacity`): when to pump client data
    /// connection `.1` again. Nothing is read from the paused side meanwhile.
    paused: Vec<(Instant, usize)>,
    /// Connections with frames queued since their last write (`Conn::send`), written by
    /// `Shard::flush_streams` after each source the shard serves.
    pub(crate) unflushed: Vec<usize>,
    /// One write buffer kept between flushes and lent to the connection being written to
    /// (`Conn::borrow_buffer`), so that coalescing writes neither allocates per frame nor
    /// leaves a buffer with every connection that was sent something.
    pub(crate) spare: Vec<u8>,
    /// The datagrams to peers of the ChannelData frames read from one connection, sent together
    /// (`serve.rs`, `process_frames`).
    pub(crate) train: Train,
}

impl Streams {
    pub(crate) fn new(
        shared: Arc<StreamShared>,
        tcp: TcpRelays,
        accept: Vec<Accept>,
        now: Instant,
        gso: bool,
    ) -> Streams {
        Streams {
            conns: Slab::new(MAX_ID),
            expired: Vec::new(),
            shared,
            tcp,
            accept,
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
            next_sweep: now,
            paused: Vec::new(),
            unflushed: Vec::new(),
            spare: Vec::new(),
            train: Train::new(gso),
        }
    }

    /// When the earliest paused pair resumes.
    pub(crate) fn next_resume(&self) -> Option<Instant> {
        self.paused.iter().map(|&(at, _)| at).min()
    }

    /// The starting layer of a connection accepted on TCP listener `i`.
    fn layer_for(&self, i: usize) -> Layer {
        let accept = self.accept.get(i).copied().unwrap_or(Accept {
            tls: false,
            plain: true,
        });
        if accept.tls && self.shared.tls.is_some() {
            Layer::Detect {
                plain: accept.plain,
            }
        } else {
            Layer::Plain
        }
    }

    /// Whether connections past their deadlines are still waiting to be closed: the shard
    /// turns again at once instead of sleeping.
    pub(crate) fn closing(&self) -> bool {
        !self.expired.is_empty()
    }
}
