//! `tern admin`: coturn's `turnadmin` verbs on coturn's user databases (SQLite, Redis,
//! PostgreSQL): add, delete and list long-term users (keys MD5(user:realm:password) in coturn's
//! table, and the SHA-256 key with the USERHASH in tern's table beside it, RFC 8489 §9.2.2),
//! add, show and delete TURN REST secrets, set realm options. `-k` prints a key.

use std::io::Write;
use std::path::PathBuf;

use super::args::{parse, Parsed, Spec};
use super::{exit_code, usage_error};
use crate::auth::db::{self, DbSpec, RedisParams, UserDb, DEFAULT_SQLITE};
use crate::auth::{key_to_hex, long_term_key, long_term_key_sha256, SourceError, REALM_OPTIONS};

pub const ADMIN_USAGE: &str = "\
Usage: tern admin COMMAND [DATABASE] [OPTIONS]   (coturn's turnadmin, same letters)
Commands:
  -k, --key                  print the key of -u/-r/-p (as tern key)
  -a, --add                  add or update user -u in realm -r with password -p (its MD5 key
                             in coturn's table, its SHA-256 key and USERHASH in tern's)
  -d, --delete               delete user -u of realm -r
  -l, --list                 list users (of realm -r, or all)
  -s, --set-secret SECRET    add a TURN REST shared secret to realm -r
  -S, --show-secret          list the REST secrets (of realm -r, or all)
  -X, --delete-secret SECRET delete one REST secret of realm -r
      --delete-all-secrets   delete every REST secret of realm -r
  -g, --set-realm-option     set --max-bps, --total-quota and/or --user-quota of realm -r
  -G, --list-realm-options   print the options of realm -r
Database (one; default: SQLite /var/lib/tern/turndb):
  -b, --db, --userdb FILE    SQLite file (coturn's schema)
  -e, --psql-userdb CONN     PostgreSQL connection string
  -N, --redis-userdb CONN    Redis: \"ip=.. port=.. dbname=.. password=.. connect_timeout=..\"
Options:
  -u, --user USER  -r, --realm REALM  -p, --password PASSWORD
      --max-bps N  --total-quota N  --user-quota N
  -h, --help
";

const SPECS: &[Spec] = &[
    Spec::switch(Some('k'), "key"),
    Spec::switch(Some('a'), "add"),
    Spec::switch(Some('d'), "delete"),
    Spec::switch(Some('l'), "list"),
    Spec::value(Some('s'), "set-secret"),
    Spec::switch(Some('S'), "show-secret"),
    Spec::value(Some('X'), "delete-secret"),
    Spec::switch(None, "delete-all-secrets"),
    Spec::switch(Some('g'), "set-realm-option"),
    Spec::switch(Some('G'), "list-realm-options"),
    Spec::value(Some('b'), "db"),
    Spec::value(None, "userdb"),
    Spec::value(Some('e'), "psql-userdb"),
    Spec::value(Some('N'), "redis-userdb"),
    Spec::value(Some('u'), "user"),
    Spec::value(Some('r'), "realm"),
    Spec::value(Some('p'), "password"),
    Spec::value(None, "max-bps"),
    Spec::value(None, "total-quota"),
    Spec::value(None, "user-quota"),
    Spec::switch(Some('h'), "help"),
];

const COMMANDS: &[&str] = &[
    "key",
    "add",
    "delete",
    "list",
    "set-secret",
    "show-secret",
    "delete-secret",
    "delete-all-secrets",
    "set-realm-option",
    "list-realm-options",
];

/// Runs `tern admin`; `args` excludes `admin`. Listings go to `out`, problems to `err`.
pub fn run_admin(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let parsed = match parse(args, SPECS) {
        Ok(p) => p,
        Err(e) => return usage_error(err, &e),
    };
    if parsed.has("help") {
        return exit_code(out.write_all(ADMIN_USAGE.as_bytes()));
    }
    let given: Vec<&str> = COMMANDS.iter().copied().filter(|c| parsed.has(c)).collect();
    let command = match given.as_slice() {
        [one] => *one,
        [] => {
            return usage_error(
                err,
                "give one command (-a, -d, -l, -s, -S, -X, -g, -G or -k)",
            )
        }
        _ => return usage_error(err, "give only one command"),
    };
    if command == "key" {
        return key(&parsed, out, err);
    }
    let spec = match database(&parsed) {
        Ok(spec) => spec,
        Err(e) => return usage_error(err, &e),
    };
    let mut db = match db::open(&spec) {
        Ok(db) => db,
        Err(e) => return failed(err, &e),
    };
    match run(command, &parsed, db.as_mut(), out) {
        Ok(Ok(())) => 0,
        Ok(Err(usage)) => usage_error(err, &usage),
        Err(e) => failed(err, &e),
    }
}

fn failed(err: &mut dyn Write, e: &SourceError) -> i32 {
    let _ = writeln!(err, "tern admin: {e}");
    1
}

/// The database named on the command line, else the default SQLite file.
fn database(p: &Parsed) -> Result<DbSpec, String> {
    let named: Vec<DbSpec> = [
        p.get("psql-userdb")
            .map(|c| DbSpec::postgres(c).map_err(|e| e.0)),
        p.get("redis-userdb")
            .map(|c| RedisParams::parse(c).map(DbSpec::Redis).map_err(|e| e.0)),
        p.get("db")
            .or_else(|| p.get("userdb"))
            .map(|f| Ok(DbSpec::Sqlite(PathBuf::from(f)))),
    ]
    .into_iter()
    .flatten()
    .collect::<Result<_, _>>()?;
    let mut named: Vec<DbSpec> = named;
    if named.len() > 1 {
        return Err(String::from("name one database (-b, -e or -N)"));
    }
    Ok(named
        .pop()
        .unwrap_or_else(|| DbSpec::Sqlite(PathBuf::from(DEFAULT_SQLITE))))
}

fn key(p: &Parsed, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (Some(user), Some(realm), Some(password)) =
        (p.get("user"), p.get("realm"), p.get("password"))
    else {
        return usage_error(err, "-k needs -u USER, -r REALM and -p PASSWORD");
    };
    exit_code(writeln!(
        out,
        "0x{}",
        key_to_hex(&long_term_key(user, realm, password))
    ))
}

/// Ok(Err(message)) is a usage problem; Err a database failure.
fn run(
    command: &str,
    p: &Parsed,
    db: &mut dyn UserDb,
    out: &mut dyn Write,
) -> Result<Result<(), String>, SourceError> {
    let realm = p.get("realm");
    let need_realm = || realm.ok_or_else(|| format!("--{command} needs -r REALM"));
    let print = |out: &mut dyn Write, lines: Vec<String>| -> Result<(), SourceError> {
        for line in lines {
            writeln!(out, "{line}").map_err(|e| SourceError(format!("writing output: {e}")))?;
        }
        Ok(())
    };
    match command {
        "add" => {
            let (Ok(realm), Some(user), Some(password)) =
                (need_realm(), p.get("user"), p.get("password"))
            else {
                return Ok(Err(String::from(
                    "-a needs -u USER, -r REALM and -p PASSWORD",
                )));
            };
            // coturn's MD5 row, and tern's SHA-256 key with the USERHASH index beside it: the
            // user authenticates clients of either algorithm, and USERHASH finds it.
            db.add_user(realm, user, &long_term_key(user, realm, password))?;
            db.add_user_sha256(realm, user, &long_term_key_sha256(user, realm, password))?;
        }
        "delete" => {
            let (Ok(realm), Some(user)) = (need_realm(), p.get("user")) else {
                return Ok(Err(String::from("-d needs -u USER and -r REALM")));
            };
            db.delete_user(realm, user)?;
        }
        "list" => {
            let users = db.list_users(realm)?;
            print(
                out,
                users
                    .into_iter()
                    .map(|(r, u)| format!("{u}[{r}]"))
                    .collect(),
            )?;
        }
        "set-secret" | "delete-secret" | "delete-all-secrets" => {
            let realm = match need_realm() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            match command {
                "set-secret" => db.add_secret(realm, p.get("set-secret").unwrap_or_default())?,
                "delete-secret" => db.delete_secret(realm, p.get("delete-secret"))?,
                _ => db.delete_secret(realm, None)?,
            }
        }
        "show-secret" => {
            let secrets = db.list_secrets(realm)?;
            print(
                out,
                secrets
                    .into_iter()
                    .map(|(r, s)| format!("{s}[{r}]"))
                    .collect(),
            )?;
        }
        "set-realm-option" => {
            let realm = match need_realm() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let mut any = false;
            for opt in REALM_OPTIONS {
                if let Some(value) = p.get(opt) {
                    if value.parse::<u64>().is_err() {
                        return Ok(Err(format!("--{opt} {value:?} is not a number")));
                    }
                    db.set_realm_option(realm, opt, value)?;
                    any = true;
                }
            }
            if !any {
                return Ok(Err(String::from(
                    "-g needs --max-bps, --total-quota or --user-quota",
                )));
            }
        }
        "list-realm-options" => {
            let realm = match need_realm() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let o = db.realm_options(realm)?;
            let values = [
                ("max-bps", o.max_bps),
                ("total-quota", o.total_quota.map(u64::from)),
                ("user-quota", o.user_quota.map(u64::from)),
            ];
            print(
                out,
                values
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| format!("{k}[{realm}]={v}")))
                    .collect(),
            )?;
        }
        _ => return Ok(Err(format!("unknown command {command}"))),
    }
    Ok(Ok(()))
}
