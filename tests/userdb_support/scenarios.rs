//! The acceptance scenarios of the user databases, each run against SQLite, Redis and
//! PostgreSQL by the `userdb_*` test files: interop with coturn's `turnadmin` and `turnserver`,
//! two tern nodes on one database, and a database outage.
// Deadlines for real processes need the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tern::auth::{NEGATIVE_TTL, POSITIVE_TTL};

use super::{
    allocate_until, refused, relayed, tern_admin, turnadmin, Coturn, Outcome, TurnClient, REALM,
};
use crate::support::Server;

/// Slack on top of a cache TTL for a loaded machine: generous, the bound is what is asserted.
const SLACK: Duration = Duration::from_secs(8);

/// tern on the database named by `tern_db` (e.g. `--userdb=FILE`).
pub fn tern_on(tern_db: &str) -> Server {
    Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        &format!("--realm={REALM}"),
        "--allow-loopback-peers",
        tern_db,
    ])
}

/// A user written by coturn's `turnadmin -a` (into `db`, coturn's flags) allocates on tern;
/// a wrong password and an unknown user are refused.
pub fn coturn_user_allocates_on_tern(db: &[&str], tern_db: &str) {
    let mut args = vec![
        "-a",
        "-u",
        "written-by-turnadmin",
        "-r",
        REALM,
        "-p",
        "pw-1",
    ];
    args.extend_from_slice(db);
    if turnadmin(&args).is_none() {
        return;
    }
    let server = tern_on(tern_db);
    let addr = server.udp_addr();
    let ok = TurnClient::new(addr, "written-by-turnadmin", "pw-1", REALM).allocate();
    assert!(relayed(&ok), "{ok:?}\nlog:\n{}", server.log());
    let wrong = TurnClient::new(addr, "written-by-turnadmin", "pw-2", REALM).allocate();
    assert_eq!(wrong, Outcome::Error(401), "{}", server.log());
    let unknown = TurnClient::new(addr, "nobody", "pw-1", REALM).allocate();
    assert_eq!(unknown, Outcome::Error(401), "{}", server.log());
}

/// A user written by `tern admin -a` allocates on coturn's `turnserver` (on `coturn_db`).
pub fn tern_user_allocates_on_coturn(db: &[&str], coturn_db: &[&str]) {
    let mut args = vec!["-a", "-u", "written-by-tern", "-r", REALM, "-p", "pw-3"];
    args.extend_from_slice(db);
    tern_admin(&args);
    let Some(coturn) = Coturn::start(coturn_db) else {
        return;
    };
    let ok = TurnClient::new(coturn.addr, "written-by-tern", "pw-3", REALM).allocate();
    assert!(relayed(&ok), "{ok:?}\ncoturn log:\n{}", coturn.log());
    let wrong = TurnClient::new(coturn.addr, "written-by-tern", "pw-4", REALM).allocate();
    assert_eq!(wrong, Outcome::Error(401), "{}", coturn.log());
}

/// Two tern processes on one database: a user added with `tern admin` allocates on the second
/// within the negative-cache TTL, and once deleted is refused there within the positive TTL.
pub fn two_nodes_share_users(db: &[&str], tern_db: &str) {
    let (a, b) = (tern_on(tern_db), tern_on(tern_db));
    let user = "fleet-user";
    // Both nodes have just been told "no such user" and cache it.
    for node in [&a, &b] {
        let o = TurnClient::new(node.udp_addr(), user, "pw", REALM).allocate();
        assert_eq!(o, Outcome::Error(401), "{}", node.log());
    }
    let mut add = vec!["-a", "-u", user, "-r", REALM, "-p", "pw"];
    add.extend_from_slice(db);
    tern_admin(&add);
    for node in [&b, &a] {
        let took = allocate_until(node.udp_addr(), user, "pw", NEGATIVE_TTL + SLACK, relayed)
            .unwrap_or_else(|o| panic!("added user not seen: {o:?}\n{}", node.log()));
        assert!(took <= NEGATIVE_TTL + SLACK, "{took:?}");
    }
    let mut delete = vec!["-d", "-u", user, "-r", REALM];
    delete.extend_from_slice(db);
    tern_admin(&delete);
    for node in [&b, &a] {
        allocate_until(node.udp_addr(), user, "pw", POSITIVE_TTL + SLACK, refused)
            .unwrap_or_else(|o| panic!("deleted user still allocates: {o:?}\n{}", node.log()));
    }
}

/// With the database stopped an existing allocation keeps relaying and refreshing, a new
/// authentication is refused with 401 at once and counted in the log; once the database is
/// back, the same user allocates without restarting tern.
pub fn outage(db: &[&str], tern_db: &str, stop: &mut dyn FnMut(), resume: &mut dyn FnMut()) {
    for user in ["before", "during"] {
        let mut add = vec!["-a", "-u", user, "-r", REALM, "-p", "pw"];
        add.extend_from_slice(db);
        tern_admin(&add);
    }
    let server = tern_on(tern_db);
    let addr = server.udp_addr();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let peer_addr: SocketAddr = peer.local_addr().expect("peer address");
    let mut client = TurnClient::new(addr, "before", "pw", REALM);
    assert!(relayed(&client.allocate()), "{}", server.log());
    assert!(
        relayed(&client.create_permission(peer_addr)),
        "{}",
        server.log()
    );
    let relays = |client: &TurnClient, tag: &[u8]| {
        client.send(peer_addr, tag);
        let mut buf = [0u8; 64];
        let got = peer.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
        assert_eq!(got.ok().as_deref(), Some(tag), "{}", server.log());
    };
    relays(&client, b"before the outage");

    stop();
    let o = TurnClient::new(addr, "during", "pw", REALM).allocate();
    assert_eq!(o, Outcome::Error(401), "{}", server.log());
    relays(&client, b"during the outage");
    assert!(relayed(&client.refresh()), "{}", server.log());
    assert!(
        log_shows(&server, &["unavailable", "refused so far"]),
        "no counted reason in the log:\n{}",
        server.log()
    );

    resume();
    allocate_until(addr, "during", "pw", tern::auth::DOWN_TTL + SLACK, relayed)
        .unwrap_or_else(|o| panic!("no recovery: {o:?}\n{}", server.log()));
    assert!(log_shows(&server, &["reachable again"]), "{}", server.log());
    relays(&client, b"after the outage");
}

/// Whether the server's log shows every one of `needles` within a few seconds (the log is read
/// from a pipe by another thread, a little after the fact).
fn log_shows(server: &Server, needles: &[&str]) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if needles.iter().all(|n| log.contains(n)) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// coturn's peer address lists in the database (`allowed_peer_ip`, `denied_peer_ip`) join the
/// configuration's, as in coturn: a range denied for the server's realm is refused with 403
/// although the configuration admits loopback peers, a range denied for another realm does not
/// apply, an allowed range admits private peers the default policy refuses, and a row added
/// while tern runs applies within seconds. `db` names the database for `tern admin`;
/// `add(list, realm, range)` writes one row into `allowed` or `denied`.
pub fn peer_lists_apply(db: &[&str], tern_db: &str, add: &mut dyn FnMut(&str, &str, &str)) {
    let mut args = vec!["-a", "-u", "peer-lists", "-r", REALM, "-p", "pw"];
    args.extend_from_slice(db);
    tern_admin(&args);
    add("denied", REALM, "127.0.0.2");
    add("denied", "another.realm", "127.0.0.3");
    add("allowed", REALM, "10.0.0.1-10.0.0.255");
    let server = tern_on(tern_db);
    let log = || server.log();
    let peer = |ip: &str| SocketAddr::new(ip.parse().expect("an IP"), 9);
    // The policy tern logs at start (just after it listens) is the one it applies, the
    // database's ranges included.
    let policy = server
        .wait_for_log(
            "allowed-peer-ip (wins over denied):",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no peer policy logged; log:\n{}", log()));
    assert_eq!(
        policy,
        "allowed-peer-ip (wins over denied): 10.0.0.1-10.0.0.255; denied-peer-ip: 127.0.0.2"
    );
    let mut c = TurnClient::new(server.udp_addr(), "peer-lists", "pw", REALM);
    assert!(relayed(&c.allocate()), "{}", log());
    assert_eq!(
        c.create_permission(peer("127.0.0.2")),
        Outcome::Error(403),
        "{}",
        log()
    );
    assert!(
        relayed(&c.create_permission(peer("127.0.0.3"))),
        "{}",
        log()
    );
    assert!(relayed(&c.create_permission(peer("10.0.0.7"))), "{}", log());
    assert_eq!(
        c.create_permission(peer("10.0.1.7")),
        Outcome::Error(403),
        "{}",
        log()
    );

    // A row added while tern runs applies within coturn's re-read period (5 s), without a
    // SIGHUP; existing permissions to that peer are refused at their next refresh.
    add("denied", REALM, "127.0.0.4");
    let deadline = Instant::now() + Duration::from_secs(15);
    while relayed(&c.create_permission(peer("127.0.0.4"))) {
        assert!(
            Instant::now() < deadline,
            "the new row never applied:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.create_permission(peer("127.0.0.4")),
        Outcome::Error(403),
        "{}",
        log()
    );
    assert!(relayed(&c.create_permission(peer("10.0.0.7"))), "{}", log());
    server
        .wait_for_log("user database: denied-peer-ip", Duration::from_secs(1))
        .unwrap_or_else(|| panic!("the change was not logged:\n{}", log()));
}
