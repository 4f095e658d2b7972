//! The portable I/O engine (epoll through `mio`): binds the listeners, runs one thread per shard,
//! and feeds datagrams and stream frames to the sans-IO core (design.md, "Threads and shards").

mod batch;
mod clock;
mod error;
mod interfaces;
mod listen;
mod relay;
mod select;
mod shard;
mod slab;
mod sockets;
mod stream;
mod token;
#[cfg(target_os = "linux")]
mod uring;

pub use error::EngineError;
pub use select::EngineKind;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Interest, Poll, Waker};
use tracing::{info, warn};

use crate::config::Config;
use crate::turn::{self, Settings, Shared, Transport};
use listen::{Listeners, ShardSockets, Transports};
use relay::{Relays, Reservations};
use shard::{Listener, Shard};
use token::Source;

/// A running server: every listener bound, one thread per shard.
pub struct Server {
    listeners: Vec<(Transport, SocketAddr)>,
    stop: Arc<AtomicBool>,
    shards: Vec<(Waker, JoinHandle<()>)>,
    /// io_uring shards (they notice `stop` within their bounded wait).
    rings: Vec<JoinHandle<()>>,
    engine: EngineKind,
}

/// What a portable shard is built from.
struct Context<'a> {
    stop: &'a Arc<AtomicBool>,
    settings: &'a Arc<Settings>,
    shared: &'a Arc<Shared>,
    reservations: &'a Arc<Reservations>,
    addrs: &'a [SocketAddr],
}

impl Context<'_> {
    /// Starts one portable (epoll) shard thread on `sockets`, drawing relay ports from `share`.
    fn portable(
        &self,
        index: usize,
        sockets: ShardSockets,
        share: (u16, u16),
    ) -> Result<(Waker, JoinHandle<()>), EngineError> {
        let poll = Poll::new().map_err(io_error("creating a poll"))?;
        let waker = Waker::new(poll.registry(), Source::Waker.token())
            .map_err(io_error("creating a waker"))?;
        let (udp, tcp) = register(&poll, sockets, self.addrs)?;
        let relays = Relays::new(
            poll.registry()
                .try_clone()
                .map_err(io_error("cloning the poll registry"))?,
            share,
            Arc::clone(self.reservations),
            seed()?,
        );
        let core = turn::Shard::new(Arc::clone(self.settings), Arc::clone(self.shared), index);
        let stop = Arc::clone(self.stop);
        // The shard's batch buffers hold raw pointers for recvmmsg: built on its own thread.
        let thread = std::thread::Builder::new()
            .name(format!("tern-shard-{index}"))
            .spawn(move || Shard::new(index, core, poll, udp, tcp, relays, stop).run())
            .map_err(io_error("starting a shard thread"))?;
        Ok((waker, thread))
    }
}

impl Server {
    /// Binds every listener (UDP + TCP per listening address and shard, SO_REUSEPORT), starts one
    /// thread per shard, returns once all are bound (the readiness point). With io_uring (see
    /// `select`), UDP runs on one ring per shard and TCP on stream shards of the portable engine.
    pub fn start(cfg: &Config) -> Result<Server, EngineError> {
        let choice = select::choose(cfg.io_engine)?;
        let shards = shard_count(cfg);
        let bound = bind_listeners(cfg, shards)?;
        let settings =
            Arc::new(Settings::from_config(cfg, &bound.addrs).map_err(EngineError::Settings)?);
        let shared = Arc::new(Shared::new(random_key()?));
        let reservations = Arc::new(Reservations::default());
        let mut server = Server {
            listeners: listener_list(cfg, &bound.addrs),
            stop: Arc::new(AtomicBool::new(false)),
            shards: Vec::with_capacity(shards),
            rings: Vec::new(),
            engine: choice.kind(),
        };
        let ctx = Context {
            stop: &server.stop,
            settings: &settings,
            shared: &shared,
            reservations: &reservations,
            addrs: &bound.addrs,
        };
        match choice {
            select::Choice::Epoll(_) => {
                for (index, sockets) in bound.shards.into_iter().enumerate() {
                    let share = relay::share(cfg.min_port, cfg.max_port, shards, index);
                    server.shards.push(ctx.portable(index, sockets, share)?);
                }
            }
            #[cfg(target_os = "linux")]
            select::Choice::Uring(features, _) => {
                // Rings take the first half of the port range, stream shards the second.
                let streams = !cfg.no_tcp;
                let parts = if streams { 2 * shards } else { shards };
                for (index, sockets) in bound.shards.into_iter().enumerate() {
                    let share = relay::share(cfg.min_port, cfg.max_port, parts, index);
                    let listeners = sockets.udp.into_iter().zip(bound.addrs.iter().copied());
                    server.rings.push(uring::spawn(uring::ShardSetup {
                        index,
                        core: turn::Shard::new(Arc::clone(&settings), Arc::clone(&shared), index),
                        listeners: listeners.collect(),
                        ports: relay::Ports::new(share, Arc::clone(&reservations), seed()?),
                        features,
                        stop: Arc::clone(&server.stop),
                    })?);
                    if streams {
                        let tcp_only = ShardSockets {
                            udp: Vec::new(),
                            tcp: sockets.tcp,
                        };
                        let stream_index = shards + index;
                        let share = relay::share(cfg.min_port, cfg.max_port, parts, stream_index);
                        server
                            .shards
                            .push(ctx.portable(stream_index, tcp_only, share)?);
                    }
                }
            }
        }
        for (transport, addr) in &server.listeners {
            info!("listening on {} {addr}", error::name(*transport));
        }
        info!("I/O engine: {}", choice.describe(shards, !cfg.no_tcp));
        Ok(server)
    }

    /// Every transport address listened on (one entry per address and transport, not per shard).
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.listeners
    }

    /// How many shard threads run.
    pub fn shard_count(&self) -> usize {
        self.shards.len() + self.rings.len()
    }

    /// Which engine runs the UDP listeners and relay sockets.
    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Signals every shard and waits for its thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        for (waker, _) in &self.shards {
            // A failed wake is covered by the shard's bounded sleep.
            let _ = waker.wake();
        }
        let rings = self.rings.drain(..);
        for thread in self.shards.drain(..).map(|(_, t)| t).chain(rings) {
            if thread.join().is_err() {
                warn!("a shard thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn shard_count(cfg: &Config) -> usize {
    match cfg.relay_threads {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Listening addresses from the config, or every interface address; an interface address that
/// cannot be bound (e.g. an IPv6 address still in duplicate address detection) is skipped.
fn bind_listeners(cfg: &Config, shards: usize) -> Result<Listeners, EngineError> {
    let auto = cfg.listening_ips.is_empty();
    let mut ips: Vec<IpAddr> = if auto {
        interfaces::local_addresses().map_err(io_error("listing interface addresses"))?
    } else {
        cfg.listening_ips.clone()
    };
    let want = Transports {
        udp: !cfg.no_udp,
        tcp: !cfg.no_tcp,
    };
    loop {
        match listen::bind(&ips, cfg.listening_port, shards, want) {
            Err(EngineError::Bind { addr, source, .. })
                if auto && ips.len() > 1 && source.kind() == io::ErrorKind::AddrNotAvailable =>
            {
                warn!("skipping interface address {}: {source}", addr.ip());
                ips.retain(|ip| *ip != addr.ip());
            }
            other => return other,
        }
    }
}

fn listener_list(cfg: &Config, addrs: &[SocketAddr]) -> Vec<(Transport, SocketAddr)> {
    let udp = addrs
        .iter()
        .filter(|_| !cfg.no_udp)
        .map(|a| (Transport::Udp, *a));
    let tcp = addrs
        .iter()
        .filter(|_| !cfg.no_tcp)
        .map(|a| (Transport::Tcp, *a));
    udp.chain(tcp).collect()
}

type Registered = (
    Vec<Listener<mio::net::UdpSocket>>,
    Vec<Listener<mio::net::TcpListener>>,
);

/// Moves one shard's listeners into mio and registers them with its poll.
fn register(
    poll: &Poll,
    sockets: ShardSockets,
    addrs: &[SocketAddr],
) -> Result<Registered, EngineError> {
    let mut udp = Vec::new();
    for (i, (socket, addr)) in sockets.udp.into_iter().zip(addrs).enumerate() {
        let mut socket = mio::net::UdpSocket::from_std(socket);
        poll.registry()
            .register(&mut socket, Source::Udp(i).token(), Interest::READABLE)
            .map_err(io_error("registering a UDP listener"))?;
        udp.push(Listener {
            socket,
            addr: *addr,
        });
    }
    let mut tcp = Vec::new();
    for (i, (socket, addr)) in sockets.tcp.into_iter().zip(addrs).enumerate() {
        let mut socket = mio::net::TcpListener::from_std(socket);
        poll.registry()
            .register(
                &mut socket,
                Source::TcpListener(i).token(),
                Interest::READABLE,
            )
            .map_err(io_error("registering a TCP listener"))?;
        tcp.push(Listener {
            socket,
            addr: *addr,
        });
    }
    Ok((udp, tcp))
}

/// A seed for a shard's port choice.
fn seed() -> Result<u64, EngineError> {
    getrandom::u64().map_err(|e| EngineError::Io {
        what: "reading random bytes",
        source: io::Error::other(e.to_string()),
    })
}

/// The per-process secret for stateless nonces and reservation tokens.
fn random_key() -> Result<[u8; 32], EngineError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| EngineError::Io {
        what: "reading random bytes",
        source: io::Error::other(e.to_string()),
    })?;
    Ok(key)
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> EngineError {
    move |source| EngineError::Io { what, source }
}
