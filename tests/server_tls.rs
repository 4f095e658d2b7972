//! TURN over TLS (RFC 8656 §3.1) against the real binary: the handshake with a test certificate
//! and ALPN `stun.turn` (RFC 7443), plain TCP on the TLS port, start-up with a missing or
//! unreadable certificate, an allocation relaying over TLS, and a certificate reloaded by SIGUSR2
//! while that allocation keeps relaying.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use support::stream_client::{data_of, TurnStream, UDP};
use support::tls::{client_config, connect, server_cert, TestCert};
use support::{binding_request, mapped_address, read_stun, transaction_id, Server};
use tern::stun::Method;

fn tls_server(cert: &TestCert, extra: &[&str]) -> Server {
    let [c, k] = cert.args();
    let mut args = vec![
        c.as_str(),
        k.as_str(),
        "--tls-listening-port=0",
        "--allow-loopback-peers",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn binding_over_tls_with_alpn() {
    let cert = TestCert::new("alpn");
    let server = tls_server(&cert, &[]);
    let config = client_config(&cert.der, &[b"stun.turn"]);
    let mut tls = connect(server.tls_addr(), config)
        .unwrap_or_else(|e| panic!("handshake: {e}\n{}", server.log()));
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"stun.turn"[..]));
    assert_eq!(server_cert(&tls).as_ref(), Some(&cert.der));
    let tid = transaction_id();
    support::tls::send(&mut tls, &binding_request(&tid, true)).unwrap();
    let response = read_stun(&mut tls).unwrap();
    let local = tls.sock.local_addr().unwrap();
    assert_eq!(mapped_address(&response, &tid), local);
}

#[test]
fn tls_without_alpn_and_plain_tcp_share_the_tls_port() {
    let cert = TestCert::new("plain");
    let server = tls_server(&cert, &[]);
    let mut tls = connect(server.tls_addr(), client_config(&cert.der, &[])).unwrap();
    let tid = transaction_id();
    support::tls::send(&mut tls, &binding_request(&tid, false)).unwrap();
    mapped_address(&read_stun(&mut tls).unwrap(), &tid);

    let mut tcp = TcpStream::connect(server.tls_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let tid = transaction_id();
    std::io::Write::write_all(&mut tcp, &binding_request(&tid, false)).unwrap();
    let local = tcp.local_addr().unwrap();
    assert_eq!(mapped_address(&read_stun(&mut tcp).unwrap(), &tid), local);

    // TLS is detected on the plain listening port too (coturn does the same).
    let mut tls = connect(server.tcp_addr(), client_config(&cert.der, &[])).unwrap();
    let tid = transaction_id();
    support::tls::send(&mut tls, &binding_request(&tid, false)).unwrap();
    mapped_address(&read_stun(&mut tls).unwrap(), &tid);
}

#[test]
fn no_tcp_leaves_tls_only_on_the_tls_port() {
    let cert = TestCert::new("notcp");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--no-tcp"]);
    assert!(server.tcp.is_empty());
    let mut tcp = TcpStream::connect(server.tls_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut tcp, &binding_request(&transaction_id(), false)).unwrap();
    // Not TLS: the connection is closed without an answer.
    assert!(read_stun(&mut tcp).is_err());
    let mut tls = connect(server.tls_addr(), client_config(&cert.der, &[])).unwrap();
    let tid = transaction_id();
    support::tls::send(&mut tls, &binding_request(&tid, false)).unwrap();
    mapped_address(&read_stun(&mut tls).unwrap(), &tid);
}

#[test]
fn an_unreadable_configured_certificate_stops_start_up_and_says_what_to_set() {
    let missing =
        std::env::temp_dir().join(format!("tern-no-such-cert-{}.pem", std::process::id()));
    let out = Command::new(support::tern_bin())
        .args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--listening-port=0",
            "--tls-listening-port=0",
            "--no-auth",
            &format!("--cert={}", missing.display()),
            &format!("--pkey={}", missing.display()),
        ])
        .output()
        .expect("run tern");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "started without its certificate:\n{text}"
    );
    let path = missing.display().to_string();
    for needle in [path.as_str(), "cert", "pkey", "no-tls"] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn absent_default_certificate_runs_without_tls_and_says_so() {
    let server = Server::start(&["--tls-listening-port=0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.log().contains("TLS IS OFF") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log();
    assert!(log.contains("TLS IS OFF"), "{log}");
    assert!(log.contains("no-tls"), "{log}");
    assert!(!log.contains("listening on tls"), "{log}");
}

/// An allocation over TLS relays to a UDP peer before and after the certificate is replaced on
/// disk and SIGUSR2 is sent; a new connection sees the new certificate.
#[test]
fn sigusr2_reloads_the_certificate_without_dropping_allocations() {
    let mut cert = TestCert::new("reload");
    let server = tls_server(&cert, &[]);
    let old = cert.der.clone();
    let tls = connect(server.tls_addr(), client_config(&old, &[])).unwrap();
    let mut turn = TurnStream::new(tls);
    let relayed = turn
        .allocate(UDP)
        .unwrap()
        .unwrap_or_else(|code| panic!("allocate: {code}\n{}", server.log()));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let peer_addr = peer.local_addr().unwrap();
    turn.create_permission(peer_addr).unwrap().unwrap();
    let echo = |turn: &mut TurnStream<support::tls::TlsStream>, text: &[u8]| {
        turn.send_indication(peer_addr, text).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = peer.recv_from(&mut buf).expect("peer receives");
        assert_eq!(&buf[..n], text);
        assert_eq!(from, relayed);
        peer.send_to(&buf[..n], from).unwrap();
        let (from_peer, msg) = turn.indication(Method::DATA).unwrap();
        assert_eq!(from_peer, peer_addr);
        assert_eq!(data_of(&msg), text);
    };
    echo(&mut turn, b"before the reload");

    let new = cert.rotate();
    assert_ne!(new, old);
    server.signal(libc::SIGUSR2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let fresh: SocketAddr = server.tls_addr();
    loop {
        // A client trusting only the new certificate fails until the reload is done.
        let seen = connect(fresh, client_config(&new, &[]))
            .ok()
            .and_then(|t| server_cert(&t));
        if seen.as_ref() == Some(&new) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new connections still get the old certificate\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.log().contains("reloaded"), "{}", server.log());
    echo(&mut turn, b"after the reload");
}
