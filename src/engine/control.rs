//! What a shard thread does besides moving packets, once per loop turn: pick up reloaded
//! settings, publish its counters to the metrics registry, log the core's allocation events,
//! keep the kernel fast path's routes, and once a second hand per-user traffic (the fast path's
//! included) to the shared table. Nothing here runs per packet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::fast::FastRoutes;
use crate::limits::normalize;
use crate::metrics::{AllocationCounts, Histogram, ShardExtra, ShardSlot, UserTrafficBatch};
use crate::turn::{self, Event, EventKind, Settings};

/// How often per-allocation traffic is collected (the per-user table's resolution).
const TRAFFIC_EVERY: Duration = Duration::from_secs(1);

/// The current settings for every shard; replaced on reload. Shards compare the generation once
/// per loop turn (one relaxed load) and take the lock only when it moved.
#[derive(Debug)]
pub(crate) struct SettingsSlot {
    generation: AtomicU64,
    current: Mutex<Arc<Settings>>,
}

impl SettingsSlot {
    pub(crate) fn new(settings: Arc<Settings>) -> SettingsSlot {
        SettingsSlot {
            generation: AtomicU64::new(0),
            current: Mutex::new(settings),
        }
    }

    pub(crate) fn replace(&self, settings: Arc<Settings>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = settings;
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn current(&self) -> Arc<Settings> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One shard's side of the control plane.
pub(crate) struct Control {
    settings: Arc<SettingsSlot>,
    seen: u64,
    metrics: Arc<ShardSlot>,
    /// Per-user traffic; `None` when Prometheus is off (nobody would read it).
    users: Option<UserTrafficBatch>,
    next_traffic: Option<Instant>,
    setup_latency: Histogram,
    /// This shard's routes on the kernel fast path (`fast-path`), when it loaded.
    fast: Option<FastRoutes>,
}

impl Control {
    pub(crate) fn new(
        settings: Arc<SettingsSlot>,
        metrics: Arc<ShardSlot>,
        users: Option<UserTrafficBatch>,
        fast: Option<FastRoutes>,
    ) -> Control {
        let seen = settings.generation();
        Control {
            settings,
            seen,
            metrics,
            users,
            next_traffic: None,
            setup_latency: Histogram::default(),
            fast,
        }
    }

    /// Called when a loop turn starts, before any input is handled: reloaded settings (one atomic
    /// load when nothing changed), and the fast-path routes they allow. Applied after the turn
    /// instead, the first request a sleeping shard woke for after a reload was still judged by
    /// the old settings. True after a reload: the core may have commands for the engine.
    pub(crate) fn before_turn(&mut self, core: &mut turn::Shard, now: Instant) -> bool {
        let generation = self.settings.generation();
        if generation == self.seen {
            return false;
        }
        self.seen = generation;
        core.set_settings(self.settings.current());
        core.fast_resync(now);
        true
    }

    /// Carries out one of the core's fast-path commands; false for any other command.
    pub(crate) fn fast_command(&mut self, core: &mut turn::Shard, command: &turn::Command) -> bool {
        self.fast
            .as_mut()
            .is_some_and(|fast| fast.command(core, command))
    }

    /// Called after every loop turn.
    pub(crate) fn after_turn(&mut self, core: &mut turn::Shard, now: Instant) {
        if let Some(fast) = &mut self.fast {
            fast.collect(core, now);
        }
        core.drain_events(&mut log_event);
        if let Some(users) = &mut self.users {
            if self.next_traffic.is_none_or(|t| now >= t) {
                self.next_traffic = Some(now + TRAFFIC_EVERY);
                core.drain_user_traffic(&mut |realm, user, t| users.add(realm, user, &t));
                users.maybe_flush(now);
            }
        }
        self.publish(core);
    }

    fn publish(&self, core: &turn::Shard) {
        self.metrics.publish(core.counters());
        let mut allocations = AllocationCounts::default();
        for (transport, n) in core.allocations_by_transport() {
            *allocations.get_mut(transport) = n;
        }
        self.metrics.publish_extra(&ShardExtra {
            allocations,
            unauthenticated_401_dropped: core.drops().unauthenticated_401_dropped(),
            drops: core.drops().counts(),
        });
        self.metrics.publish_setup_latency(&self.setup_latency);
    }

    /// An Allocate that created an allocation took `d` from receipt to answer.
    pub(crate) fn observe_setup(&mut self, d: Duration) {
        self.setup_latency.observe(d);
    }

    /// At shard exit: the last traffic and counters, so nothing counted is lost.
    pub(crate) fn finish(&mut self, core: &mut turn::Shard) {
        core.drain_events(&mut log_event);
        if let Some(users) = &mut self.users {
            core.drain_user_traffic(&mut |realm, user, t| users.add(realm, user, &t));
            users.flush();
        }
        self.publish(core);
    }
}

/// One log line per allocation event (verbose level), per Binding with `log-binding`. Events
/// carry no password or key.
fn log_event(e: &Event) {
    let user = if e.username.is_empty() {
        "-"
    } else {
        &e.username
    };
    let transport = crate::engine::error::name(e.transport);
    let relays: Vec<String> = e.relays.iter().flatten().map(ToString::to_string).collect();
    let relay = if relays.is_empty() {
        String::from("-")
    } else {
        relays.join(",")
    };
    let t = &e.traffic;
    match e.kind {
        EventKind::Binding => info!("binding request from {transport} {}", e.client),
        EventKind::AllocationCreated | EventKind::AllocationRefreshed => debug!(
            "allocation {}: user={user} client={transport} {} relay={relay} lifetime={}s \
             rcvb={} sentb={} peer_rcvb={} peer_sentb={}",
            if e.kind == EventKind::AllocationCreated {
                "created"
            } else {
                "refreshed"
            },
            e.client,
            e.lifetime,
            t.rcvb,
            t.sentb,
            t.peer_rcvb,
            t.peer_sentb,
        ),
        EventKind::AllocationDeleted => debug!(
            "allocation deleted: user={user} client={transport} {} relay={relay} \
             rcvp={} rcvb={} sentp={} sentb={} peer_rcvp={} peer_rcvb={} peer_sentp={} \
             peer_sentb={}",
            e.client,
            t.rcvp,
            t.rcvb,
            t.sentp,
            t.sentb,
            t.peer_rcvp,
            t.peer_rcvb,
            t.peer_sentp,
            t.peer_sentb,
        ),
        EventKind::TcpOwnAddressRefused { named, peer } => info!(
            "allocation user={user} client={transport} {} relay={relay}: {}",
            e.client,
            own_address_refused(named, peer)
        ),
    }
}

/// Why a Connect into this host got 403, and the configuration line that would admit it (the
/// address the policy checked, which differs from the one the client named behind
/// `external-ip`).
fn own_address_refused(named: SocketAddr, peer: SocketAddr) -> String {
    let also = if named == peer {
        String::new()
    } else {
        format!(" ({peer})")
    };
    format!(
        "refused TCP relaying to {named}{also}, an address of this host; allowed-peer-ip={} \
         admits it",
        normalize(peer.ip())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_own_address_refusal_names_the_line_that_admits_it() {
        let public: SocketAddr = "203.0.113.10:5432".parse().unwrap();
        assert_eq!(
            own_address_refused(public, public),
            "refused TCP relaying to 203.0.113.10:5432, an address of this host; \
             allowed-peer-ip=203.0.113.10 admits it"
        );
        assert_eq!(
            own_address_refused(public, "10.0.0.10:5432".parse().unwrap()),
            "refused TCP relaying to 203.0.113.10:5432 (10.0.0.10:5432), an address of this \
             host; allowed-peer-ip=10.0.0.10 admits it"
        );
        let mapped: SocketAddr = "[::ffff:203.0.113.10]:22".parse().unwrap();
        assert!(
            own_address_refused(mapped, mapped).ends_with("allowed-peer-ip=203.0.113.10 admits it"),
            "the range is written in the form the policy compares"
        );
    }
}
