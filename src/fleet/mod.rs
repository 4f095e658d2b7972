//! A fleet of tern nodes sharing state through Redis (`redis-statsdb`; docs/fleet.md, "Shared
//! quotas and relaying between nodes"): allocation leases that make `user-quota` and
//! `total-quota` hold across nodes (RFC 8656 §7.2 step 10: 486), each node's load for
//! redirects, and each node's `external-ip` mapping so nodes behind one cloud NAT relay to each
//! other through their private addresses.
//!
//! One thread talks to Redis, as the user database resolver does (docs/architecture.md,
//! "Threads"): a shard asks about an Allocate and parks it, the thread runs one atomic script,
//! stores the answer and wakes the shard, which runs the request again and takes the answer.
//! The same thread beats every second: it publishes its node record and reads everybody else's,
//! and every third of `fleet-lease-time` it moves its leases' expiry forward. A node that dies stops beating, and its
//! leases and record lapse within the lease time; nothing has to clean up after it.

mod redis;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::auth::db::{redis_connection, RedisParams};
use crate::config::{Config, FleetDown};

use self::redis::Acquired;
pub use tern_proto::fleet::{least_loaded, Admission, Ask, FleetView, Lease, Load, Node, PeerNode};

/// How often a node publishes its record and reads the others': a new node is seen (and its
/// relay addresses mapped) within about this long.
const BEAT: Duration = Duration::from_secs(1);
/// A connection attempt after a failure waits this long: a dead Redis is not hammered.
const BACKOFF: Duration = Duration::from_secs(1);
/// An answer not taken by its request within this long is given back (the client went away).
const UNCLAIMED: Duration = Duration::from_secs(10);
/// Questions waiting for the thread; beyond this, Allocates are answered as if Redis were down.
const QUEUE: usize = 4096;

/// What this node tells the others about itself besides its load.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub listen: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// (public, private) pairs of this node's `external-ip`.
    pub relay: Vec<(IpAddr, IpAddr)>,
    pub ports: (u16, u16),
}

/// Counters for metrics and tests (`tern_fleet_events_total`).
#[derive(Debug, Default)]
pub struct FleetStats {
    /// Allocations counted in the fleet.
    pub granted: AtomicU64,
    /// Refused by the fleet's `user-quota` or `total-quota`.
    pub refused: AtomicU64,
    /// Admitted while Redis was unreachable (`fleet-redis-down=open`).
    pub admitted_down: AtomicU64,
    /// Refused while Redis was unreachable (`fleet-redis-down=closed`).
    pub refused_down: AtomicU64,
    /// Keys of another type, and lease members no node writes, seen in Redis.
    pub foreign: AtomicU64,
    /// Redis commands that failed.
    pub failures: AtomicU64,
}

impl FleetStats {
    /// (event label, count), for the exposition.
    pub fn labelled(&self) -> [(&'static str, u64); 6] {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("granted", get(&self.granted)),
            ("refused", get(&self.refused)),
            ("admitted_redis_down", get(&self.admitted_down)),
            ("refused_redis_down", get(&self.refused_down)),
            ("foreign", get(&self.foreign)),
            ("redis_failure", get(&self.failures)),
        ]
    }
}

#[derive(Debug)]
enum Answer {
    Granted(u64),
    UserQuota,
    TotalQuota,
    Unavailable,
}

enum Entry {
    /// Asked; bit `shard % 64` set for every shard waiting.
    InFlight {
        waiters: u64,
    },
    Done {
        answer: Answer,
        since: Instant,
    },
}

struct Question {
    ask: Ask,
    user: String,
    user_quota: u32,
    total_quota: u32,
}

#[derive(Default)]
struct Work {
    entries: HashMap<Ask, Entry>,
    questions: VecDeque<Question>,
    releases: Vec<u64>,
    closed: bool,
    /// The thread withdrew the node and ended.
    left: bool,
}

/// The other live nodes, replaced whole at every beat.
#[derive(Default)]
struct View {
    nodes: Vec<Node>,
    peers: Arc<Vec<PeerNode>>,
    /// When Redis last answered a beat: a view older than the lease time is dropped.
    at: Option<Instant>,
}

type Wake = Box<dyn Fn() + Send + Sync>;
type LoadFn = Box<dyn FnMut() -> Load + Send>;

struct Inner {
    node: String,
    params: RedisParams,
    describe: String,
    quotas: bool,
    relay: bool,
    lease: Duration,
    when_down: FleetDown,
    work: Mutex<Work>,
    ready: Condvar,
    wakers: Mutex<Vec<Option<Wake>>>,
    view: RwLock<View>,
    /// Bumped whenever the peers change, so a shard copies them only then.
    generation: AtomicU64,
    stats: Arc<FleetStats>,
}

impl Inner {
    /// Counts an Allocate the fleet cannot count now (`fleet-redis-down`); whether it goes on.
    fn admits_while_down(&self) -> bool {
        let (admit, counter) = match self.when_down {
            FleetDown::Open => (true, &self.stats.admitted_down),
            FleetDown::Closed => (false, &self.stats.refused_down),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        admit
    }
}

/// The handle shards and the engine use; dropping it stops the thread, which withdraws the
/// node's record and leases first.
pub struct Fleet {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fleet {
    /// The fleet `cfg` names (`redis-statsdb`), None without one. Redis is not reached here:
    /// the thread connects and says in the log whether it could; until it can, Allocates follow
    /// `fleet-redis-down`.
    pub fn from_config(
        cfg: &Config,
        identity: Identity,
        mut load: LoadFn,
    ) -> Result<Option<Fleet>, String> {
        let Some(conn) = &cfg.redis_statsdb else {
            return Ok(None);
        };
        let params =
            RedisParams::parse_value(conn).map_err(|why| format!("redis-statsdb: {why}"))?;
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(|e| format!("fleet node id: {e}"))?;
        let node: String = id.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let describe = format!("Redis {}:{} db {}", params.host, params.port, params.db);
        let inner = Arc::new(Inner {
            node,
            params,
            describe,
            quotas: cfg.fleet.quotas,
            relay: cfg.fleet.relay,
            lease: Duration::from_secs(u64::from(cfg.fleet.lease_s)),
            when_down: cfg.fleet.when_down,
            work: Mutex::new(Work::default()),
            ready: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
            view: RwLock::new(View::default()),
            generation: AtomicU64::new(0),
            stats: Arc::new(FleetStats::default()),
        });
        let worker = Arc::clone(&inner);
        std::thread::Builder::new()
            .name(String::from("tern-fleet"))
            .spawn(move || serve(&worker, &identity, &mut load))
            .map_err(|e| format!("cannot start the fleet thread: {e}"))?;
        info!(
            "fleet: node {} on {}; quotas across the fleet {}, relaying to other nodes {}, lease {} s, \
             while Redis is unreachable Allocates are {}",
            inner.node,
            inner.describe,
            if inner.quotas { "on" } else { "off" },
            if inner.relay { "on" } else { "off" },
            inner.lease.as_secs(),
            match inner.when_down {
                FleetDown::Open => "admitted within this node's quotas (fleet-redis-down=open)",
                FleetDown::Closed => "refused with 508 (fleet-redis-down=closed)",
            }
        );
        Ok(Some(Fleet { inner }))
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Whether Allocates are counted in the fleet (`fleet-quotas`).
    pub fn counts_quotas(&self) -> bool {
        self.inner.quotas
    }

    pub fn stats(&self) -> &Arc<FleetStats> {
        &self.inner.stats
    }

    /// Called by the engine for each shard: how to wake it when an answer it waits for is in.
    pub fn set_waker(&self, shard: usize, wake: Box<dyn Fn() + Send + Sync>) {
        let mut wakers = lock(&self.inner.wakers);
        if wakers.len() <= shard {
            wakers.resize_with(shard + 1, || None);
        }
        if let Some(slot) = wakers.get_mut(shard) {
            *slot = Some(wake);
        }
    }

    /// Counts one allocation of `user` against the fleet's quotas, or says why not; `Pending`
    /// the first time `ask` is seen (park the request and run it again when woken).
    pub fn admit(
        &self,
        ask: Ask,
        user: &str,
        user_quota: u32,
        total_quota: u32,
        shard: usize,
    ) -> Admission {
        let bit = 1u64 << (shard % 64);
        let mut work = lock(&self.inner.work);
        match work.entries.get_mut(&ask) {
            Some(Entry::InFlight { waiters }) => {
                *waiters |= bit;
                return Admission::Pending;
            }
            Some(Entry::Done { .. }) => {
                let Some(Entry::Done { answer, .. }) = work.entries.remove(&ask) else {
                    return Admission::Pending;
                };
                return match answer {
                    Answer::Granted(n) => Admission::Granted(Lease::new(n)),
                    Answer::UserQuota => Admission::UserQuota,
                    Answer::TotalQuota => Admission::TotalQuota,
                    Answer::Unavailable => Admission::Unavailable,
                };
            }
            None => {}
        }
        if work.questions.len() >= QUEUE {
            drop(work);
            return self.overloaded();
        }
        work.questions.push_back(Question {
            ask,
            user: user.to_owned(),
            user_quota,
            total_quota,
        });
        work.entries.insert(ask, Entry::InFlight { waiters: bit });
        drop(work);
        self.inner.ready.notify_one();
        Admission::Pending
    }

    /// A full queue: Redis is far slower than the Allocates, treated like a Redis that is down.
    fn overloaded(&self) -> Admission {
        if self.inner.admits_while_down() {
            // Not counted in Redis: nothing to release later.
            Admission::Granted(Lease::new(0))
        } else {
            Admission::Unavailable
        }
    }

    /// Gives back an allocation's lease (the allocation ended, or was not made after all).
    pub fn release(&self, lease: Lease) {
        if lease.number() == 0 {
            return;
        }
        lock(&self.inner.work).releases.push(lease.number());
        self.inner.ready.notify_one();
    }

    /// The other live nodes as last published (none while Redis is unreachable for longer than
    /// the lease time).
    pub fn nodes(&self) -> Vec<Node> {
        self.inner
            .view
            .read()
            .map(|v| v.nodes.clone())
            .unwrap_or_default()
    }

    /// The live node, other than this one, that is least full and neither draining nor full:
    /// where a redirect (300 Try Alternate) should send a new Allocate.
    pub fn least_loaded(&self) -> Option<Node> {
        least_loaded(&self.nodes())
    }

    /// The other nodes' relay addresses (empty unless `fleet-relay`), and their generation: a
    /// shard copies them when the generation it holds is older.
    pub fn peers(&self) -> (u64, Arc<Vec<PeerNode>>) {
        let generation = self.inner.generation.load(Ordering::Acquire);
        let peers = self
            .inner
            .view
            .read()
            .map(|v| Arc::clone(&v.peers))
            .unwrap_or_default();
        (generation, peers)
    }

    /// The current generation of [`Fleet::peers`].
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }
}

/// The shards see the fleet through the core's trait; each method is the inherent one.
impl FleetView for Fleet {
    fn counts_quotas(&self) -> bool {
        Fleet::counts_quotas(self)
    }

    fn admit(
        &self,
        ask: Ask,
        user: &str,
        user_quota: u32,
        total_quota: u32,
        shard: usize,
    ) -> Admission {
        Fleet::admit(self, ask, user, user_quota, total_quota, shard)
    }

    fn release(&self, lease: Lease) {
        Fleet::release(self, lease);
    }

    fn nodes(&self) -> Vec<Node> {
        Fleet::nodes(self)
    }

    fn peers(&self) -> (u64, Arc<Vec<PeerNode>>) {
        Fleet::peers(self)
    }

    fn generation(&self) -> u64 {
        Fleet::generation(self)
    }
}

impl Fleet {
    /// Withdraws this node from the fleet (its leases, after the releases already asked for,
    /// and its record) and waits for that, up to `within`: a node that stops is not counted
    /// until its leases lapse. Called once the shards have ended their allocations.
    pub fn leave(&self, within: Duration) {
        let mut work = lock(&self.inner.work);
        work.closed = true;
        self.inner.ready.notify_all();
        let deadline = clock() + within;
        while !work.left {
            let left = deadline.saturating_duration_since(clock());
            if left.is_zero() {
                warn!(
                    "fleet: could not withdraw from {} in time; its leases lapse by themselves",
                    self.inner.describe
                );
                return;
            }
            work = self
                .inner
                .ready
                .wait_timeout(work, left)
                .map(|(w, _)| w)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        lock(&self.inner.work).closed = true;
        self.inner.ready.notify_all();
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("node", &self.inner.node)
            .field("redis", &self.inner.describe)
            .finish_non_exhaustive()
    }
}

/// The thread's own state: the connection and this node's live leases.
struct Session<'a> {
    inner: &'a Inner,
    conn: Option<::redis::Connection>,
    failed_at: Option<Instant>,
    /// Live leases: number → user. Published again at every beat, so leases made while Redis
    /// was down, or lost with a Redis restart, are counted once it answers.
    live: HashMap<u64, String>,
    next: u64,
    /// Foreign keys already named in the log.
    logged: HashSet<String>,
    /// A command failed since the leases were last refreshed: refresh them at the next beat.
    unsynced: bool,
}

/// The thread's one clock read: when to beat, and how old an unclaimed answer is.
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

fn serve(inner: &Inner, identity: &Identity, load: &mut LoadFn) {
    let mut s = Session {
        inner,
        conn: None,
        failed_at: None,
        live: HashMap::new(),
        next: 1,
        logged: HashSet::new(),
        unsynced: false,
    };
    // Leases are refreshed every third of their time (they survive two missed refreshes), and
    // at once after a failure: a Redis that restarted empty has them back within a beat.
    let refresh_every = (inner.lease / 3).max(BEAT);
    let mut next_beat = clock();
    let mut next_refresh = next_beat;
    loop {
        let (questions, releases, closed) = {
            let mut work = lock(&inner.work);
            loop {
                let now = clock();
                let idle = work.questions.is_empty() && work.releases.is_empty();
                if !idle || work.closed || now >= next_beat {
                    break;
                }
                let wait = next_beat.saturating_duration_since(now);
                work = inner
                    .ready
                    .wait_timeout(work, wait)
                    .map(|(w, _)| w)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            (
                std::mem::take(&mut work.questions),
                std::mem::take(&mut work.releases),
                work.closed,
            )
        };
        for n in releases {
            s.release(n);
        }
        for q in questions {
            let answer = s.acquire(&q);
            s.answer(q.ask, answer);
        }
        if closed {
            s.leave();
            lock(&inner.work).left = true;
            inner.ready.notify_all();
            return;
        }
        let now = clock();
        if now >= next_beat {
            s.sweep(now);
            let refresh = now >= next_refresh || s.unsynced;
            if s.beat(identity, load(), now, refresh) && refresh {
                next_refresh = now + refresh_every;
            }
            next_beat = now + BEAT;
        }
    }
}

impl Session<'_> {
    fn lease_ms(&self) -> u64 {
        self.inner.lease.as_millis() as u64
    }

    fn member(&self, n: u64) -> String {
        format!("{}/{n}", self.inner.node)
    }

    /// The connection, made if needed; None within the back-off after a failure.
    fn conn(&mut self) -> Option<&mut ::redis::Connection> {
        if self.conn.is_none() {
            if self.failed_at.is_some_and(|t| clock() < t + BACKOFF) {
                return None;
            }
            match redis_connection(&self.inner.params) {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    self.failed(&e.0);
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    fn failed(&mut self, why: &str) {
        self.conn = None;
        self.unsynced = true;
        self.inner.stats.failures.fetch_add(1, Ordering::Relaxed);
        if self.failed_at.is_none() {
            let then = match self.inner.when_down {
                FleetDown::Open => "Allocates are admitted within this node's own quotas and counted in the fleet once it answers (fleet-redis-down=open)",
                FleetDown::Closed => "Allocates are refused with 508 until it answers (fleet-redis-down=closed)",
            };
            warn!("fleet: {} unreachable: {why}; {then}", self.inner.describe);
        }
        self.failed_at = Some(clock());
    }

    fn recovered(&mut self) {
        if self.failed_at.take().is_some() {
            info!("fleet: {} reachable again", self.inner.describe);
        }
    }

    fn foreign(&mut self, key: String) {
        self.inner.stats.foreign.fetch_add(1, Ordering::Relaxed);
        if self.logged.len() < 1000 && self.logged.insert(key.clone()) {
            warn!(
                "fleet: Redis key {key:?} is not what tern writes there (something else wrote it); \
                 it is left alone and its allocations are not counted in the fleet"
            );
        }
    }

    fn acquire(&mut self, q: &Question) -> Answer {
        let n = self.next;
        self.next += 1;
        let member = self.member(n);
        let lease_ms = self.lease_ms();
        let result = self.conn().map(|conn| {
            redis::acquire(
                conn,
                &q.user,
                &member,
                lease_ms,
                q.total_quota,
                q.user_quota,
            )
        });
        let stats = &self.inner.stats;
        match result {
            Some(Ok((got, foreign))) => {
                self.recovered();
                if foreign > 0 {
                    self.foreign(String::from(redis::TOTAL));
                }
                match got {
                    Acquired::Granted => {
                        stats.granted.fetch_add(1, Ordering::Relaxed);
                        self.live.insert(n, q.user.clone());
                        Answer::Granted(n)
                    }
                    Acquired::UserQuota => {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        Answer::UserQuota
                    }
                    Acquired::TotalQuota => {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        Answer::TotalQuota
                    }
                    Acquired::ForeignKey(at) => {
                        let key = if at == 1 {
                            String::from(redis::TOTAL)
                        } else {
                            redis::user_key(&q.user)
                        };
                        self.foreign(key);
                        self.down(n, &q.user)
                    }
                }
            }
            Some(Err(e)) => {
                self.failed(&e.0);
                self.down(n, &q.user)
            }
            None => self.down(n, &q.user),
        }
    }

    /// The answer when the fleet cannot count this allocation (`fleet-redis-down`).
    fn down(&mut self, n: u64, user: &str) -> Answer {
        if self.inner.admits_while_down() {
            self.live.insert(n, user.to_owned());
            Answer::Granted(n)
        } else {
            Answer::Unavailable
        }
    }

    fn answer(&mut self, ask: Ask, answer: Answer) {
        let waiters = {
            let mut work = lock(&self.inner.work);
            let waiters = match work.entries.remove(&ask) {
                Some(Entry::InFlight { waiters }) => waiters,
                _ => 0,
            };
            work.entries.insert(
                ask,
                Entry::Done {
                    answer,
                    since: clock(),
                },
            );
            waiters
        };
        let wakers = lock(&self.inner.wakers);
        for (i, wake) in wakers.iter().enumerate() {
            if waiters & (1u64 << (i % 64)) != 0 {
                if let Some(wake) = wake {
                    wake();
                }
            }
        }
    }

    fn release(&mut self, n: u64) {
        let Some(user) = self.live.remove(&n) else {
            return;
        };
        let member = self.member(n);
        let result = self.conn().map(|c| redis::release(c, &user, &member));
        // Unreached, the lease lapses by itself: it is no longer refreshed.
        if let Some(Err(e)) = result {
            self.failed(&e.0);
        }
    }

    /// Gives back the leases of answers no request took in time.
    fn sweep(&mut self, now: Instant) {
        let stale: Vec<u64> = {
            let mut work = lock(&self.inner.work);
            let mut stale = Vec::new();
            work.entries.retain(|_, e| match e {
                Entry::Done { answer, since }
                    if now.saturating_duration_since(*since) > UNCLAIMED =>
                {
                    if let Answer::Granted(n) = answer {
                        stale.push(*n);
                    }
                    false
                }
                _ => true,
            });
            stale
        };
        for n in stale {
            self.release(n);
        }
    }

    /// Publishes this node's record and reads the others', refreshing the leases first when
    /// `refresh`; whether Redis answered.
    fn beat(&mut self, identity: &Identity, load: Load, now: Instant, refresh: bool) -> bool {
        if self.conn().is_none() {
            self.stale_view(now);
            return false;
        }
        let lease_ms = self.lease_ms();
        let leases: Vec<(&str, String)> = if refresh {
            self.live
                .iter()
                .map(|(n, u)| (u.as_str(), format!("{}/{n}", self.inner.node)))
                .collect()
        } else {
            Vec::new()
        };
        let fields = record(identity, load);
        let node = &self.inner.node;
        let beat = match self.conn.as_mut() {
            Some(conn) => redis::refresh(conn, &leases, lease_ms).and_then(|skipped| {
                redis::beat(conn, node, lease_ms, &fields).map(|nodes| (skipped, nodes))
            }),
            None => return false,
        };
        drop(leases);
        match beat {
            Ok((skipped, nodes)) => {
                self.recovered();
                if refresh {
                    self.unsynced = false;
                }
                if skipped > 0 {
                    self.foreign(String::from("tern/fleet/user/*"));
                }
                match nodes {
                    Some(nodes) => self.publish_view(nodes, now),
                    None => self.foreign(String::from(redis::NODES)),
                }
                true
            }
            Err(e) => {
                self.failed(&e.0);
                self.stale_view(now);
                false
            }
        }
    }

    /// Drops a view older than the lease time: those nodes may be gone.
    fn stale_view(&self, now: Instant) {
        let Ok(mut view) = self.inner.view.write() else {
            return;
        };
        if view
            .at
            .is_some_and(|at| now.saturating_duration_since(at) > self.inner.lease)
        {
            *view = View::default();
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn publish_view(&mut self, records: Vec<(String, Vec<(String, String)>)>, now: Instant) {
        let mut nodes = Vec::new();
        for (id, fields) in records {
            if id == self.inner.node {
                continue;
            }
            match parse_record(&id, &fields) {
                Some(node) => nodes.push(node),
                None => self.foreign(redis::node_key(&id)),
            }
        }
        let peers: Vec<PeerNode> = if self.inner.relay {
            nodes
                .iter()
                .flat_map(|n| {
                    n.relay.iter().map(|(public, private)| PeerNode {
                        public: *public,
                        private: *private,
                        ports: n.ports,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let Ok(mut view) = self.inner.view.write() else {
            return;
        };
        let changed = *view.peers != peers;
        for node in nodes
            .iter()
            .filter(|n| !view.nodes.iter().any(|o| o.id == n.id))
        {
            info!(
                "fleet: node {} joined (listeners {}, relay {})",
                node.id,
                addrs(&node.listen),
                relay_pairs(&node.relay)
            );
        }
        for node in view
            .nodes
            .iter()
            .filter(|o| !nodes.iter().any(|n| n.id == o.id))
        {
            info!("fleet: node {} left", node.id);
        }
        view.nodes = nodes;
        view.at = Some(now);
        if changed {
            view.peers = Arc::new(peers);
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Withdraws the node (its leases and record) as the process stops.
    fn leave(&mut self) {
        let live: Vec<u64> = self.live.keys().copied().collect();
        for n in live {
            self.release(n);
        }
        let node = self.inner.node.clone();
        if let Some(conn) = self.conn.as_mut() {
            let _ = redis::leave(conn, &node);
        }
    }
}

fn addrs(list: &[SocketAddr]) -> String {
    let items: Vec<String> = list.iter().map(ToString::to_string).collect();
    items.join(" ")
}

/// `PUBLIC=PRIVATE` pairs, blank-separated.
fn relay_pairs(pairs: &[(IpAddr, IpAddr)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(public, private)| format!("{public}={private}"))
        .collect();
    items.join(" ")
}

/// This node's record: the fields [`parse_record`] reads.
fn record(identity: &Identity, load: Load) -> Vec<(&'static str, String)> {
    vec![
        ("allocations", load.allocations.to_string()),
        ("capacity", load.capacity.to_string()),
        ("draining", u8::from(load.draining).to_string()),
        ("bps", load.bps.to_string()),
        ("bps-capacity", load.bps_capacity.to_string()),
        ("listen", addrs(&identity.listen)),
        ("tls", addrs(&identity.tls)),
        ("relay", relay_pairs(&identity.relay)),
        (
            "ports",
            format!("{}-{}", identity.ports.0, identity.ports.1),
        ),
    ]
}

/// Another node's record; None when a field tern writes does not read back (something else
/// wrote it).
fn parse_record(id: &str, fields: &[(String, String)]) -> Option<Node> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
    };
    let list = |name: &str| -> Option<Vec<SocketAddr>> {
        get(name)?
            .split_whitespace()
            .map(|a| a.parse().ok())
            .collect()
    };
    let relay = get("relay")?
        .split_whitespace()
        .map(|pair| {
            let (public, private) = pair.split_once('=')?;
            Some((public.parse().ok()?, private.parse().ok()?))
        })
        .collect::<Option<Vec<(IpAddr, IpAddr)>>>()?;
    let (lo, hi) = get("ports")?.split_once('-')?;
    Some(Node {
        id: id.to_owned(),
        load: Load {
            allocations: get("allocations")?.parse().ok()?,
            capacity: get("capacity")?.parse().ok()?,
            draining: get("draining")? == "1",
            // Absent from a node of an earlier version during a rolling upgrade.
            bps: get("bps").map_or(Some(0), |v| v.parse().ok())?,
            bps_capacity: get("bps-capacity").map_or(Some(0), |v| v.parse().ok())?,
        },
        listen: list("listen")?,
        tls: list("tls")?,
        relay,
        ports: (lo.parse().ok()?, hi.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, allocations: u64, capacity: u64, draining: bool) -> Node {
        Node {
            id: id.into(),
            load: Load {
                allocations,
                capacity,
                draining,
                ..Load::default()
            },
            listen: vec!["192.0.2.1:3478".parse().unwrap()],
            ..Node::default()
        }
    }

    #[test]
    fn the_least_loaded_node_is_neither_draining_nor_full() {
        let nodes = [
            node("a", 10, 100, false),
            node("b", 1, 100, true),
            node("c", 5, 5, false),
            node("d", 30, 1000, false),
        ];
        assert_eq!(least_loaded(&nodes).map(|n| n.id), Some("d".into()));
        assert_eq!(least_loaded(&nodes[1..3]), None);
        let mut busy = nodes.clone();
        busy[3].load.bps = 2_000_000;
        busy[3].load.bps_capacity = 1_000_000;
        assert!(busy[3].full(), "relaying its whole bps-capacity");
        assert_eq!(least_loaded(&busy).map(|n| n.id), Some("a".into()));
    }

    #[test]
    fn a_record_reads_back_and_a_foreign_one_is_refused() {
        let identity = Identity {
            listen: vec!["203.0.113.10:3478".parse().unwrap()],
            tls: Vec::new(),
            relay: vec![(
                "203.0.113.10".parse().unwrap(),
                "10.0.0.10".parse().unwrap(),
            )],
            ports: (49152, 65535),
        };
        let load = Load {
            allocations: 3,
            capacity: 100,
            draining: true,
            bps: 12_000,
            bps_capacity: 1_000_000,
        };
        let fields: Vec<(String, String)> = record(&identity, load)
            .into_iter()
            .map(|(f, v)| (f.to_owned(), v))
            .collect();
        let back = parse_record("n1", &fields).expect("reads back");
        assert_eq!(back.load, load);
        assert_eq!(back.relay, identity.relay);
        assert_eq!(back.listen, identity.listen);
        assert_eq!(back.ports, (49152, 65535));
        let mut bad = fields.clone();
        bad[5].1 = String::from("not=an address");
        assert_eq!(parse_record("n1", &bad), None);
        assert_eq!(parse_record("n1", &[]), None);
        let earlier: Vec<(String, String)> = fields
            .iter()
            .filter(|(f, _)| !f.starts_with("bps"))
            .cloned()
            .collect();
        let old = parse_record("n1", &earlier).expect("a record without bps reads");
        assert_eq!((old.load.bps, old.load.bps_capacity), (0, 0));
    }
}
