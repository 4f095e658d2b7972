//! The `shard` target: an arbitrary sequence of client datagrams, signed and unsigned TURN
//! requests, ChannelData, peer datagrams, clock advances and closed streams through one `Shard`
//! with a fake engine, checking after every step what RFC 8656 and tern's design promise:
//! no state before MESSAGE-INTEGRITY verifies (RFC 8489 §9.2), small answers to unauthenticated
//! senders, consistent counters, in-bounds output, and every relay socket closed exactly once.

mod check;
mod encode;
mod ledger;
pub mod seeds;
mod step;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use tern::auth::NonceKey;
use tern::limits::PeerPolicy;
use tern::options::{Options, User, UserSecret};
use tern::stun::channel;
use tern::turn::{BindError, Client, Counters, Settings, Shard, Shared, Transport, Via, HEADROOM};

use ledger::Ledger;
use step::Step;

/// Steps per input: enough to allocate, permit, bind and relay on several 5-tuples.
const MAX_STEPS: usize = 64;
/// Longest client or peer payload the harness passes in.
const MAX_PAYLOAD: usize = 2048;
/// Long enough for every allocation, permission, channel and reservation to expire.
const DRAIN: Duration = Duration::from_secs(4000);

const LISTENERS: [&str; 3] = ["192.0.2.1:3478", "127.0.0.1:3478", "[2001:db8::1]:3478"];

/// The clients: two UDP 5-tuples (IPv4, IPv6) and two stream connections.
fn clients() -> [Client; 4] {
    let table = [
        (Via::Udp(0), Transport::Udp, 0, "203.0.113.5:40000"),
        (Via::Udp(1), Transport::Udp, 2, "[2001:db8:5::5]:40000"),
        (Via::Stream(1), Transport::Tcp, 0, "203.0.113.6:40001"),
        (Via::Stream(2), Transport::Tls, 0, "203.0.113.6:40002"),
    ];
    let addr = |s: &str| {
        s.parse::<SocketAddr>()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    };
    table.map(|(via, transport, local, remote)| Client {
        via,
        transport,
        local: addr(LISTENERS[local]),
        remote: addr(remote),
    })
}

fn options(fingerprint: bool) -> Options {
    Options {
        realm: step::REALM.into(),
        fingerprint,
        users: vec![User {
            name: step::USER.into(),
            secret: UserSecret::Password(step::PASSWORD.into()),
        }],
        ..Options::default()
    }
}

/// The shard under test, its fake engine and the harness's own account of what happened.
pub struct World {
    pub shard: Shard,
    pub io: Ledger,
    pub policy: PeerPolicy,
    pub nonces: NonceKey,
    pub clients: [Client; 4],
    pub now: Instant,
    pub start: Instant,
    pub unix_start: u64,
    pub expected: Counters,
    /// RESERVATION-TOKENs from successful Allocate responses.
    pub tokens: Vec<[u8; 8]>,
    pub permitted: check::Permitted,
    /// Datagrams from peers relayed to clients.
    pub from_peers: u64,
    pub scratch: Vec<u8>,
}

impl World {
    pub fn new(fingerprint: bool) -> Option<World> {
        let cfg = options(fingerprint);
        let listeners: Vec<SocketAddr> = LISTENERS.iter().filter_map(|s| s.parse().ok()).collect();
        let settings = Settings::from_options(&cfg, &listeners, &[]).ok()?;
        let policy = PeerPolicy::from_options(&cfg, &listeners, settings.relay_ips());
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Some(World {
            shard: Shard::new(
                Arc::new(settings),
                Arc::new(Shared::new(step::SHARED_KEY)),
                0,
            ),
            io: Ledger::default(),
            policy,
            nonces: NonceKey::from_bytes(step::SHARED_KEY),
            clients: clients(),
            now,
            start: now,
            unix_start: 1_700_000_000,
            expected: Counters::ZERO,
            tokens: Vec::new(),
            permitted: check::Permitted::default(),
            from_peers: 0,
            scratch: vec![0; 1500],
        })
    }

    pub fn unix(&self) -> u64 {
        self.unix_start + (self.now - self.start).as_secs()
    }

    fn client(&self, who: u8) -> Client {
        self.clients[usize::from(who) % self.clients.len()]
    }

    pub fn run(&mut self, step: &Step) {
        self.io.fresh.clear();
        match step {
            Step::Raw { who, bytes } => {
                let c = self.client(*who);
                self.client_in(&c, capped(bytes));
            }
            Step::Request { who, req } => {
                let c = self.client(*who);
                let mut msg = vec![0u8; 4096];
                let relays = self.io.addresses();
                let ctx = step::Context {
                    unix: self.unix(),
                    client: c.remote,
                    nonces: &self.nonces,
                    relays: &relays,
                    tokens: &self.tokens,
                };
                if let Some(n) = req.build(&ctx, &mut msg) {
                    msg.truncate(n);
                    self.client_in(&c, &msg);
                }
            }
            Step::ChannelData {
                who,
                channel: ch,
                payload,
                tail,
            } => {
                let c = self.client(*who);
                let payload = capped(payload);
                let mut frame = vec![0u8; channel::HEADER_LEN];
                channel::write_header(&mut frame, ch.number(), payload.len() as u16);
                frame.extend_from_slice(payload);
                frame.resize(frame.len() + usize::from(tail % 8), 0);
                self.client_in(&c, &frame);
            }
            Step::Peer {
                relay,
                from,
                payload,
            } => {
                if self.io.order.is_empty() {
                    return;
                }
                let id = self.io.order[usize::from(*relay) % self.io.order.len()];
                let from = from.addr(&self.io.addresses());
                self.peer_in(id, from, capped(payload));
            }
            Step::Advance(ms) => {
                self.advance(Duration::from_millis(u64::from(*ms % 4_000_001)));
            }
            Step::StreamClosed(conn) => {
                let via = Via::Stream(u32::from(conn % 4));
                self.shard.handle_stream_closed(via);
                self.run_commands();
                assert!(
                    self.io
                        .open_relays()
                        .all(|(_, r)| r.owner.map(|o| o.0) != Some(via)),
                    "a relay of closed stream {via:?} is still open"
                );
            }
            Step::BindFailure(fail) => {
                self.io.fail = fail.map(|f| match f % 3 {
                    0 => BindError::Exhausted,
                    1 => BindError::Resources,
                    _ => BindError::Unavailable,
                });
            }
        }
        self.check_state();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.shard.next_timeout().is_some_and(|t| t <= self.now) {
            self.shard.handle_timeout(self.now);
            self.run_commands();
        }
        if let Some(t) = self.shard.next_timeout() {
            assert!(
                t > self.now,
                "next_timeout {t:?} is not after now after handle_timeout"
            );
        }
    }

    /// At the end: everything expires, every relay socket is closed, every reserved port given back.
    pub fn drain(&mut self) {
        self.io.fresh.clear();
        self.advance(DRAIN);
        self.check_state();
        assert_eq!(
            self.shard.allocation_count(),
            0,
            "allocations outlived their lifetime"
        );
        assert_eq!(self.io.open_relays().count(), 0, "relay sockets left open");
        assert_eq!(
            self.io.pending_reservations(),
            0,
            "reserved ports never released"
        );
    }

    fn client_in(&mut self, client: &Client, bytes: &[u8]) {
        let mut buf = vec![0xEE; HEADROOM + bytes.len() + 64];
        buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        self.expected.client_rx_packets += 1;
        self.expected.client_rx_bytes += bytes.len() as u64;
        let before = self.shard.allocation_count();
        let out = self.shard.handle_client(
            self.now,
            self.unix(),
            client,
            &mut buf,
            bytes.len(),
            &mut self.scratch,
            &mut self.io,
        );
        self.run_commands();
        self.check_client_output(client, bytes, &buf, out, before);
    }

    fn run_commands(&mut self) {
        while let Some(command) = self.shard.poll_command() {
            self.io.run(command);
        }
    }

    fn peer_in(&mut self, relay: tern::turn::RelayId, from: SocketAddr, bytes: &[u8]) {
        let mut buf = vec![0xEE; HEADROOM + bytes.len() + 64];
        buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        self.expected.peer_rx_packets += 1;
        self.expected.peer_rx_bytes += bytes.len() as u64;
        let out = self
            .shard
            .handle_peer(self.now, relay, from, &mut buf, bytes.len());
        self.check_peer_output(relay, from, bytes, &buf, out);
    }
}

fn capped(bytes: &[u8]) -> &[u8] {
    bytes.get(..bytes.len().min(MAX_PAYLOAD)).unwrap_or(bytes)
}

/// How deep one input went: what the seeds promise and the tests check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub relays_bound: usize,
    pub permissions: usize,
    pub to_peers: u64,
    pub to_clients: u64,
    pub tokens: usize,
}

/// Decodes steps from `data` and runs them, then lets everything expire.
pub fn shard(data: &[u8]) {
    run(data);
}

pub fn run(data: &[u8]) -> Reached {
    let mut u = Unstructured::new(data);
    let fingerprint = u.arbitrary::<bool>().unwrap_or(false);
    let Some(mut world) = World::new(fingerprint) else {
        panic!("the fixed configuration must give settings");
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = u.arbitrary::<Step>() else {
            break;
        };
        world.run(&step);
    }
    let reached = Reached {
        relays_bound: world.io.order.len(),
        permissions: world.permitted.values().map(|ips| ips.len()).sum(),
        to_peers: world.expected.peer_tx_packets,
        to_clients: world.from_peers,
        tokens: world.tokens.len(),
    };
    world.drain();
    reached
}
