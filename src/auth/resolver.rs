//! Database lookups off the packet path (RFC 8489 §9.2.4 needs the key before MESSAGE-INTEGRITY
//! can be checked): shards ask, one resolver thread queries the user database, answers land in a
//! cache shared by every shard (short TTLs, bounded size) and the asking shards are woken to
//! resume the requests they parked. A database that is down costs a 401, never a stall.
//!
//! No clock is read here: each question carries the asking shard's `now`, and answers live for
//! their TTL from that instant (a little shorter than from the answer: the safe side).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::db::{self, DbSpec, UserDb};
use super::source::Answer;
use crate::config::Config;

/// How long a user that exists (or a secret list) is trusted before it is read again: the bound
/// on how late a deletion or a key change reaches a running server.
pub const POSITIVE_TTL: Duration = Duration::from_secs(10);
/// How long "no such user" is trusted: the bound on how late a new user is seen.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(3);
/// How long "database unavailable" is answered before the database is tried again for a user.
pub const DOWN_TTL: Duration = Duration::from_secs(3);
/// After a failure, questions asked within this time are answered "unavailable" at once, so a
/// dead database is not reconnected to once per user.
const BACKOFF: Duration = Duration::from_secs(1);
/// A question without an answer after this long is asked again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Questions waiting for the resolver; beyond this, authentications fail at once (401).
const QUEUE: usize = 1024;
/// Cached usernames; beyond this, expired entries go, then everything not in flight.
const MAX_ENTRIES: usize = 100_000;

/// What a shard gets back for a username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// What the database holds for the user (its key may be absent: no such user).
    Found(Arc<Answer>),
    /// The database cannot be reached: refuse (401) and count.
    Unavailable,
    /// Asked; the shard is woken when the answer is in. Park the request.
    Pending,
}

enum State {
    Known(Arc<Answer>),
    Down,
    /// Asked; bit `shard % 64` set for every shard waiting.
    InFlight {
        waiters: u64,
    },
}

struct Entry {
    state: State,
    until: Instant,
}

type Wake = Box<dyn Fn() + Send + Sync>;

struct Inner {
    realm: String,
    describe: String,
    cache: Mutex<HashMap<String, Entry>>,
    wakers: Mutex<Vec<Option<Wake>>>,
    refused: AtomicU64,
    queries: AtomicU64,
    failures: AtomicU64,
}

struct Query {
    username: String,
    asked: Instant,
}

/// The handle shards use; dropping the last one ends the resolver thread.
pub struct Resolver {
    inner: Arc<Inner>,
    tx: SyncSender<Query>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Resolver {
    /// The resolver for the user database the configuration names (`None` without one). Only
    /// the connection string is checked here; the database is reached on the first question.
    pub fn from_config(cfg: &Config) -> Result<Option<Resolver>, String> {
        match DbSpec::from_config(cfg).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(spec) => Resolver::start(spec, &cfg.realm).map(Some),
        }
    }

    pub fn start(spec: DbSpec, realm: &str) -> Result<Resolver, String> {
        let inner = Arc::new(Inner {
            realm: realm.to_owned(),
            describe: spec.describe(),
            cache: Mutex::new(HashMap::new()),
            wakers: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let (tx, rx) = sync_channel(QUEUE);
        let worker = Arc::clone(&inner);
        std::thread::Builder::new()
            .name(String::from("tern-userdb"))
            .spawn(move || serve(&worker, &spec, &rx))
            .map_err(|e| format!("cannot start the user database thread: {e}"))?;
        info!("user database: {}", inner.describe);
        Ok(Resolver { inner, tx })
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

    /// What the database holds for `username`, from the cache or by asking (`Pending`).
    pub fn lookup(&self, username: &str, shard: usize, now: Instant) -> Resolved {
        let bit = 1u64 << (shard % 64);
        let mut cache = lock(&self.inner.cache);
        if let Some(entry) = cache.get_mut(username) {
            if now < entry.until {
                match &mut entry.state {
                    State::Known(answer) => return Resolved::Found(Arc::clone(answer)),
                    State::Down => return self.refuse(),
                    State::InFlight { waiters } => {
                        *waiters |= bit;
                        return Resolved::Pending;
                    }
                }
            }
        }
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, e| now < e.until);
            if cache.len() >= MAX_ENTRIES {
                cache.retain(|_, e| matches!(e.state, State::InFlight { .. }));
            }
        }
        let query = Query {
            username: username.to_owned(),
            asked: now,
        };
        match self.tx.try_send(query) {
            Ok(()) => {
                let entry = Entry {
                    state: State::InFlight { waiters: bit },
                    until: now + QUERY_TIMEOUT,
                };
                cache.insert(username.to_owned(), entry);
                Resolved::Pending
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                drop(cache);
                self.refuse()
            }
        }
    }

    fn refuse(&self) -> Resolved {
        let n = self.inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(
                "authentication refused (401): user database {} unavailable ({n} refused so far)",
                self.inner.describe
            );
        }
        Resolved::Unavailable
    }

    /// Counters for metrics and tests.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            refused: self.inner.refused.load(Ordering::Relaxed),
            queries: self.inner.queries.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
        }
    }
}

/// What the resolver did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Authentications refused because the database was unavailable.
    pub refused: u64,
    /// Questions sent to the database.
    pub queries: u64,
    /// Questions the database could not answer.
    pub failures: u64,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("db", &self.inner.describe)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The resolver thread: one question at a time, one connection, reconnecting after a failure.
fn serve(inner: &Inner, spec: &DbSpec, rx: &Receiver<Query>) {
    let mut conn: Option<Box<dyn UserDb>> = None;
    let mut failed_at: Option<Instant> = None;
    for q in rx {
        let recent_failure = failed_at.is_some_and(|t| q.asked < t + BACKOFF);
        let result = if recent_failure {
            Err(None)
        } else {
            inner.queries.fetch_add(1, Ordering::Relaxed);
            ask(&mut conn, spec, &inner.realm, &q.username).map_err(Some)
        };
        let (state, ttl) = match result {
            Ok(answer) => {
                if failed_at.take().is_some() {
                    info!("user database {} reachable again", inner.describe);
                }
                let ttl = if answer.key.is_some() || !answer.secrets.is_empty() {
                    POSITIVE_TTL
                } else {
                    NEGATIVE_TTL
                };
                (State::Known(Arc::new(answer)), ttl)
            }
            Err(e) => {
                conn = None;
                if let Some(e) = e {
                    inner.failures.fetch_add(1, Ordering::Relaxed);
                    if failed_at.is_none() {
                        warn!(
                            "user database {} unavailable: {e}; authentications that need it are refused (401) until it answers again",
                            inner.describe
                        );
                    }
                    failed_at = Some(q.asked);
                }
                (State::Down, DOWN_TTL)
            }
        };
        let waiters = {
            let mut cache = lock(&inner.cache);
            let waiters = match cache.get(&q.username).map(|e| &e.state) {
                Some(State::InFlight { waiters }) => *waiters,
                _ => 0,
            };
            let entry = Entry {
                state,
                until: q.asked + ttl,
            };
            cache.insert(q.username, entry);
            waiters
        };
        let wakers = lock(&inner.wakers);
        for (i, wake) in wakers.iter().enumerate() {
            if waiters & (1u64 << (i % 64)) != 0 {
                if let Some(wake) = wake {
                    wake();
                }
            }
        }
    }
}

fn ask(
    conn: &mut Option<Box<dyn UserDb>>,
    spec: &DbSpec,
    realm: &str,
    username: &str,
) -> Result<Answer, super::SourceError> {
    if conn.is_none() {
        *conn = Some(db::open(spec)?);
    }
    match conn {
        Some(db) => db.user(realm, username),
        None => Err(super::SourceError(String::from("no connection"))),
    }
}
