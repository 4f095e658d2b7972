//! coturn's SQLite user database (`userdb`, `-b`): the file `turnadmin -b` writes, with coturn's
//! tables created when missing (as coturn does).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{error, PeerIpRanges, UserDb, SCHEMA, TERN_SCHEMA};
use crate::auth::SourceError;
use crate::auth::{
    bytes_from_hex, key_from_hex, key_to_hex, Answer, CredentialSource, RealmOptions,
};
use crate::auth::{userhash, Key, Sha256Key, Userhash};

/// How long a query waits for another process's write lock (`tern admin` while serving).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, SourceError> {
        let what = format!("SQLite {}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(|e| error(&what, e))?;
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| error(&what, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| error(&what, e))?;
        for table in SCHEMA.iter().chain(TERN_SCHEMA) {
            conn.execute(table, []).map_err(|e| error(&what, e))?;
        }
        Ok(Sqlite { conn })
    }

    fn pairs(
        &self,
        sql_all: &str,
        sql_realm: &str,
        realm: Option<&str>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let run = || -> rusqlite::Result<Vec<(String, String)>> {
            let mut stmt = self
                .conn
                .prepare(if realm.is_some() { sql_realm } else { sql_all })?;
            let map = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
            let rows = match realm {
                Some(realm) => stmt.query_map([realm], map)?.collect(),
                None => stmt.query_map([], map)?.collect(),
            };
            rows
        };
        run().map_err(|e| error("SQLite", e))
    }
}

impl CredentialSource for Sqlite {
    fn user(&mut self, realm: &str, name: &str) -> Result<Answer, SourceError> {
        let key: Option<String> = self
            .conn
            .query_row(
                "SELECT hmackey FROM turnusers_lt WHERE realm = ?1 AND name = ?2",
                params![realm, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| error("SQLite", e))?;
        let sha256: Option<String> = self
            .conn
            .query_row(
                "SELECT sha256key FROM tern_user_sha256 WHERE realm = ?1 AND name = ?2",
                params![realm, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| error("SQLite", e))?;
        let mut stmt = self
            .conn
            .prepare("SELECT value FROM turn_secret WHERE realm = ?1 ORDER BY value")
            .map_err(|e| error("SQLite", e))?;
        let secrets = stmt
            .query_map([realm], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| error("SQLite", e))?;
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
        self.conn
            .query_row(
                "SELECT name FROM tern_user_sha256 WHERE realm = ?1 AND userhash = ?2",
                params![realm, key_to_hex(hash)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| error("SQLite", e))
    }

    fn realm_options(&mut self, realm: &str) -> Result<RealmOptions, SourceError> {
        let mut options = RealmOptions::default();
        for (opt, value) in self.pairs(
            "SELECT opt, value FROM turn_realm_option",
            "SELECT opt, value FROM turn_realm_option WHERE realm = ?1",
            Some(realm),
        )? {
            options.set(&opt, &value);
        }
        Ok(options)
    }
}

impl UserDb for Sqlite {
    fn add_user(&mut self, realm: &str, name: &str, key: &Key) -> Result<(), SourceError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO turnusers_lt (realm, name, hmackey) VALUES (?1, ?2, ?3)",
                params![realm, name, key_to_hex(key)],
            )
            .map(drop)
            .map_err(|e| error("SQLite", e))
    }

    fn add_user_sha256(
        &mut self,
        realm: &str,
        name: &str,
        key: &Sha256Key,
    ) -> Result<(), SourceError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO tern_user_sha256 (realm, name, sha256key, userhash) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    realm,
                    name,
                    key_to_hex(key),
                    key_to_hex(&userhash(name, realm))
                ],
            )
            .map(drop)
            .map_err(|e| error("SQLite", e))
    }

    fn delete_user(&mut self, realm: &str, name: &str) -> Result<bool, SourceError> {
        let mut removed = 0;
        for sql in [
            "DELETE FROM turnusers_lt WHERE realm = ?1 AND name = ?2",
            "DELETE FROM tern_user_sha256 WHERE realm = ?1 AND name = ?2",
        ] {
            removed += self
                .conn
                .execute(sql, params![realm, name])
                .map_err(|e| error("SQLite", e))?;
        }
        Ok(removed > 0)
    }

    fn list_users(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.pairs(
            "SELECT realm, name FROM turnusers_lt ORDER BY realm, name",
            "SELECT realm, name FROM turnusers_lt WHERE realm = ?1 ORDER BY realm, name",
            realm,
        )
    }

    fn add_secret(&mut self, realm: &str, secret: &str) -> Result<(), SourceError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO turn_secret (realm, value) VALUES (?1, ?2)",
                params![realm, secret],
            )
            .map(drop)
            .map_err(|e| error("SQLite", e))
    }

    fn delete_secret(&mut self, realm: &str, secret: Option<&str>) -> Result<(), SourceError> {
        let done = match secret {
            Some(secret) => self.conn.execute(
                "DELETE FROM turn_secret WHERE realm = ?1 AND value = ?2",
                params![realm, secret],
            ),
            None => self
                .conn
                .execute("DELETE FROM turn_secret WHERE realm = ?1", [realm]),
        };
        done.map(drop).map_err(|e| error("SQLite", e))
    }

    fn list_secrets(&mut self, realm: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.pairs(
            "SELECT realm, value FROM turn_secret ORDER BY realm, value",
            "SELECT realm, value FROM turn_secret WHERE realm = ?1 ORDER BY realm, value",
            realm,
        )
    }

    fn set_realm_option(&mut self, realm: &str, opt: &str, value: &str) -> Result<(), SourceError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO turn_realm_option (realm, opt, value) VALUES (?1, ?2, ?3)",
                params![realm, opt, value],
            )
            .map(drop)
            .map_err(|e| error("SQLite", e))
    }

    fn peer_ip_ranges(&mut self, realm: &str) -> Result<PeerIpRanges, SourceError> {
        let list = |table: &str| -> rusqlite::Result<Vec<String>> {
            let sql = format!(
                "SELECT ip_range FROM {table} WHERE realm = ?1 OR realm = '' ORDER BY ip_range"
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map([realm], |r| r.get::<_, String>(0))?;
            rows.collect()
        };
        let (allowed, denied) = (list("allowed_peer_ip"), list("denied_peer_ip"));
        Ok(PeerIpRanges {
            allowed: allowed.map_err(|e| error("SQLite", e))?,
            denied: denied.map_err(|e| error("SQLite", e))?,
        })
    }
}
