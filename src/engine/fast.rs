//! The engine's side of the fast path (docs/fast-path.md): loading the kernel program once per
//! process as `fast-path` asks, and, per shard, carrying out the core's FastOpen, FastClose and
//! FastForget commands on its maps and handing the kernel's counts back to the core once a
//! second, so that metrics, per-user traffic and allocation logs include them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::error::EngineError;
use crate::config::{Config, FastPath as Mode};
use crate::fastpath::{monotonic_ns, ChannelRoute, FastCounts, FastPath};
use crate::turn::{self, Command, FastChannel, FastId, FastTraffic};

/// How often the kernel's counts are read (the per-user table's resolution).
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// Loads the program as `fast-path` asks: `Ok(None)` when off, or under `auto` where it does not
/// load (one log line says why); an error under `on` where it does not. It is attached to the
/// interfaces that hold the listening and relay addresses, and to loopback (a peer on this
/// host reaches a relay address through it).
pub(crate) fn load(
    cfg: &Config,
    addrs: &[SocketAddr],
) -> Result<Option<Arc<FastPath>>, EngineError> {
    if cfg.fast_path == Mode::Off {
        return Ok(None);
    }
    let interfaces = match interfaces(cfg, addrs) {
        Ok(interfaces) => interfaces,
        Err(e) => return refused(cfg.fast_path, &format!("listing the interfaces: {e}")),
    };
    match FastPath::load(&interfaces, cfg.fast_path_xdp) {
        Ok(path) => {
            info!(
                "fast path: on, ChannelData over UDP/IPv4 relayed in the kernel on {}; {}",
                interfaces.join(", "),
                path.xdp_summary()
            );
            Ok(Some(Arc::new(path)))
        }
        Err(e) => refused(cfg.fast_path, &e.to_string()),
    }
}

fn refused(mode: Mode, why: &str) -> Result<Option<Arc<FastPath>>, EngineError> {
    if mode == Mode::On {
        return Err(EngineError::Io {
            what: "loading the fast path (fast-path=on)",
            source: std::io::Error::other(why.to_string()),
        });
    }
    info!("fast path: off, it did not load ({why}); every packet goes through the shards");
    Ok(None)
}

/// The interfaces holding an address relays or listeners use (every one with an IPv4 address
/// when they listen on all), and loopback.
fn interfaces(cfg: &Config, addrs: &[SocketAddr]) -> std::io::Result<Vec<String>> {
    let mut used: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    used.extend(cfg.relay_ips.iter().copied());
    let mut names = vec![String::from("lo")];
    for (name, ip) in crate::net::named_addresses()? {
        let wanted = used.contains(&ip) || used.iter().any(IpAddr::is_unspecified);
        if wanted && ip.is_ipv4() && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// What one shard has on the fast path.
pub(crate) struct FastRoutes {
    path: Arc<FastPath>,
    /// Per allocation: its routes as installed, and the counts already handed to the core.
    held: HashMap<FastId, Held>,
    next_collect: Option<Instant>,
}

#[derive(Default)]
struct Held {
    routes: Vec<ChannelRoute>,
    reported: FastCounts,
}

/// Logged once per process: a route the maps refused, and the program found detached.
static INSTALL_FAILED: AtomicBool = AtomicBool::new(false);
static DETACHED: AtomicBool = AtomicBool::new(false);

impl FastRoutes {
    pub(crate) fn new(path: Arc<FastPath>) -> FastRoutes {
        FastRoutes {
            path,
            held: HashMap::new(),
            next_collect: None,
        }
    }

    /// Carries out a fast-path command; false for any other command (the caller runs it).
    pub(crate) fn command(&mut self, core: &mut turn::Shard, command: &Command) -> bool {
        match command {
            Command::FastOpen(c) => self.open(c),
            Command::FastClose(c) => self.close(c),
            Command::FastForget(id) => {
                let last = self.forget(*id);
                core.fast_forgotten(*id, last);
            }
            _ => return false,
        }
        true
    }

    fn open(&mut self, c: &FastChannel) {
        // The program rewrites IPv4 only; an IPv6 channel stays with the shard.
        let Some(route) = route_of(c) else {
            return;
        };
        if let Err(e) = self.path.install(&route) {
            if !INSTALL_FAILED.swap(true, Ordering::Relaxed) {
                warn!("fast path: a channel stays in user space, its route was refused: {e}");
            }
            return;
        }
        let held = self.held.entry(c.alloc).or_default();
        held.routes.retain(|r| !same(r, &route));
        held.routes.push(route);
    }

    fn close(&mut self, c: &FastChannel) {
        let Some(route) = route_of(c) else {
            return;
        };
        self.path.remove(&route);
        if let Some(held) = self.held.get_mut(&c.alloc) {
            held.routes.retain(|r| !same(r, &route));
        }
    }

    /// The counts of `id` not yet reported, its counters entry gone.
    fn forget(&mut self, id: FastId) -> FastTraffic {
        let held = self.held.remove(&id).unwrap_or_default();
        for route in &held.routes {
            self.path.remove(route);
        }
        let last = self.path.forget(id.0).unwrap_or(held.reported);
        since(&last, &held.reported)
    }

    /// Once a second: what the kernel relayed since the last call, per allocation, to the core;
    /// and whether the program is still attached (when it is not, the shards relay everything,
    /// as they always can: their sockets never closed).
    pub(crate) fn collect(&mut self, core: &mut turn::Shard, now: Instant) {
        if self.next_collect.is_some_and(|t| now < t) {
            return;
        }
        self.next_collect = Some(now + COLLECT_EVERY);
        if self.held.is_empty() {
            return;
        }
        // Read at most once per half collect period for all the shards: each takes its ids.
        let all = self.path.all_counts(now, COLLECT_EVERY / 2);
        for (id, held) in &mut self.held {
            let Some(&counts) = all.get(&id.0) else {
                continue;
            };
            let delta = since(&counts, &held.reported);
            if delta != FastTraffic::default() {
                held.reported = counts;
                core.fast_traffic(*id, delta);
            }
        }
        if !self.path.attached() && !DETACHED.swap(true, Ordering::Relaxed) {
            warn!("fast path: the program was detached; the shards relay every packet now");
        }
    }
}

fn route_of(c: &FastChannel) -> Option<ChannelRoute> {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    };
    let (client, server, relay, peer): (SocketAddrV4, _, _, _) =
        (v4(c.client)?, v4(c.server)?, v4(c.relay)?, v4(c.peer)?);
    Some(ChannelRoute {
        id: c.alloc.0,
        client,
        server,
        relay,
        peer,
        channel: c.number,
        until_ns: monotonic_ns(c.until),
        dont_fragment: c.dont_fragment,
    })
}

fn same(a: &ChannelRoute, b: &ChannelRoute) -> bool {
    (a.client, a.server, a.relay, a.peer, a.channel)
        == (b.client, b.server, b.relay, b.peer, b.channel)
}

fn since(now: &FastCounts, before: &FastCounts) -> FastTraffic {
    FastTraffic {
        to_peer_packets: now.to_peer_packets.wrapping_sub(before.to_peer_packets),
        to_peer_bytes: now.to_peer_bytes.wrapping_sub(before.to_peer_bytes),
        to_client_packets: now.to_client_packets.wrapping_sub(before.to_client_packets),
        to_client_bytes: now.to_client_bytes.wrapping_sub(before.to_client_bytes),
    }
}
