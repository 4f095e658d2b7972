//! State shared by every shard, control plane only: the nonce key (RFC 8489 §9.2 stateless
//! nonces), RESERVATION-TOKENs and their table (RFC 8656 §7.2), drain mode, the allocation
//! quotas (§7.2 step 10: 486/508), the server-wide bandwidth budget (`bps-capacity`) and the time
//! origin the shards measure limits from.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::reservation::{Reservations, Token};
use crate::auth::NonceKey;
use crate::fleet::FleetView;
use crate::limits::{Capacity, Quotas};
use crate::options::Options;

pub struct Shared {
    nonce: NonceKey,
    token_secret: [u8; 32],
    /// Reservation tokens of every shard: a token issued on one shard may be claimed on another
    /// (the engine's reserved sockets are shared too). Touched only by EVEN-PORT Allocates.
    reservations: Mutex<Reservations>,
    quotas: Quotas,
    capacity: Capacity,
    /// Every shard counts bucket time from here: `Capacity` compares the times of all shards.
    epoch: OnceLock<Instant>,
    /// Drain mode (coturn 4.17 SIGUSR1): new allocations are refused, existing ones live on.
    draining: AtomicBool,
    /// The fleet (`redis-statsdb`), set once by the engine.
    fleet: OnceLock<Arc<dyn FleetView>>,
}

impl Shared {
    /// `key`: 32 random bytes (the engine reads them from the OS). No quotas, no capacity.
    pub fn new(key: [u8; 32]) -> Shared {
        Shared::with_limits(key, Quotas::new(0, 0), Capacity::new(0))
    }

    /// `user-quota`, `total-quota` and `bps-capacity` from `opts`; `epoch` is the engine's start
    /// time (any instant no later than the first packet).
    pub fn from_options(key: [u8; 32], opts: &Options, epoch: Instant) -> Shared {
        let shared = Shared::with_limits(
            key,
            Quotas::from_options(opts),
            Capacity::new(opts.bps_capacity),
        );
        let _ = shared.epoch.set(epoch);
        shared
    }

    fn with_limits(key: [u8; 32], quotas: Quotas, capacity: Capacity) -> Shared {
        let mut h = Sha256::new();
        h.update(b"tern reservation token");
        h.update(key);
        Shared {
            nonce: NonceKey::from_bytes(key),
            token_secret: h.finalize().into(),
            reservations: Mutex::new(Reservations::default()),
            quotas,
            capacity,
            epoch: OnceLock::new(),
            draining: AtomicBool::new(false),
            fleet: OnceLock::new(),
        }
    }

    /// Allocation counts and limits (the engine sets the file-descriptor ceiling here; SIGHUP
    /// may change the limits).
    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// The time origin: the one given to `from_config`, else the first `now` any shard saw.
    pub(crate) fn epoch(&self, now: Instant) -> Instant {
        *self.epoch.get_or_init(|| now)
    }

    pub(crate) fn nonce(&self) -> &NonceKey {
        &self.nonce
    }

    pub(crate) fn token_secret(&self) -> &[u8; 32] {
        &self.token_secret
    }

    fn reservations(&self) -> MutexGuard<'_, Reservations> {
        // The table stays consistent across a panic elsewhere: every method is one map operation.
        self.reservations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `addr` for a later Allocate until `until`; the caller schedules `expire_token`.
    pub(crate) fn issue_token(&self, shard: usize, addr: SocketAddr, until: Instant) -> Token {
        self.reservations()
            .issue(&self.token_secret, shard, addr, until)
    }

    /// The reserved address for `token` if still valid at `now`; the token is used up.
    pub(crate) fn take_token(&self, token: &Token, now: Instant) -> Option<SocketAddr> {
        self.reservations().take(token, now)
    }

    /// Forgets `token` if it expired unclaimed, returning the port the engine may release.
    pub(crate) fn expire_token(&self, token: &Token, now: Instant) -> Option<SocketAddr> {
        self.reservations().expire(token, now)
    }

    /// Enters or leaves drain mode; every shard sees it at its next Allocate.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Joins the fleet; false when one was set already.
    pub fn set_fleet(&self, fleet: Arc<dyn FleetView>) -> bool {
        self.fleet.set(fleet).is_ok()
    }

    /// The fleet this node belongs to (`redis-statsdb`), if any.
    pub fn fleet(&self) -> Option<&dyn FleetView> {
        self.fleet.get().map(|f| &**f)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shared { .. }")
    }
}
