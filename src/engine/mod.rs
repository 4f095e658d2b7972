//! The portable I/O engine (epoll through `mio`): binds the listeners, runs one thread per shard,
//! and feeds datagrams and stream frames to the sans-IO core (design.md, "Threads and shards").

mod batch;
mod clock;
mod control;
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
use crate::metrics::{Registry, UserTrafficBatch};
use crate::turn::{self, Settings, Shared, Transport};
use control::{Control, SettingsSlot};
use listen::{Listeners, ShardSockets, Transports};
use relay::{Relays, Reservations};
use shard::{Listener, Shard};
use token::Source;

/// A running server: every listener bound, one thread per shard.
pub struct Server {
    listeners: Vec<(Transport, SocketAddr)>,
    stop: Arc<AtomicBool>,
    shards: Vec<(Waker, JoinHandle<()>)>,
    registry: Arc<Registry>,
    shared: Arc<Shared>,
    settings: Arc<SettingsSlot>,
    /// The bound listening addresses, which settings are derived from (also on reload).
    addrs: Vec<SocketAddr>,
    /// io_uring shards (they see `stop` and reloaded settings within their bounded wait).
    rings: Vec<JoinHandle<()>>,
    engine: EngineKind,
}

/// What every shard is built from; relay ports come in `parts` slices of `range`.
struct Plan<'a> {
    settings: &'a Arc<Settings>,
    range: (u16, u16),
    parts: usize,
    reservations: &'a Arc<Reservations>,
    prometheus: bool,
}

impl Plan<'_> {
    fn ports(&self, index: usize) -> Result<relay::Ports, EngineError> {
        let share = relay::share(self.range.0, self.range.1, self.parts, index);
        Ok(relay::Ports::new(
            share,
            Arc::clone(self.reservations),
            seed()?,
        ))
    }
}

impl Server {
    /// Binds every listener (UDP + TCP per listening address and shard, SO_REUSEPORT), starts one
    /// thread per shard, returns once all are bound (the readiness point). With io_uring (see
    /// `select`), UDP runs on one ring per shard and TCP on as many portable stream shards.
    pub fn start(cfg: &Config) -> Result<Server, EngineError> {
        let choice = select::choose(cfg.io_engine)?;
        let shards = shard_count(cfg);
        let bound = bind_listeners(cfg, shards)?;
        let settings =
            Arc::new(Settings::from_config(cfg, &bound.addrs).map_err(EngineError::Settings)?);
        let shared = Arc::new(Shared::new(random_key()?));
        let reservations = Arc::new(Reservations::default());
        let engine = choice.kind();
        let stream_shards = if engine == EngineKind::Uring && !cfg.no_tcp {
            shards
        } else {
            0
        };
        let mut server = Server {
            listeners: listener_list(cfg, &bound.addrs),
            stop: Arc::new(AtomicBool::new(false)),
            shards: Vec::with_capacity(shards + stream_shards),
            registry: Arc::new(Registry::new(shards, stream_shards)),
            shared: Arc::clone(&shared),
            settings: Arc::new(SettingsSlot::new(Arc::clone(&settings))),
            addrs: bound.addrs.clone(),
            rings: Vec::new(),
            engine,
        };
        let plan = Plan {
            settings: &settings,
            range: (cfg.min_port, cfg.max_port),
            parts: shards + stream_shards,
            reservations: &reservations,
            prometheus: cfg.prometheus,
        };
        for (index, sockets) in bound.shards.into_iter().enumerate() {
            match &choice {
                select::Choice::Epoll(_) => {
                    let shard = server.portable(&plan, index, sockets)?;
                    server.shards.push(shard);
                }
                #[cfg(target_os = "linux")]
                select::Choice::Uring(features, _) => {
                    let ShardSockets { udp, tcp } = sockets;
                    let ring = server.ring(&plan, index, udp, *features)?;
                    server.rings.push(ring);
                    if stream_shards > 0 {
                        let tcp_only = ShardSockets {
                            udp: Vec::new(),
                            tcp,
                        };
                        let shard = server.portable(&plan, shards + index, tcp_only)?;
                        server.shards.push(shard);
                    }
                }
            }
        }
        for (transport, addr) in &server.listeners {
            info!("listening on {} {addr}", error::name(*transport));
        }
        info!("I/O engine: {}", choice.describe(shards, stream_shards > 0));
        Ok(server)
    }

    /// Starts one portable (epoll) shard thread on `sockets`.
    fn portable(
        &self,
        plan: &Plan<'_>,
        index: usize,
        sockets: ShardSockets,
    ) -> Result<(Waker, JoinHandle<()>), EngineError> {
        let poll = Poll::new().map_err(io_error("creating a poll"))?;
        let waker = Waker::new(poll.registry(), Source::Waker.token())
            .map_err(io_error("creating a waker"))?;
        let (udp, tcp) = register(&poll, sockets, &self.addrs)?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(io_error("cloning the poll registry"))?;
        let relays = Relays::new(registry, plan.ports(index)?);
        let core = turn::Shard::new(Arc::clone(plan.settings), Arc::clone(&self.shared), index);
        let stop = Arc::clone(&self.stop);
        let control = self.control(index, plan.prometheus)?;
        // The shard's batch buffers hold raw pointers for recvmmsg: built on its own thread.
        let thread = std::thread::Builder::new()
            .name(format!("tern-shard-{index}"))
            .spawn(move || Shard::new(index, core, poll, udp, tcp, relays, stop, control).run())
            .map_err(io_error("starting a shard thread"))?;
        Ok((waker, thread))
    }

    /// Starts one io_uring shard on the UDP listeners `udp`.
    #[cfg(target_os = "linux")]
    fn ring(
        &self,
        plan: &Plan<'_>,
        index: usize,
        udp: Vec<std::net::UdpSocket>,
        features: uring::Features,
    ) -> Result<JoinHandle<()>, EngineError> {
        uring::spawn(uring::ShardSetup {
            index,
            core: turn::Shard::new(Arc::clone(plan.settings), Arc::clone(&self.shared), index),
            listeners: udp.into_iter().zip(self.addrs.iter().copied()).collect(),
            ports: plan.ports(index)?,
            features,
            control: self.control(index, plan.prometheus)?,
            stop: Arc::clone(&self.stop),
        })
    }

    /// Every transport address listened on (one entry per address and transport, not per shard).
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.listeners
    }

    /// Every shard's published counters, for the metrics endpoint.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Live allocations on every shard, as last published (at most one loop turn old).
    pub fn allocations(&self) -> u64 {
        self.registry.snapshot().allocations
    }

    /// Rebuilds the core's settings from `cfg` (users, secrets, realm, limits, peer policy,
    /// lifetimes) and hands them to every shard at its next loop turn. Existing allocations keep
    /// their key and relays. Listening addresses are the ones bound at start.
    pub fn reload(&self, cfg: &Config) -> Result<(), EngineError> {
        let settings = Settings::from_config(cfg, &self.addrs).map_err(EngineError::Settings)?;
        self.settings.replace(Arc::new(settings));
        self.wake();
        Ok(())
    }

    /// Drain mode: new allocations are refused from now on; existing ones continue.
    pub fn drain(&self) {
        self.shared.set_draining(true);
    }

    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    fn control(&self, index: usize, prometheus: bool) -> Result<Control, EngineError> {
        // Stream shards (io_uring engine) are numbered after the UDP shards.
        let udp_shards = self.shard_slots();
        let slot = match index.checked_sub(udp_shards) {
            None => self.registry.slot(index),
            Some(i) => self.registry.stream_slot(i),
        };
        let slot = slot.ok_or(EngineError::Io {
            what: "creating a metrics slot",
            source: io::Error::other("no slot for this shard"),
        })?;
        let users = prometheus.then(|| UserTrafficBatch::new(Arc::clone(self.registry.users())));
        Ok(Control::new(Arc::clone(&self.settings), slot, users))
    }

    /// How many UDP shard slots the registry has.
    fn shard_slots(&self) -> usize {
        (0..)
            .take_while(|&i| self.registry.slot(i).is_some())
            .count()
    }

    fn wake(&self) {
        for (waker, _) in &self.shards {
            // A failed wake is covered by the shard's bounded sleep.
            let _ = waker.wake();
        }
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
        self.wake();
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
