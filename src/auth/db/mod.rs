//! coturn's user databases, read and written with coturn's own schema so a `turnadmin` database
//! works unchanged: SQLite (`userdb`), Redis (`redis-userdb`), PostgreSQL (`psql-userdb`).
//! Every call blocks: the server calls them from the resolver thread only.

mod postgres;
mod redis;
mod sqlite;

use std::path::PathBuf;

use super::key::Key;
use super::source::{CredentialSource, RealmOptions, SourceError};
use crate::config::Config;

pub use self::redis::RedisParams;

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
    /// Adds or replaces a user's key.
    fn add_user(&mut self, realm: &str, name: &str, key: &Key) -> Result<(), SourceError>;
    /// Removes a user; false when there was none.
    fn delete_user(&mut self, realm: &str, name: &str) -> Result<bool, SourceError>;
    /// (realm, name) of every user, of one realm when `realm` is given, sorted.
    fn list_users(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError>;
    fn add_secret(&mut self, realm: &str, secret: &str) -> Result<(), SourceError>;
    /// Removes one secret, or every secret of the realm when `secret` is `None`.
    fn delete_secret(&mut self, realm: &str, secret: Option<&str>) -> Result<(), SourceError>;
    /// (realm, secret) pairs, of one realm when `realm` is given, sorted.
    fn list_secrets(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError>;
    fn set_realm_option(&mut self, realm: &str, opt: &str, value: &str) -> Result<(), SourceError>;
}

/// Connects (and for SQLite, creates the file and coturn's tables, as coturn does).
pub fn open(spec: &DbSpec) -> Result<Box<dyn UserDb>, SourceError> {
    Ok(match spec {
        DbSpec::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        DbSpec::Redis(params) => Box::new(self::redis::Redis::connect(params)?),
        DbSpec::Postgres(conn) => Box::new(postgres::Postgres::connect(conn)?),
    })
}

/// `cfg` with the realm options of `cfg.realm` from the user database applied (coturn lets
/// `turn_realm_option` override `max-bps`, `user-quota` and `total-quota`). Read once, when the
/// server starts; an unreachable database leaves the configuration as it is, with a warning.
pub fn with_realm_options(cfg: &Config) -> Config {
    let mut out = cfg.clone();
    let Ok(Some(spec)) = DbSpec::from_config(cfg) else {
        return out;
    };
    match open(&spec).and_then(|mut db| db.realm_options(&cfg.realm)) {
        Ok(options) => {
            if let Some(v) = options.max_bps {
                out.max_bps = v;
            }
            if let Some(v) = options.user_quota {
                out.user_quota = v;
            }
            if let Some(v) = options.total_quota {
                out.total_quota = v;
            }
            if options != RealmOptions::default() {
                tracing::info!(
                    "realm {:?} options from the user database: {options:?}",
                    cfg.realm
                );
            }
        }
        Err(e) => tracing::warn!(
            "user database {}: cannot read the realm options ({e}); using the configuration's",
            spec.describe()
        ),
    }
    out
}

fn error(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError(format!("{what}: {e}"))
}
