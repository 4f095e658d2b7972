//! Health and load beside the Prometheus endpoint, for orchestrators and redirectors
//! (docs/fleet.md): `/healthz` (liveness: the process serves HTTP), `/readyz` (ready for new
//! allocations: started and not draining) and `/load` (one JSON document: allocations, the
//! configured capacity, the relayed bytes per second, the drain flag).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::publish::Registry;
use crate::turn::Shared;

/// How long one rate sample spans: `/load`'s `bps` is the average over the last one.
pub const RATE_SAMPLE: Duration = Duration::from_secs(1);

/// What `/readyz` and `/load` read: the engine's shared state, and whether start-up finished
/// (every listener bound, privileges dropped: when systemd hears READY=1).
#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    shared: Option<Arc<Shared>>,
}

impl Health {
    /// For a running engine; not ready until [`Health::set_ready`].
    pub fn new(shared: Arc<Shared>) -> Health {
        Health {
            ready: AtomicBool::new(false),
            shared: Some(shared),
        }
    }

    /// For a metrics endpoint with no engine behind it (tests): ready, never draining.
    pub fn standalone() -> Health {
        Health {
            ready: AtomicBool::new(true),
            shared: None,
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn draining(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.is_draining())
    }

    /// Ok when new allocations are welcome; else why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if !self.ready.load(Ordering::Acquire) {
            Err("starting")
        } else if self.draining() {
            Err("draining")
        } else {
            Ok(())
        }
    }

    /// The `/load` document. `capacity` fields are null when unlimited (allocations: the lower of
    /// `total-quota` and the file-descriptor ceiling); `bps` counts bytes per second, as
    /// `bps-capacity` does.
    pub fn load(&self, registry: &Registry, bps: u64) -> String {
        let (allocations, quota, bps_capacity) = match &self.shared {
            Some(s) => (
                u64::from(s.quotas().allocations()),
                s.quotas().capacity(),
                s.capacity().rate(),
            ),
            None => (registry.snapshot().allocations, 0, 0),
        };
        let limit = |n: u64| (n != 0).then_some(n);
        let doc = json!({
            "allocations": allocations,
            "capacity": {
                "allocations": limit(u64::from(quota)),
                "bps": limit(bps_capacity),
            },
            "bps": bps,
            "ready": self.readiness().is_ok(),
            "draining": self.draining(),
        });
        format!("{doc}\n")
    }
}

/// Bytes relayed per second, from the summed counters sampled every [`RATE_SAMPLE`].
#[derive(Debug, Default)]
pub struct Rate {
    last: Option<(Instant, u64)>,
    bps: u64,
}

impl Rate {
    /// Takes a sample at `now` when the last is at least [`RATE_SAMPLE`] old.
    pub fn sample(&mut self, now: Instant, registry: &Registry) {
        if let Some((at, _)) = self.last {
            if now.duration_since(at) < RATE_SAMPLE {
                return;
            }
        }
        let c = registry.snapshot();
        let bytes = c.client_tx_bytes.wrapping_add(c.peer_tx_bytes);
        if let Some((at, before)) = self.last {
            let ns = now.duration_since(at).as_nanos().max(1);
            let per_s = u128::from(bytes.wrapping_sub(before)) * 1_000_000_000 / ns;
            self.bps = u64::try_from(per_s).unwrap_or(u64::MAX);
        }
        self.last = Some((now, bytes));
    }

    pub fn bps(&self) -> u64 {
        self.bps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_started_nor_while_draining() {
        let shared = Arc::new(Shared::new([7; 32]));
        let health = Health::new(Arc::clone(&shared));
        assert_eq!(health.readiness(), Err("starting"));
        health.set_ready();
        assert_eq!(health.readiness(), Ok(()));
        shared.set_draining(true);
        assert_eq!(health.readiness(), Err("draining"));
    }
}
