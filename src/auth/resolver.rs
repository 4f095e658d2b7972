//! Database lookups off the packet path (RFC 8489 §9.2.4 needs the key before MESSAGE-INTEGRITY
//! can be checked): shards ask, one resolver thread queries the user database, answers land in a
//! cache shared by every shard (short TTLs, bounded size) and the asking shards are woken to
//! resume the requests they parked. A database that is down costs a 401, never a stall.
//!
//! Anyone holding a nonce can make tern ask about any name, so asking is guarded (issue 18): a
//! name longer than `userdb-max-username-length` is never asked about, the shard charges each
//! question about a name the database has not confirmed to the source's budget
//! (`userdb-lookup-rps`), users the database knows live in a cache of their own that unknown
//! names never evict, their questions go ahead of the others', and a full queue is reported as
//! overload, not as a database that is down.
//!
//! No clock is read here: each question carries the asking shard's `now`, and answers live for
//! their TTL from that instant (a little shorter than from the answer: the safe side).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::db::{self, DbSpec, UserDb};
use super::Userhash;
use super::{bytes_from_hex, key_to_hex, Answer};
use super::{Refusal, Resolved, UserLookup};
use crate::config::Config;

/// How long a user that exists (or a secret list) is trusted before it is read again: the bound
/// on how late a deletion or a key change reaches a running server.
pub const POSITIVE_TTL: Duration = Duration::from_secs(10);
/// How long "no such user" is trusted: the bound on how late a new user is seen.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(3);
/// How long "database unavailable" is answered before the database is tried again for a user.
pub const DOWN_TTL: Duration = Duration::from_secs(3);
/// The default `userdb-max-username-length`: longer than any name a deployment hands out
/// (coturn's REST form is an expiry, a separator and an id), far shorter than STUN's 513 bytes.
pub const DEFAULT_MAX_NAME: usize = 128;
/// After a failure, questions asked within this time are answered "unavailable" at once, so a
/// dead database is not reconnected to once per user.
const BACKOFF: Duration = Duration::from_secs(1);
/// A question without an answer after this long is asked again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Questions waiting for the resolver, per lane; beyond this, authentications that need the
/// database fail at once (401, counted as overload).
const QUEUE: usize = 1024;
/// Users the database knows, kept (past their TTL too, as a mark that the name is real) up to
/// this many; unknown names are cached apart, up to `MAX_OTHERS`.
const MAX_KNOWN: usize = 100_000;
/// Cached answers for names the database does not know, failures and questions in flight;
/// beyond this, expired entries go, then everything not in flight.
const MAX_OTHERS: usize = 100_000;

/// The cache key of a USERHASH lookup starts with a NUL, which [`Resolver::lookup`] refuses in a
/// USERNAME: the two kinds of question never share an entry.
const HASH_PREFIX: &str = "\0userhash:";

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

/// The two caches: names the database confirmed (`known`) and everything else (`others`).
#[derive(Default)]
struct Cache {
    known: HashMap<String, Entry>,
    others: HashMap<String, Entry>,
}

/// The questions waiting for the resolver thread: those about known users go first.
#[derive(Default)]
struct Lanes {
    known: VecDeque<Query>,
    others: VecDeque<Query>,
    closed: bool,
}

type Wake = Box<dyn Fn() + Send + Sync>;

struct Inner {
    realm: String,
    /// The database asked: a reload that names the same one keeps this resolver.
    spec: DbSpec,
    describe: String,
    max_name: usize,
    cache: Mutex<Cache>,
    lanes: Mutex<Lanes>,
    ready: Condvar,
    wakers: Mutex<Vec<Option<Wake>>>,
    refused: AtomicU64,
    overloaded: AtomicU64,
    queries: AtomicU64,
    failures: AtomicU64,
}

struct Query {
    username: String,
    asked: Instant,
}

/// The handle shards use; dropping it ends the resolver thread once its queue is answered.
pub struct Resolver {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer for a name whose entry is still valid (`Unavailable`, which the caller counts, for
/// a failure); `None` when the name must be asked about.
fn cached(entry: Option<&mut Entry>, bit: u64, now: Instant) -> Option<Resolved> {
    let entry = entry.filter(|e| now < e.until)?;
    Some(match &mut entry.state {
        State::Known(answer) => Resolved::Found(Arc::clone(answer)),
        State::Down => Resolved::Unavailable,
        State::InFlight { waiters } => {
            *waiters |= bit;
            Resolved::Pending
        }
    })
}

/// Makes room among the others for one more entry at `now`: expired entries go first, then
/// everything not in flight.
fn make_room(others: &mut HashMap<String, Entry>, now: Instant) {
    if others.len() >= MAX_OTHERS {
        others.retain(|_, e| now < e.until);
        if others.len() >= MAX_OTHERS {
            others.retain(|_, e| matches!(e.state, State::InFlight { .. }));
        }
    }
}

impl Resolver {
    /// The resolver for the user database the configuration names (`None` without one). Only
    /// the connection string is checked here; the database is reached on the first question.
    pub fn from_config(cfg: &Config) -> Result<Option<Arc<Resolver>>, String> {
        Resolver::for_config(cfg, None)
    }

    /// As [`Resolver::from_config`], keeping `running` when it already asks the same database
    /// for the same realm and name limit: a reload then starts no thread and keeps the cache
    /// (keys hang on the realm, so a new realm needs a new cache). Another database gets a new
    /// resolver; `running` ends once the last settings holding it are dropped.
    pub fn for_config(
        cfg: &Config,
        running: Option<&Arc<Resolver>>,
    ) -> Result<Option<Arc<Resolver>>, String> {
        let Some(spec) = DbSpec::from_config(cfg).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let max_name = cfg.userdb_max_username_length;
        if let Some(r) = running.filter(|r| r.asks(&spec, &cfg.realm, max_name)) {
            return Ok(Some(Arc::clone(r)));
        }
        Resolver::start_with(spec, &cfg.realm, max_name).map(|r| Some(Arc::new(r)))
    }

    fn asks(&self, spec: &DbSpec, realm: &str, max_name: usize) -> bool {
        let inner = &self.inner;
        inner.spec == *spec && inner.realm == realm && inner.max_name == max_name
    }

    pub fn start(spec: DbSpec, realm: &str) -> Result<Resolver, String> {
        Resolver::start_with(spec, realm, DEFAULT_MAX_NAME)
    }

    /// As [`Resolver::start`], refusing names longer than `max_name` bytes without a query.
    pub fn start_with(spec: DbSpec, realm: &str, max_name: usize) -> Result<Resolver, String> {
        let inner = Arc::new(Inner {
            realm: realm.to_owned(),
            spec: spec.clone(),
            describe: spec.describe(),
            max_name,
            cache: Mutex::new(Cache::default()),
            lanes: Mutex::new(Lanes::default()),
            ready: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let worker = Arc::clone(&inner);
        std::thread::Builder::new()
            .name(String::from("tern-userdb"))
            .spawn(move || serve(&worker, &spec))
            .map_err(|e| format!("cannot start the user database thread: {e}"))?;
        info!("user database: {}", inner.describe);
        Ok(Resolver { inner })
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
    /// `budget` is called (once) before asking about a name the database has not confirmed;
    /// false refuses the question. A name that starts like a USERHASH cache key is refused as
    /// too long: no client gets another user's USERHASH answer by naming its key.
    pub fn lookup(
        &self,
        username: &str,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved {
        if username.len() > self.inner.max_name || username.starts_with(HASH_PREFIX) {
            return Resolved::Refused(Refusal::TooLong);
        }
        self.cached_or_ask(username, shard, now, budget)
    }

    /// What the database holds for the user whose USERHASH is `hash` (the answer names the
    /// user), as [`Resolver::lookup`] does for a name: one index lookup in the database, cached
    /// under a key no USERNAME can take.
    pub fn lookup_hash(
        &self,
        hash: &Userhash,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved {
        let key = format!("{HASH_PREFIX}{}", key_to_hex(hash));
        self.cached_or_ask(&key, shard, now, budget)
    }

    fn cached_or_ask(
        &self,
        username: &str,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved {
        let bit = 1u64 << (shard % 64);
        let mut cache = lock(&self.inner.cache);
        let known = cache.known.contains_key(username);
        let hit = if known {
            cached(cache.known.get_mut(username), bit, now)
        } else {
            cached(cache.others.get_mut(username), bit, now)
        };
        match hit {
            Some(Resolved::Unavailable) => {
                drop(cache);
                return self.refuse();
            }
            Some(resolved) => return resolved,
            None => {}
        }
        // A user the database confirmed is asked about again without spending the source's
        // budget: a flood from its address must not lock it out.
        if !known && !budget() {
            return Resolved::Refused(Refusal::OverBudget);
        }
        let query = Query {
            username: username.to_owned(),
            asked: now,
        };
        if !self.enqueue(query, known) {
            drop(cache);
            return self.overloaded();
        }
        let entry = Entry {
            state: State::InFlight { waiters: bit },
            until: now + QUERY_TIMEOUT,
        };
        if known {
            cache.known.insert(username.to_owned(), entry);
        } else {
            make_room(&mut cache.others, now);
            cache.others.insert(username.to_owned(), entry);
        }
        Resolved::Pending
    }

    /// Queues `query` in its lane; false when that lane is full.
    fn enqueue(&self, query: Query, known: bool) -> bool {
        let mut lanes = lock(&self.inner.lanes);
        let lane = if known {
            &mut lanes.known
        } else {
            &mut lanes.others
        };
        if lane.len() >= QUEUE {
            return false;
        }
        lane.push_back(query);
        drop(lanes);
        self.inner.ready.notify_one();
        true
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

    fn overloaded(&self) -> Resolved {
        let n = self.inner.overloaded.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(
                "authentication refused (401): user database {} overloaded, {QUEUE} lookups already \
                 waiting ({n} refused so far); cached users are unaffected",
                self.inner.describe
            );
        }
        Resolved::Refused(Refusal::Overloaded)
    }

    /// Counters for metrics and tests.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            refused: self.inner.refused.load(Ordering::Relaxed),
            overloaded: self.inner.overloaded.load(Ordering::Relaxed),
            queries: self.inner.queries.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
        }
    }
}

/// The shards ask through the core's trait; each method is the inherent one.
impl UserLookup for Resolver {
    fn lookup(
        &self,
        username: &str,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved {
        Resolver::lookup(self, username, shard, now, budget)
    }

    fn lookup_hash(
        &self,
        hash: &Userhash,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved {
        Resolver::lookup_hash(self, hash, shard, now, budget)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        lock(&self.inner.lanes).closed = true;
        self.inner.ready.notify_all();
    }
}

/// What the resolver did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Authentications refused because the database was unavailable.
    pub refused: u64,
    /// Authentications refused because the queue of questions was full.
    pub overloaded: u64,
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

/// The next question, known users' first; None once the handle is gone and nothing waits.
fn next(inner: &Inner) -> Option<Query> {
    let mut lanes = lock(&inner.lanes);
    loop {
        if let Some(q) = lanes.known.pop_front().or_else(|| lanes.others.pop_front()) {
            return Some(q);
        }
        if lanes.closed {
            return None;
        }
        lanes = inner
            .ready
            .wait(lanes)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The resolver thread: one question at a time, one connection, reconnecting after a failure.
fn serve(inner: &Inner, spec: &DbSpec) {
    let mut conn: Option<Box<dyn UserDb>> = None;
    let mut failed_at: Option<Instant> = None;
    while let Some(q) = next(inner) {
        let recent_failure = failed_at.is_some_and(|t| q.asked < t + BACKOFF);
        let result = if recent_failure {
            Err(None)
        } else {
            inner.queries.fetch_add(1, Ordering::Relaxed);
            ask(&mut conn, spec, &inner.realm, &q.username).map_err(Some)
        };
        let (state, ttl, real) = match result {
            Ok(answer) => {
                if failed_at.take().is_some() {
                    info!("user database {} reachable again", inner.describe);
                }
                let ttl = if answer.has_key() || !answer.secrets.is_empty() {
                    POSITIVE_TTL
                } else {
                    NEGATIVE_TTL
                };
                let real = answer.has_key();
                (State::Known(Arc::new(answer)), ttl, Some(real))
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
                (State::Down, DOWN_TTL, None)
            }
        };
        let waiters = store(inner, q, state, ttl, real);
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

/// Caches an answer (`real`: whether the database holds a key for the name, None when it could
/// not say) in the cache it belongs to; the shards that waited for it.
fn store(inner: &Inner, q: Query, state: State, ttl: Duration, real: Option<bool>) -> u64 {
    let mut guard = lock(&inner.cache);
    let cache = &mut *guard;
    let waiting = |e: Option<Entry>| match e.map(|e| e.state) {
        Some(State::InFlight { waiters }) => waiters,
        _ => 0,
    };
    let was_known = cache.known.contains_key(&q.username);
    let waiters =
        waiting(cache.known.remove(&q.username)) | waiting(cache.others.remove(&q.username));
    let entry = Entry {
        state,
        until: q.asked + ttl,
    };
    // A failure leaves a known user among the known: its next question still goes first.
    let known = real.unwrap_or(was_known);
    if known && cache.known.len() >= MAX_KNOWN {
        // Only expired users make room: with the cache full of live ones, the newcomer waits
        // among the others.
        let now = q.asked;
        cache
            .known
            .retain(|_, e| now < e.until || matches!(e.state, State::InFlight { .. }));
    }
    if known && cache.known.len() < MAX_KNOWN {
        cache.known.insert(q.username, entry);
    } else {
        make_room(&mut cache.others, q.asked);
        cache.others.insert(q.username, entry);
    }
    waiters
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
    let hash = username
        .strip_prefix(HASH_PREFIX)
        .and_then(bytes_from_hex::<32>);
    match (conn, hash) {
        (Some(db), Some(hash)) => db.user_by_hash(realm, &hash),
        (Some(db), None) => db.user(realm, username),
        (None, _) => Err(super::SourceError(String::from("no connection"))),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // one real base instant; time then moves by hand
mod tests {
    use super::*;
    use crate::auth::long_term_key;

    const REALM: &str = "flood.test";

    struct Db {
        dir: std::path::PathBuf,
        spec: DbSpec,
    }

    impl Db {
        fn new(tag: &str, users: &[&str]) -> Db {
            let mut rnd = [0u8; 6];
            getrandom::fill(&mut rnd).expect("random");
            let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
            let dir = std::env::temp_dir().join(format!("tern-resolver-{tag}-{hex}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let spec = DbSpec::Sqlite(dir.join("turndb"));
            let mut db = db::open(&spec).expect("open SQLite");
            for u in users {
                db.add_user(REALM, u, &long_term_key(u, REALM, "pw"))
                    .expect("add user");
            }
            Db { dir, spec }
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Asks until the answer is in (the resolver thread answers in the background).
    fn answer(r: &Resolver, name: &str, now: Instant) -> Resolved {
        for _ in 0..10_000 {
            match r.lookup(name, 0, now, &mut || true) {
                Resolved::Pending | Resolved::Refused(Refusal::Overloaded) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => return other,
            }
        }
        panic!("no answer for {name}");
    }

    fn has_key(r: &Resolved) -> bool {
        matches!(r, Resolved::Found(a) if a.key.is_some())
    }

    /// More unknown names than the whole cache holds, all still fresh: the known user's entry
    /// stays, so it is answered from the cache after it was deleted from the database.
    #[test]
    fn unknown_names_never_evict_a_known_user() {
        let db = Db::new("evict", &["alice"]);
        let r = Resolver::start(db.spec.clone(), REALM).expect("resolver");
        let t0 = Instant::now();
        assert!(has_key(&answer(&r, "alice", t0)));
        let mut admin = db::open(&db.spec).expect("open SQLite");
        assert_eq!(admin.delete_user(REALM, "alice"), Ok(true));
        let names: Vec<String> = (0..MAX_OTHERS + MAX_OTHERS / 10)
            .map(|i| format!("nobody-{i}"))
            .collect();
        for batch in names.chunks(QUEUE) {
            for name in batch {
                assert_eq!(r.lookup(name, 0, t0, &mut || true), Resolved::Pending);
            }
            if let Some(last) = batch.last() {
                answer(&r, last, t0);
            }
        }
        let later = t0 + Duration::from_secs(1);
        assert!(has_key(&answer(&r, "alice", later)), "{:?}", r.stats());
        let asked = r.stats().queries;
        assert!(asked > MAX_OTHERS as u64, "{asked}");
    }

    /// A USERHASH is looked up by its index and answered with the user's name and keys; the
    /// cache key of that question cannot be asked for as a USERNAME.
    #[test]
    fn userhash_finds_the_user_and_its_key_is_no_username() {
        let db = Db::new("userhash", &[]);
        let mut admin = db::open(&db.spec).expect("open SQLite");
        let sha = crate::auth::long_term_key_sha256("carol", REALM, "pw");
        admin
            .add_user_sha256(REALM, "carol", &sha)
            .expect("add user");
        let r = Resolver::start(db.spec.clone(), REALM).expect("resolver");
        let t0 = Instant::now();
        let hash = crate::auth::userhash("carol", REALM);
        match answer_hash(&r, &hash, t0) {
            Resolved::Found(a) => {
                assert_eq!(a.name.as_deref(), Some("carol"));
                assert_eq!(a.sha256, Some(sha));
            }
            other => panic!("{other:?}"),
        }
        let key = format!("{HASH_PREFIX}{}", key_to_hex(&hash));
        assert_eq!(
            r.lookup(&key, 0, t0, &mut || true),
            Resolved::Refused(Refusal::TooLong)
        );
        let nobody = crate::auth::userhash("nobody", REALM);
        assert!(!has_key(&answer_hash(&r, &nobody, t0)));
    }

    fn answer_hash(r: &Resolver, hash: &Userhash, now: Instant) -> Resolved {
        for _ in 0..10_000 {
            match r.lookup_hash(hash, 0, now, &mut || true) {
                Resolved::Pending => std::thread::sleep(Duration::from_millis(1)),
                other => return other,
            }
        }
        panic!("no answer");
    }

    /// The budget is asked only for names the database has not confirmed; overlong names are
    /// refused before anything else.
    #[test]
    fn budget_and_length_guard_the_lookups() {
        let db = Db::new("budget", &["alice"]);
        let r = Resolver::start_with(db.spec.clone(), REALM, 16).expect("resolver");
        let t0 = Instant::now();
        assert!(has_key(&answer(&r, "alice", t0)));
        let expired = t0 + POSITIVE_TTL + Duration::from_secs(1);
        let mut charged = 0;
        let mut spent = || {
            charged += 1;
            false
        };
        assert_eq!(r.lookup("alice", 0, expired, &mut spent), Resolved::Pending);
        assert_eq!(
            r.lookup("stranger", 0, expired, &mut spent),
            Resolved::Refused(Refusal::OverBudget)
        );
        assert_eq!(
            r.lookup(&"x".repeat(17), 0, expired, &mut spent),
            Resolved::Refused(Refusal::TooLong)
        );
        assert_eq!(charged, 1);
        assert!(has_key(&answer(&r, "alice", expired)));
    }
}
