//! The portable I/O engine (epoll through `mio`): binds the listeners, runs one thread per shard,
//! and feeds datagrams and stream frames to the sans-IO core (docs/architecture.md, "Threads").

mod batch;
mod clock;
mod control;
mod error;
mod fast;
mod fdlimit;
mod gso;
mod icmp;
mod listen;
mod relay;
mod select;
mod shard;
mod shed;
mod slab;
mod sockets;
mod steer;
mod stream;
mod tls;
mod token;
#[cfg(target_os = "linux")]
mod uring;

pub use error::EngineError;
pub use fdlimit::raise_nofile;
pub use select::EngineKind;
pub(crate) use tls::client_roots;
pub use tls::TlsError;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;

use mio::{Interest, Poll, Waker};
use tracing::{error, info, warn};

use crate::auth::{Resolver, UserLookup};
use crate::config::Config;
use crate::fleet::{self, FleetView};
use crate::metrics::{Registry, UserTrafficBatch};
use crate::net;
use crate::turn::{self, Settings, Shared, Transport};
use control::{Control, SettingsSlot};
use fast::FastRoutes;
use listen::{Listeners, ShardSockets, Transports};
use relay::{Relays, ReservedPorts};
use shard::{EpollWorker, Listener};
use stream::{Accept, Admission, Deadlines, Handoff, StreamShared, Streams, TcpRelays};
use tls::{Setup, Tls};
use token::Source;

/// A running server: every listener bound, one thread per shard.
pub struct Server {
    listeners: Vec<(Transport, SocketAddr)>,
    stop: Arc<AtomicBool>,
    shards: Vec<(Arc<Waker>, JoinHandle<()>)>,
    tls: Option<Arc<Tls>>,
    registry: Arc<Registry>,
    shared: Arc<Shared>,
    settings: Arc<SettingsSlot>,
    /// The bound listening addresses, which settings are derived from (also on reload).
    addrs: Vec<SocketAddr>,
    /// io_uring shards (they see `stop` and reloaded settings within their bounded wait).
    rings: Vec<JoinHandle<()>>,
    engine: EngineKind,
    /// How each shard, by its index, is woken when a user database answer it waits for is in:
    /// given to a new resolver too when a reload names another database.
    answer_wakes: Vec<(usize, AnswerWake)>,
    /// The fleet this node belongs to (`redis-statsdb`); the shards see it through `shared`.
    fleet: Option<Arc<fleet::Fleet>>,
    /// The user database resolver (once per process: a reload that names the same database
    /// keeps it, its thread and its cache); the shards see it through their settings.
    resolver: std::sync::Mutex<Option<Arc<Resolver>>>,
    /// The kernel fast path (`fast-path`), when it loaded; detached when the server drops.
    fast: Option<Arc<crate::fastpath::FastPath>>,
}

/// How long a stopping server waits to withdraw from the fleet (a Redis round trip or two; a
/// Redis that does not answer is left to let the leases lapse).
const FLEET_LEAVE: std::time::Duration = std::time::Duration::from_secs(3);

/// Wakes one shard's loop (see `Server::wake_on_answers`).
type AnswerWake = Arc<dyn Fn() + Send + Sync>;

impl Server {
    /// Binds every listener (UDP + TCP per listening address and shard, SO_REUSEPORT), starts one
    /// thread per shard, returns once all are bound (the readiness point). With io_uring (see
    /// `select`), each shard's UDP sockets go to a ring shard of their own and the portable shard
    /// keeps the streams (TCP, TLS).
    pub fn start(cfg: &Config) -> Result<Server, EngineError> {
        let choice = select::choose(cfg.io_engine)?;
        let rings = choice.kind() == EngineKind::Uring;
        let shards = shard_count(cfg);
        let tls = setup_tls(cfg)?;
        let interfaces = net::local_addresses().map_err(io_error("listing interface addresses"))?;
        let bound = bind_listeners(cfg, shards, &interfaces)?;
        let tls_bound = match &tls {
            Some(_) => {
                let ips: Vec<IpAddr> = bound.addrs.iter().map(SocketAddr::ip).collect();
                Some(stream::bind_tls(&ips, cfg.tls_listening_port, shards)?)
            }
            None => None,
        };
        if cfg.no_udp && cfg.no_tcp && tls_bound.is_none() {
            return Err(EngineError::NoListener);
        }
        let fast = fast::load(cfg, &bound.addrs)?;
        let mut all_addrs = bound.addrs.clone();
        if let Some(t) = &tls_bound {
            all_addrs.extend(t.addrs.iter().copied());
        }
        let resolver = Resolver::from_config(cfg).map_err(EngineError::Settings)?;
        let options = cfg.proto_options();
        let settings = Settings::from_options(&options, &all_addrs, &interfaces)
            .map_err(EngineError::Settings)?
            .with_resolver(resolver.clone().map(|r| r as Arc<dyn UserLookup>));
        for w in settings.warnings() {
            warn!("{w}");
        }
        let settings = Arc::new(settings);
        let shared = Arc::new(Shared::from_options(
            random_key()?,
            &options,
            clock::now().0,
        ));
        let max_streams = plan_descriptors(&shared, shards, all_addrs.len());
        let mut listeners = listener_list(cfg, &bound.addrs);
        if let Some(t) = &tls_bound {
            listeners.extend(t.addrs.iter().map(|a| (Transport::Tls, *a)));
        }
        let mut server = Server {
            listeners,
            stop: Arc::new(AtomicBool::new(false)),
            shards: Vec::with_capacity(shards),
            tls: tls.clone(),
            registry: Arc::new(Registry::new(shards, if rings { shards } else { 0 })),
            shared,
            settings: Arc::new(SettingsSlot::new(Arc::clone(&settings))),
            addrs: all_addrs,
            rings: Vec::new(),
            engine: choice.kind(),
            answer_wakes: Vec::new(),
            fleet: None,
            resolver: std::sync::Mutex::new(resolver),
            fast,
        };
        if let Some(path) = &server.fast {
            server.registry.set_fast_path(Arc::clone(path));
        }
        join_fleet(cfg, &mut server, &settings)?;
        server.start_workers(cfg, &choice, bound, tls_bound, &settings, max_streams)?;
        for (transport, addr) in &server.listeners {
            info!("listening on {} {addr}", error::name(*transport));
        }
        info!("I/O engine: {}", choice.describe(shards, rings));
        Ok(server)
    }

    /// One epoll worker per shard and, with io_uring, one ring beside each: the worker keeps the
    /// streams (TCP, TLS), the ring the shard's UDP listeners.
    fn start_workers(
        &mut self,
        cfg: &Config,
        choice: &select::Choice,
        bound: Listeners,
        tls_bound: Option<stream::TlsListeners>,
        settings: &Arc<Settings>,
        max_streams: Option<u64>,
    ) -> Result<(), EngineError> {
        let shards = bound.shards.len();
        let mut polls = Vec::with_capacity(shards);
        let mut wakers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let poll = Poll::new().map_err(io_error("creating a poll"))?;
            let waker = Waker::new(poll.registry(), Source::Waker.token())
                .map_err(io_error("creating a waker"))?;
            polls.push(poll);
            wakers.push(Arc::new(waker));
        }
        let plan = WorkerPlan {
            cfg,
            shards,
            rings: choice.kind() == EngineKind::Uring,
            gso: choice.gso(),
            settings,
            reservations: Arc::new(ReservedPorts::default()),
            streams: Arc::new(StreamShared {
                tls: self.tls.clone(),
                admission: Admission::new(
                    cfg.stream_connections_per_ip,
                    cfg.stream_ipv6_prefix,
                    max_streams,
                ),
                deadlines: Deadlines::from_config(cfg),
                handoff: Handoff::new(wakers.clone()),
            }),
            listen_addrs: &bound.addrs,
        };
        let mut tls_shards = tls_bound.map(|t| t.shards.into_iter());
        for (index, (sockets, (poll, waker))) in bound
            .shards
            .into_iter()
            .zip(polls.into_iter().zip(wakers))
            .enumerate()
        {
            let (sockets, ring_udp) = if plan.rings {
                let ShardSockets { udp, tcp } = sockets;
                let streams_only = ShardSockets {
                    udp: Vec::new(),
                    tcp,
                };
                (streams_only, udp)
            } else {
                (sockets, Vec::new())
            };
            let tls_sockets = tls_shards.as_mut().and_then(Iterator::next);
            self.spawn_worker(&plan, index, sockets, tls_sockets, poll, waker)?;
            #[cfg(target_os = "linux")]
            if let select::Choice::Uring(features, _) = choice {
                self.spawn_ring(&plan, index, ring_udp, *features)?;
            }
        }
        bound.steering.log();
        Ok(())
    }

    /// Shard `index`'s epoll worker: its listeners (TLS ones after the plain ones), relay
    /// sockets, streams and core, on a thread of its own.
    fn spawn_worker(
        &mut self,
        plan: &WorkerPlan<'_>,
        index: usize,
        sockets: ShardSockets,
        tls_sockets: Option<Vec<std::net::TcpListener>>,
        poll: Poll,
        waker: Arc<Waker>,
    ) -> Result<(), EngineError> {
        let mio_waker = Arc::clone(&waker);
        // A failed wake is covered by the shard's bounded sleep.
        self.wake_on_answers(index, Arc::new(move || drop(mio_waker.wake())));
        let (udp, mut tcp) = register(&poll, sockets, plan.listen_addrs)?;
        let plain = Accept {
            tls: plan.streams.tls.is_some(),
            plain: true,
        };
        let mut accept = vec![plain; tcp.len()];
        let tls_addrs = &self.addrs[plan.listen_addrs.len()..];
        for (socket, addr) in tls_sockets.into_iter().flatten().zip(tls_addrs) {
            let mut socket = mio::net::TcpListener::from_std(socket);
            poll.registry()
                .register(
                    &mut socket,
                    Source::TcpListener(tcp.len()).token(),
                    Interest::READABLE,
                )
                .map_err(io_error("registering a TLS listener"))?;
            tcp.push(Listener {
                socket,
                addr: *addr,
            });
            accept.push(Accept {
                tls: true,
                plain: !plan.cfg.no_tcp,
            });
        }
        let registry = || {
            poll.registry()
                .try_clone()
                .map_err(io_error("cloning the poll registry"))
        };
        let share = plan.stream_share(index);
        let ports = relay::Ports::new(share, Arc::clone(&plan.reservations), random_seed()?);
        let relays = Relays::new(registry()?, ports);
        let now = clock::now().0;
        let streams = Streams::new(
            Arc::clone(&plan.streams),
            TcpRelays::new(registry()?, share, random_seed()?, now),
            accept,
            now,
            plan.gso,
        );
        let core = self.core(plan, index);
        let stop = Arc::clone(&self.stop);
        let control = self.control(index, plan.rings, plan.cfg.prometheus)?;
        // The shard's batch buffers hold raw pointers for recvmmsg: built on its own thread.
        let thread = std::thread::Builder::new()
            .name(format!("tern-shard-{index}"))
            .spawn(move || {
                EpollWorker::new(index, core, poll, udp, tcp, relays, streams, stop, control).run()
            })
            .map_err(io_error("starting a shard thread"))?;
        self.shards.push((waker, thread));
        Ok(())
    }

    /// The io_uring ring beside shard `index`'s worker, carrying its UDP listeners.
    #[cfg(target_os = "linux")]
    fn spawn_ring(
        &mut self,
        plan: &WorkerPlan<'_>,
        index: usize,
        udp: Vec<std::net::UdpSocket>,
        features: uring::Features,
    ) -> Result<(), EngineError> {
        let ring_index = plan.shards + index;
        let waker = Arc::new(uring::Waker::new().map_err(io_error("creating a ring waker"))?);
        let ring_waker = Arc::clone(&waker);
        self.wake_on_answers(ring_index, Arc::new(move || ring_waker.wake()));
        let share = relay::share(plan.cfg.min_port, plan.cfg.max_port, plan.shards, index);
        let ring = uring::spawn(uring::ShardSetup {
            index: ring_index,
            core: self.core(plan, ring_index),
            listeners: udp
                .into_iter()
                .zip(plan.listen_addrs.iter().copied())
                .collect(),
            ports: relay::Ports::new(share, Arc::clone(&plan.reservations), random_seed()?),
            features,
            control: self.control(index, false, plan.cfg.prometheus)?,
            stop: Arc::clone(&self.stop),
            waker,
        })?;
        self.rings.push(ring);
        Ok(())
    }

    /// The protocol core of shard `index`, told whether the fast path is there.
    fn core(&self, plan: &WorkerPlan<'_>, index: usize) -> turn::Shard {
        let mut core = turn::Shard::new(Arc::clone(plan.settings), Arc::clone(&self.shared), index);
        core.set_fast_path(self.fast.is_some());
        core
    }

    /// Whether TLS listeners run.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads `cert` and `pkey` again (SIGUSR2, SIGHUP): new TLS connections use them, established
    /// ones keep theirs. Err when TLS is off or the files cannot be loaded (the old ones stay).
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Err(TlsError(String::from("TLS is off: nothing to reload"))),
        }
    }

    /// Every transport address listened on (one entry per address and transport, not per shard).
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.listeners
    }

    /// The state every shard shares (drain mode, quotas, the bandwidth budget), for the health
    /// and load endpoints.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Every shard's published counters, for the metrics endpoint.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Live allocations on every shard, as last published (at most one loop turn old).
    pub fn allocations(&self) -> u64 {
        self.registry.snapshot().allocations
    }

    /// Rebuilds the core's settings from `cfg` (users, secrets, realm, limits including
    /// `bps-capacity` and the per-source rate limits, peer policy, lifetimes) and hands them to
    /// every shard at its next loop turn. Existing allocations keep their key and relays.
    /// Listening addresses are the ones bound at start.
    pub fn reload(&self, cfg: &Config) -> Result<(), EngineError> {
        // Addresses come and go (DHCP, SLAAC): the policy follows the ones present now.
        let interfaces = net::local_addresses().map_err(io_error("listing interface addresses"))?;
        let current = self.settings.current();
        let mut running = self.resolver.lock().unwrap_or_else(PoisonError::into_inner);
        let resolver =
            Resolver::for_config(cfg, running.as_ref()).map_err(EngineError::Settings)?;
        let fresh = match (&resolver, running.as_ref()) {
            (Some(new), Some(old)) => !Arc::ptr_eq(new, old),
            (new, _) => new.is_some(),
        };
        let settings = Settings::from_options(&cfg.proto_options(), &self.addrs, &interfaces)
            .map_err(EngineError::Settings)?
            .with_resolver(resolver.clone().map(|r| r as Arc<dyn UserLookup>));
        if settings.warnings() != current.warnings() {
            for w in settings.warnings() {
                warn!("{w}");
            }
        }
        self.shared
            .quotas()
            .set_limits(cfg.user_quota, cfg.total_quota);
        self.shared.capacity().set_rate(cfg.bps_capacity);
        if let Some(resolver) = resolver.as_ref().filter(|_| fresh) {
            for (index, wake) in &self.answer_wakes {
                wake_on_answers(resolver, *index, wake);
            }
        }
        *running = resolver;
        drop(running);
        self.settings.replace(Arc::new(settings));
        self.wake();
        Ok(())
    }

    /// The peer policy in force, for the log (see `PeerPolicy::describe`).
    pub fn peer_policy(&self) -> String {
        self.settings.current().policy().describe()
    }

    /// Drain mode: new allocations are refused from now on; existing ones continue.
    pub fn drain(&self) {
        self.shared.set_draining(true);
    }

    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// Lets the user database resolver of `settings` wake shard `index` (its index in the
    /// resolver's questions) when an answer it waits for is in, and the resolvers of reloads.
    fn wake_on_answers(&mut self, index: usize, wake: AnswerWake) {
        if let Some(resolver) = self
            .resolver
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            wake_on_answers(resolver, index, &wake);
        }
        if let Some(fleet) = &self.fleet {
            let wake = Arc::clone(&wake);
            fleet.set_waker(index, Box::new(move || wake()));
        }
        self.answer_wakes.push((index, wake));
    }

    /// Shard `index`'s control plane; `streams_only` for a portable shard beside a ring (its
    /// metrics go to the stream slot, the ring's to the UDP slot).
    fn control(
        &self,
        index: usize,
        streams_only: bool,
        prometheus: bool,
    ) -> Result<Control, EngineError> {
        let slot = if streams_only {
            self.registry.stream_slot(index)
        } else {
            self.registry.slot(index)
        };
        let slot = slot.ok_or(EngineError::Io {
            what: "creating a metrics slot",
            source: io::Error::other("no slot for this shard"),
        })?;
        let users = prometheus.then(|| UserTrafficBatch::new(Arc::clone(self.registry.users())));
        let fast = self.fast.as_ref().map(|f| FastRoutes::new(Arc::clone(f)));
        Ok(Control::new(Arc::clone(&self.settings), slot, users, fast))
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
        if let Some(fleet) = &self.fleet {
            fleet.leave(FLEET_LEAVE);
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

/// The listening addresses: those of the config with each wildcard expanded, or every
/// interface address when none is given (`interfaces`). An address the operator did not write
/// that cannot be bound (e.g. an IPv6 address still in duplicate address detection) is skipped.
fn bind_listeners(
    cfg: &Config,
    shards: usize,
    interfaces: &[IpAddr],
) -> Result<Listeners, EngineError> {
    let mut ips = net::expand(&cfg.listening_ips, interfaces);
    let written = |ip: IpAddr| cfg.listening_ips.contains(&ip);
    let want = Transports {
        udp: !cfg.no_udp,
        tcp: !cfg.no_tcp,
    };
    loop {
        match listen::bind(&ips, cfg.listening_port, shards, want) {
            Err(EngineError::Bind { addr, source, .. })
                if !written(addr.ip())
                    && ips.len() > 1
                    && source.kind() == io::ErrorKind::AddrNotAvailable =>
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

/// Turns the file-descriptor limit into the allocation ceiling (508 past it) and the stream
/// connection ceiling (refused at accept past it), says so, and returns the latter.
fn plan_descriptors(shared: &Shared, shards: usize, addrs: usize) -> Option<u64> {
    // Per shard: a UDP and a TCP listener per address, its poll and its waker.
    let fixed = (shards as u64).saturating_mul(addrs as u64 * 2 + 2);
    match fdlimit::raise_nofile() {
        Ok(limit) => {
            let max = fdlimit::max_allocations(limit, fixed);
            shared.quotas().set_max_allocations(max);
            info!(
                "file descriptors: limit {limit}, {fixed} for listeners; at most {max} allocations \
                 ({} descriptors each, {} kept in reserve)",
                fdlimit::PER_ALLOCATION,
                fdlimit::RESERVE
            );
            let streams = fdlimit::max_streams(limit, fixed);
            info!("file descriptors: at most {streams} TCP/TLS client connections");
            Some(streams)
        }
        Err(e) => {
            warn!("cannot read the file-descriptor limit ({e}): no allocation ceiling");
            None
        }
    }
}

/// Joins the fleet `redis-statsdb` names (docs/fleet.md): this node's listeners and
/// `external-ip` mapping as the other nodes reach them, and its load read at every beat.
fn join_fleet(cfg: &Config, server: &mut Server, settings: &Settings) -> Result<(), EngineError> {
    let shared = Arc::downgrade(&server.shared);
    let registry = Arc::clone(&server.registry);
    let relayed = move || {
        let c = registry.snapshot();
        c.client_tx_bytes.wrapping_add(c.peer_tx_bytes)
    };
    let mut last = (clock::now().0, relayed());
    let load = Box::new(move || {
        let Some(shared) = shared.upgrade() else {
            return fleet::Load::default();
        };
        let (now, bytes) = (clock::now().0, relayed());
        let ms = now.saturating_duration_since(last.0).as_millis().max(1) as u64;
        let bps = bytes.saturating_sub(last.1).saturating_mul(1000) / ms;
        last = (now, bytes);
        let quotas = shared.quotas();
        let capacity = match quotas.total_quota() {
            0 => quotas.max_allocations(),
            n => n,
        };
        fleet::Load {
            allocations: u64::from(quotas.allocations()),
            capacity: u64::from(capacity),
            draining: shared.is_draining(),
            bps,
            bps_capacity: shared.capacity().rate(),
        }
    });
    let reached = |t: Transport| -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (transport, addr) in &server.listeners {
            let addr = settings.advertised(*addr);
            if *transport == t && !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    };
    let identity = fleet::Identity {
        listen: match reached(Transport::Udp) {
            udp if udp.is_empty() => reached(Transport::Tcp),
            udp => udp,
        },
        tls: reached(Transport::Tls),
        relay: settings
            .external()
            .iter()
            .filter(|(real, public)| real != public)
            .map(|(real, public)| (*public, *real))
            .collect(),
        ports: (cfg.min_port, cfg.max_port),
    };
    let Some(fleet) =
        fleet::Fleet::from_config(cfg, identity, load).map_err(EngineError::Settings)?
    else {
        return Ok(());
    };
    server.registry.set_fleet(Arc::clone(fleet.stats()));
    let fleet = Arc::new(fleet);
    server
        .shared
        .set_fleet(Arc::clone(&fleet) as Arc<dyn FleetView>);
    server.fleet = Some(fleet);
    Ok(())
}

/// Lets the user database resolver wake shard `index` when an answer it waits for is in.
fn wake_on_answers(resolver: &Resolver, index: usize, wake: &AnswerWake) {
    let wake = Arc::clone(wake);
    resolver.set_waker(index, Box::new(move || wake()));
}

/// The per-process secret for stateless nonces and reservation tokens.
/// What every shard's workers are built from (see `Server::start_workers`).
struct WorkerPlan<'a> {
    cfg: &'a Config,
    shards: usize,
    rings: bool,
    /// UDP GSO works here (`select::Choice::gso`).
    gso: bool,
    settings: &'a Arc<Settings>,
    reservations: Arc<ReservedPorts>,
    streams: Arc<StreamShared>,
    /// The UDP/TCP listening addresses (the TLS ones follow them in `Server::addrs`).
    listen_addrs: &'a [SocketAddr],
}

impl WorkerPlan<'_> {
    /// The relay ports of shard `index`'s epoll worker. Without rings each worker relays for
    /// every transport on its own slice of the port range. With rings, the rings carry UDP
    /// clients and get the slices; the workers, which then serve only TCP and TLS clients, pick
    /// from the whole range and step over ports a ring holds (EADDRINUSE). Slicing for both
    /// halved the UDP share: a 3,000-port range held 1,500 UDP allocations per relay IP.
    fn stream_share(&self, index: usize) -> (u16, u16) {
        let (min, max) = (self.cfg.min_port, self.cfg.max_port);
        if self.rings {
            (min.min(max), min.max(max))
        } else {
            relay::share(min, max, self.shards, index)
        }
    }
}

/// TLS from `cert`/`pkey`, with its warnings logged; a missing certificate is logged as an error
/// and leaves TLS off.
fn setup_tls(cfg: &Config) -> Result<Option<Arc<Tls>>, EngineError> {
    Ok(match tls::setup(cfg).map_err(EngineError::Tls)? {
        Setup::On(tls, warnings) => {
            for w in warnings {
                warn!("{w}");
            }
            Some(tls)
        }
        Setup::Off => None,
        Setup::Missing(why) => {
            error!("{why}");
            None
        }
    })
}

/// A seed for a shard's port picker.
fn random_seed() -> Result<u64, EngineError> {
    getrandom::u64().map_err(|e| EngineError::Io {
        what: "reading random bytes",
        source: io::Error::other(e.to_string()),
    })
}

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
