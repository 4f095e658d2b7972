//! The long-term credential mechanism on the server side (RFC 8489 §9.2.4): challenge with REALM
//! and a stateless NONCE, verify the nonce, the user and MESSAGE-INTEGRITY(-SHA256). Nothing is
//! stored for a sender before its MESSAGE-INTEGRITY verifies, except a request parked while the
//! user database is asked for a key the static configuration does not hold.

use std::net::SocketAddr;
use std::time::Instant;

use super::allocation::{Allocation, Sign};
use super::response::Responder;
use super::settings::Settings;
use crate::auth::{Key, Lookup, NonceCheck, NonceKey, Refusal, Resolved};
use crate::stun::{attr, ErrorCode, Message};

/// A request that passed authentication.
pub(crate) struct Authed<'m> {
    pub sign: Sign,
    /// Empty under `no-auth`.
    pub username: &'m str,
    pub key: Option<Key>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 401 / 438: answered with REALM and a fresh NONCE.
    Challenge(ErrorCode),
    /// 400 / 441: a plain error.
    Plain(ErrorCode),
    /// MESSAGE-INTEGRITY did not verify with the user's key: answered like `Challenge(401)`.
    BadIntegrity,
    /// The user database is being asked: park the request and run it again on the answer.
    Pending,
    /// The user database cannot be reached: 401 (with REALM and NONCE), counted apart.
    DbUnavailable,
    /// The user database was not asked (name too long, the source's budget spent, its queue
    /// full): 401 like an unknown user, counted by reason.
    NotAsked(Refusal),
}

/// Who asks and when: the user database cache needs the shard (to wake it) and `now`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asker {
    pub client: SocketAddr,
    pub shard: usize,
    pub now: Instant,
    pub unix: u64,
}

/// Authenticates `msg` from `client`; `existing` is the allocation of its 5-tuple, whose cached
/// key is used (the user's credentials are looked up only when there is none, as coturn does).
/// `budget` is asked before the user database is queried about a name it has not confirmed.
pub(crate) fn authenticate<'m>(
    settings: &Settings,
    nonces: &NonceKey,
    msg: &Message<'m>,
    asker: Asker,
    existing: Option<&Allocation>,
    budget: &mut dyn FnMut() -> bool,
) -> Result<Authed<'m>, Reject> {
    let Asker { client, unix, .. } = asker;
    if settings.credentials.is_open() {
        return Ok(Authed {
            sign: Sign::None,
            username: "",
            key: None,
        });
    }
    let sha256 = msg.has_integrity_sha256();
    if !sha256 && !msg.has_integrity() {
        return Err(Reject::Challenge(ErrorCode::UNAUTHORIZED));
    }
    let bad = Reject::Plain(ErrorCode::BAD_REQUEST);
    let username = msg.username().ok_or(bad)?.map_err(|_| bad)?;
    msg.realm().ok_or(bad)?.map_err(|_| bad)?;
    let nonce = msg.nonce().ok_or(bad)?;
    match nonces.check(nonce, unix, client, settings.stale_nonce) {
        NonceCheck::Valid => {}
        NonceCheck::Stale => return Err(Reject::Challenge(ErrorCode::STALE_NONCE)),
        NonceCheck::Invalid => return Err(Reject::Challenge(ErrorCode::UNAUTHORIZED)),
    }
    let verify = |key: &Key| {
        let ok = if sha256 {
            msg.verify_integrity_sha256(key).is_ok()
        } else {
            msg.verify_integrity(key).is_ok()
        };
        ok.then_some(Authed {
            sign: if sha256 {
                Sign::Sha256(*key)
            } else {
                Sign::Sha1(*key)
            },
            username,
            key: Some(*key),
        })
    };
    let unauthorized = Reject::Challenge(ErrorCode::UNAUTHORIZED);
    if let Some(alloc) = existing {
        if let Some(key) = &alloc.key {
            if *alloc.username != *username {
                return Err(Reject::Plain(ErrorCode::WRONG_CREDENTIALS));
            }
            return verify(key).ok_or(Reject::BadIntegrity);
        }
    }
    // A user the static configuration knows but whose key does not verify is not asked of the
    // database again: a wrong password, answered like a challenge.
    let mut known = false;
    if let Lookup::Keys(keys) = settings.credentials.lookup(username, unix) {
        if let Some(authed) = keys.iter().find_map(verify) {
            return Ok(authed);
        }
        known = true;
    }
    let not_found = if known {
        Reject::BadIntegrity
    } else {
        unauthorized
    };
    let Some(resolver) = &settings.resolver else {
        return Err(not_found);
    };
    match resolver.lookup(username, asker.shard, asker.now, budget) {
        Resolved::Found(answer) => {
            match settings.credentials.lookup_answer(username, unix, &answer) {
                Lookup::Keys(keys) => keys.iter().find_map(verify).ok_or(Reject::BadIntegrity),
                Lookup::Expired | Lookup::Unknown => Err(not_found),
            }
        }
        Resolved::Pending => Err(Reject::Pending),
        Resolved::Unavailable => Err(Reject::DbUnavailable),
        Resolved::Refused(why) => Err(Reject::NotAsked(why)),
    }
}

/// The answer to a rejected request.
pub(crate) fn reject(
    r: Responder<'_>,
    why: Reject,
    settings: &Settings,
    nonces: &NonceKey,
    client: SocketAddr,
    unix: u64,
) -> Option<usize> {
    match why {
        Reject::Plain(code) => r.error(code),
        Reject::BadIntegrity => {
            challenge(r, ErrorCode::UNAUTHORIZED, settings, nonces, client, unix)
        }
        // The caller parks the request instead of answering.
        Reject::Pending => None,
        Reject::Challenge(code) => challenge(r, code, settings, nonces, client, unix),
        Reject::DbUnavailable | Reject::NotAsked(_) => {
            challenge(r, ErrorCode::UNAUTHORIZED, settings, nonces, client, unix)
        }
    }
}

fn challenge(
    r: Responder<'_>,
    code: ErrorCode,
    settings: &Settings,
    nonces: &NonceKey,
    client: SocketAddr,
    unix: u64,
) -> Option<usize> {
    let nonce = nonces.issue(unix, client);
    let realm = settings.credentials.realm();
    r.error_with(code, &mut |b| {
        b.add_str(attr::REALM, realm)?;
        b.add_raw(attr::NONCE, nonce.as_bytes())
    })
}
