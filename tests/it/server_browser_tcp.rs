//! Headless Chromium through tern over TCP and TLS (RFC 8656 §3.1; what browsers behind UDP-
//! blocking firewalls use): a relay-only data channel through `turn:...?transport=tcp` and
//! through `turns:localhost:...?transport=tcp` with a test certificate, each reporting the relay
//! protocol of its chosen candidate; and with UDP to the TURN port dropped by the kernel, a
//! browser given both the UDP and the TLS URL still connects, over TLS.

use crate::support;

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::Value;
use support::browser::{run_page, Page};
use support::netns::{private_network, run};
use support::tls::TestCert;
use support::{binding_request, interop_tool, transaction_id, Server, PASSWORD, USER};

const MESSAGES: u32 = 20;

fn server(cert: &TestCert) -> Server {
    let [c, k] = cert.args();
    Server::start(&[
        &c,
        &k,
        "--tls-listening-port=0",
        "--relay-ip=127.0.0.1",
        "--allow-loopback-peers",
    ])
}

/// Runs the page with `urls` and checks every message echoed over a relay/relay pair whose local
/// candidate was allocated over `protocol`.
fn echoes_over(server: &Server, urls: &[String], protocol: &str, timeout_ms: u32) {
    let page = Page {
        urls,
        user: USER,
        pass: PASSWORD,
        messages: MESSAGES,
        timeout_ms,
    };
    let Some(result) = run_page(&page) else {
        return;
    };
    eprintln!("page result: {result}");
    let context = || format!("{result}\nserver log:\n{}", server.log());
    assert_eq!(result["echoes"], MESSAGES, "{}", context());
    let pair = &result["pair"];
    assert_eq!(pair["local"], "relay", "{}", context());
    assert_eq!(pair["remote"], "relay", "{}", context());
    assert_eq!(pair["relayProtocol"], protocol, "{}", context());
    let cands = result["candidates"].as_array().cloned().unwrap_or_default();
    assert!(
        cands
            .iter()
            .filter_map(Value::as_str)
            .all(|c| c.contains(" typ relay")),
        "{}",
        context()
    );
}

#[test]
fn data_channel_over_turn_tcp() {
    let cert = TestCert::new("browser-tcp");
    let server = server(&cert);
    let urls = vec![format!("turn:{}?transport=tcp", server.tcp_addr())];
    echoes_over(&server, &urls, "tcp", 30_000);
}

#[test]
fn data_channel_over_turns_tls() {
    let cert = TestCert::new("browser-tls");
    let server = server(&cert);
    let urls = vec![format!(
        "turns:localhost:{}?transport=tcp",
        server.tls_addr().port()
    )];
    echoes_over(&server, &urls, "tls", 30_000);
}

/// Prints the skip notice, or fails under `TERN_REQUIRE_INTEROP=1`.
fn skip(why: &str) {
    if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why} (TERN_REQUIRE_INTEROP=1)");
    }
    eprintln!("SKIP: {why}");
}

/// Drops every UDP datagram to `port` in the kernel, as a firewall that blocks UDP would: an
/// nftables rule, else iptables, else a tc ingress filter (whichever the machine has).
fn drop_udp_to(port: u16) -> Result<(), String> {
    let port = port.to_string();
    let rule = format!("udp dport {port} drop");
    let nft = || -> Result<(), String> {
        run("nft", &["add", "table", "inet", "tern_test"])?;
        run(
            "nft",
            &[
                "add",
                "chain",
                "inet",
                "tern_test",
                "input",
                "{ type filter hook input priority 0; }",
            ],
        )?;
        run("nft", &["add", "rule", "inet", "tern_test", "input", &rule])
    };
    let iptables = || {
        let args = ["-A", "INPUT", "-p", "udp", "--dport", &port, "-j", "DROP"];
        run("iptables", &args)
    };
    let tc = || -> Result<(), String> {
        run("tc", &["qdisc", "add", "dev", "lo", "ingress"])?;
        run(
            "tc",
            &[
                "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "ip", "prio", "1",
                "u32", "match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", &port,
                "0xffff", "action", "drop",
            ],
        )
    };
    let mut errors = Vec::new();
    for (tool, block) in [
        ("nft", &nft as &dyn Fn() -> Result<(), String>),
        ("iptables", &iptables),
        ("tc", &tc),
    ] {
        if !installed(tool) {
            continue;
        }
        match block() {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(e),
        }
    }
    Err(if errors.is_empty() {
        String::from("no firewall tool (nft, iptables or tc) is installed")
    } else {
        errors.join("; ")
    })
}

/// Whether `tool` is on PATH (without the interop skip notice).
fn installed(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

#[test]
fn udp_blocked_browser_fails_over_to_tls() {
    if interop_tool("chromium").is_none() {
        return;
    }
    if !installed("ip") {
        return skip("ip (iproute2) is needed for a private network namespace");
    }
    if let Err(why) = private_network("10.99.0.1/24") {
        return skip(&why);
    }
    let cert = TestCert::new("browser-failover");
    let server = server(&cert);
    if let Err(why) = drop_udp_to(server.udp_addr().port()) {
        return skip(&format!("cannot block UDP to the TURN port: {why}"));
    }
    // The block is real: a STUN Binding over UDP gets no answer.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    probe
        .send_to(
            &binding_request(&transaction_id(), false),
            server.udp_addr(),
        )
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        probe.recv_from(&mut buf).is_err(),
        "UDP to the TURN port still answered"
    );
    let urls = vec![
        format!("turn:{}?transport=udp", server.udp_addr()),
        format!("turns:localhost:{}?transport=tcp", server.tls_addr().port()),
    ];
    echoes_over(&server, &urls, "tls", 60_000);
}
