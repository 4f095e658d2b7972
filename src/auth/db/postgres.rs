//! coturn's PostgreSQL user database (`psql-userdb`, `-e`): a libpq connection string and the
//! tables of coturn's `schema.sql` (`turnusers_lt`, `turn_secret`, `turn_realm_option`,
//! `allowed_peer_ip`, `denied_peer_ip`).

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, Config, NoTls};

use postgres::error::SqlState;

use super::{error, PeerIpRanges, UserDb, CONNECT_TIMEOUT_S, SCHEMA, TERN_SCHEMA};
use crate::auth::SourceError;
use crate::auth::{
    bytes_from_hex, key_from_hex, key_to_hex, Answer, CredentialSource, RealmOptions,
};
use crate::auth::{userhash, Key, Sha256Key, Userhash};

/// Reads a connection string (key=value pairs or a `postgresql://` URL).
fn parse(conn: &str) -> Result<Config, SourceError> {
    let mut cfg = Config::from_str(conn).map_err(|e| SourceError(format!("psql-userdb: {e}")))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_S));
    }
    Ok(cfg)
}

pub(super) fn check(conn: &str) -> Result<(), SourceError> {
    parse(conn).map(drop)
}

/// Host, port, database and user: never the password.
pub(super) fn describe(conn: &str) -> String {
    match parse(conn) {
        Ok(c) => format!(
            "{:?} port {:?} db {} user {}",
            c.get_hosts(),
            c.get_ports(),
            c.get_dbname().unwrap_or("(default)"),
            c.get_user().unwrap_or("(default)")
        ),
        Err(_) => String::from("(unreadable connection string)"),
    }
}

pub(super) struct Postgres {
    client: Client,
}

impl Postgres {
    pub(super) fn connect(conn: &str) -> Result<Postgres, SourceError> {
        let client = parse(conn)?
            .connect(NoTls)
            .map_err(|e| error("PostgreSQL", e))?;
        Ok(Postgres { client })
    }

    fn pairs(
        &mut self,
        sql: &str,
        realm: Option<&str>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let rows = match realm {
            Some(realm) => self.client.query(sql, &[&realm]),
            None => self.client.query(sql, &[]),
        }
        .map_err(|e| error("PostgreSQL", e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, String>(0)
                        .map_err(|e| error("PostgreSQL", e))?
                        .trim_end()
                        .to_owned(),
                    r.try_get::<_, String>(1)
                        .map_err(|e| error("PostgreSQL", e))?
                        .trim_end()
                        .to_owned(),
                ))
            })
            .collect()
    }

    /// One text column of the first row `sql` finds in tern's table. A database coturn's
    /// `schema.sql` made has no such table until `tern admin` adds a user: nothing is found.
    fn tern_row(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<String>, SourceError> {
        match self.client.query_opt(sql, params) {
            Ok(Some(r)) => r
                .try_get::<_, Option<String>>(0)
                .map_err(|e| error("PostgreSQL", e)),
            Ok(None) => Ok(None),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(e) => Err(error("PostgreSQL", e)),
        }
    }

    /// coturn's tables, for `tern admin` on an empty database (coturn leaves this to the operator).
    fn ensure_schema(&mut self) -> Result<(), SourceError> {
        for table in SCHEMA.iter().chain(TERN_SCHEMA) {
            self.client
                .batch_execute(table)
                .map_err(|e| error("PostgreSQL", e))?;
        }
        Ok(())
    }
}

impl CredentialSource for Postgres {
    fn user(&mut self, realm: &str, name: &str) -> Result<Answer, SourceError> {
        let row = self
            .client
            .query_opt(
                "SELECT hmackey::text FROM turnusers_lt WHERE realm = $1 AND name = $2",
                &[&realm, &name],
            )
            .map_err(|e| error("PostgreSQL", e))?;
        let key = match row {
            Some(r) => r
                .try_get::<_, Option<String>>(0)
                .map_err(|e| error("PostgreSQL", e))?,
            None => None,
        };
        let secrets = self
            .client
            .query(
                "SELECT value::text FROM turn_secret WHERE realm = $1 ORDER BY value",
                &[&realm],
            )
            .map_err(|e| error("PostgreSQL", e))?
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect();
        let sha256 = self.tern_row(
            "SELECT sha256key::text FROM tern_user_sha256 WHERE realm = $1 AND name = $2",
            &[&realm, &name],
        )?;
        Ok(Answer::stored(
            key.as_deref().and_then(key_from_hex),
            sha256.as_deref().and_then(bytes_from_hex),
            secrets,
        ))
    }

    /// One lookup in the `(realm, userhash)` index.
    fn name_by_hash(
        &mut self,
        realm: &str,
        hash: &Userhash,
    ) -> Result<Option<String>, SourceError> {
        self.tern_row(
            "SELECT name::text FROM tern_user_sha256 WHERE realm = $1 AND userhash = $2",
            &[&realm, &key_to_hex(hash)],
        )
    }

    fn realm_options(&mut self, realm: &str) -> Result<RealmOptions, SourceError> {
        let mut options = RealmOptions::default();
        let rows = self.pairs(
            "SELECT opt::text, value::text FROM turn_realm_option WHERE realm = $1",
            Some(realm),
        )?;
        for (opt, value) in rows {
            options.set(&opt, &value);
        }
        Ok(options)
    }
}

impl UserDb for Postgres {
    fn add_user(&mut self, realm: &str, name: &str, key: &Key) -> Result<(), SourceError> {
        self.ensure_schema()?;
        self.client
            .execute(
                "INSERT INTO turnusers_lt (realm, name, hmackey) VALUES ($1, $2, $3) \
                 ON CONFLICT (realm, name) DO UPDATE SET hmackey = EXCLUDED.hmackey",
                &[&realm, &name, &key_to_hex(key)],
            )
            .map(drop)
            .map_err(|e| error("PostgreSQL", e))
    }

    fn add_user_sha256(
        &mut self,
        realm: &str,
        name: &str,
        key: &Sha256Key,
    ) -> Result<(), SourceError> {
        self.ensure_schema()?;
        self.client
            .execute(
                "INSERT INTO tern_user_sha256 (realm, name, sha256key, userhash) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (realm, name) DO UPDATE SET \
                 sha256key = EXCLUDED.sha256key, userhash = EXCLUDED.userhash",
                &[
                    &realm,
                    &name,
                    &key_to_hex(key),
                    &key_to_hex(&userhash(name, realm)),
                ],
            )
            .map(drop)
            .map_err(|e| error("PostgreSQL", e))
    }

    fn delete_user(&mut self, realm: &str, name: &str) -> Result<bool, SourceError> {
        let removed = self
            .client
            .execute(
                "DELETE FROM turnusers_lt WHERE realm = $1 AND name = $2",
                &[&realm, &name],
            )
            .map_err(|e| error("PostgreSQL", e))?;
        let tern = match self.client.execute(
            "DELETE FROM tern_user_sha256 WHERE realm = $1 AND name = $2",
            &[&realm, &name],
        ) {
            Ok(n) => n,
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => 0,
            Err(e) => return Err(error("PostgreSQL", e)),
        };
        Ok(removed + tern > 0)
    }

    fn list_users(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        match realm {
            Some(_) => self.pairs(
                "SELECT realm::text, name::text FROM turnusers_lt WHERE realm = $1 ORDER BY realm, name",
                realm,
            ),
            None => self.pairs(
                "SELECT realm::text, name::text FROM turnusers_lt ORDER BY realm, name",
                None,
            ),
        }
    }

    fn add_secret(&mut self, realm: &str, secret: &str) -> Result<(), SourceError> {
        self.ensure_schema()?;
        self.client
            .execute(
                "INSERT INTO turn_secret (realm, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&realm, &secret],
            )
            .map(drop)
            .map_err(|e| error("PostgreSQL", e))
    }

    fn delete_secret(&mut self, realm: &str, secret: Option<&str>) -> Result<(), SourceError> {
        match secret {
            Some(secret) => self.client.execute(
                "DELETE FROM turn_secret WHERE realm = $1 AND value = $2",
                &[&realm, &secret],
            ),
            None => self
                .client
                .execute("DELETE FROM turn_secret WHERE realm = $1", &[&realm]),
        }
        .map(drop)
        .map_err(|e| error("PostgreSQL", e))
    }

    fn list_secrets(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        match realm {
            Some(_) => self.pairs(
                "SELECT realm::text, value::text FROM turn_secret WHERE realm = $1 ORDER BY realm, value",
                realm,
            ),
            None => self.pairs(
                "SELECT realm::text, value::text FROM turn_secret ORDER BY realm, value",
                None,
            ),
        }
    }

    fn set_realm_option(&mut self, realm: &str, opt: &str, value: &str) -> Result<(), SourceError> {
        self.ensure_schema()?;
        self.client
            .execute(
                "INSERT INTO turn_realm_option (realm, opt, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (realm, opt) DO UPDATE SET value = EXCLUDED.value",
                &[&realm, &opt, &value],
            )
            .map(drop)
            .map_err(|e| error("PostgreSQL", e))
    }

    fn peer_ip_ranges(&mut self, realm: &str) -> Result<PeerIpRanges, SourceError> {
        let mut list = |table: &str| -> Result<Vec<String>, SourceError> {
            let sql = format!(
                "SELECT ip_range::text FROM {table} WHERE realm = $1 OR realm = '' \
                 ORDER BY ip_range"
            );
            let rows = self
                .client
                .query(&sql, &[&realm])
                .map_err(|e| error("PostgreSQL", e))?;
            rows.iter()
                .map(|r| {
                    r.try_get::<_, String>(0)
                        .map(|v| v.trim_end().to_owned())
                        .map_err(|e| error("PostgreSQL", e))
                })
                .collect()
        };
        Ok(PeerIpRanges {
            allowed: list("allowed_peer_ip")?,
            denied: list("denied_peer_ip")?,
        })
    }
}
