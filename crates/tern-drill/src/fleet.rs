//! Many TURN-over-UDP allocations driven from one thread: each has its own client socket (its
//! own 5-tuple, RFC 8656 §2.2), authenticates (401, then signed requests; 438 takes a fresh
//! nonce), allocates, binds channel 0x4000 to an echo peer, then relays ChannelData that carries
//! its send time, refreshes on a schedule and is counted lost when a refresh fails or its
//! packets stop coming back.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use tern::client::{self, Algorithm, Auth, Credentials, Request as Ask, TidGen};
use tern::stun::TransactionId;
use tern_testkit::Histogram;

use super::{PASSWORD, USER};
use tern::stun::channel;

/// Retransmission timer and attempts for one request (RFC 8489 §6.2.1 uses 500 ms and 7).
/// The channel every drill allocation binds to its echo peer.
pub const CHANNEL: u16 = 0x4000;

/// The ChannelBind of `CHANNEL` to `peer`.
fn bind(peer: SocketAddr) -> Ask {
    Ask::ChannelBind {
        channel: CHANNEL,
        peer,
    }
}
const RTO: Duration = Duration::from_millis(500);
const TRIES: u8 = 6;
/// Challenges answered per request before the credentials count as refused.
const CHALLENGES: u8 = 3;
/// Bytes of a drill payload that carry the allocation, sequence number and send time.
const STAMP: usize = 20;
/// How often timers (retransmissions, refreshes, stalls) are checked.
const SCAN: Duration = Duration::from_millis(100);

/// `count` client source addresses from 127.0.0.2 up (each allocation binds its own socket, so
/// several addresses keep each one's ephemeral ports plentiful).
pub fn loopback_sources(count: u8) -> Vec<IpAddr> {
    (2..2u8.saturating_add(count.max(1)))
        .map(|h| IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, h)))
        .collect()
}

pub struct FleetConfig {
    pub server: SocketAddr,
    pub count: usize,
    /// Client source addresses, used round-robin (each allocation binds its own socket).
    pub sources: Vec<IpAddr>,
    pub peers: Vec<SocketAddr>,
    /// ChannelData payload size in bytes (at least 20).
    pub payload: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Allocating,
    Binding,
    Ready,
    /// Allocate or ChannelBind refused with this code (0: no answer).
    Failed(u16),
    /// A Refresh refused with this code (0: no answer): the allocation is gone.
    Lost(u16),
}

struct Txn {
    tid: TransactionId,
    ask: Ask,
    sent_at: Instant,
    tries: u8,
    challenges: u8,
}

struct Alloc {
    sock: UdpSocket,
    auth: Auth,
    txn: Option<Txn>,
    state: State,
    peer: SocketAddr,
    sent: u64,
    recv: u64,
    last_rx: Option<Instant>,
    next_refresh: Option<Instant>,
    stalled: bool,
}

#[derive(Default, Debug, Clone)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    /// Sends refused by the client's own socket buffer (never reached tern).
    pub send_blocked: u64,
    /// Open-loop sends skipped because the client fell behind its schedule.
    pub not_offered: u64,
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    pub stalls: u64,
}

/// How to relay in [`Fleet::run`].
pub struct Plan {
    pub duration: Duration,
    /// Open loop: this many packets per second over all ready allocations, round-robin.
    pub rate: Option<f64>,
    /// Closed loop: this many packets in flight per allocation.
    pub window: Option<u32>,
    /// Refresh every ready allocation (then bind its channel again) this often, with this
    /// LIFETIME; under 300 s, so the permission never lapses.
    pub refresh: Option<(Duration, u32)>,
    /// An allocation that hears nothing back for this long counts as lost.
    pub stall: Option<Duration>,
}

pub struct Fleet {
    server: SocketAddr,
    poll: Poll,
    events: Events,
    allocs: Vec<Alloc>,
    pub counters: Counters,
    pub latency: Histogram,
    tids: TidGen,
    epoch: Instant,
    payload: usize,
    buf: Vec<u8>,
    closed_window: bool,
}

impl Fleet {
    pub fn new(cfg: &FleetConfig) -> Result<Fleet, String> {
        if cfg.sources.is_empty() || cfg.peers.is_empty() {
            return Err("a fleet needs a source address and a peer".into());
        }
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut allocs = Vec::with_capacity(cfg.count);
        for i in 0..cfg.count {
            let ip = cfg.sources[i % cfg.sources.len()];
            let mut sock = UdpSocket::bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind client socket {i} on {ip}: {e}"))?;
            poll.registry()
                .register(&mut sock, Token(i), Interest::READABLE)
                .map_err(|e| format!("register client socket {i}: {e}"))?;
            allocs.push(Alloc {
                sock,
                auth: Auth::new(Credentials::long_term(USER, PASSWORD), Algorithm::Md5),
                txn: None,
                state: State::Idle,
                peer: cfg.peers[i % cfg.peers.len()],
                sent: 0,
                recv: 0,
                last_rx: None,
                next_refresh: None,
                stalled: false,
            });
        }
        Ok(Fleet {
            server: cfg.server,
            poll,
            events: Events::with_capacity(1024),
            allocs,
            counters: Counters::default(),
            latency: Histogram::default(),
            tids: tern_testkit::tid_gen(),
            epoch: Instant::now(),
            payload: cfg.payload.max(STAMP),
            buf: vec![0u8; 2048],
            closed_window: false,
        })
    }

    pub fn count(&self) -> usize {
        self.allocs.len()
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.allocs.get(i).map(|a| a.state)
    }

    /// Allocations in each state.
    pub fn census(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in &self.allocs {
            let key = match a.state {
                State::Failed(c) => format!("failed {c}"),
                State::Lost(c) => format!("lost {c}"),
                s => format!("{s:?}").to_lowercase(),
            };
            *m.entry(key).or_insert(0) += 1;
        }
        m
    }

    /// Ready allocations that heard no echo in the last [`Fleet::run`].
    pub fn silent(&self) -> usize {
        self.allocs
            .iter()
            .filter(|a| a.state == State::Ready && a.recv == 0)
            .count()
    }

    /// Allocations that failed a refresh or stopped hearing their echoes.
    pub fn lost(&self) -> usize {
        self.allocs
            .iter()
            .filter(|a| matches!(a.state, State::Lost(_)) || a.stalled)
            .count()
    }

    /// Allocates and binds a channel for `which` (`window` at a time), waiting until every one
    /// is ready or failed or `timeout` passes; the census afterwards.
    pub fn establish(&mut self, which: &[usize], window: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut next = 0;
        loop {
            let now = Instant::now();
            let busy = which
                .iter()
                .filter(|&&i| matches!(self.state(i), Some(State::Allocating | State::Binding)))
                .count();
            let mut free = window.saturating_sub(busy);
            while free > 0 && next < which.len() {
                let i = which[next];
                next += 1;
                if let Some(a) = self.allocs.get_mut(i) {
                    a.state = State::Allocating;
                    a.stalled = false;
                }
                self.start(i, Ask::ALLOCATE, now);
                free -= 1;
            }
            let pending = which
                .iter()
                .any(|&i| matches!(self.state(i), Some(State::Allocating | State::Binding)));
            if next >= which.len() && !pending || now >= deadline {
                break;
            }
            self.pump(Duration::from_millis(5));
            self.retransmit(Instant::now());
        }
    }

    /// Sends `ask` on each of `which` and waits for every answer (or `timeout`); a Refresh with
    /// LIFETIME 0 leaves the allocation Idle.
    pub fn request_all(&mut self, which: &[usize], ask: Ask, timeout: Duration) {
        let now = Instant::now();
        for &i in which {
            self.start(i, ask, now);
        }
        let deadline = now + timeout;
        while Instant::now() < deadline
            && which
                .iter()
                .any(|&i| self.allocs.get(i).is_some_and(|a| a.txn.is_some()))
        {
            self.pump(Duration::from_millis(5));
            self.retransmit(Instant::now());
        }
    }

    /// Relays by `plan` for its duration; `tick` runs about once a second with the time since
    /// the start (the drills sample RSS there).
    pub fn run(&mut self, plan: &Plan, tick: &mut dyn FnMut(Duration)) {
        let start = Instant::now();
        let n = self.allocs.len().max(1) as u32;
        if let Some((every, _)) = plan.refresh {
            for (i, a) in self.allocs.iter_mut().enumerate() {
                // Spread evenly over one period so refreshes do not arrive in a burst.
                a.next_refresh =
                    Some(start + every.mul_f64(f64::from(i as u32 + 1) / f64::from(n)));
            }
        }
        for a in &mut self.allocs {
            a.last_rx = None;
            a.recv = 0;
        }
        self.closed_window = plan.window.is_some();
        if let Some(w) = plan.window {
            for i in 0..self.allocs.len() {
                if self.allocs[i].state != State::Ready {
                    continue;
                }
                for _ in 0..w {
                    self.send_data(i, start);
                }
            }
        }
        let mut offered: u64 = 0;
        let mut cursor = 0;
        let mut next_scan = start;
        let mut next_tick = start + Duration::from_secs(1);
        let end = start + plan.duration;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if let Some(rate) = plan.rate {
                let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
                let burst = (rate * 0.02) as u64 + 64;
                if due > offered + burst {
                    self.counters.not_offered += due - offered - burst;
                    offered = due - burst;
                }
                while offered < due {
                    offered += 1;
                    if let Some(i) = self.next_ready(&mut cursor) {
                        self.send_data(i, now);
                    }
                }
            }
            self.pump(Duration::from_millis(1));
            let now = Instant::now();
            if now >= next_scan {
                next_scan = now + SCAN;
                self.retransmit(now);
                self.refresh_due(plan, now);
                if let Some(stall) = plan.stall {
                    self.find_stalls(start, stall, now);
                }
            }
            if now >= next_tick {
                next_tick += Duration::from_secs(1);
                tick(now.duration_since(start));
            }
        }
        self.closed_window = false;
        // Echoes still in flight come back (or count as lost) within a short drain.
        let drain = Instant::now() + Duration::from_millis(500);
        while Instant::now() < drain {
            self.pump(Duration::from_millis(5));
            self.retransmit(Instant::now());
        }
    }

    fn next_ready(&self, cursor: &mut usize) -> Option<usize> {
        let n = self.allocs.len();
        for _ in 0..n {
            let i = *cursor % n;
            *cursor = (i + 1) % n;
            if self.allocs[i].state == State::Ready {
                return Some(i);
            }
        }
        None
    }

    fn refresh_due(&mut self, plan: &Plan, now: Instant) {
        let Some((every, lifetime)) = plan.refresh else {
            return;
        };
        for i in 0..self.allocs.len() {
            let a = &mut self.allocs[i];
            let due = a.next_refresh.is_some_and(|t| t <= now);
            if due && a.state == State::Ready && a.txn.is_none() {
                a.next_refresh = a.next_refresh.map(|t| t + every);
                self.start(i, Ask::Refresh(lifetime), now);
            }
        }
    }

    fn find_stalls(&mut self, start: Instant, stall: Duration, now: Instant) {
        for a in &mut self.allocs {
            let heard = a.last_rx.unwrap_or(start);
            if a.state == State::Ready && !a.stalled && now.duration_since(heard) > stall {
                a.stalled = true;
                self.counters.stalls += 1;
            }
        }
    }

    /// Starts a transaction (replacing any in progress on that allocation).
    fn start(&mut self, i: usize, ask: Ask, now: Instant) {
        if let Some(a) = self.allocs.get_mut(i) {
            a.txn = Some(Txn {
                tid: self.tids.next_tid(),
                ask,
                sent_at: now,
                tries: 0,
                challenges: 0,
            });
            self.transmit(i, now);
        }
    }

    fn transmit(&mut self, i: usize, now: Instant) {
        let Some(a) = self.allocs.get_mut(i) else {
            return;
        };
        let Some(t) = a.txn.as_mut() else { return };
        t.tries += 1;
        t.sent_at = now;
        let n = client::encode(&mut self.buf, &t.tid, &t.ask, Some(&a.auth), false).unwrap_or(0);
        // A full socket buffer loses the request like the network would; the timer resends.
        let _ = a.sock.send_to(&self.buf[..n], self.server);
    }

    fn retransmit(&mut self, now: Instant) {
        for i in 0..self.allocs.len() {
            let a = &mut self.allocs[i];
            let Some(t) = &a.txn else { continue };
            if now.duration_since(t.sent_at) < RTO {
                continue;
            }
            if t.tries < TRIES {
                self.transmit(i, now);
            } else {
                let ask = t.ask;
                a.txn = None;
                self.settle(i, ask, Err(0));
            }
        }
    }

    /// Waits up to `timeout` for datagrams and handles every one that arrived.
    fn pump(&mut self, timeout: Duration) {
        if self.poll.poll(&mut self.events, Some(timeout)).is_err() {
            return;
        }
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        for i in ready {
            while let Some(a) = self.allocs.get(i) {
                match a.sock.recv(&mut self.buf) {
                    Ok(n) => self.datagram(i, n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
    }

    fn datagram(&mut self, i: usize, n: usize) {
        let now = Instant::now();
        let bytes = &self.buf[..n];
        if bytes.first().is_some_and(|&b| channel::is_channel_data(b)) {
            let Ok((_, payload)) = channel::parse(bytes) else {
                return;
            };
            let Some(stamp) = payload.get(12..STAMP) else {
                return;
            };
            let mut nanos = [0u8; 8];
            nanos.copy_from_slice(stamp);
            let sent = self.epoch + Duration::from_nanos(u64::from_be_bytes(nanos));
            self.latency
                .record_duration(now.saturating_duration_since(sent));
            self.counters.received += 1;
            let a = &mut self.allocs[i];
            a.recv += 1;
            a.last_rx = Some(now);
            if self.closed_window {
                self.send_data(i, now);
            }
            return;
        }
        let Some(reply) = client::response(bytes) else {
            return;
        };
        let tid = reply.tid;
        let a = &mut self.allocs[i];
        let Some(t) = a.txn.as_mut().filter(|t| t.tid == tid) else {
            return;
        };
        let ask = t.ask;
        if let Err(refusal) = &reply.outcome {
            let realm = refusal.realm.as_deref().unwrap_or_default();
            let nonce = refusal.nonce.as_deref().unwrap_or_default();
            let fresh = refusal.is_challenge() && a.auth.challenge(realm, nonce, None);
            if t.challenges < CHALLENGES && fresh {
                t.challenges += 1;
                t.tid = self.tids.next_tid();
                t.tries = 0;
                self.transmit(i, now);
                return;
            }
        }
        a.txn = None;
        let result = reply.outcome.map(|_| ()).map_err(|r| r.code);
        self.settle(i, ask, result);
    }

    /// What a finished transaction means for the allocation.
    fn settle(&mut self, i: usize, ask: Ask, result: Result<(), u16>) {
        let now = Instant::now();
        let Some(a) = self.allocs.get_mut(i) else {
            return;
        };
        match (ask, result) {
            (Ask::Allocate(_), Ok(())) => {
                a.state = State::Binding;
                let bind = bind(a.peer);
                self.start(i, bind, now);
            }
            (Ask::ChannelBind { .. }, Ok(())) => a.state = State::Ready,
            (Ask::ChannelBind { .. }, Err(code)) if a.state == State::Ready => {
                self.counters.refreshes_failed += 1;
                a.state = State::Lost(code);
            }
            (Ask::Allocate(_) | Ask::ChannelBind { .. }, Err(code)) => {
                a.state = State::Failed(code)
            }
            (Ask::Refresh(0), _) => {
                a.state = State::Idle;
                a.auth.forget();
            }
            (Ask::Refresh(_), Ok(())) => {
                // The permission the channel installed lasts 300 s whatever the allocation's
                // lifetime (RFC 8656 §9): binding the channel again refreshes both.
                self.counters.refreshes_ok += 1;
                let bind = bind(a.peer);
                self.start(i, bind, now);
            }
            (Ask::Refresh(_), Err(code)) => {
                self.counters.refreshes_failed += 1;
                a.state = State::Lost(code);
            }
            (
                Ask::Binding | Ask::CreatePermission(_) | Ask::Connect(_) | Ask::ConnectionBind(_),
                _,
            ) => {}
        }
    }

    fn send_data(&mut self, i: usize, now: Instant) {
        let Some(a) = self.allocs.get_mut(i) else {
            return;
        };
        let len = self.payload;
        let frame = &mut self.buf[..channel::HEADER_LEN + len];
        channel::write_header(frame, CHANNEL, len as u16);
        let body = &mut frame[channel::HEADER_LEN..];
        body[..4].copy_from_slice(&(i as u32).to_be_bytes());
        body[4..12].copy_from_slice(&a.sent.to_be_bytes());
        let nanos = now.duration_since(self.epoch).as_nanos() as u64;
        body[12..STAMP].copy_from_slice(&nanos.to_be_bytes());
        match a.sock.send_to(frame, self.server) {
            Ok(_) => {
                a.sent += 1;
                self.counters.sent += 1;
            }
            Err(_) => self.counters.send_blocked += 1,
        }
    }
}
