//! Credential lookup for the long-term mechanism (RFC 8489 §9.2): static `user=` entries and
//! TURN REST shared secrets (`use-auth-secret`, every `static-auth-secret` tried for rotation),
//! with MD5 or SHA-256 keys (§9.2.2), and the USERHASH index of the static users (§14.4).

use std::collections::HashMap;

use super::key::{
    rest_key, rest_key_of, userhash, AnyKey, Key, PasswordAlgorithm, UserKeys, Userhash,
};
use super::keylist::{KeyList, MAX_REST_SECRETS};
use super::rest;
use super::source::Answer;
use crate::options::{Options, UserSecret};

/// What a username resolves to at a given wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<K = Key> {
    /// Candidate keys: MESSAGE-INTEGRITY must verify under one of them.
    Keys(KeyList<K>),
    /// A REST username whose expiry has passed (and no static user of that name).
    Expired,
    /// No static user, and not a REST username (or REST is off).
    Unknown,
}

/// The server's credentials, built once from the configuration (and again on reload).
pub struct Credentials {
    realm: String,
    users: HashMap<String, UserKeys>,
    /// USERHASH of every static user -> its name: a request with USERHASH finds its user with
    /// one hash lookup, never a scan.
    hashes: HashMap<Userhash, String>,
    rest: bool,
    secrets: Vec<String>,
    ignored_secrets: usize,
    separator: char,
    open: bool,
}

impl Credentials {
    /// Static users get their keys computed once with the final `realm`: a password gives both
    /// the MD5 and the SHA-256 key, a `0x` key is used as given for its algorithm only (32 hex
    /// digits MD5, 64 SHA-256). REST secrets count only with `use-auth-secret`.
    pub fn from_options(opts: &Options) -> Credentials {
        let users: HashMap<String, UserKeys> = opts
            .users
            .iter()
            .map(|u| {
                let keys = match &u.secret {
                    UserSecret::Password(p) => UserKeys::from_password(&u.name, &opts.realm, p),
                    UserSecret::Key(k) => UserKeys {
                        md5: Some(*k),
                        sha256: None,
                    },
                    UserSecret::Sha256Key(k) => UserKeys {
                        md5: None,
                        sha256: Some(*k),
                    },
                };
                (u.name.clone(), keys)
            })
            .collect();
        let hashes = users
            .keys()
            .map(|name| (userhash(name, &opts.realm), name.clone()))
            .collect();
        let secrets: Vec<String> = if opts.use_auth_secret {
            opts.static_auth_secrets
                .iter()
                .take(MAX_REST_SECRETS)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let ignored_secrets = if opts.use_auth_secret {
            opts.static_auth_secrets.len() - secrets.len()
        } else {
            0
        };
        Credentials {
            realm: opts.realm.clone(),
            users,
            hashes,
            rest: opts.use_auth_secret,
            secrets,
            ignored_secrets,
            separator: opts.rest_api_separator,
            open: opts.no_auth,
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// MD5 keys to try for `username` at wall time `unix_now`: the static user's key first, then
    /// one REST key per secret (in configuration order).
    pub fn lookup(&self, username: &str, unix_now: u64) -> Lookup {
        let key = self.users.get(username).and_then(|k| k.md5);
        self.keys_for(username, unix_now, key, &self.secrets, |secret| {
            rest_key(secret, username, &self.realm)
        })
    }

    /// Keys of `algorithm` to try for `username`, as [`Credentials::lookup`] does for MD5.
    pub fn lookup_keys(
        &self,
        algorithm: PasswordAlgorithm,
        username: &str,
        unix_now: u64,
    ) -> Lookup<AnyKey> {
        let key = self.users.get(username).and_then(|k| k.get(algorithm));
        self.keys_for(username, unix_now, key, &self.secrets, |secret| {
            rest_key_of(algorithm, secret, username, &self.realm)
        })
    }

    /// Keys of `algorithm` to try for `username` from what a user database answered: the stored
    /// key first, then one REST key per stored secret (with `use-auth-secret`), as
    /// [`Credentials::lookup_keys`] does for the static configuration.
    pub fn lookup_answer(
        &self,
        algorithm: PasswordAlgorithm,
        username: &str,
        unix_now: u64,
        answer: &Answer,
    ) -> Lookup<AnyKey> {
        let secrets = answer
            .secrets
            .get(..MAX_REST_SECRETS)
            .unwrap_or(&answer.secrets);
        self.keys_for(
            username,
            unix_now,
            answer.keys().get(algorithm),
            secrets,
            |secret| rest_key_of(algorithm, secret, username, &self.realm),
        )
    }

    /// `key` first, then one REST key per secret when `username` is an unexpired REST name.
    fn keys_for<K: Copy + Default>(
        &self,
        username: &str,
        unix_now: u64,
        key: Option<K>,
        secrets: &[String],
        rest_key: impl Fn(&str) -> K,
    ) -> Lookup<K> {
        let mut keys = KeyList::new();
        if let Some(key) = key {
            keys.push(key);
        }
        let mut expired = false;
        if self.rest {
            if let Some(name) = rest::parse(username, self.separator) {
                if name.expiry < unix_now {
                    expired = true;
                } else {
                    for secret in secrets {
                        keys.push(rest_key(secret));
                    }
                }
            }
        }
        if !keys.is_empty() {
            Lookup::Keys(keys)
        } else if expired {
            Lookup::Expired
        } else {
            Lookup::Unknown
        }
    }

    /// The MD5 key of a static `user=` entry.
    pub fn static_key(&self, username: &str) -> Option<Key> {
        self.users.get(username).and_then(|k| k.md5)
    }

    /// Every key of a static `user=` entry.
    pub fn static_keys(&self, username: &str) -> Option<UserKeys> {
        self.users.get(username).copied()
    }

    /// The static user whose USERHASH is `hash`: one hash lookup in the index built with the
    /// users. REST usernames are not in it: a hash cannot be turned back into the name the REST
    /// password is derived from.
    pub fn name_of_hash(&self, hash: &Userhash) -> Option<&str> {
        self.hashes.get(hash).map(String::as_str)
    }

    /// The `static-auth-secret`s that are tried (empty without `use-auth-secret`).
    pub fn static_secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The user a quota counts against. A REST username counts against its part without the
    /// timestamp; a bare `<expiry>` has no such part and counts as itself.
    pub fn quota_user<'u>(&self, username: &'u str) -> &'u str {
        if !self.rest || self.users.contains_key(username) {
            return username;
        }
        match rest::parse(username, self.separator) {
            Some(name) if !name.user.is_empty() => name.user,
            _ => username,
        }
    }

    /// `no-auth`: requests are served without credentials.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// `static-auth-secret`s beyond [`MAX_REST_SECRETS`], which are not tried: worth a start-up
    /// warning.
    pub fn ignored_secrets(&self) -> usize {
        self.ignored_secrets
    }
}

/// Never prints keys or secrets.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("rest", &self.rest)
            .field("secrets", &self.secrets.len())
            .field("separator", &self.separator)
            .field("open", &self.open)
            .finish()
    }
}
