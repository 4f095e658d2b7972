//! Logging of the real binary (coturn's `log-file`, `verbose`, `new-log-timestamp-format`,
//! `log-binding`): one line per allocation created, refreshed and deleted with user, client,
//! relay and byte counts, never a password; SIGHUP reopens a rotated log file.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::turn_client::TurnClient;
use support::{binding_request, transaction_id, Server, TempDir, PASSWORD, USER};

/// The file's first line containing `needle`, waiting for the server to write it.
fn wait_line(path: &PathBuf, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Binds channel 0x4000 to `peer` and relays one 100-byte message to it.
fn relay_100_bytes(client: &mut TurnClient, peer: &UdpSocket) {
    client
        .channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    client.send_channel(0x4000, &[7u8; 100]);
    let mut buf = [0u8; 200];
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    peer.recv_from(&mut buf).expect("relayed");
}

#[test]
fn verbose_logs_each_allocation_event_to_the_file_and_sighup_reopens_it() {
    let dir = TempDir::new("log");
    let log = dir.path("tern.log");
    let log_arg = format!("--log-file={}", log.display());
    let server = Server::start(&[
        "--allow-loopback-peers",
        "--verbose",
        &log_arg,
        "--new-log-timestamp-format=stamp<%Y>",
        "--log-binding",
    ]);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    let client_addr = client.local_addr().to_string();
    let relay = client.allocate().expect("allocate").to_string();
    let created = wait_line(&log, "allocation created");
    let user = format!("user={USER}");
    for want in [user.as_str(), &client_addr, &relay, "lifetime=600s"] {
        assert!(created.contains(want), "{want} missing: {created}");
    }
    assert!(created.starts_with("stamp<"), "timestamp format: {created}");

    relay_100_bytes(&mut client, &peer);
    assert_eq!(client.refresh(900), Ok(900));
    let refreshed = wait_line(&log, "allocation refreshed");
    assert!(refreshed.contains("lifetime=900s"), "{refreshed}");
    assert!(refreshed.contains("peer_sentb=100"), "{refreshed}");

    // logrotate moves the file away, then sends SIGHUP.
    let rotated = dir.path("tern.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .expect("reload logged");
    assert_eq!(client.refresh(0), Ok(0));
    let deleted = wait_line(&log, "allocation deleted");
    for want in [
        format!("user={USER}"),
        client_addr.clone(),
        relay.clone(),
        String::from("rcvp=1 rcvb=104"),
        String::from("peer_sentp=1 peer_sentb=100"),
    ] {
        assert!(deleted.contains(&want), "{want} missing: {deleted}");
    }

    let probe = UdpSocket::bind("127.0.0.1:0").expect("probe");
    probe
        .send_to(
            &binding_request(&transaction_id(), false),
            server.udp_addr(),
        )
        .expect("binding");
    let binding = wait_line(&log, "binding request from");
    assert!(
        binding.contains(&probe.local_addr().expect("addr").to_string()),
        "{binding}"
    );

    let everything = std::fs::read_to_string(&rotated).unwrap_or_default()
        + &std::fs::read_to_string(&log).unwrap_or_default()
        + &server.log();
    assert!(!everything.contains(PASSWORD), "a password was logged");
    assert!(
        std::fs::read_to_string(&rotated)
            .expect("rotated file")
            .contains("allocation created"),
        "the old lines stay in the rotated file"
    );
}

#[test]
fn without_verbose_allocation_events_are_not_logged() {
    let server = Server::start(&[]);
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    client.allocate().expect("allocate");
    assert_eq!(client.refresh(0), Ok(0));
    // Both events happened before the answer to the deleting Refresh; give the loop a turn.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    assert!(!log.contains("allocation "), "{log}");
    assert!(log.contains("ready"), "{log}");
}

/// An allocation still open when the server stops ends like any other: its deleted line, with
/// its counts, is in the log, whichever engine served it.
#[test]
fn allocations_open_at_sigterm_are_logged_as_deleted_on_both_engines() {
    for engine in ["epoll", "uring"] {
        let dir = TempDir::new("log-stop");
        let log = dir.path("tern.log");
        let log_arg = format!("--log-file={}", log.display());
        let engine_arg = format!("--io-engine={engine}");
        let mut server =
            Server::start(&["--allow-loopback-peers", "--verbose", &log_arg, &engine_arg]);
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
        let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
        let client_addr = client.local_addr().to_string();
        let relay = client.allocate().expect("allocate").to_string();
        relay_100_bytes(&mut client, &peer);

        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{engine}: not stopped within 5 s:\n{}", server.log()));
        assert!(status.success(), "{engine}: {status:?}\n{}", server.log());
        let text = std::fs::read_to_string(&log).expect("log file");
        let deleted = text
            .lines()
            .find(|l| l.contains("allocation deleted"))
            .unwrap_or_else(|| panic!("{engine}: no deleted line at stop:\n{text}"));
        for want in [
            client_addr.as_str(),
            relay.as_str(),
            "rcvp=1 rcvb=104",
            "peer_sentp=1 peer_sentb=100",
        ] {
            assert!(
                deleted.contains(want),
                "{engine}: {want} missing: {deleted}"
            );
        }
    }
}
