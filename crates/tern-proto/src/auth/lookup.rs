//! The user database as the core sees it: a lookup that answers at once from a cache, or says
//! the question was asked and the shard will be woken (the request is parked meanwhile). The
//! server's resolver thread does the blocking database I/O behind it.

use std::sync::Arc;
use std::time::Instant;

use super::key::Userhash;
use super::source::Answer;

/// What a shard gets back for a username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// What the database holds for the user (its key may be absent: no such user).
    Found(Arc<Answer>),
    /// The database cannot be reached: refuse (401) and count.
    Unavailable,
    /// Asked; the shard is woken when the answer is in. Park the request.
    Pending,
    /// Not asked: answered like an unknown user (401) and counted by the shard.
    Refused(Refusal),
}

/// Why a name was not asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than `userdb-max-username-length`.
    TooLong,
    /// The source spent its budget of questions (`userdb-lookup-rps`).
    OverBudget,
    /// The resolver's queue is full: the database is slower than the questions.
    Overloaded,
}

/// A user database the core may ask without blocking.
pub trait UserLookup: Send + Sync {
    /// What the database holds for `username`, from the cache or by asking (`Pending`).
    /// `budget` is called (once) before asking about a name the database has not confirmed;
    /// false refuses the question.
    fn lookup(
        &self,
        username: &str,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved;

    /// What the database holds for the user whose USERHASH is `hash` (the answer names the
    /// user), as [`UserLookup::lookup`] does for a name.
    fn lookup_hash(
        &self,
        hash: &Userhash,
        shard: usize,
        now: Instant,
        budget: &mut dyn FnMut() -> bool,
    ) -> Resolved;
}
