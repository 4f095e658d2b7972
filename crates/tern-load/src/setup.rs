//! Allocation setup and teardown for every client (RFC 8656 §7 Allocate, §9 CreatePermission,
//! §12 ChannelBind, §7.2 Refresh with LIFETIME 0): a bounded number of clients in setup at once,
//! each transaction retransmitted RFC 8489 §6.2.1 style over UDP (over TCP and TLS sent once and
//! given up after as long, §6.2.2), 401/438 answered with the new nonce.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use tern::client::{self as turn, Auth, Request};
use tern::stun::{Message, TransactionId};
use tern_testkit::Histogram;

use super::conn::{Io, Stream};
use super::options::{Credentials, Mode, Options, Transport};

/// The channel every client binds (one peer per allocation).
pub const CHANNEL: u16 = 0x4000;
/// First retransmission timeout; doubled on every retry.
const RTO: Duration = Duration::from_millis(250);
/// Transmissions per transaction.
const MAX_TRIES: u8 = 6;
/// Challenges (401/438) answered per transaction.
const MAX_CHALLENGES: u8 = 3;
/// How long teardown waits for the last Refresh answers.
const TEARDOWN_WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Idle,
    /// A stream client connecting (TCP, and the TLS handshake).
    Connect,
    Allocate,
    Permission,
    Bind,
    Ready,
    Refresh,
    Done,
    Failed,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Allocate => "alloc",
            Stage::Permission => "perm",
            Stage::Bind => "bind",
            Stage::Refresh => "refresh",
            _ => "other",
        }
    }
}

pub struct Client {
    pub io: Io,
    server: SocketAddr,
    pub peer: SocketAddr,
    pub relayed: Option<SocketAddr>,
    pub stage: Stage,
    tid: TransactionId,
    sent_at: Instant,
    started: Instant,
    rto: Duration,
    tries: u8,
    challenges: u8,
    /// The credentials with this client's realm and nonce.
    auth: Auth,
}

/// The credentials every client signs with: coturn's REST scheme names "<expiry>:<user>", valid
/// a day from `unix_now`.
pub fn auth(creds: &Credentials, unix_now: u64) -> Auth {
    let creds = match creds {
        Credentials::LongTerm { user, pass } => turn::Credentials::long_term(user, pass),
        Credentials::Rest { secret, user } => {
            turn::Credentials::rest(secret, user, unix_now + 86_400)
        }
    };
    Auth::new(creds, turn::Algorithm::Md5)
}

/// Setup figures.
#[derive(Default)]
pub struct SetupStats {
    pub ok: u64,
    pub failed: u64,
    pub retransmits: u64,
    pub failures: BTreeMap<String, u64>,
    pub per_client_ms: Histogram,
    pub seconds: f64,
}

pub struct Fleet {
    pub clients: Vec<Client>,
    pub poll: Poll,
    /// Stream clients connect in their turn of setup; None for UDP.
    streams: Option<Connector>,
    buf: Vec<u8>,
}

/// How stream clients connect: TLS with this configuration, or plain TCP.
struct Connector {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Fleet {
    /// One client per allocation talking to peer `i % peers`: over UDP a connected, registered
    /// socket each; over TCP or TLS none yet (they connect in [`Fleet::setup`]).
    pub fn new(opts: &Options, peers: &[SocketAddr], auth: &Auth) -> io::Result<Fleet> {
        let poll = Poll::new()?;
        let streams = match opts.transport {
            Transport::Udp => None,
            Transport::Tcp => Some(Connector { tls: None }),
            Transport::Tls => {
                let client = tern::tools::TlsClient::new(None).map_err(io::Error::other)?;
                Some(Connector {
                    tls: Some(client.config),
                })
            }
        };
        let mut clients = Vec::with_capacity(opts.allocations);
        for i in 0..opts.allocations {
            let server = opts.servers[i % opts.servers.len()];
            let io = if streams.is_some() {
                Io::Unconnected
            } else {
                Io::Udp(udp_socket(opts, i, server, &poll)?)
            };
            let now = Instant::now();
            clients.push(Client {
                io,
                server,
                peer: peers[i % peers.len().max(1)],
                relayed: None,
                stage: Stage::Idle,
                tid: [0; 12],
                sent_at: now,
                started: now,
                rto: RTO,
                tries: 0,
                challenges: 0,
                auth: auth.clone(),
            });
        }
        Ok(Fleet {
            clients,
            poll,
            streams,
            buf: vec![0; 65_536],
        })
    }

    /// Connects stream client `i` (a no-op over UDP); its setup time starts here.
    fn connect(&mut self, i: usize, stats: &mut SetupStats) -> bool {
        let Some(c) = self.clients.get_mut(i) else {
            return false;
        };
        c.started = Instant::now();
        let Some(streams) = &self.streams else {
            return true;
        };
        c.stage = Stage::Connect;
        let token = Token(i);
        match Stream::connect(c.server, streams.tls.as_ref(), self.poll.registry(), token) {
            Ok(s) => {
                c.io = Io::Stream(Box::new(s));
                true
            }
            Err(e) => {
                let why = match e.kind() {
                    io::ErrorKind::ConnectionRefused => "refused",
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
                    _ => "error",
                };
                self.fail(i, why, stats);
                false
            }
        }
    }
    /// Sets up every client, `concurrency` at a time.
    pub fn setup(&mut self, mode: Mode, concurrency: usize) -> SetupStats {
        let mut stats = SetupStats::default();
        let start = Instant::now();
        let mut active: Vec<usize> = Vec::with_capacity(concurrency);
        let mut next = 0;
        let mut events = Events::with_capacity(1024);
        while next < self.clients.len() || !active.is_empty() {
            while active.len() < concurrency && next < self.clients.len() {
                if self.connect(next, &mut stats) {
                    self.begin(next, Stage::Allocate);
                    active.push(next);
                }
                next += 1;
            }
            self.turn(&mut events, mode, &mut stats);
            self.retransmit(&active, &mut stats);
            active.retain(|&i| {
                matches!(
                    self.clients[i].stage,
                    Stage::Allocate | Stage::Permission | Stage::Bind
                )
            });
        }
        stats.seconds = start.elapsed().as_secs_f64();
        stats
    }

    /// Deallocates every ready client; the number of successful Refresh(0).
    pub fn teardown(&mut self) -> u64 {
        let ready: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].stage == Stage::Ready)
            .collect();
        let mut stats = SetupStats::default();
        let mut events = Events::with_capacity(1024);
        let deadline = Instant::now() + TEARDOWN_WAIT;
        for chunk in ready.chunks(256) {
            for &i in chunk {
                self.begin(i, Stage::Refresh);
            }
            while Instant::now() < deadline
                && chunk
                    .iter()
                    .any(|&i| self.clients[i].stage == Stage::Refresh)
            {
                self.turn(&mut events, Mode::Channel, &mut stats);
                self.retransmit(chunk, &mut stats);
            }
        }
        stats.ok
    }

    fn turn(&mut self, events: &mut Events, mode: Mode, stats: &mut SetupStats) {
        if self
            .poll
            .poll(events, Some(Duration::from_millis(5)))
            .is_err()
        {
            return;
        }
        for e in events.iter() {
            let i = e.token().0;
            if let Some(c) = self.clients.get_mut(i) {
                // A stream's unsent bytes; a failure shows as the read's error below.
                let _ = c.io.flush();
            }
            while let Some(c) = self.clients.get_mut(i) {
                let n = match c.io.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.fail(i, "unreachable", stats);
                        break;
                    }
                };
                self.answer(i, n, mode, stats);
            }
        }
    }

    fn begin(&mut self, i: usize, stage: Stage) {
        if let Some(c) = self.clients.get_mut(i) {
            c.stage = stage;
            c.tries = 0;
            c.challenges = 0;
            c.rto = RTO;
            let _ = getrandom::fill(&mut c.tid);
        }
        self.transmit(i);
    }

    fn transmit(&mut self, i: usize) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        let req = match c.stage {
            Stage::Allocate => Request::ALLOCATE,
            Stage::Permission => Request::CreatePermission(c.peer),
            Stage::Bind => Request::ChannelBind {
                channel: CHANNEL,
                peer: c.peer,
            },
            Stage::Refresh => Request::Refresh(0),
            _ => return,
        };
        if let Ok(n) = turn::encode(&mut self.buf, &c.tid, &req, Some(&c.auth), true) {
            // A lost send is a lost datagram: the retransmission covers it. A stream that
            // refuses it is closed, and the client times out.
            let _ = c.io.send(&self.buf[..n]);
        }
        c.tries += 1;
        c.sent_at = Instant::now();
    }

    fn retransmit(&mut self, which: &[usize], stats: &mut SetupStats) {
        let now = Instant::now();
        for &i in which {
            let Some(c) = self.clients.get_mut(i) else {
                continue;
            };
            if matches!(
                c.stage,
                Stage::Ready | Stage::Done | Stage::Failed | Stage::Idle | Stage::Connect
            ) || now.duration_since(c.sent_at) < c.rto
            {
                continue;
            }
            if c.tries >= MAX_TRIES {
                self.fail(i, "timeout", stats);
                continue;
            }
            c.rto *= 2;
            if matches!(c.io, Io::Udp(_)) {
                stats.retransmits += 1;
                self.transmit(i);
            } else {
                // A stream delivers the request or fails: wait as long, send nothing again.
                c.tries += 1;
                c.sent_at = now;
            }
        }
    }

    fn fail(&mut self, i: usize, why: &str, stats: &mut SetupStats) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        *stats
            .failures
            .entry(format!("{}_{why}", c.stage.name()))
            .or_default() += 1;
        stats.failed += 1;
        c.stage = Stage::Failed;
    }

    fn answer(&mut self, i: usize, n: usize, mode: Mode, stats: &mut SetupStats) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        if !matches!(
            c.stage,
            Stage::Allocate | Stage::Permission | Stage::Bind | Stage::Refresh
        ) {
            return;
        }
        let Some(bytes) = self.buf.get(..n) else {
            return;
        };
        let Some(reply) = turn::response(bytes).filter(|r| r.tid == c.tid) else {
            return;
        };
        // A success that does not verify is not the server's answer: the retransmission goes on.
        if reply.outcome.is_ok()
            && c.auth.is_signing()
            && !Message::parse(bytes).is_ok_and(|m| c.auth.verifies(&m))
        {
            return;
        }
        match reply.outcome {
            Err(refusal) if refusal.is_challenge() => {
                let realm = refusal.realm.as_deref().unwrap_or_default();
                let nonce = refusal.nonce.as_deref().unwrap_or_default();
                if c.challenges >= MAX_CHALLENGES || !c.auth.challenge(realm, nonce, None) {
                    return self.fail(i, "401", stats);
                }
                c.challenges += 1;
                let _ = getrandom::fill(&mut c.tid);
                c.tries = 0;
                c.rto = RTO;
                self.transmit(i);
            }
            Err(refusal) => self.fail(i, &refusal.code.to_string(), stats),
            Ok(success) => {
                let relayed = success.relayed;
                let next = match c.stage {
                    Stage::Allocate => {
                        c.relayed = relayed;
                        Stage::Permission
                    }
                    Stage::Permission if mode == Mode::Channel => Stage::Bind,
                    Stage::Refresh => Stage::Done,
                    _ => Stage::Ready,
                };
                match next {
                    Stage::Ready => {
                        stats.ok += 1;
                        let ms = c.started.elapsed().as_secs_f64() * 1000.0;
                        stats.per_client_ms.record(ms as u64);
                        c.stage = Stage::Ready;
                    }
                    Stage::Done => {
                        stats.ok += 1;
                        c.stage = Stage::Done;
                    }
                    _ => self.begin(i, next),
                }
            }
        }
    }
}

/// Client `i`'s UDP socket, bound on its client IP, connected to `server`, registered as `i`.
fn udp_socket(
    opts: &Options,
    i: usize,
    server: SocketAddr,
    poll: &Poll,
) -> io::Result<mio::net::UdpSocket> {
    let local: SocketAddr = if let Some(ip) = opts.lab {
        SocketAddr::from((ip, 0))
    } else if server.is_ipv4() {
        let host = 1 + (i % opts.client_ips) as u8;
        SocketAddr::from(([127, 0, 1, host], 0))
    } else {
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 0))
    };
    let sock = std::net::UdpSocket::bind(local)?;
    sock.connect(server)?;
    sock.set_nonblocking(true)?;
    let mut sock = mio::net::UdpSocket::from_std(sock);
    poll.registry()
        .register(&mut sock, Token(i), mio::Interest::READABLE)?;
    Ok(sock)
}
