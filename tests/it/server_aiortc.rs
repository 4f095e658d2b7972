//! aiortc through tern: a relay-only data channel between two RTCPeerConnections (a WebRTC stack
//! independent of Chromium's) over `turn:...?transport=udp`, `?transport=tcp` and
//! `turns:...?transport=tcp`, and no relayed connection with a wrong password.
//!
//! Each test runs in its own network namespace with a veth address from the documentation range
//! (192.0.2.1), where tern listens and relays: a non-loopback relay address, so the two
//! allocations reach each other under tern's default peer policy (no `--allow-loopback-peers`).

use crate::support;

use std::io::Write;

use serde_json::Value;
use support::netns::private_network;
use support::tls::TestCert;
use support::{aiortc, Server, PASSWORD, REALM, USER};

const MESSAGES: u32 = 20;
const ADDR: &str = "192.0.2.1";

/// Prints the skip notice (past the test harness's capture), or fails under
/// `TERN_REQUIRE_INTEROP=1`.
fn skip(why: &str) {
    if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why} (TERN_REQUIRE_INTEROP=1)");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// tern on 192.0.2.1 (UDP, TCP and TLS listeners on free ports) relaying from 192.0.2.1, or None
/// (after the skip notice) when aiortc or the namespace is unavailable.
fn server(cert: &TestCert) -> Option<Server> {
    if !aiortc::available() {
        return None;
    }
    if let Err(why) = private_network(&format!("{ADDR}/24")) {
        skip(&why);
        return None;
    }
    let [c, k] = cert.args();
    let (listen, relay) = (
        format!("--listening-ip={ADDR}"),
        format!("--relay-ip={ADDR}"),
    );
    let (user, realm) = (
        format!("--user={USER}:{PASSWORD}"),
        format!("--realm={REALM}"),
    );
    Some(Server::start_args(&[
        "-n",
        &listen,
        "--listening-port=0",
        "--tls-listening-port=0",
        &relay,
        &user,
        &realm,
        &c,
        &k,
    ]))
}

/// Every message echoed over a relay/relay pair whose local candidate is on tern's relay address
/// and was allocated over `protocol`.
fn echoes_over(server: &Server, url: String, protocol: &str) {
    let result = aiortc::run(&[], &[url], USER, PASSWORD, MESSAGES);
    eprintln!("aiortc result: {result}");
    let context = || format!("{result}\nserver log:\n{}", server.log());
    assert_eq!(result["error"], Value::Null, "{}", context());
    assert_eq!(result["echoes"], MESSAGES, "{}", context());
    let pair = &result["selected"];
    assert_eq!(pair["local"], "relay", "{}", context());
    assert_eq!(pair["remote"], "relay", "{}", context());
    assert_eq!(pair["relay_protocol"], protocol, "{}", context());
    let local_ip = pair["local_addr"]
        .as_str()
        .and_then(|a| a.rsplit_once(':'))
        .map(|(ip, _)| ip);
    assert_eq!(local_ip, Some(ADDR), "{}", context());
    for side in ["local_candidates", "remote_candidates"] {
        let cands = result[side].as_array().cloned().unwrap_or_default();
        assert!(
            !cands.is_empty()
                && cands
                    .iter()
                    .all(|c| c.as_str().is_some_and(|c| c.contains(" typ relay"))),
            "{side}: {}",
            context()
        );
    }
}

#[test]
fn data_channel_over_turn_udp() {
    let cert = TestCert::new("aiortc-udp");
    let Some(server) = server(&cert) else { return };
    let url = format!("turn:{}?transport=udp", server.udp_addr());
    echoes_over(&server, url, "udp");
}

#[test]
fn data_channel_over_turn_tcp() {
    let cert = TestCert::new("aiortc-tcp");
    let Some(server) = server(&cert) else { return };
    let url = format!("turn:{}?transport=tcp", server.tcp_addr());
    echoes_over(&server, url, "tcp");
}

#[test]
fn data_channel_over_turns_tls() {
    let cert = TestCert::new("aiortc-tls");
    let Some(server) = server(&cert) else { return };
    let url = format!("turns:{}?transport=tcp", server.tls_addr());
    echoes_over(&server, url, "tls");
}

#[test]
fn wrong_password_relays_nothing() {
    let cert = TestCert::new("aiortc-wrong");
    let Some(server) = server(&cert) else { return };
    let url = format!("turn:{}?transport=udp", server.udp_addr());
    let result = aiortc::run(&[], &[url], USER, "not-the-password", MESSAGES);
    eprintln!("aiortc result: {result}");
    let echoes = result["echoes"].as_u64().unwrap_or(0);
    assert!(
        echoes < u64::from(MESSAGES) || !result["error"].is_null(),
        "{result}\nserver log:\n{}",
        server.log()
    );
    assert!(
        result["local_candidates"]
            .as_array()
            .is_some_and(|c| c.is_empty()),
        "a relay candidate despite the wrong password: {result}"
    );
}
