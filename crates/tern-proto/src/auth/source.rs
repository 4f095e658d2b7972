//! Where long-term keys and TURN REST secrets come from (RFC 8489 §9.2.2, coturn's user
//! databases): one interface, implemented by the static configuration and by each database.

use std::fmt;

use super::credentials::Credentials;
use super::key::{Key, Sha256Key, UserKeys, Userhash};

/// What a source knows about one user of one realm.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The long-term key MD5(user:realm:password), when the user has one.
    pub key: Option<Key>,
    /// The SHA-256 key SHA-256(user:realm:password), when the user has one.
    pub sha256: Option<Sha256Key>,
    /// The realm's REST shared secrets (every one is tried).
    pub secrets: Vec<String>,
    /// The user's name, when it was looked up by USERHASH (the request does not carry it).
    pub name: Option<String>,
}

impl Answer {
    /// What a source read for a name: the user's keys (if any) and the realm's secrets.
    pub fn stored(key: Option<Key>, sha256: Option<Sha256Key>, secrets: Vec<String>) -> Answer {
        Answer {
            key,
            sha256,
            secrets,
            name: None,
        }
    }

    pub fn keys(&self) -> UserKeys {
        UserKeys {
            md5: self.key,
            sha256: self.sha256,
        }
    }

    /// Whether the source holds a key for the user (a user that exists).
    pub fn has_key(&self) -> bool {
        self.key.is_some() || self.sha256.is_some()
    }
}

/// Never prints key material.
impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("key", &self.key.is_some())
            .field("sha256", &self.sha256.is_some())
            .field("secrets", &self.secrets.len())
            .field("name", &self.name)
            .finish()
    }
}

/// coturn's per-realm options (`turn_realm_option`, Redis `turn/realm/<r>/<opt>`); `None` when
/// the source does not set them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealmOptions {
    pub max_bps: Option<u64>,
    pub user_quota: Option<u32>,
    pub total_quota: Option<u32>,
}

impl RealmOptions {
    /// Sets `opt` (`max-bps`, `user-quota`, `total-quota`) from its text; false for an unknown
    /// option or a value that is not a number.
    pub fn set(&mut self, opt: &str, value: &str) -> bool {
        let value = value.trim();
        match opt {
            "max-bps" => value.parse().map(|v| self.max_bps = Some(v)).is_ok(),
            "user-quota" => value.parse().map(|v| self.user_quota = Some(v)).is_ok(),
            "total-quota" => value.parse().map(|v| self.total_quota = Some(v)).is_ok(),
            _ => false,
        }
    }
}

/// The realm options coturn knows, in the order `-G` lists them.
pub const REALM_OPTIONS: [&str; 3] = ["max-bps", "total-quota", "user-quota"];

/// Why a source could not answer: the database is unreachable, refused the query, or holds data
/// tern cannot read. The text is for the log and never contains a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// A credential source. Lookups on a database block: they run on the resolver thread
/// (`resolver.rs`), never on a shard.
pub trait CredentialSource: Send {
    /// The keys of `name` in `realm` (if any) and the realm's REST secrets.
    fn user(&mut self, realm: &str, name: &str) -> Result<Answer, SourceError>;
    /// The name of the user of `realm` whose USERHASH (RFC 8489 §14.4) is `hash`: one lookup in
    /// the source's index, never a scan.
    fn name_by_hash(&mut self, realm: &str, hash: &Userhash)
        -> Result<Option<String>, SourceError>;
    /// The user whose USERHASH is `hash`, as [`Self::user`] answers, with `name` set; no key
    /// (and no name) when the source knows no such user.
    fn user_by_hash(&mut self, realm: &str, hash: &Userhash) -> Result<Answer, SourceError> {
        let Some(name) = self.name_by_hash(realm, hash)? else {
            return Ok(Answer::default());
        };
        let mut answer = self.user(realm, &name)?;
        answer.name = Some(name);
        Ok(answer)
    }
    /// The realm's options.
    fn realm_options(&mut self, realm: &str) -> Result<RealmOptions, SourceError>;
}

/// The static configuration (`user=`, `static-auth-secret=`): answers at once, never fails.
impl CredentialSource for Credentials {
    fn user(&mut self, realm: &str, name: &str) -> Result<Answer, SourceError> {
        if realm != self.realm() {
            return Ok(Answer::default());
        }
        let keys = self.static_keys(name).unwrap_or_default();
        Ok(Answer::stored(
            keys.md5,
            keys.sha256,
            self.static_secrets().to_vec(),
        ))
    }

    fn name_by_hash(
        &mut self,
        _realm: &str,
        hash: &Userhash,
    ) -> Result<Option<String>, SourceError> {
        Ok(self.name_of_hash(hash).map(str::to_owned))
    }

    fn realm_options(&mut self, _realm: &str) -> Result<RealmOptions, SourceError> {
        Ok(RealmOptions::default())
    }
}

/// A key as coturn stores it: lowercase hex digits (32 for MD5, 64 for a SHA-256 key or a
/// USERHASH).
pub fn key_to_hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a stored MD5 key: 32 hex digits (coturn pads `char(128)` columns with blanks, and
/// accepts an optional `0x`).
pub fn key_from_hex(text: &str) -> Option<Key> {
    bytes_from_hex(text)
}

/// Reads `N` bytes written as `2 * N` hex digits, as [`key_from_hex`] does.
pub fn bytes_from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; N];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::long_term_key;
    use crate::options::Options;

    #[test]
    fn hex_round_trip() {
        let key = long_term_key("gorst", "north.gov", "hero");
        // coturn's schema.userdb.redis example.
        assert_eq!(key_to_hex(&key), "7da2270ccfa49786e0115366d3a3d14d");
        assert_eq!(
            key_from_hex("7da2270ccfa49786e0115366d3a3d14d   "),
            Some(key)
        );
        assert_eq!(
            key_from_hex("0x7DA2270CCFA49786E0115366D3A3D14D"),
            Some(key)
        );
        for bad in [
            "",
            "7da2",
            "7da2270ccfa49786e0115366d3a3d14g",
            "é7da2270ccfa49786e0115366d3a3d1",
        ] {
            assert_eq!(key_from_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn realm_options_parse() {
        let mut o = RealmOptions::default();
        assert!(o.set("max-bps", "500000"));
        assert!(o.set("user-quota", " 3 "));
        assert!(!o.set("total-quota", "many"));
        assert!(!o.set("colour", "1"));
        assert_eq!(
            o,
            RealmOptions {
                max_bps: Some(500_000),
                user_quota: Some(3),
                total_quota: None
            }
        );
    }

    #[test]
    fn static_config_is_a_source() {
        let mut opts = Options {
            realm: "r".into(),
            ..Options::default()
        };
        opts.users.push(crate::options::User {
            name: "u".into(),
            secret: crate::options::UserSecret::Password("p".into()),
        });
        opts.use_auth_secret = true;
        opts.static_auth_secrets.push("s".into());
        let mut creds = Credentials::from_options(&opts);
        let a = creds.user("r", "u").unwrap_or_default();
        assert_eq!(a.key, Some(long_term_key("u", "r", "p")));
        assert_eq!(a.secrets, vec![String::from("s")]);
        assert_eq!(creds.user("other", "u").map(|a| a.key), Ok(None));
        assert_eq!(creds.user("r", "nobody").map(|a| a.key), Ok(None));
    }
}
