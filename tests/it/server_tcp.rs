//! TURN over TCP and TLS against the real binary with coturn's `turnutils_uclient` (4 clients x
//! 100 messages each, none lost): channels over TCP (`-t`), over TLS (`-S -t`), and RFC 6062 TCP
//! relay allocations between clients (`-T`: Connect on one side, ConnectionAttempt and
//! ConnectionBind on the other).

use crate::support;

use support::tls::TestCert;
use support::uclient::{reported_error, run, tool, totals, Peer};
use support::{Server, PASSWORD, USER};

/// uclient picks a random TLS context per connection, among them TLS 1.0 (`ctx=1`) and TLS 1.1
/// (`ctx=2`), and retries with another when the handshake fails. tern offers TLS 1.2 and 1.3
/// only (docs/architecture.md, "Errors and safety"), so those attempts end in a
/// handshake-failure alert; any other error still fails the test.
const TLS10_PROBES: &[&str] = &[
    "tls_connect: cannot connect: rc=-1, ctx=1",
    "tls_connect: cannot connect: rc=-1, ctx=2",
    "errno=0, err=0, error:0A000410:SSL routines::sslv3 alert handshake failure",
];

const CLIENTS: u64 = 4;
const MESSAGES: u64 = 100;

/// Runs uclient (4 clients x 100 messages of 200 bytes) on `port` with `args` and checks that
/// every message came back and nothing but `expected` lines mention an error.
fn echo_all(server: &Server, port: u16, args: &[&str], expected: &[&str]) {
    let (Some(tool), Some(peer)) = (tool(), Peer::start()) else {
        return;
    };
    let (m, n) = (CLIENTS.to_string(), MESSAGES.to_string());
    let mut all = vec!["-u", USER, "-w", PASSWORD, "-m", &m, "-n", &n, "-l", "200"];
    all.extend_from_slice(args);
    let text = run(&tool, port, peer.port, &all);
    let fail = |why: &str| -> ! {
        panic!(
            "{why} (uclient {all:?}):\n{text}\nserver log:\n{}",
            server.log()
        )
    };
    let unexpected: String = text
        .lines()
        .filter(|l| !expected.iter().any(|e| l.contains(e)))
        .collect::<Vec<_>>()
        .join("\n");
    if reported_error(&unexpected) {
        fail("uclient reported an error");
    }
    let Some((sent, received)) = totals(&text) else {
        fail("no totals line");
    };
    if sent != CLIENTS * MESSAGES || received != sent {
        fail(&format!("sent {sent}, received {received}"));
    }
    if !text.contains("Total lost packets 0 ") {
        fail("lost packets");
    }
}

#[test]
fn uclient_over_tcp_loses_nothing() {
    let server = Server::start(&["--allow-loopback-peers"]);
    echo_all(&server, server.tcp_addr().port(), &["-t", "-c"], &[]);
}

#[test]
fn uclient_over_tls_loses_nothing() {
    let cert = TestCert::new("uclient");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    echo_all(
        &server,
        server.tls_addr().port(),
        &["-S", "-t", "-c"],
        TLS10_PROBES,
    );
}

#[test]
fn uclient_tcp_relay_allocations_lose_nothing() {
    let server = Server::start(&["--allow-loopback-peers"]);
    echo_all(&server, server.tcp_addr().port(), &["-T"], &[]);
}

#[test]
fn uclient_tcp_relay_over_tls_loses_nothing() {
    let cert = TestCert::new("uclient-6062");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    echo_all(
        &server,
        server.tls_addr().port(),
        &["-T", "-S"],
        TLS10_PROBES,
    );
}
