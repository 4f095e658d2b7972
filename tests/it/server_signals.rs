//! Process control of the real binary: SIGHUP reloads credentials without dropping allocations,
//! SIGUSR1 drains (coturn 4.17), SIGTERM stops cleanly with allocations live, and systemd's
//! readiness protocol and the pidfile follow the process's life.

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::thread;
use std::time::Duration;

use support::turn_client::{Refused, TurnClient};
use support::{Server, TempDir, PASSWORD, USER};

const OLD_PASSWORD: &str = "old-password-7f3a";
const NEW_PASSWORD: &str = "new-password-9c1d";

fn write_conf(path: &Path, password: &str, extra: &str) {
    let text = format!(
        "realm=tern.test\nuser=alice:{password}\nallow-loopback-peers\nlistening-ip=127.0.0.1\n\
         listening-port=0\n{extra}"
    );
    std::fs::write(path, text).expect("write config");
}

fn peer() -> UdpSocket {
    let p = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    // A burst of 100 datagrams of 1000 bytes takes about 230 kB of receive buffer (the kernel
    // counts each with its overhead), more than the default 208 kB: while the test thread waits
    // for a CPU, the burst overflowed it and looked like packets the server lost.
    socket2::SockRef::from(&p)
        .set_recv_buffer_size(1 << 20)
        .expect("peer receive buffer");
    p.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    p
}

/// One ChannelData packet from `client` reaches `peer` from `relay`.
fn relays(client: &TurnClient, peer: &UdpSocket, relay: SocketAddr, payload: &[u8]) {
    client.send_channel(0x4000, payload);
    let mut buf = [0u8; 1500];
    let (n, from) = peer.recv_from(&mut buf).expect("relayed packet");
    assert_eq!((from, &buf[..n]), (relay, payload));
}

fn refused(code: u16) -> Result<SocketAddr, Refused> {
    Err(Refused {
        code,
        alternate: None,
    })
}

#[test]
fn sighup_applies_a_new_password_without_dropping_the_allocation() {
    let dir = TempDir::new("reload");
    let conf = dir.path("turnserver.conf");
    write_conf(&conf, OLD_PASSWORD, "");
    let conf_arg = conf.to_str().expect("utf-8 path");
    let server = Server::start_args(&["-c", conf_arg]);
    let peer = peer();
    let mut old = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    let relay = old.allocate().expect("allocate with the old password");
    old.channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    relays(&old, &peer, relay, b"before");

    write_conf(&conf, NEW_PASSWORD, "");
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));

    // The existing allocation keeps its cached key: refresh and relay go on.
    assert_eq!(old.refresh(600), Ok(600));
    relays(&old, &peer, relay, b"after");
    old.channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel refresh");

    let mut new = TurnClient::new(server.udp_addr(), "alice", NEW_PASSWORD);
    new.allocate().expect("allocate with the new password");
    let mut stale = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    assert_eq!(stale.allocate(), refused(401));

    let log = server.log();
    assert!(log.contains("alice: credentials changed"), "{log}");
    for secret in [OLD_PASSWORD, NEW_PASSWORD] {
        assert!(!log.contains(secret), "a password in the log:\n{log}");
    }
}

#[test]
fn an_invalid_config_on_sighup_is_rejected_and_the_old_one_kept() {
    let dir = TempDir::new("badreload");
    let conf = dir.path("turnserver.conf");
    write_conf(&conf, OLD_PASSWORD, "");
    let server = Server::start_args(&["-c", conf.to_str().expect("utf-8 path")]);
    write_conf(&conf, NEW_PASSWORD, "max-port=not-a-port\n");
    server.signal(libc::SIGHUP);
    let line = server
        .wait_for_log("reload rejected", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no rejection; log:\n{}", server.log()));
    assert!(server.log().contains("max-port"), "{}", server.log());
    assert!(line.contains("keeping"), "{line}");
    let mut client = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    client.allocate().expect("the old credentials still work");
}

#[test]
fn sigusr1_refuses_new_allocations_and_exits_after_the_last_one() {
    let mut server = Server::start(&[]);
    let mut existing = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    existing.allocate().expect("allocate before the drain");
    server.signal(libc::SIGUSR1);
    server
        .wait_for_log("draining", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no drain; log:\n{}", server.log()));

    let mut late = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert_eq!(late.allocate(), refused(403));
    assert_eq!(existing.refresh(600), Ok(600));
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "exited with an allocation live; log:\n{}",
        server.log()
    );
    assert_eq!(existing.refresh(0), Ok(0));
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after the last allocation:\n{}", server.log()));
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_draining_server_redirects_to_the_alternate_server() {
    let server = Server::start(&[
        "--alternate-server=192.0.2.7:3479",
        "--alternate-server-mode=draining",
    ]);
    let mut keep = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    keep.allocate().expect("allocate before the drain");
    server.signal(libc::SIGUSR1);
    server
        .wait_for_log("draining", Duration::from_secs(10))
        .expect("drain logged");
    let mut late = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert_eq!(
        late.allocate(),
        Err(Refused {
            code: 300,
            alternate: Some("192.0.2.7:3479".parse().expect("addr")),
        })
    );
}

#[test]
fn sigterm_with_100_allocations_exits_0_and_systemd_hears_ready_and_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("bind NOTIFY_SOCKET");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let pidfile = dir.path("tern.pid");
    let pid_arg = format!("--pidfile={}", pidfile.display());
    let mut server = Server::start_env(
        &[
            "-n",
            "--listening-ip=127.0.0.1",
            "--listening-port=0",
            "--user=tern-test:tern-test-password",
            "--realm=tern.test",
            &pid_arg,
        ],
        &[("NOTIFY_SOCKET", socket_path.as_os_str())],
    );
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("a readiness message");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", server.pid())),
        "{ready}"
    );
    let written = std::fs::read_to_string(&pidfile).expect("pidfile written");
    assert_eq!(written.trim(), server.pid().to_string());

    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
        c.allocate().expect("allocate");
        clients.push(c);
    }
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("not stopped within 5 s:\n{}", server.log()));
    assert!(status.success(), "{status:?}\n{}", server.log());
    let n = notify.recv(&mut buf).expect("a stopping message");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(!pidfile.exists(), "pidfile left behind");
}

/// ChannelData packets of 1000 bytes sent back to back from `client` that reach `peer`.
fn burst_through(client: &TurnClient, peer: &UdpSocket, packets: usize) -> usize {
    let payload = [7u8; 1000];
    for _ in 0..packets {
        client.send_channel(0x4000, &payload);
    }
    peer.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    std::iter::from_fn(|| peer.recv_from(&mut buf).ok()).count()
}

#[test]
fn sighup_applies_a_new_bps_capacity() {
    let dir = TempDir::new("capacity");
    let conf = dir.path("turnserver.conf");
    write_conf(&conf, OLD_PASSWORD, "max-bps=10000000\n");
    let server = Server::start_args(&["-c", conf.to_str().expect("utf-8 path")]);
    let peer = peer();
    let peer_addr = peer.local_addr().expect("peer address");
    let mut before = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    before.allocate().expect("allocate");
    before
        .channel_bind(0x4000, peer_addr)
        .expect("channel bind");
    assert_eq!(burst_through(&before, &peer, 100), 100);

    // 10 kB/s with a 3 kB burst: of 100 kB sent at once, a few packets pass.
    write_conf(
        &conf,
        OLD_PASSWORD,
        "max-bps=10000000\nbps-capacity=10000\n",
    );
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));
    let mut after = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    after.allocate().expect("allocate after the reload");
    after.channel_bind(0x4000, peer_addr).expect("channel bind");
    let passed = burst_through(&after, &peer, 100);
    assert!((1..=8).contains(&passed), "{passed} of 100 passed");
    // The capacity is the whole server's: the allocation made before is held to it too.
    thread::sleep(Duration::from_secs(1));
    let passed = burst_through(&before, &peer, 100);
    assert!((1..=20).contains(&passed), "{passed} of 100 passed");
    assert!(
        server.log().contains("reload: bps-capacity: 0 -> 10000"),
        "{}",
        server.log()
    );
}

#[test]
fn sighup_names_in_one_line_the_settings_that_need_a_restart() {
    let dir = TempDir::new("restart");
    let conf = dir.path("turnserver.conf");
    write_conf(&conf, OLD_PASSWORD, "");
    let server = Server::start_args(&["-c", conf.to_str().expect("utf-8 path")]);
    let text = std::fs::read_to_string(&conf).expect("read config");
    let text = text.replace("listening-port=0", "listening-port=3479");
    std::fs::write(&conf, format!("{text}min-port=50000\nuser-quota=3\n")).expect("write");
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));
    let log = server.log();
    let restart: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("needs a restart"))
        .collect();
    assert_eq!(restart.len(), 1, "{log}");
    for named in ["listening-port (0 -> 3479)", "min-port (49152 -> 50000)"] {
        assert!(restart[0].contains(named), "{named} not in: {}", restart[0]);
    }
    assert!(!restart[0].contains("user-quota"), "{}", restart[0]);
    assert!(log.contains("reload: user-quota: 0 -> 3"), "{log}");
    assert!(
        log.contains("1 change(s) applied, 2 waiting for a restart"),
        "{log}"
    );
    // Still on the port it started with.
    let mut client = TurnClient::new(server.udp_addr(), "alice", OLD_PASSWORD);
    client.allocate().expect("allocate on the old port");
}
