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
    userhash, Answer, AnyKey, Features, Lookup, NonceCheck, NonceKey, PasswordAlgorithm, Refusal,
    Resolved, Userhash,
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
    let check = Check {
        msg,
        sha256,
        algorithm,
        realm: settings.credentials.realm(),
        unix,
    };
    if let Some(authed) = existing.and_then(|alloc| check.cached(alloc, identity)) {
        return authed;
    }
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
            if let Some(authed) = check.first_verifying(keys.iter(), &name) {
                return Ok(authed);
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
        Resolved::Found(answer) => check.database_answer(settings, identity, &answer, not_found),
        Resolved::Pending => Err(Reject::Pending),
        Resolved::Unavailable => Err(Reject::DbUnavailable),
        Resolved::Refused(why) => Err(Reject::NotAsked(why)),
    }
}

/// What a request's MESSAGE-INTEGRITY is checked against once its nonce and algorithm are known.
struct Check<'a, 'm> {
    msg: &'a Message<'m>,
    /// MESSAGE-INTEGRITY-SHA256 rather than MESSAGE-INTEGRITY.
    sha256: bool,
    algorithm: PasswordAlgorithm,
    realm: &'a str,
    unix: u64,
}

impl<'m> Check<'_, 'm> {
    /// How the answer is signed when `key` verifies the request.
    fn verify(&self, key: &AnyKey) -> Option<Sign> {
        if self.sha256 {
            let ok = self.msg.verify_integrity_sha256(key.as_bytes()).is_ok();
            ok.then_some(Sign::Sha256(*key))
        } else {
            let ok = self.msg.verify_integrity(key.as_bytes()).is_ok();
            ok.then_some(Sign::Sha1(*key))
        }
    }

    /// The first of `keys` that verifies the request, as `name`.
    fn first_verifying<'k>(
        &self,
        mut keys: impl Iterator<Item = &'k AnyKey>,
        name: &Cow<'m, str>,
    ) -> Option<Authed<'m>> {
        keys.find_map(|key| {
            self.verify(key).map(|sign| Authed {
                sign,
                username: name.clone(),
                key: Some(*key),
            })
        })
    }

    /// The key cached in the client's allocation, when it has one: the same user, algorithm and
    /// key, or the request is refused. None: no cached key, look the user up.
    fn cached(
        &self,
        alloc: &Allocation,
        identity: Identity<'m>,
    ) -> Option<Result<Authed<'m>, Reject>> {
        let key = alloc.key.as_ref()?;
        let same_user = match identity {
            Identity::Name(name) => *alloc.username == *name,
            Identity::Hash(hash) => userhash(&alloc.username, self.realm) == *hash,
        };
        if !same_user {
            return Some(Err(Reject::Plain(ErrorCode::WRONG_CREDENTIALS)));
        }
        if key.algorithm() != self.algorithm {
            return Some(Err(Reject::BadIntegrity));
        }
        let Some(sign) = self.verify(key) else {
            return Some(Err(Reject::BadIntegrity));
        };
        let username = match identity {
            Identity::Name(name) => Cow::Borrowed(name),
            Identity::Hash(_) => Cow::Owned(alloc.username.to_string()),
        };
        Some(Ok(Authed {
            sign,
            username,
            key: Some(*key),
        }))
    }

    /// The user database's answer for `identity`: a USERHASH answer must name a user whose
    /// USERHASH it is; a key that does not verify is a wrong password.
    fn database_answer(
        &self,
        settings: &Settings,
        identity: Identity<'m>,
        answer: &Answer,
        not_found: Reject,
    ) -> Result<Authed<'m>, Reject> {
        let name: Cow<'m, str> = match (identity, &answer.name) {
            (Identity::Name(name), None) => Cow::Borrowed(name),
            (Identity::Hash(hash), Some(name)) if userhash(name, self.realm) == *hash => {
                Cow::Owned(name.to_string())
            }
            _ => return Err(not_found),
        };
        match settings
            .credentials
            .lookup_answer(self.algorithm, &name, self.unix, answer)
        {
            Lookup::Keys(keys) => self
                .first_verifying(keys.iter(), &name)
                .ok_or(Reject::BadIntegrity),
            Lookup::Expired | Lookup::Unknown => Err(not_found),
        }
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
