//! coturn's user databases, read and written with coturn's own schema so a `turnadmin` database
//! works unchanged: SQLite (`userdb`), Redis (`redis-userdb`), PostgreSQL (`psql-userdb`).
//! Every call blocks: the server calls them from the resolver thread only.

mod postgres;
mod redis;
mod sqlite;

use std::path::PathBuf;

use crate::auth::{CredentialSource, SourceError};
use crate::auth::{Key, Sha256Key};
use crate::config::Config;

pub use self::redis::{connection as redis_connection, RedisParams};

/// Where `tern admin` looks when no database is named (coturn: `/var/lib/turn/turndb`).
pub const DEFAULT_SQLITE: &str = "/var/lib/tern/turndb";

/// How long a connection attempt may take before the database counts as down.
pub const CONNECT_TIMEOUT_S: u64 = 2;

/// coturn's SQL schema (`schema.sql`), as coturn's `turnadmin` creates it in SQLite.
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS turnusers_lt (realm varchar(127) default '', name varchar(512), hmackey char(128), PRIMARY KEY (realm,name))",
    "CREATE TABLE IF NOT EXISTS turn_secret (realm varchar(127) default '', value varchar(256), primary key (realm,value))",
    "CREATE TABLE IF NOT EXISTS allowed_peer_ip (realm varchar(127) default '', ip_range varchar(256), primary key (realm,ip_range))",
    "CREATE TABLE IF NOT EXISTS denied_peer_ip (realm varchar(127) default '', ip_range varchar(256), primary key (realm,ip_range))",
    "CREATE TABLE IF NOT EXISTS turn_origin_to_realm (origin varchar(127), realm varchar(127), primary key (origin))",
    "CREATE TABLE IF NOT EXISTS turn_realm_option (realm varchar(127) default '', opt varchar(32), value varchar(128), primary key (realm,opt))",
    "CREATE TABLE IF NOT EXISTS oauth_key (kid varchar(128), ikm_key varchar(256), timestamp bigint default 0, lifetime integer default 0, as_rs_alg varchar(64) default '', realm varchar(127), primary key (kid))",
    "CREATE TABLE IF NOT EXISTS admin_user (name varchar(32), realm varchar(127), password varchar(127), primary key (name))",
];

/// tern's table beside coturn's (coturn ignores it): the SHA-256 key of each user `tern admin`
/// adds with a password, and the user's USERHASH, indexed so a request carrying USERHASH finds
/// its user with one index lookup (RFC 8489 §14.4). coturn's `hmackey` rows stay MD5 keys.
pub(crate) const TERN_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tern_user_sha256 (realm varchar(127) default '', name varchar(512), sha256key char(64), userhash char(64), PRIMARY KEY (realm,name))",
    "CREATE INDEX IF NOT EXISTS tern_user_sha256_userhash ON tern_user_sha256 (realm, userhash)",
];

/// The peer address ranges a user database holds for one realm, unparsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIpRanges {
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
}

/// Which database, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSpec {
    Sqlite(PathBuf),
    Redis(RedisParams),
    /// A libpq connection string (`host=... dbname=... user=... password=...` or a URL).
    Postgres(String),
}

impl DbSpec {
    /// The database the configuration names, if any (coturn reads one; so does tern, in the
    /// order PostgreSQL, Redis, SQLite). A connection string tern cannot read is an error.
    pub fn from_config(cfg: &Config) -> Result<Option<DbSpec>, SourceError> {
        if let Some(conn) = &cfg.psql_userdb {
            return DbSpec::postgres(conn).map(Some);
        }
        if let Some(conn) = &cfg.redis_userdb {
            return RedisParams::parse(conn).map(|p| Some(DbSpec::Redis(p)));
        }
        Ok(cfg
            .userdb
            .as_ref()
            .map(|f| DbSpec::Sqlite(PathBuf::from(f))))
    }

    /// A checked PostgreSQL connection string.
    pub fn postgres(conn: &str) -> Result<DbSpec, SourceError> {
        postgres::check(conn)?;
        Ok(DbSpec::Postgres(conn.to_owned()))
    }

    /// For logs: the kind and place, never a password.
    pub fn describe(&self) -> String {
        match self {
            DbSpec::Sqlite(path) => format!("SQLite {}", path.display()),
            DbSpec::Redis(p) => format!("Redis {}:{} db {}", p.host, p.port, p.db),
            DbSpec::Postgres(conn) => format!("PostgreSQL {}", postgres::describe(conn)),
        }
    }
}

/// A user database: the server's reads plus `tern admin`'s writes, on coturn's schema.
pub trait UserDb: CredentialSource {
    /// Adds or replaces a user's MD5 key.
    fn add_user(&mut self, realm: &str, name: &str, key: &Key) -> Result<(), SourceError>;
    /// Adds or replaces a user's SHA-256 key and USERHASH index entry (tern's, beside coturn's).
    fn add_user_sha256(
        &mut self,
        realm: &str,
        name: &str,
        key: &Sha256Key,
    ) -> Result<(), SourceError>;
    /// Removes a user (both keys); false when there was none.
    fn delete_user(&mut self, realm: &str, name: &str) -> Result<bool, SourceError>;
    /// (realm, name) of every user, of one realm when `realm` is given, sorted.
    fn list_users(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError>;
    fn add_secret(&mut self, realm: &str, secret: &str) -> Result<(), SourceError>;
    /// Removes one secret, or every secret of the realm when `secret` is `None`.
    fn delete_secret(&mut self, realm: &str, secret: Option<&str>) -> Result<(), SourceError>;
    /// (realm, secret) pairs, of one realm when `realm` is given, sorted.
    fn list_secrets(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError>;
    fn set_realm_option(&mut self, realm: &str, opt: &str, value: &str) -> Result<(), SourceError>;
    /// coturn's peer address lists that apply to `realm` (`allowed_peer_ip` and `denied_peer_ip`
    /// rows of that realm or of the empty realm; Redis `turn/realm/<r>/allowed-peer-ip` and
    /// `.../denied-peer-ip`), as written in the database.
    fn peer_ip_ranges(&mut self, realm: &str) -> Result<PeerIpRanges, SourceError>;
}

/// Connects (and for SQLite, creates the file and coturn's tables, as coturn does).
pub fn open(spec: &DbSpec) -> Result<Box<dyn UserDb>, SourceError> {
    Ok(match spec {
        DbSpec::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        DbSpec::Redis(params) => Box::new(self::redis::Redis::connect(params)?),
        DbSpec::Postgres(conn) => Box::new(postgres::Postgres::connect(conn)?),
    })
}

/// `cfg` with what the user database adds for `cfg.realm`: the realm options (coturn lets
/// `turn_realm_option` override `max-bps`, `user-quota` and `total-quota`) and the peer address
/// lists (`allowed_peer_ip`, `denied_peer_ip`), added to `allowed-peer-ip` and `denied-peer-ip`
/// from the configuration as coturn adds them. Read when the server starts and on every reload
/// (SIGHUP); an unreachable database leaves the configuration as it is, with an error in the log.
pub fn with_database_options(cfg: &Config) -> Config {
    match database_options(cfg) {
        Ok(out) => out,
        Err(e) => {
            tracing::error!(
                "{e}; the configuration's realm options and peer lists apply alone until the \
                 database answers"
            );
            cfg.clone()
        }
    }
}

/// `with_database_options`, or why the database could not be read (`cfg` itself when no user
/// database is configured). The main loop reads it again every few seconds, as coturn does, and
/// keeps what it had while the database is down.
pub fn database_options(cfg: &Config) -> Result<Config, SourceError> {
    let mut out = cfg.clone();
    let Ok(Some(spec)) = DbSpec::from_config(cfg) else {
        return Ok(out);
    };
    let unreadable = |e: SourceError| {
        error(
            &format!("user database {}: cannot read", spec.describe()),
            e,
        )
    };
    let mut db = open(&spec).map_err(unreadable)?;
    let options = db.realm_options(&cfg.realm).map_err(unreadable)?;
    let ranges = db.peer_ip_ranges(&cfg.realm).map_err(unreadable)?;
    if let Some(v) = options.max_bps {
        out.max_bps = v;
    }
    if let Some(v) = options.user_quota {
        out.user_quota = v;
    }
    if let Some(v) = options.total_quota {
        out.total_quota = v;
    }
    add_peer_ranges(&mut out, &ranges);
    Ok(out)
}

/// Adds the database's peer ranges to the configuration's; a row that is no address range is
/// logged and skipped (the rest still apply).
fn add_peer_ranges(cfg: &mut Config, ranges: &PeerIpRanges) {
    let lists = [
        (
            "allowed_peer_ip",
            &ranges.allowed,
            &mut cfg.allowed_peer_ips,
        ),
        ("denied_peer_ip", &ranges.denied, &mut cfg.denied_peer_ips),
    ];
    for (table, rows, into) in lists {
        let before = into.len();
        for row in rows {
            match crate::config::ip_range(row.trim()) {
                Ok(range) => into.push(range),
                Err(why) => tracing::warn!(
                    "user database: {table} row {row:?} is not an address range ({why}); ignored"
                ),
            }
        }
        if into.len() > before {
            tracing::debug!(
                "{} peer address ranges from the user database's {table} for realm {:?}",
                into.len() - before,
                cfg.realm
            );
        }
    }
}

fn error(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_peer_ranges_join_the_configurations_and_bad_rows_are_skipped() {
        let mut cfg = Config::default();
        cfg.denied_peer_ips
            .push(crate::config::ip_range("192.0.2.1").unwrap());
        let ranges = PeerIpRanges {
            allowed: vec!["10.0.0.1-10.0.0.9 ".into(), "not a range".into()],
            denied: vec!["198.51.100.0/24".into(), "10.0.0.9-10.0.0.1".into()],
        };
        add_peer_ranges(&mut cfg, &ranges);
        let shown = |v: &[crate::config::IpRange]| -> Vec<String> {
            v.iter().map(|r| format!("{}-{}", r.start, r.end)).collect()
        };
        assert_eq!(shown(&cfg.allowed_peer_ips), ["10.0.0.1-10.0.0.9"]);
        assert_eq!(
            shown(&cfg.denied_peer_ips),
            ["192.0.2.1-192.0.2.1", "198.51.100.0-198.51.100.255"]
        );
    }
}
