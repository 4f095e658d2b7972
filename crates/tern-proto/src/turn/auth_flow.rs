//! The long-term credential mechanism on the server side (RFC 8489 §9.2.4): challenge with REALM,
//! a stateless NONCE and, when offered, PASSWORD-ALGORITHMS; verify the nonce, pick the password
//! algorithm (refusing a downgrade), find the user by USERNAME or USERHASH, and verify
//! MESSAGE-INTEGRITY(-SHA256) with that algorithm's key. Nothing is stored for a sender before its
//! MESSAGE-INTEGRITY verifies, except a request parked while the user database is asked for a key
//! the static configuration does not hold.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use super::allocation::{Allocation, Sign};
use super::response::Responder;
use super::settings::Settings;
use crate::auth::{
    userhash, AnyKey, Features, Lookup, NonceCheck, NonceKey, Refusal, Resolved, Userhash,
};
use crate::stun::{attr, ErrorCode, Message};

/// A request that passed authentication.
pub(crate) struct Authed<'m> {
    pub sign: Sign,
    /// Empty under `no-auth`; the name the USERHASH index gave for a request with USERHASH.
    pub username: Cow<'m, str>,
    pub key: Option<AnyKey>,
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

/// Who a request says it is: USERNAME, or USERHASH where the nonce offered username anonymity.
#[derive(Clone, Copy)]
enum Identity<'m> {
    Name(&'m str),
    Hash(&'m Userhash),
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
            username: Cow::Borrowed(""),
            key: None,
        });
    }
    let sha256 = msg.has_integrity_sha256();
    if !sha256 && !msg.has_integrity() {
        return Err(Reject::Challenge(ErrorCode::UNAUTHORIZED));
    }
    let bad = Reject::Plain(ErrorCode::BAD_REQUEST);
    msg.realm().ok_or(bad)?.map_err(|_| bad)?;
    let nonce = msg.nonce().ok_or(bad)?;
    match nonces.check(nonce, unix, client, settings.stale_nonce) {
        NonceCheck::Valid => {}
        NonceCheck::Stale => return Err(Reject::Challenge(ErrorCode::STALE_NONCE)),
        NonceCheck::Invalid => return Err(Reject::Challenge(ErrorCode::UNAUTHORIZED)),
    }
    // The tag covers the feature bits: this is the offer the server made to this client.
    let features = Features::of(nonce).unwrap_or_default();
    let algorithm = settings
        .offer
        .negotiate(
            features,
            msg.get(attr::PASSWORD_ALGORITHMS),
            msg.get(attr::PASSWORD_ALGORITHM),
        )
        .map_err(|_| bad)?;
    let identity = identity(msg, features).ok_or(bad)?;
    let verify = |key: &AnyKey| {
        let ok = if sha256 {
            msg.verify_integrity_sha256(key.as_bytes()).is_ok()
        } else {
            msg.verify_integrity(key.as_bytes()).is_ok()
        };
        ok.then_some(if sha256 {
            Sign::Sha256(*key)
        } else {
            Sign::Sha1(*key)
        })
    };
    let realm = settings.credentials.realm();
    if let Some(alloc) = existing {
        if let Some(key) = &alloc.key {
            let same_user = match identity {
                Identity::Name(name) => *alloc.username == *name,
                Identity::Hash(hash) => userhash(&alloc.username, realm) == *hash,
            };
            if !same_user {
                return Err(Reject::Plain(ErrorCode::WRONG_CREDENTIALS));
            }
            if key.algorithm() != algorithm {
                return Err(Reject::BadIntegrity);
            }
            let sign = verify(key).ok_or(Reject::BadIntegrity)?;
            let username = match identity {
                Identity::Name(name) => Cow::Borrowed(name),
                Identity::Hash(_) => Cow::Owned(alloc.username.to_string()),
            };
            return Ok(Authed {
                sign,
                username,
                key: Some(*key),
            });
        }
    }
    let authed = |sign: Sign, key: &AnyKey, username: Cow<'m, str>| Authed {
        sign,
        username,
        key: Some(*key),
    };
    // A user the static configuration knows but whose key does not verify is not asked of the
    // database again: a wrong password, answered like a challenge.
    let static_name = match identity {
        Identity::Name(name) => Some(Cow::Borrowed(name)),
        Identity::Hash(hash) => settings
            .credentials
            .name_of_hash(hash)
            .map(|n| Cow::Owned(n.to_owned())),
    };
    let mut known = false;
    if let Some(name) = static_name {
        if let Lookup::Keys(keys) = settings.credentials.lookup_keys(algorithm, &name, unix) {
            for key in keys.iter() {
                if let Some(sign) = verify(key) {
                    return Ok(authed(sign, key, name));
                }
            }
            known = true;
        }
    }
    let not_found = if known {
        Reject::BadIntegrity
    } else {
        Reject::Challenge(ErrorCode::UNAUTHORIZED)
    };
    let Some(resolver) = &settings.resolver else {
        return Err(not_found);
    };
    let resolved = match identity {
        Identity::Name(name) => resolver.lookup(name, asker.shard, asker.now, budget),
        Identity::Hash(hash) => resolver.lookup_hash(hash, asker.shard, asker.now, budget),
    };
    match resolved {
        Resolved::Found(answer) => {
            let name = match (identity, &answer.name) {
                (Identity::Name(name), None) => Cow::Borrowed(name),
                (Identity::Hash(hash), Some(name)) if userhash(name, realm) == *hash => {
                    Cow::Owned(name.clone())
                }
                _ => return Err(not_found),
            };
            match settings
                .credentials
                .lookup_answer(algorithm, &name, unix, &answer)
            {
                Lookup::Keys(keys) => {
                    for key in keys.iter() {
                        if let Some(sign) = verify(key) {
                            return Ok(authed(sign, key, name));
                        }
                    }
                    Err(Reject::BadIntegrity)
                }
                Lookup::Expired | Lookup::Unknown => Err(not_found),
            }
        }
        Resolved::Pending => Err(Reject::Pending),
        Resolved::Unavailable => Err(Reject::DbUnavailable),
        Resolved::Refused(why) => Err(Reject::NotAsked(why)),
    }
}

/// USERNAME, or USERHASH (32 bytes) when the nonce offered username anonymity; None when the
/// request carries neither in a usable form (400).
fn identity<'m>(msg: &Message<'m>, features: Features) -> Option<Identity<'m>> {
    if features.username_anonymity {
        if let Some(hash) = msg.get(attr::USERHASH) {
            return hash.try_into().ok().map(Identity::Hash);
        }
    }
    msg.username()?.ok().map(Identity::Name)
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
    let offer = &settings.offer;
    let nonce = nonces.issue_offering(offer.features(), unix, client);
    let realm = settings.credentials.realm();
    r.error_with(code, &mut |b| {
        b.add_str(attr::REALM, realm)?;
        b.add_raw(attr::NONCE, nonce.as_bytes())?;
        // RFC 8489 §9.2.4: every 401 and 438 under such a nonce lists the algorithms.
        if offer.features().password_algorithms {
            b.add_raw(attr::PASSWORD_ALGORITHMS, offer.wire())?;
        }
        Ok(())
    })
}
