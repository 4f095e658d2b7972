//! Allocation quotas shared by every shard: `user-quota`, `total-quota` and the file-descriptor
//! ceiling (RFC 8656 §7.2 step 10: 486 Allocation Quota Reached, 508 Insufficient Capacity).
//!
//! Only Allocate and the end of an allocation touch this (control plane), so a short mutex on one
//! of a few user shards is fine; the relay path never sees it.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::options::Options;
use crate::stun::ErrorCode;

/// Lock shards for the per-user counts: enough that Allocates on different cores rarely meet.
const USER_SHARDS: usize = 16;

/// Which limit refused an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The user already holds `user-quota` allocations (486).
    User,
    /// The server holds `total-quota` allocations (486).
    Total,
    /// The server holds as many allocations as its file descriptors allow (508).
    Capacity,
}

impl QuotaExceeded {
    /// The ERROR-CODE for the Allocate error response.
    pub fn error_code(self) -> ErrorCode {
        match self {
            QuotaExceeded::User | QuotaExceeded::Total => ErrorCode::ALLOCATION_QUOTA_REACHED,
            QuotaExceeded::Capacity => ErrorCode::INSUFFICIENT_CAPACITY,
        }
    }
}

impl From<QuotaExceeded> for ErrorCode {
    fn from(e: QuotaExceeded) -> ErrorCode {
        e.error_code()
    }
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaExceeded::User => "user-quota reached",
            QuotaExceeded::Total => "total-quota reached",
            QuotaExceeded::Capacity => "allocation capacity (file descriptors) reached",
        })
    }
}

/// Proof that one allocation was counted. Neither `Clone` nor `Copy`: giving it back to
/// [`Quotas::release`] consumes it, so one allocation cannot be released twice. 8 bytes.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an allocation's quota ticket must be given back to Quotas::release"]
pub struct QuotaTicket {
    /// The user's key when the user was counted (user-quota was set at acquire time).
    user: Option<NonZeroU64>,
}

/// Allocation counts and limits for the whole server; share it with `Arc`.
///
/// Users are keyed by a 64-bit keyed hash of the quota user name (SipHash under a per-process
/// random key), so tickets and map entries hold no string. Two names that collide would share
/// one quota: stricter, never looser, and with a random key an attacker cannot aim for it.
#[derive(Debug)]
pub struct Quotas {
    user_quota: AtomicU32,
    total_quota: AtomicU32,
    max_allocations: AtomicU32,
    total: AtomicU32,
    hasher: RandomState,
    users: [Mutex<HashMap<NonZeroU64, u32>>; USER_SHARDS],
}

impl Quotas {
    /// `user_quota` and `total_quota`: 0 means unlimited.
    pub fn new(user_quota: u32, total_quota: u32) -> Quotas {
        Quotas {
            user_quota: AtomicU32::new(user_quota),
            total_quota: AtomicU32::new(total_quota),
            max_allocations: AtomicU32::new(0),
            total: AtomicU32::new(0),
            hasher: RandomState::new(),
            users: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    pub fn from_options(opts: &Options) -> Quotas {
        Quotas::new(opts.user_quota, opts.total_quota)
    }

    /// New limits (SIGHUP). Allocations already over a lowered limit stay; new ones wait until
    /// the count falls below it.
    pub fn set_limits(&self, user_quota: u32, total_quota: u32) {
        self.user_quota.store(user_quota, Ordering::Relaxed);
        self.total_quota.store(total_quota, Ordering::Relaxed);
    }

    /// The file-descriptor ceiling (0: none).
    pub fn max_allocations(&self) -> u32 {
        self.max_allocations.load(Ordering::Relaxed)
    }

    /// `user-quota` in force (0: unlimited).
    pub fn user_quota(&self) -> u32 {
        self.user_quota.load(Ordering::Relaxed)
    }

    /// `total-quota` in force (0: unlimited).
    pub fn total_quota(&self) -> u32 {
        self.total_quota.load(Ordering::Relaxed)
    }

    /// The ceiling the engine derives from the file-descriptor limit; 0 means none.
    pub fn set_max_allocations(&self, max: u32) {
        self.max_allocations.store(max, Ordering::Relaxed);
    }

    /// Counts one allocation for `user` (the quota user: for REST usernames the part without
    /// the timestamp, `auth::Credentials::quota_user`).
    pub fn try_acquire(&self, user: &str) -> Result<QuotaTicket, QuotaExceeded> {
        let user_quota = self.user_quota.load(Ordering::Relaxed);
        if user_quota == 0 {
            self.take_total()?;
            return Ok(QuotaTicket { user: None });
        }
        let key = self.key(user);
        // The total is taken under the user's lock so a refusal never has to be rolled back.
        let mut users = self.shard(key);
        let held = users.get(&key).copied().unwrap_or(0);
        if held >= user_quota {
            return Err(QuotaExceeded::User);
        }
        self.take_total()?;
        *users.entry(key).or_insert(0) += 1;
        Ok(QuotaTicket { user: Some(key) })
    }

    /// Gives back what `ticket` counted. Users at zero leave the map, so it never grows past the
    /// number of users holding allocations.
    pub fn release(&self, ticket: QuotaTicket) {
        if let Some(key) = ticket.user {
            if let Entry::Occupied(mut e) = self.shard(key).entry(key) {
                if *e.get() <= 1 {
                    e.remove();
                } else {
                    *e.get_mut() -= 1;
                }
            }
        }
        // A ticket from another `Quotas` must not wrap the count below zero.
        let _ = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Whether the next allocation would be refused by `total-quota` or the file-descriptor
    /// ceiling, whoever the user.
    pub fn is_full(&self) -> bool {
        let n = self.total.load(Ordering::Relaxed);
        let over = |limit: u32| limit != 0 && n >= limit;
        over(self.total_quota.load(Ordering::Relaxed))
            || over(self.max_allocations.load(Ordering::Relaxed))
    }

    /// How many allocations fit: the lower of `total-quota` and the file-descriptor ceiling
    /// (0: unlimited).
    pub fn capacity(&self) -> u32 {
        let limits = [
            self.total_quota.load(Ordering::Relaxed),
            self.max_allocations.load(Ordering::Relaxed),
        ];
        limits.into_iter().filter(|&n| n != 0).min().unwrap_or(0)
    }

    /// Allocations counted now.
    pub fn allocations(&self) -> u32 {
        self.total.load(Ordering::Relaxed)
    }

    /// Allocations counted for `user` (0 when user-quota is unlimited: users are not tracked).
    pub fn user_allocations(&self, user: &str) -> u32 {
        let key = self.key(user);
        self.shard(key).get(&key).copied().unwrap_or(0)
    }

    /// Users with at least one counted allocation (the size of the per-user maps).
    pub fn tracked_users(&self) -> usize {
        self.users.iter().map(|m| lock(m).len()).sum()
    }

    /// Takes one unit of the total with compare-exchange, so concurrent Allocates never push it
    /// past either limit.
    fn take_total(&self) -> Result<(), QuotaExceeded> {
        let quota = self.total_quota.load(Ordering::Relaxed);
        let ceiling = self.max_allocations.load(Ordering::Relaxed);
        let over = |n: u32, limit: u32| limit != 0 && n >= limit;
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                if over(n, quota) || over(n, ceiling) {
                    None
                } else {
                    n.checked_add(1)
                }
            })
            .map(|_| ())
            .map_err(|n| {
                if over(n, quota) {
                    QuotaExceeded::Total
                } else {
                    QuotaExceeded::Capacity
                }
            })
    }

    fn key(&self, user: &str) -> NonZeroU64 {
        NonZeroU64::MIN | self.hasher.hash_one(user)
    }

    fn shard(&self, key: NonZeroU64) -> MutexGuard<'_, HashMap<NonZeroU64, u32>> {
        // The low bit is forced to 1; shard on the bits above it.
        lock(&self.users[(key.get() >> 1) as usize % USER_SHARDS])
    }
}

/// The maps hold plain counts updated in one step, so a panic elsewhere cannot leave them
/// half-written: a poisoned lock is still safe to use.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
