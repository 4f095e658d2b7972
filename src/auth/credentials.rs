//! Credential lookup for the long-term mechanism (RFC 8489 §9.2): static `user=` entries and
//! TURN REST shared secrets (`use-auth-secret`, every `static-auth-secret` tried for rotation).

use std::collections::HashMap;

use super::key::{long_term_key, rest_key, Key};
use super::keylist::{KeyList, MAX_REST_SECRETS};
use super::rest;
use super::source::Answer;
use crate::config::{Config, UserSecret};

/// What a username resolves to at a given wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Candidate keys: MESSAGE-INTEGRITY must verify under one of them.
    Keys(KeyList),
    /// A REST username whose expiry has passed (and no static user of that name).
    Expired,
    /// No static user, and not a REST username (or REST is off).
    Unknown,
}

/// The server's credentials, built once from the configuration (and again on reload).
pub struct Credentials {
    realm: String,
    users: HashMap<String, Key>,
    rest: bool,
    secrets: Vec<String>,
    ignored_secrets: usize,
    separator: char,
    open: bool,
}

impl Credentials {
    /// Static users get their key computed once with the final `realm`; a `0x` key is used as
    /// given. REST secrets count only with `use-auth-secret`.
    pub fn from_config(cfg: &Config) -> Credentials {
        let users = cfg
            .users
            .iter()
            .map(|u| {
                let key = match &u.secret {
                    UserSecret::Password(p) => long_term_key(&u.name, &cfg.realm, p),
                    UserSecret::Key(k) => *k,
                };
                (u.name.clone(), key)
            })
            .collect();
        let secrets: Vec<String> = if cfg.use_auth_secret {
            cfg.static_auth_secrets
                .iter()
                .take(MAX_REST_SECRETS)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let ignored_secrets = if cfg.use_auth_secret {
            cfg.static_auth_secrets.len() - secrets.len()
        } else {
            0
        };
        Credentials {
            realm: cfg.realm.clone(),
            users,
            rest: cfg.use_auth_secret,
            secrets,
            ignored_secrets,
            separator: cfg.rest_api_separator,
            open: cfg.no_auth,
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Keys to try for `username` at wall time `unix_now`: the static user's key first, then
    /// one REST key per secret (in configuration order).
    pub fn lookup(&self, username: &str, unix_now: u64) -> Lookup {
        self.keys_for(username, unix_now, self.static_key(username), &self.secrets)
    }

    /// Keys to try for `username` from what a user database answered: the stored key first, then
    /// one REST key per stored secret (with `use-auth-secret`), as [`Credentials::lookup`] does for
    /// the static configuration.
    pub fn lookup_answer(&self, username: &str, unix_now: u64, answer: &Answer) -> Lookup {
        let secrets = answer
            .secrets
            .get(..MAX_REST_SECRETS)
            .unwrap_or(&answer.secrets);
        self.keys_for(username, unix_now, answer.key, secrets)
    }

    /// `key` first, then one REST key per secret when `username` is an unexpired REST name.
    fn keys_for(
        &self,
        username: &str,
        unix_now: u64,
        key: Option<Key>,
        secrets: &[String],
    ) -> Lookup {
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
                        keys.push(rest_key(secret, username, &self.realm));
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

    /// The key of a static `user=` entry.
    pub fn static_key(&self, username: &str) -> Option<Key> {
        self.users.get(username).copied()
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
