//! TURN over TCP and TLS against the real binary with coturn's `turnutils_uclient` (4 clients x
//! 100 messages each, none lost): channels over TCP (`-t`), over TLS (`-S -t`), and RFC 6062 TCP
//! relay allocations between clients (`-T`: Connect on one side, ConnectionAttempt and
//! ConnectionBind on the other).

mod support;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::tls::TestCert;
use support::uclient::{echo_all, echo_all_except};
use support::{interop_tool, Server};

/// uclient picks a random TLS context per connection, among them TLS 1.0 (`ctx=1`) and TLS 1.1
/// (`ctx=2`), and retries with another when the handshake fails. tern offers TLS 1.2 and 1.3
/// only (design.md, safety defaults), so those attempts end in a handshake-failure alert; any
/// other error still fails the test.
const TLS10_PROBES: &[&str] = &[
    "tls_connect: cannot connect: rc=-1, ctx=1",
    "tls_connect: cannot connect: rc=-1, ctx=2",
    "errno=0, err=0, error:0A000410:SSL routines::sslv3 alert handshake failure",
];

/// `turnutils_peer` on a free loopback port, killed by PID on drop.
struct UdpPeer {
    child: Child,
    port: u16,
}

impl UdpPeer {
    fn start() -> Option<UdpPeer> {
        let tool = interop_tool("turnutils_peer")?;
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(tool)
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnutils_peer");
        std::thread::sleep(Duration::from_millis(300));
        Some(UdpPeer { child, port })
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn uclient_over_tcp_loses_nothing() {
    let Some(peer) = UdpPeer::start() else { return };
    let server = Server::start(&["--allow-loopback-peers"]);
    let peer_port = peer.port.to_string();
    let args = ["-t", "-c", "-l", "200", "-e", "127.0.0.1", "-r", &peer_port];
    echo_all(&server, server.tcp_addr().port(), &args, 4, 100);
}

#[test]
fn uclient_over_tls_loses_nothing() {
    let Some(peer) = UdpPeer::start() else { return };
    let cert = TestCert::new("uclient");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    let peer_port = peer.port.to_string();
    let args = [
        "-S",
        "-t",
        "-c",
        "-l",
        "200",
        "-e",
        "127.0.0.1",
        "-r",
        &peer_port,
    ];
    echo_all_except(
        &server,
        server.tls_addr().port(),
        &args,
        4,
        100,
        TLS10_PROBES,
    );
}

#[test]
fn uclient_tcp_relay_allocations_lose_nothing() {
    let server = Server::start(&["--allow-loopback-peers"]);
    echo_all(
        &server,
        server.tcp_addr().port(),
        &["-T", "-l", "200"],
        4,
        100,
    );
}

#[test]
fn uclient_tcp_relay_over_tls_loses_nothing() {
    let cert = TestCert::new("uclient-6062");
    let [c, k] = cert.args();
    let server = Server::start(&[&c, &k, "--tls-listening-port=0", "--allow-loopback-peers"]);
    let args = ["-T", "-S", "-l", "200"];
    echo_all_except(
        &server,
        server.tls_addr().port(),
        &args,
        4,
        100,
        TLS10_PROBES,
    );
}
