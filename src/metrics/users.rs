//! Per-(realm, user) traffic for coturn's `turn_traffic_*{realm[,user]}` counters. Shards add
//! per-allocation deltas to a shard-local batch and merge it into one shared table at most once
//! per interval (control-plane rate), never per packet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use tern_proto::turn::Traffic;

type Table = HashMap<String, HashMap<String, Traffic>>;

fn add_to(table: &mut Table, realm: &str, user: &str, delta: &Traffic) {
    // Look up by &str first so that a known (realm, user) costs no allocation.
    let users = match table.get_mut(realm) {
        Some(u) => u,
        None => table.entry(realm.to_owned()).or_default(),
    };
    match users.get_mut(user) {
        Some(t) => t.add(delta),
        None => {
            users.insert(user.to_owned(), *delta);
        }
    }
}

/// The shared per-user totals. Locked once per shard flush and once per scrape.
#[derive(Debug)]
pub struct UserTrafficSink {
    table: Mutex<Table>,
    /// Without `prometheus-username-labels` users are folded into their realm on merge, so the
    /// table stays as small as the set of realms.
    keep_users: AtomicBool,
}

impl Default for UserTrafficSink {
    fn default() -> Self {
        UserTrafficSink {
            table: Mutex::new(Table::new()),
            keep_users: AtomicBool::new(true),
        }
    }
}

/// One labelled row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserTotal {
    pub realm: String,
    /// `None` when totals are per realm only.
    pub user: Option<String>,
    pub traffic: Traffic,
}

impl UserTrafficSink {
    /// Whether users are kept apart (set once at start from `prometheus-username-labels`).
    pub fn set_keep_users(&self, keep: bool) {
        self.keep_users.store(keep, Relaxed);
    }

    /// Moves a shard's pending deltas into the table and empties `pending`.
    fn merge(&self, pending: &mut Table) {
        let keep = self.keep_users.load(Relaxed);
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for (realm, users) in pending.drain() {
            for (user, t) in users {
                add_to(&mut table, &realm, if keep { &user } else { "" }, &t);
            }
        }
    }

    /// Totals sorted by realm then user; with `by_user` false, one row per realm.
    pub fn totals(&self, by_user: bool) -> Vec<UserTotal> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<UserTotal> = Vec::new();
        for (realm, users) in table.iter() {
            if by_user {
                rows.extend(users.iter().map(|(u, t)| UserTotal {
                    realm: realm.clone(),
                    user: Some(u.clone()),
                    traffic: *t,
                }));
            } else {
                let mut sum = Traffic::default();
                users.values().for_each(|t| sum.add(t));
                rows.push(UserTotal {
                    realm: realm.clone(),
                    user: None,
                    traffic: sum,
                });
            }
        }
        drop(table);
        rows.sort_by(|a, b| (&a.realm, &a.user).cmp(&(&b.realm, &b.user)));
        rows
    }
}

/// Shard-local accumulator. The core keeps an unpublished [`Traffic`] per allocation (plain
/// integers, bumped on the data path); once per second the shard hands each non-zero one to
/// [`UserTrafficBatch::add`] (resetting it) and calls [`UserTrafficBatch::maybe_flush`].
#[derive(Debug)]
pub struct UserTrafficBatch {
    sink: Arc<UserTrafficSink>,
    pending: Table,
    interval: Duration,
    last_flush: Option<Instant>,
}

impl UserTrafficBatch {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    pub fn new(sink: Arc<UserTrafficSink>) -> UserTrafficBatch {
        UserTrafficBatch::with_interval(sink, UserTrafficBatch::DEFAULT_INTERVAL)
    }

    pub fn with_interval(sink: Arc<UserTrafficSink>, interval: Duration) -> UserTrafficBatch {
        UserTrafficBatch {
            sink,
            pending: Table::new(),
            interval,
            last_flush: None,
        }
    }

    /// `user` should be the quota user (a TURN REST username without its timestamp), so that a
    /// user's label does not change with every credential.
    pub fn add(&mut self, realm: &str, user: &str, delta: &Traffic) {
        if !delta.is_zero() {
            add_to(&mut self.pending, realm, user, delta);
        }
    }

    /// Whether [`UserTrafficBatch::maybe_flush`] would merge at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.last_flush
            .is_none_or(|t| now.saturating_duration_since(t) >= self.interval)
    }

    /// Merges into the shared table when `interval` has passed since the last merge. Returns
    /// whether the shared lock was taken.
    pub fn maybe_flush(&mut self, now: Instant) -> bool {
        if !self.due(now) {
            return false;
        }
        self.last_flush = Some(now);
        self.flush()
    }

    /// Merges now (for allocation teardown at shard exit). Returns whether the lock was taken.
    pub fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        self.sink.merge(&mut self.pending);
        true
    }
}

#[cfg(test)]
// Tests need one real Instant as the origin of their virtual time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn t(rcvp: u64, peer_sentb: u64) -> Traffic {
        Traffic {
            rcvp,
            peer_sentb,
            ..Traffic::default()
        }
    }

    #[test]
    fn flushes_at_most_once_per_interval() {
        let sink = Arc::new(UserTrafficSink::default());
        let mut b = UserTrafficBatch::new(sink.clone());
        let t0 = Instant::now();
        b.add("r", "alice", &t(1, 10));
        assert!(b.maybe_flush(t0));
        b.add("r", "alice", &t(2, 20));
        assert!(!b.maybe_flush(t0 + Duration::from_millis(999)));
        assert_eq!(sink.totals(true).first().map(|r| r.traffic), Some(t(1, 10)));
        assert!(b.maybe_flush(t0 + Duration::from_secs(1)));
        assert_eq!(sink.totals(true).first().map(|r| r.traffic), Some(t(3, 30)));
    }

    #[test]
    fn empty_batches_take_no_lock_and_zero_deltas_are_skipped() {
        let sink = Arc::new(UserTrafficSink::default());
        let mut b = UserTrafficBatch::new(sink.clone());
        b.add("r", "bob", &Traffic::default());
        assert!(!b.maybe_flush(Instant::now()));
        assert!(sink.totals(true).is_empty());
    }

    #[test]
    fn folding_users_keeps_one_row_per_realm() {
        let sink = Arc::new(UserTrafficSink::default());
        sink.set_keep_users(false);
        let mut b = UserTrafficBatch::new(sink.clone());
        b.add("r", "alice", &t(1, 0));
        b.add("r", "bob", &t(2, 0));
        b.add("s", "carol", &t(4, 0));
        assert!(b.flush());
        let rows = sink.totals(true);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.first().map(|r| (r.realm.as_str(), r.traffic.rcvp)),
            Some(("r", 3))
        );
        assert_eq!(rows.get(1).map(|r| r.user.as_deref()), Some(Some("")));
    }
}
