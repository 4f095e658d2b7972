//! coturn's per-realm options from the user database (`turn_realm_option`, `tern admin -g`):
//! `user-quota` (486 for one allocation too many) and `max-bps` (bytes per second relayed per
//! allocation) override the configuration for the server's realm.
#![allow(clippy::disallowed_methods)]

use crate::userdb_support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use userdb_support::scenarios::tern_on;
use userdb_support::{relayed, tern_admin, Outcome, TempDir, TurnClient, REALM};

#[test]
fn realm_user_quota_from_the_database() {
    let dir = TempDir::new("realmopt");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_admin(&[
        "-a",
        "-u",
        "quota-user",
        "-r",
        REALM,
        "-p",
        "pw",
        "-b",
        file,
    ]);
    tern_admin(&["-g", "--user-quota", "1", "-r", REALM, "-b", file]);
    let server = tern_on(&format!("--userdb={file}"));
    let mut first = TurnClient::new(server.udp_addr(), "quota-user", "pw", REALM);
    assert!(relayed(&first.allocate()), "{}", server.log());
    let second = TurnClient::new(server.udp_addr(), "quota-user", "pw", REALM).allocate();
    assert_eq!(second, Outcome::Error(486), "{}", server.log());
}

#[test]
fn realm_max_bps_from_the_database() {
    const RATE: usize = 10_000;
    let dir = TempDir::new("realmopt");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    tern_admin(&["-a", "-u", "bps-user", "-r", REALM, "-p", "pw", "-b", file]);
    tern_admin(&[
        "-g",
        "--max-bps",
        &RATE.to_string(),
        "-r",
        REALM,
        "-b",
        file,
    ]);
    let server = tern_on(&format!("--userdb={file}"));
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer address");
    let mut c = TurnClient::new(server.udp_addr(), "bps-user", "pw", REALM);
    assert!(relayed(&c.allocate()), "{}", server.log());
    assert!(relayed(&c.create_permission(peer_addr)), "{}", server.log());
    // Offer 5x the rate for 3 s, paced so the offer holds on a busy machine.
    let payload = [0x5Au8; 500];
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        let due = (start.elapsed().as_secs_f64() * (5 * RATE) as f64 / 500.0) as usize + 1;
        while sent < due {
            c.send(peer_addr, &payload);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    peer.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut got = 0usize;
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = peer.recv_from(&mut buf) {
        got += n;
    }
    let limit = RATE as f64 * (elapsed + 1.0) * 1.2;
    assert!(got > 0, "nothing relayed");
    assert!(
        (got as f64) < limit,
        "{got} bytes reached the peer in {elapsed:.1} s with max-bps {RATE} (offered {})",
        sent * 500
    );
}
