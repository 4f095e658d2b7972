//! `tern probe` (issue 21) against the real binary: every check passes on a healthy tern over
//! udp, tcp and turns; `no-auth`, loopback and RFC 1918 peers fail their checks; unusable
//! command lines exit 2 and unreachable servers 1 with a clear line; `--json` carries the same
//! verdicts; and against coturn's `turnserver` the checks pass where it behaves while its
//! relaying to 169.254.169.254 fails.
// Deadlines for real processes need the real clock.
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::tls::TestCert;
use support::{interop_tool, output_within, Server, TempDir, PASSWORD, USER};

/// Relay addresses on 127.0.0.2, admitted as peers, so two allocations of the server reach each
/// other while 127.0.0.1 stays a loopback peer the server must refuse; and on ::1, so the probe
/// can ask for `::ffff:127.0.0.1` on an IPv6 allocation, where the mapped form is a real bypass
/// attempt rather than a family mismatch.
const RELAY: [&str; 4] = [
    "--relay-ip=127.0.0.2",
    "--allowed-peer-ip=127.0.0.2",
    "--relay-ip=::1",
    "--allowed-peer-ip=::1",
];

fn probe(args: &[&str]) -> Output {
    output_within(
        Command::new(support::tern_bin()).arg("probe").args(args),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The report lines of `url`'s block: `(mark, name, detail)`.
fn lines<'a>(out: &'a str, url: &str) -> Vec<(&'a str, &'a str, &'a str)> {
    let header = format!("{url} (");
    out.lines()
        .skip_while(|l| !l.starts_with(&header))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let l = l.trim_start();
            let (mark, rest) = l.split_once("  ")?;
            let name = rest.get(..22)?.trim_end();
            Some((mark, name, rest.get(23..).unwrap_or("")))
        })
        .collect()
}

/// The mark of check `name` in `url`'s block; panics with the output when absent.
fn mark<'a>(out: &'a str, url: &str, name: &str) -> &'a str {
    lines(out, url)
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .map(|(m, _, _)| m)
        .unwrap_or_else(|| panic!("no {name:?} line for {url}:\n{out}"))
}

fn udp_url(server: &Server) -> String {
    format!("turn:{}", server.udp_addr())
}

fn tcp_url(server: &Server) -> String {
    format!("turn:{}?transport=tcp", server.tcp_addr())
}

fn creds() -> [&'static str; 4] {
    ["-u", USER, "-p", PASSWORD]
}

/// The checks every healthy TURN URL reports, in order.
const TURN_CHECKS: [&str; 9] = [
    "binding",
    "allocate",
    "peer 127.0.0.1",
    "peer 169.254.169.254",
    "peer 10.0.0.1",
    "peer ::ffff:127.0.0.1",
    "relay",
    "no open relay",
    "wrong password",
];

fn assert_all_pass(out: &str, url: &str, tls: bool) {
    let got = lines(out, url);
    let mut want: Vec<&str> = Vec::new();
    if tls {
        want.extend(["tls", "certificate", "expiry", "trusted"]);
    }
    want.extend(TURN_CHECKS);
    let names: Vec<&str> = got.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(names, want, "{url}:\n{out}");
    for (mark, name, detail) in got {
        assert_eq!(mark, "PASS", "{url}: {name}: {detail}\n{out}");
    }
}

/// tern with `cert` on a TLS listener too, relaying on [`RELAY`].
fn tls_tern(cert: &TestCert) -> Server {
    let [c, k] = cert.args();
    let mut args = vec![c.as_str(), k.as_str(), "--tls-listening-port=0"];
    args.extend(RELAY);
    Server::start(&args)
}

#[test]
fn a_healthy_tern_passes_every_check_over_udp_tcp_and_turns() {
    let cert = TestCert::new("probe");
    let server = tls_tern(&cert);
    let (udp, tcp) = (udp_url(&server), tcp_url(&server));
    let turns = format!("turns:localhost:{}", server.tls_addr().port());
    let stun = format!("stun:{}", server.udp_addr());
    let stuns = format!("stuns:localhost:{}", server.tls_addr().port());
    let ca = cert.cert.display().to_string();
    let out = probe(&[
        &udp, &tcp, &turns, &stun, &stuns, "--ca", &ca, "-u", USER, "-p", PASSWORD,
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_all_pass(&all, &udp, false);
    assert_all_pass(&all, &tcp, false);
    assert_all_pass(&all, &turns, true);
    assert_eq!(lines(&all, &stun).len(), 1, "{all}");
    assert_eq!(mark(&all, &stun, "binding"), "PASS");
    let over_tls: Vec<(&str, &str)> = lines(&all, &stuns)
        .into_iter()
        .map(|(m, n, _)| (m, n))
        .collect();
    assert_eq!(
        over_tls,
        [
            ("PASS", "tls"),
            ("PASS", "certificate"),
            ("PASS", "expiry"),
            ("PASS", "trusted"),
            ("PASS", "binding")
        ],
        "{all}"
    );
    for want in [
        "relayed address 127.0.0.2:",
        "(loopback), lifetime 600 s",
        "on an IPv6 allocation (relayed address [::1]:",
        "): refused: 403 Forbidden",
        "50/50 datagrams back through both relays, loss 0.0%, rtt p50 ",
        "refused: 403 Forbidden",
        "an Allocate without credentials is refused: 401 Unauthorized",
        "ALPN stun.turn",
        "names localhost, 127.0.0.1",
        "chain and name verified",
    ] {
        assert!(all.contains(want), "{want:?} missing:\n{all}");
    }
    assert!(all.contains("TLSv1.3") || all.contains("TLSv1.2"), "{all}");
}

#[test]
fn a_self_signed_certificate_stops_the_probe_unless_insecure() {
    let cert = TestCert::new("probe-untrusted");
    let server = tls_tern(&cert);
    let turns = format!("turns:localhost:{}", server.tls_addr().port());
    let out = probe(&[&turns, "-u", USER, "-p", PASSWORD]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(mark(&all, &turns, "trusted"), "FAIL");
    assert!(all.contains("not issued by a trusted CA"), "{all}");
    assert!(all.contains("--insecure to probe anyway"), "{all}");
    assert!(
        !all.contains("binding"),
        "no request over an untrusted channel:\n{all}"
    );

    let out = probe(&[&turns, "--insecure", "-u", USER, "-p", PASSWORD, "-n", "5"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(mark(&all, &turns, "trusted"), "WARN");
    assert!(all.contains("(accepted: --insecure)"), "{all}");
    assert_eq!(mark(&all, &turns, "relay"), "PASS");
}

#[test]
fn rest_credentials_come_from_the_secret() {
    let server = Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--use-auth-secret",
        "--static-auth-secret=probe-secret",
        "--realm=tern.test",
        RELAY[0],
        RELAY[1],
        RELAY[2],
        RELAY[3],
    ]);
    let udp = udp_url(&server);
    let out = probe(&[&udp, "--secret", "probe-secret", "-u", "alice", "-n", "5"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_all_pass(&all, &udp, false);

    let out = probe(&[&udp, "--secret", "another-secret"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(mark(&all, &udp, "allocate"), "FAIL");
    assert!(all.contains("refused: 401 Unauthorized (check --user/--password or --secret)"));
}

#[test]
fn no_auth_fails_the_open_relay_check() {
    let server = Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--no-auth",
        RELAY[0],
        RELAY[1],
        RELAY[2],
        RELAY[3],
    ]);
    let udp = udp_url(&server);
    let out = probe(&[&udp, "-n", "5"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(mark(&all, &udp, "no open relay"), "FAIL");
    assert!(
        all.contains("OPEN RELAY: an Allocate without credentials got relayed address 127.0.0.2:"),
        "{all}"
    );
    // Everything else still works: the failure is the open relay alone.
    for name in ["binding", "allocate", "peer 127.0.0.1", "relay"] {
        assert_eq!(mark(&all, &udp, name), "PASS", "{name}\n{all}");
    }
}

#[test]
fn admitted_loopback_and_private_peers_fail_their_checks() {
    let server = Server::start(&[
        "--allow-loopback-peers",
        "--allowed-peer-ip=10.0.0.0/8",
        "--relay-ip=127.0.0.2",
        "--relay-ip=::1",
    ]);
    let (udp, tcp) = (udp_url(&server), tcp_url(&server));
    let c = creds();
    let out = probe(&[&udp, &tcp, c[0], c[1], c[2], c[3], "-n", "5"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for url in [&udp, &tcp] {
        assert_eq!(mark(&all, url, "peer 127.0.0.1"), "FAIL", "{all}");
        assert_eq!(mark(&all, url, "peer 10.0.0.1"), "FAIL", "{all}");
        assert_eq!(mark(&all, url, "peer ::ffff:127.0.0.1"), "FAIL", "{all}");
        assert_eq!(mark(&all, url, "peer 169.254.169.254"), "PASS", "{all}");
        assert_eq!(mark(&all, url, "no open relay"), "PASS", "{all}");
    }
    assert!(
        all.contains("permission granted: the server relays to 127.0.0.1"),
        "{all}"
    );
}

#[test]
fn json_carries_the_same_verdicts() {
    let server = Server::start(&[
        "--allowed-peer-ip=10.0.0.0/8",
        RELAY[0],
        RELAY[1],
        RELAY[2],
        RELAY[3],
    ]);
    let udp = udp_url(&server);
    let c = creds();
    let table = probe(&[&udp, c[0], c[1], c[2], c[3], "-n", "5"]);
    let json = probe(&[&udp, c[0], c[1], c[2], c[3], "-n", "5", "--json"]);
    assert_eq!(table.status.code(), Some(1));
    assert_eq!(json.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["pass"], Value::Bool(false));
    let u = &doc["urls"][0];
    assert_eq!(u["url"], Value::String(udp.clone()));
    assert_eq!(u["transport"], "udp");
    assert_eq!(u["server"], Value::String(server.udp_addr().to_string()));
    let from_json: Vec<(String, String)> = u["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["result"].as_str().unwrap_or("").to_ascii_uppercase(),
            )
        })
        .collect();
    let all = text(&table);
    let from_table: Vec<(String, String)> = lines(&all, &udp)
        .into_iter()
        .map(|(m, n, _)| (n.to_owned(), m.to_owned()))
        .collect();
    assert_eq!(from_json, from_table);
    assert!(from_table.contains(&("peer 10.0.0.1".into(), "FAIL".into())));
    assert_eq!(u["relay"]["sent"], 5);
    assert_eq!(u["relay"]["received"], 5);
    assert_eq!(u["allocation"]["relayed_kind"], "loopback");
    assert_eq!(u["allocation"]["lifetime"], 600);
    assert_eq!(u["peers"]["169.254.169.254"]["refused"], 403);
    assert!(u["binding"]["mapped"]
        .as_str()
        .is_some_and(|m| m.starts_with("127.0.0.1:")));
}

#[test]
fn unusable_command_lines_exit_2() {
    for (args, want) in [
        (
            &["turn://example.org"][..],
            "malformed URL \"turn://example.org\"",
        ),
        (&["http:example.org"], "the scheme must be"),
        (&["turn:[::1"], "closing ]"),
        (&["turn:::1"], "brackets"),
        (&["turn:example.org:70000"], "port"),
        (
            &["turn:example.org?transport=sctp"],
            "?transport=udp or ?transport=tcp",
        ),
        (&[], "give at least one"),
        (&["turn:example.org", "-p", "x"], "--password needs --user"),
        (
            &["turn:example.org", "-u", "a", "-p", "x", "-s", "y"],
            "not both",
        ),
        (&["turn:example.org", "--count", "0"], "--count"),
        (&["turn:example.org", "--bogus"], "unknown option --bogus"),
    ] {
        let out = probe(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_prints_the_usage() {
    let out = probe(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&out.stdout);
    assert!(usage.starts_with("Usage: tern probe URL..."), "{usage}");
}

#[test]
fn unreachable_servers_fail_with_a_clear_line() {
    // A UDP socket that never answers, a TCP port nobody listens on, a name that cannot resolve.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("turn:{}", silent.local_addr().expect("addr"));
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let closed_url = format!("turn:{closed}?transport=tcp");
    let nowhere = "turn:no-such-host.invalid";
    let t0 = Instant::now();
    let out = probe(&[&silent_url, &closed_url, nowhere, "--timeout", "0.5"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(all.contains("Binding: no answer within 0.5 s"), "{all}");
    assert!(
        all.contains(&format!("cannot reach {closed} over tcp: ")),
        "{all}"
    );
    assert!(all.contains("cannot resolve no-such-host.invalid"), "{all}");
    for url in [silent_url.as_str(), &closed_url, nowhere] {
        assert_eq!(mark(&all, url, "stopped"), "FAIL", "{all}");
    }
    assert!(!all.contains("panicked"), "{all}");
}

/// coturn's `turnserver` from a configuration file in a temporary directory, on free ports;
/// killed by PID on drop.
struct Coturn {
    child: Child,
    udp: SocketAddr,
    tls: SocketAddr,
    dir: TempDir,
}

impl Coturn {
    /// None (with the SKIP notice) when turnserver is not installed.
    fn start(cert: &TestCert) -> Option<Coturn> {
        let tool = interop_tool("turnserver")?;
        let dir = TempDir::new("probe-coturn");
        let (port, tls_port) = free_ports();
        // Relays on 127.0.0.2 reach each other with allow-loopback-peers; 127.0.0.1 is denied
        // so the loopback check judges coturn's filter, not this test's need for a relay.
        let conf = format!(
            "listening-ip=127.0.0.1\nlistening-port={port}\ntls-listening-port={tls_port}\n\
             relay-ip=127.0.0.2\nrelay-ip=::1\nmin-port=47000\nmax-port=47999\nlt-cred-mech\n\
             user={USER}:{PASSWORD}\nrealm=tern.test\ncert={}\npkey={}\nno-dtls\nno-cli\n\
             allow-loopback-peers\ndenied-peer-ip=127.0.0.1\nsimple-log\nlog-file={}\n\
             pidfile={}\n",
            cert.cert.display(),
            cert.key.display(),
            dir.path("turn.log").display(),
            dir.path("pid").display(),
        );
        let path = dir.path("turnserver.conf");
        std::fs::write(&path, conf).expect("write turnserver.conf");
        let child = Command::new(tool)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnserver");
        let c = Coturn {
            child,
            udp: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: SocketAddr::from(([127, 0, 0, 1], tls_port)),
            dir,
        };
        c.wait_ready();
        Some(c)
    }

    /// Until the TLS port accepts (it opens after UDP and TCP).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.tls).is_err() {
            assert!(
                Instant::now() < deadline,
                "turnserver did not start; log:\n{}",
                std::fs::read_to_string(self.dir.path("turn.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two distinct ports free for both UDP and TCP on 127.0.0.1 right now (each held until both
/// are chosen, so the second cannot be the first again).
fn free_ports() -> (u16, u16) {
    let hold = || loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (port, udp, tcp);
        }
    };
    let (first, _udp, _tcp) = hold();
    (first, hold().0)
}

#[test]
fn coturn_passes_where_it_behaves_and_fails_on_the_metadata_peer() {
    let cert = TestCert::new("probe-coturn");
    let Some(coturn) = Coturn::start(&cert) else {
        return;
    };
    let udp = format!("turn:{}", coturn.udp);
    let tcp = format!("turn:{}?transport=tcp", coturn.udp);
    let turns = format!("turns:localhost:{}", coturn.tls.port());
    let ca = cert.cert.display().to_string();
    let c = creds();
    let out = probe(&[
        &udp, &tcp, &turns, "--ca", &ca, c[0], c[1], c[2], c[3], "-n", "10",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for url in [&udp, &tcp, &turns] {
        for name in [
            "binding",
            "allocate",
            "peer 127.0.0.1",
            "relay",
            "no open relay",
            "wrong password",
        ] {
            assert_eq!(mark(&all, url, name), "PASS", "{url} {name}:\n{all}");
        }
        // coturn 4.6.1 has no default filter for link-local or RFC 1918 peers: a permission
        // for the cloud metadata address is granted.
        assert_eq!(mark(&all, url, "peer 169.254.169.254"), "FAIL", "{all}");
        assert_eq!(mark(&all, url, "peer 10.0.0.1"), "FAIL", "{all}");
        // Nor does it see 127.0.0.1 in its IPv4-mapped form on an IPv6 allocation: the
        // denied-peer-ip line (and, without allow-loopback-peers, its loopback rule) misses it.
        assert_eq!(mark(&all, url, "peer ::ffff:127.0.0.1"), "FAIL", "{all}");
    }
    assert!(
        all.contains("on an IPv6 allocation (relayed address [::1]:"),
        "{all}"
    );
    assert!(
        all.contains("permission granted: the server relays to 169.254.169.254"),
        "{all}"
    );
    for name in ["tls", "certificate", "expiry", "trusted"] {
        assert_eq!(mark(&all, &turns, name), "PASS", "{name}:\n{all}");
    }
    assert!(all.contains("ALPN stun.turn"), "{all}");
}
