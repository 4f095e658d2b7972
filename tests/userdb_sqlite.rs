//! coturn's SQLite user database (`userdb`, `-b`): files written by coturn's `turnadmin` work in
//! tern and files written by `tern admin` work in coturn; REST secrets, realm options and peer
//! address lists from the database apply.

mod support;
mod userdb_support;

use userdb_support::scenarios::{
    coturn_user_allocates_on_tern, first_request_answered_at_once, peer_lists_apply,
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
