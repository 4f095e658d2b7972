//! coturn's SQLite user database (`userdb`, `-b`): files written by coturn's `turnadmin` work in
//! tern and files written by `tern admin` work in coturn; REST secrets, realm options and peer
//! address lists from the database apply; a reload keeps the resolver and its cache.

use crate::support;
use crate::userdb_support;

use std::time::Duration;

use userdb_support::scenarios::{
    coturn_user_allocates_on_tern, first_request_answered_at_once, peer_lists_apply, tern_on,
    tern_user_allocates_on_coturn,
};
use userdb_support::{relayed, tern_admin, TempDir, TurnClient, REALM};

#[test]
fn turnadmin_sqlite_users_allocate_on_tern() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    coturn_user_allocates_on_tern(&["-b", file], &format!("--userdb={file}"));
}

#[test]
fn sqlite_first_request_is_answered_on_both_engines() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    first_request_answered_at_once(&["-b", file], &format!("--userdb={file}"));
}

#[test]
fn tern_admin_sqlite_users_allocate_on_coturn() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_user_allocates_on_coturn(&["-b", file], &["-b", file]);
}

#[test]
fn rest_secret_from_the_database() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_admin(&["-s", "db-secret", "-r", REALM, "-b", file]);
    let listed = tern_admin(&["-S", "-b", file]);
    assert_eq!(listed, format!("db-secret[{REALM}]\n"));
    let server = support::Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        &format!("--realm={REALM}"),
        "--use-auth-secret",
        &format!("--userdb={file}"),
    ]);
    let name = "4102444800:rest-user";
    let password = tern::auth::rest_password("db-secret", name);
    let ok = TurnClient::new(server.udp_addr(), name, &password, REALM).allocate();
    assert!(relayed(&ok), "{ok:?}\n{}", server.log());
    let wrong = tern::auth::rest_password("other-secret", name);
    let no = TurnClient::new(server.udp_addr(), name, &wrong, REALM).allocate();
    assert_eq!(no, userdb_support::Outcome::Error(401));
}

#[test]
fn admin_lists_and_deletes() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_admin(&["-a", "-u", "bob", "-r", REALM, "-p", "x", "-b", file]);
    tern_admin(&[
        "-a",
        "-u",
        "amy",
        "-r",
        "other.realm",
        "-p",
        "y",
        "-b",
        file,
    ]);
    assert_eq!(
        tern_admin(&["-l", "-b", file]),
        format!("amy[other.realm]\nbob[{REALM}]\n")
    );
    assert_eq!(
        tern_admin(&["-l", "-r", REALM, "-b", file]),
        format!("bob[{REALM}]\n")
    );
    tern_admin(&["-d", "-u", "bob", "-r", REALM, "-b", file]);
    assert_eq!(tern_admin(&["-l", "-r", REALM, "-b", file]), "");
    tern_admin(&[
        "-g",
        "--user-quota",
        "2",
        "--max-bps",
        "64000",
        "-r",
        REALM,
        "-b",
        file,
    ]);
    assert_eq!(
        tern_admin(&["-G", "-r", REALM, "-b", file]),
        format!("max-bps[{REALM}]=64000\nuser-quota[{REALM}]=2\n")
    );
    tern_admin(&["-s", "s1", "-r", REALM, "-b", file]);
    tern_admin(&["-X", "s1", "-r", REALM, "-b", file]);
    assert_eq!(tern_admin(&["-S", "-b", file]), "");
}

#[test]
fn sqlite_peer_address_lists_apply() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    let mut add = |list: &str, realm: &str, range: &str| {
        let db = rusqlite::Connection::open(file).expect("open the SQLite file");
        db.execute(
            &format!("INSERT INTO {list}_peer_ip (realm, ip_range) VALUES (?1, ?2)"),
            [realm, range],
        )
        .expect("insert a peer range");
    };
    peer_lists_apply(&["-b", file], &format!("--userdb={file}"), &mut add);
}

/// The TIDs of tern's user database threads (`tern-userdb`), sorted.
fn userdb_threads(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tern's tasks");
    let mut tids: Vec<u32> = tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim() == "tern-userdb").then(|| t.file_name().to_str()?.parse().ok())?
        })
        .collect();
    tids.sort_unstable();
    tids
}

/// A SIGHUP reload that names the same database keeps its resolver: no thread is started, and
/// the cache still answers for a user the database has just lost (within the cache's TTL),
/// while names it never saw are still asked of the database.
#[test]
fn a_reload_keeps_the_user_database_cache_and_starts_no_thread() {
    let dir = TempDir::new("sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_admin(&["-a", "-u", "cached", "-r", REALM, "-p", "pw", "-b", file]);
    let server = tern_on(&format!("--userdb={file}"));
    let allocate = |user: &str| TurnClient::new(server.udp_addr(), user, "pw", REALM).allocate();
    let first = allocate("cached");
    assert!(relayed(&first), "{first:?}\n{}", server.log());
    let threads = userdb_threads(server.pid());
    assert_eq!(threads.len(), 1, "{threads:?}");

    tern_admin(&["-d", "-u", "cached", "-r", REALM, "-b", file]);
    tern_admin(&["-a", "-u", "added", "-r", REALM, "-p", "pw", "-b", file]);
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));
    assert_eq!(userdb_threads(server.pid()), threads, "{}", server.log());
    let cached = allocate("cached");
    assert!(relayed(&cached), "cache lost: {cached:?}\n{}", server.log());
    let added = allocate("added");
    assert!(relayed(&added), "{added:?}\n{}", server.log());
}
