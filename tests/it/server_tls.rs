//! TURN over TLS (RFC 8656 §3.1) against the real binary: the handshake with a test certificate
//! and ALPN `stun.turn` (RFC 7443), plain TCP on the TLS port, start-up with a missing or
//! unreadable certificate, an allocation relaying over TLS, and a certificate reloaded by SIGUSR2
//! while that allocation keeps relaying; ALPN offers tern does not know (`http/1.1`, `h2`), and
//! client certificates required by `CA-file` (rustls clients and `openssl s_client`).
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use support::stream_client::{data_of, TurnStream, UDP};
use support::tls::{
    client_config, client_config_as, connect, self_signed_client, server_cert, ClientCert, TestCa,
    TestCert, TlsStream,
};
use support::{binding_request, mapped_address, read_stun, transaction_id, Server, TempDir};
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

/// Sends `text` in a Send indication to `peer`, which must receive it from `relayed` and echo
/// it back in a Data indication. The permission must exist.
fn echo_through(
    turn: &mut TurnStream<TlsStream>,
    peer: &UdpSocket,
    relayed: SocketAddr,
    text: &[u8],
) {
    let peer_addr = peer.local_addr().unwrap();
    turn.send_indication(peer_addr, text).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = peer.recv_from(&mut buf).expect("peer receives");
    assert_eq!(&buf[..n], text);
    assert_eq!(from, relayed);
    peer.send_to(&buf[..n], from).unwrap();
    let (from_peer, msg) = turn.indication(Method::DATA).unwrap();
    assert_eq!(from_peer, peer_addr);
    assert_eq!(data_of(&msg), text);
}

/// `no-udp` and `no-tcp` with a certificate: TLS alone, as behind a firewall that lets only
/// 443 through. Nothing listens on the plain port; allocations over TLS relay.
#[test]
fn tls_alone_serves_turn_without_udp_or_tcp_listeners() {
    let cert = TestCert::new("tlsonly");
    let server = tls_server(&cert, &["--no-udp", "--no-tcp"]);
    let log = server.log();
    assert!(server.udp.is_empty() && server.tcp.is_empty(), "{log}");
    assert!(
        !log.contains("listening on udp") && !log.contains("listening on tcp"),
        "{log}"
    );
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let tls = connect(server.tls_addr(), client_config(&cert.der, &[b"stun.turn"]))
        .unwrap_or_else(|e| panic!("handshake: {e}\n{}", server.log()));
    let mut turn = TurnStream::new(tls);
    let relayed = match turn.allocate(UDP) {
        Ok(Ok(relayed)) => relayed,
        other => panic!("allocate: {other:?}\n{}", server.log()),
    };
    turn.create_permission(peer.local_addr().unwrap())
        .unwrap()
        .unwrap();
    echo_through(&mut turn, &peer, relayed, b"over TLS alone");
}

/// TLS alone needs a certificate: without one, nothing is left to listen on and tern says so.
#[test]
fn no_udp_no_tcp_without_a_certificate_does_not_start() {
    let out = Command::new(support::tern_bin())
        .args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--listening-port=0",
            "--tls-listening-port=0",
            "--no-auth",
            "--no-udp",
            "--no-tcp",
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run tern");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "started with nothing to listen on:\n{text}"
    );
    assert!(text.contains("nothing to listen on"), "{text}");
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
    turn.create_permission(peer.local_addr().unwrap())
        .unwrap()
        .unwrap();
    let echo = |turn: &mut TurnStream<TlsStream>, text: &[u8]| {
        echo_through(turn, &peer, relayed, text);
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
    // The log line follows the swap: a client may see the new certificate a moment before.
    assert!(
        server
            .wait_for_log("reloaded", Duration::from_secs(5))
            .is_some(),
        "{}",
        server.log()
    );
    echo(&mut turn, b"after the reload");
}

/// A client offering only ALPN names tern does not know (as browsers' proxies and clients on
/// port 443 do) completes the handshake with no protocol selected, and allocates over it.
#[test]
fn unknown_alpn_offers_complete_the_handshake_without_a_protocol() {
    let cert = TestCert::new("alpn-unknown");
    let server = tls_server(&cert, &[]);
    let config = client_config(&cert.der, &[b"http/1.1"]);
    let tls = connect(server.tls_addr(), config)
        .unwrap_or_else(|e| panic!("handshake: {e}\n{}", server.log()));
    assert_eq!(tls.conn.alpn_protocol(), None);
    let mut turn = TurnStream::new(tls);
    let relayed = turn.allocate(UDP).unwrap();
    assert!(relayed.is_ok(), "allocate: {relayed:?}\n{}", server.log());

    // Offered beside an unknown name, tern's own is still selected.
    let config = client_config(&cert.der, &[b"h2", b"stun.nat-discovery"]);
    let tls = connect(server.tls_addr(), config).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"stun.nat-discovery"[..]));
}

/// What `openssl s_client` printed, and whether a STUN Binding sent through it was answered.
struct SClient {
    text: String,
    answered: bool,
}

/// `openssl s_client` against `addr` with `args`, sending a Binding request once connected; it
/// runs until the answer comes back or `wait` passes, then is killed.
fn s_client(addr: SocketAddr, args: &[&str], wait: Duration) -> Option<SClient> {
    let openssl = support::interop_tool("openssl")?;
    let connect = addr.to_string();
    let mut child = Command::new(openssl)
        .args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args(["-nocommands", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    let collected = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let collected = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
            }
        })
    })
    .collect();
    let tid = transaction_id();
    if let Some(stdin) = child.stdin.as_mut() {
        // s_client sends stdin once the handshake is done; a refused handshake closes the pipe.
        let _ = stdin.write_all(&binding_request(&tid, false));
        let _ = stdin.flush();
    }
    let deadline = Instant::now() + wait;
    let has_answer = |bytes: &[u8]| bytes.windows(tid.len()).any(|w| w == &tid[..]);
    while Instant::now() < deadline && !has_answer(&collected.lock().unwrap()) {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    for reader in readers {
        let _ = reader.join();
    }
    let bytes = collected.lock().unwrap().clone();
    Some(SClient {
        answered: has_answer(&bytes),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[test]
fn openssl_alpn_offers() {
    let cert = TestCert::new("alpn-openssl");
    let server = tls_server(&cert, &[]);
    let wait = Duration::from_secs(10);
    for (offer, expect) in [
        ("http/1.1", "No ALPN negotiated"),
        ("h2,http/1.1", "No ALPN negotiated"),
        ("stun.turn", "ALPN protocol: stun.turn"),
        ("h2,stun.turn", "ALPN protocol: stun.turn"),
    ] {
        let Some(out) = s_client(server.tls_addr(), &["-alpn", offer], wait) else {
            return;
        };
        assert!(
            out.text.contains(expect),
            "-alpn {offer}: {expect:?} missing:\n{}\n{}",
            out.text,
            server.log()
        );
        assert!(
            out.answered,
            "-alpn {offer}: no Binding answer:\n{}",
            out.text
        );
    }
}

/// A TLS server requiring client certificates from `ca`, as an open relay otherwise: the
/// certificate is the only thing that admits.
fn ca_server(cert: &TestCert, ca: &TestCa, extra: &[&str]) -> Server {
    let [c, k] = cert.args();
    let ca = ca.arg();
    let mut args = vec![
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--tls-listening-port=0",
        "--no-auth",
        "--allow-loopback-peers",
        &c,
        &k,
        &ca,
    ];
    args.extend_from_slice(extra);
    Server::start_args(&args)
}

/// Ok when a TLS client with `config` is refused: the handshake fails, or, in TLS 1.3 (where the
/// server checks the client's certificate after the client has finished), its first request
/// gets a fatal alert instead of an answer. Err says what it got instead.
fn refused(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<String, String> {
    let mut tls = match connect(addr, config) {
        Err(e) => return Ok(e.to_string()),
        Ok(tls) => tls,
    };
    let tid = transaction_id();
    if let Err(e) = support::tls::send(&mut tls, &binding_request(&tid, false)) {
        return Ok(e.to_string());
    }
    match read_stun(&mut tls) {
        Err(e) => Ok(e.to_string()),
        Ok(m) => Err(format!("answered: {m:02x?}")),
    }
}

fn allocates(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<SocketAddr, String> {
    let tls = connect(addr, config).map_err(|e| format!("handshake: {e}"))?;
    let mut turn = TurnStream::new(tls);
    match turn.allocate(UDP) {
        Ok(Ok(relayed)) => Ok(relayed),
        other => Err(format!("allocate: {other:?}")),
    }
}

/// The value of `tern_drops_total{reason="client_certificate"}`, waiting until it reaches `n`.
fn certificate_drops(metrics: SocketAddr, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(metrics).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let seen = body
            .lines()
            .find_map(|l| l.strip_prefix("tern_drops_total{reason=\"client_certificate\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if seen >= n || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With `CA-file` and `no-auth`, a client whose certificate the CA issued allocates; one without
/// a certificate and one with a self-signed certificate are refused at the handshake, counted
/// and logged.
#[test]
fn ca_file_admits_only_clients_with_a_certificate_it_issued() {
    let cert = TestCert::new("ca-server");
    let ca = TestCa::new("admits");
    let server = ca_server(
        &cert,
        &ca,
        &[
            "--prometheus",
            "--prometheus-port=0",
            "--prometheus-address=127.0.0.1",
        ],
    );
    let addr = server.tls_addr();
    let issued = ca.client("alice");
    let relayed = allocates(addr, client_config_as(&cert.der, &[], Some(&issued)))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(relayed.port() != 0);

    let outsider = self_signed_client(&ca.dir, "mallory");
    for (who, config) in [
        ("no certificate", client_config(&cert.der, &[])),
        (
            "self-signed",
            client_config_as(&cert.der, &[], Some(&outsider)),
        ),
    ] {
        let why = refused(addr, config).unwrap_or_else(|e| panic!("{who}: {e}"));
        assert!(why.contains("alert"), "{who}: not refused by TLS: {why}");
    }
    let line = server
        .wait_for_log("metrics on http://", Duration::from_secs(10))
        .expect("metrics line");
    let url = line.split("metrics on http://").nth(1).unwrap();
    let metrics: SocketAddr = url.split('/').next().unwrap().parse().unwrap();
    assert_eq!(certificate_drops(metrics, 2), 2, "{}", server.log());
    let log = server.log();
    assert!(log.contains("refused (CA-file)"), "{log}");
    // The refused clients were never served: the one allocation is the certified client's.
    assert!(allocates(addr, client_config_as(&cert.der, &[], Some(&issued))).is_ok());
}

/// `openssl s_client` presenting a certificate the CA issued is answered; without one, or with
/// a self-signed one, it is refused, over TLS 1.3 and over TLS 1.2.
#[test]
fn ca_file_with_openssl_s_client() {
    let cert = TestCert::new("ca-openssl");
    let ca = TestCa::new("openssl");
    let server = ca_server(&cert, &ca, &[]);
    let issued = ca.client("bob");
    let outsider = self_signed_client(&ca.dir, "eve");
    let files = |c: &ClientCert| {
        [
            c.cert_pem.display().to_string(),
            c.key_pem.display().to_string(),
        ]
    };
    let [ic, ik] = files(&issued);
    let [oc, ok] = files(&outsider);
    let wait = Duration::from_secs(5);
    for version in ["-tls1_3", "-tls1_2"] {
        let Some(out) = s_client(
            server.tls_addr(),
            &[version, "-cert", &ic, "-key", &ik],
            Duration::from_secs(10),
        ) else {
            return;
        };
        assert!(
            out.answered,
            "{version} with the issued certificate:\n{}\n{}",
            out.text,
            server.log()
        );
        let out = s_client(server.tls_addr(), &[version], wait).unwrap();
        assert!(
            !out.answered,
            "{version} without a certificate:\n{}",
            out.text
        );
        assert!(
            out.text.contains("alert"),
            "{version} without a certificate:\n{}",
            out.text
        );
        let out = s_client(
            server.tls_addr(),
            &[version, "-cert", &oc, "-key", &ok],
            wait,
        )
        .unwrap();
        assert!(!out.answered, "{version} self-signed:\n{}", out.text);
        assert!(
            out.text.contains("alert"),
            "{version} self-signed:\n{}",
            out.text
        );
    }
}

/// SIGUSR2 reads `CA-file` again with the certificate: clients of the new CA are admitted,
/// clients of the old one refused.
#[test]
fn a_reload_rereads_the_ca_file() {
    let cert = TestCert::new("ca-reload");
    let (old, new) = (TestCa::new("old"), TestCa::new("new"));
    let served = TempDir::new("ca-reload-file");
    let file = served.path("ca.pem");
    std::fs::copy(&old.file, &file).unwrap();
    let ca_arg = format!("--CA-file={}", file.display());
    let [c, k] = cert.args();
    let server = Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--tls-listening-port=0",
        "--no-auth",
        &c,
        &k,
        &ca_arg,
    ]);
    let addr = server.tls_addr();
    let (old_client, new_client) = (old.client("old"), new.client("new"));
    let old_config = client_config_as(&cert.der, &[], Some(&old_client));
    let new_config = client_config_as(&cert.der, &[], Some(&new_client));
    allocates(addr, old_config.clone()).unwrap();
    refused(addr, new_config.clone()).unwrap();

    std::fs::copy(&new.file, &file).unwrap();
    server.signal(libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while allocates(addr, new_config.clone()).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new CA is not used\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    refused(addr, old_config).unwrap();
}

/// A `CA-file` that cannot be read, or holds no certificate, stops start-up and check-config at
/// its line: TLS must not open to clients without a certificate.
#[test]
fn a_bad_ca_file_stops_start_up_at_its_line() {
    let cert = TestCert::new("ca-bad");
    let dir = TempDir::new("ca-bad-conf");
    let empty = dir.path("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let missing = dir.path("missing.pem");
    for (ca, needle) in [(&missing, "cannot read"), (&empty, "no CERTIFICATE")] {
        let conf = dir.path("turnserver.conf");
        let text = format!(
            "listening-ip=127.0.0.1\nlistening-port=0\ntls-listening-port=0\nno-auth\n\
             cert={}\npkey={}\nCA-file={}\n",
            cert.cert.display(),
            cert.key.display(),
            ca.display()
        );
        std::fs::write(&conf, text).unwrap();
        let at = format!("{}:7: CA-file: ", conf.display());
        let conf_arg = conf.display().to_string();
        let run = support::output_within(
            Command::new(support::tern_bin()).args(["-c", &conf_arg]),
            Duration::from_secs(10),
        )
        .expect("tern exits");
        let check = support::output_within(
            Command::new(support::tern_bin()).args(["check-config", &conf_arg]),
            Duration::from_secs(10),
        )
        .expect("check-config exits");
        for (what, out) in [("start-up", run), ("check-config", check)] {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(
                !out.status.success(),
                "{what} accepted {}:\n{text}",
                ca.display()
            );
            assert!(text.contains(&at), "{what}: {at:?} missing:\n{text}");
            assert!(text.contains(needle), "{what}: {needle:?} missing:\n{text}");
        }
    }
}
