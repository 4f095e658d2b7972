//! coturn's Redis user database (`redis-userdb`, `-N`): the connection string coturn reads
//! (`ip= port= dbname= password= connect_timeout=`) and its key layout (`schema.userdb.redis`):
//! `turn/realm/<r>/user/<u>/key` (hex key) or `.../password`, the secret set
//! `turn/realm/<r>/secret`, `turn/realm/<r>/<option>`, and the peer address lists
//! `turn/realm/<r>/allowed-peer-ip` and `.../denied-peer-ip` (a set of ranges, or one range).
//! tern adds two keys of its own for RFC 8489 SHA-256 users: `turn/realm/<r>/user/<u>/sha256key`
//! (64 hex digits; a `.../password` gives it too) and the USERHASH index
//! `turn/realm/<r>/userhash/<64 hex>` holding the user's name.

use std::fmt;
use std::time::Duration;

use redis::{Client, Commands, Connection, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

use super::{error, PeerIpRanges, UserDb, CONNECT_TIMEOUT_S};
use crate::auth::SourceError;
use crate::auth::{
    bytes_from_hex, key_from_hex, key_to_hex, Answer, CredentialSource, RealmOptions, REALM_OPTIONS,
};
use crate::auth::{long_term_key, long_term_key_sha256, userhash, Key, Sha256Key, Userhash};

/// A parsed coturn Redis connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisParams {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub password: Option<String>,
    pub connect_timeout_s: u64,
}

/// Never prints the password.
impl fmt::Debug for RedisParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("password", &self.password.is_some())
            .field("connect_timeout_s", &self.connect_timeout_s)
            .finish()
    }
}

impl RedisParams {
    /// Blank-separated `name=value` pairs, every one optional, with coturn's aliases; user names
    /// are accepted and ignored, as coturn does.
    pub fn parse(conn: &str) -> Result<RedisParams, SourceError> {
        RedisParams::parse_value(conn).map_err(|why| SourceError(format!("redis-userdb: {why}")))
    }

    /// As [`RedisParams::parse`], with the bare reason for a bad string (`redis-statsdb` shares
    /// the syntax; the configuration parser adds the option, file and line).
    pub fn parse_value(conn: &str) -> Result<RedisParams, String> {
        let mut p = RedisParams {
            host: String::from("127.0.0.1"),
            port: 6379,
            db: 0,
            password: None,
            connect_timeout_s: CONNECT_TIMEOUT_S,
        };
        let bad = |what: &str| what.to_owned();
        for pair in conn.split_whitespace() {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("{pair:?} is not name=value")))?;
            match name {
                "host" | "ip" | "addr" | "ipaddr" | "hostaddr" => p.host = value.to_owned(),
                "dbname" | "db" | "database" => {
                    p.db = value
                        .parse()
                        .map_err(|_| bad(&format!("dbname {value:?} is not a number")))?;
                }
                "user" | "uname" | "name" | "username" => {}
                "password" | "pwd" | "passwd" | "secret" => {
                    p.password = (!value.is_empty()).then(|| value.to_owned());
                }
                "port" | "p" => {
                    p.port = value
                        .parse()
                        .map_err(|_| bad(&format!("port {value:?} is not a port number")))?;
                }
                "connect_timeout" | "timeout" => {
                    p.connect_timeout_s = value
                        .parse()
                        .map_err(|_| bad(&format!("connect_timeout {value:?} is not seconds")))?;
                }
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        Ok(p)
    }
}

pub(super) struct Redis {
    conn: Connection,
}

/// A blocking connection to `p` whose connect, reads and writes give up after `connect_timeout`:
/// the threads that ask Redis (user database, fleet) must not hang on one that stopped answering.
pub fn connection(p: &RedisParams) -> Result<Connection, SourceError> {
    let what = format!("Redis {}:{}", p.host, p.port);
    let info = ConnectionInfo {
        addr: ConnectionAddr::Tcp(p.host.clone(), p.port),
        redis: RedisConnectionInfo {
            db: p.db,
            password: p.password.clone(),
            ..RedisConnectionInfo::default()
        },
    };
    let timeout = Duration::from_secs(p.connect_timeout_s.max(1));
    let conn = Client::open(info)
        .and_then(|c| c.get_connection_with_timeout(timeout))
        .map_err(|e| error(&what, e))?;
    conn.set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)))
        .map_err(|e| error(&what, e))?;
    Ok(conn)
}

impl Redis {
    pub(super) fn connect(p: &RedisParams) -> Result<Redis, SourceError> {
        connection(p).map(|conn| Redis { conn })
    }

    /// Every `turn/realm/*/<suffix>`-shaped key, for listing.
    fn scan(&mut self, pattern: &str) -> Result<Vec<String>, SourceError> {
        let keys: Vec<String> = self
            .conn
            .scan_match::<_, String>(pattern)
            .map(|it| it.collect())
            .map_err(|e| error("Redis", e))?;
        Ok(keys)
    }
}

fn user_key(realm: &str, name: &str) -> String {
    format!("turn/realm/{realm}/user/{name}/key")
}

/// tern's: the user's SHA-256 key, 64 hex digits.
fn sha256_key(realm: &str, name: &str) -> String {
    format!("turn/realm/{realm}/user/{name}/sha256key")
}

/// tern's USERHASH index: the name of the user whose USERHASH this is.
fn userhash_key(realm: &str, hash: &Userhash) -> String {
    format!("turn/realm/{realm}/userhash/{}", key_to_hex(hash))
}

fn secret_set(realm: &str) -> String {
    format!("turn/realm/{realm}/secret")
}

impl CredentialSource for Redis {
    fn user(&mut self, realm: &str, name: &str) -> Result<Answer, SourceError> {
        let stored: Option<String> = self
            .conn
            .get(user_key(realm, name))
            .map_err(|e| error("Redis", e))?;
        let mut key = stored.as_deref().and_then(key_from_hex);
        let sha256: Option<String> = self
            .conn
            .get(sha256_key(realm, name))
            .map_err(|e| error("Redis", e))?;
        let mut sha256 = sha256.as_deref().and_then(bytes_from_hex);
        if key.is_none() || sha256.is_none() {
            // coturn also reads an open password from Redis (and only from Redis); it gives
            // whichever key is not stored.
            let password: Option<String> = self
                .conn
                .get(format!("turn/realm/{realm}/user/{name}/password"))
                .map_err(|e| error("Redis", e))?;
            if let Some(p) = password {
                key = key.or_else(|| Some(long_term_key(name, realm, &p)));
                sha256 = sha256.or_else(|| Some(long_term_key_sha256(name, realm, &p)));
            }
        }
        let mut secrets: Vec<String> = self
            .conn
            .smembers(secret_set(realm))
            .map_err(|e| error("Redis", e))?;
        secrets.sort();
        Ok(Answer::stored(key, sha256, secrets))
    }

    /// One GET of the USERHASH index key `tern admin` writes beside the user's keys.
    fn name_by_hash(
        &mut self,
        realm: &str,
        hash: &Userhash,
    ) -> Result<Option<String>, SourceError> {
        self.conn
            .get(userhash_key(realm, hash))
            .map_err(|e| error("Redis", e))
    }

    fn realm_options(&mut self, realm: &str) -> Result<RealmOptions, SourceError> {
        let mut options = RealmOptions::default();
        for opt in REALM_OPTIONS {
            let value: Option<String> = self
                .conn
                .get(format!("turn/realm/{realm}/{opt}"))
                .map_err(|e| error("Redis", e))?;
            if let Some(value) = value {
                options.set(opt, &value);
            }
        }
        Ok(options)
    }
}

impl UserDb for Redis {
    fn add_user(&mut self, realm: &str, name: &str, key: &Key) -> Result<(), SourceError> {
        self.conn
            .set(user_key(realm, name), key_to_hex(key))
            .map_err(|e| error("Redis", e))
    }

    fn add_user_sha256(
        &mut self,
        realm: &str,
        name: &str,
        key: &Sha256Key,
    ) -> Result<(), SourceError> {
        self.conn
            .set::<_, _, ()>(sha256_key(realm, name), key_to_hex(key))
            .map_err(|e| error("Redis", e))?;
        self.conn
            .set(userhash_key(realm, &userhash(name, realm)), name)
            .map_err(|e| error("Redis", e))
    }

    fn delete_user(&mut self, realm: &str, name: &str) -> Result<bool, SourceError> {
        let removed: u64 = self
            .conn
            .del(&[
                user_key(realm, name),
                format!("turn/realm/{realm}/user/{name}/password"),
                sha256_key(realm, name),
                userhash_key(realm, &userhash(name, realm)),
            ])
            .map_err(|e| error("Redis", e))?;
        Ok(removed > 0)
    }

    fn list_users(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        let pattern = format!("turn/realm/{}/user/*", realm.unwrap_or("*"));
        let mut users: Vec<(String, String)> = self
            .scan(&pattern)?
            .iter()
            .filter_map(|k| {
                let rest = k.strip_prefix("turn/realm/")?;
                let (realm, rest) = rest.split_once("/user/")?;
                let name = rest
                    .strip_suffix("/key")
                    .or_else(|| rest.strip_suffix("/password"))?;
                Some((realm.to_owned(), name.to_owned()))
            })
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    fn add_secret(&mut self, realm: &str, secret: &str) -> Result<(), SourceError> {
        self.conn
            .sadd(secret_set(realm), secret)
            .map_err(|e| error("Redis", e))
    }

    fn delete_secret(&mut self, realm: &str, secret: Option<&str>) -> Result<(), SourceError> {
        match secret {
            Some(secret) => self.conn.srem(secret_set(realm), secret),
            None => self.conn.del(secret_set(realm)),
        }
        .map_err(|e| error("Redis", e))
    }

    fn list_secrets(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        let sets = match realm {
            Some(realm) => vec![secret_set(realm)],
            None => self.scan("turn/realm/*/secret")?,
        };
        let mut out = Vec::new();
        for set in sets {
            let Some(realm) = set
                .strip_prefix("turn/realm/")
                .and_then(|r| r.strip_suffix("/secret"))
            else {
                continue;
            };
            let members: Vec<String> = self.conn.smembers(&set).map_err(|e| error("Redis", e))?;
            out.extend(members.into_iter().map(|m| (realm.to_owned(), m)));
        }
        out.sort();
        Ok(out)
    }

    fn set_realm_option(&mut self, realm: &str, opt: &str, value: &str) -> Result<(), SourceError> {
        self.conn
            .set(format!("turn/realm/{realm}/{opt}"), value)
            .map_err(|e| error("Redis", e))
    }

    fn peer_ip_ranges(&mut self, realm: &str) -> Result<PeerIpRanges, SourceError> {
        Ok(PeerIpRanges {
            allowed: self.ranges(&format!("turn/realm/{realm}/allowed-peer-ip"))?,
            denied: self.ranges(&format!("turn/realm/{realm}/denied-peer-ip"))?,
        })
    }
}

impl Redis {
    /// The ranges under `key`: coturn reads a set's members, or a single string.
    fn ranges(&mut self, key: &str) -> Result<Vec<String>, SourceError> {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query(&mut self.conn)
            .map_err(|e| error("Redis", e))?;
        let mut ranges: Vec<String> = match kind.as_str() {
            "set" => self.conn.smembers(key),
            "string" => self.conn.get(key).map(|v: String| vec![v]),
            _ => Ok(Vec::new()),
        }
        .map_err(|e| error("Redis", e))?;
        ranges.sort();
        Ok(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coturn_connection_strings() {
        let p = RedisParams::parse("ip=127.0.0.1 dbname=2 password=turn connect_timeout=30")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                p.host.as_str(),
                p.port,
                p.db,
                p.password.as_deref(),
                p.connect_timeout_s
            ),
            ("127.0.0.1", 6379, 2, Some("turn"), 30)
        );
        let p = RedisParams::parse("  host=10.0.0.5   port=6380 user=x ")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.host.as_str(), p.port, p.db, p.password),
            ("10.0.0.5", 6380, 0, None)
        );
        assert_eq!(RedisParams::parse("").map(|p| p.port), Ok(6379));
        for bad in ["ip", "port=x", "dbname=two", "colour=blue"] {
            assert!(RedisParams::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{:?}", RedisParams::parse("password=hunter2")).contains("hunter2"));
    }
}
