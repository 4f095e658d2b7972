//! A real browser through tern (RFC 8656 over UDP as WebRTC uses it): headless Chromium opens a
//! data channel between two RTCPeerConnections restricted to relay candidates; every message
//! must echo over a relay/relay pair (also with RFC 8489 SHA-256 offered, which Chromium does not
//! negotiate), and a wrong password must yield no relay candidate.

use crate::support;

use serde_json::Value;
use support::browser::{run_page, Page};
use support::{Server, PASSWORD, USER};

const MESSAGES: u32 = 20;

/// tern relaying on loopback; the two browsers' relayed addresses are each other's peers.
fn server() -> Server {
    Server::start(&["--relay-ip=127.0.0.1", "--allow-loopback-peers"])
}

fn udp_url(server: &Server) -> Vec<String> {
    vec![format!("turn:{}?transport=udp", server.udp_addr())]
}

fn candidates(result: &Value) -> Vec<&str> {
    result["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("no candidates list: {result}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn data_channel_echoes_over_a_udp_relay_pair() {
    echoes_over_a_relay_pair(&server());
}

/// With RFC 8489 SHA-256 and USERHASH offered, Chromium (which does not negotiate) keeps MD5.
#[test]
fn chromium_keeps_md5_when_sha256_is_offered() {
    echoes_over_a_relay_pair(&Server::start(&[
        "--relay-ip=127.0.0.1",
        "--allow-loopback-peers",
        "--password-algorithms=sha256,md5",
        "--userhash",
    ]));
}

fn echoes_over_a_relay_pair(server: &Server) {
    let urls = udp_url(server);
    let page = Page {
        urls: &urls,
        user: USER,
        pass: PASSWORD,
        messages: MESSAGES,
        timeout_ms: 30_000,
    };
    let Some(result) = run_page(&page) else {
        return;
    };
    eprintln!("page result: {result}");
    let context = || format!("{result}\nserver log:\n{}", server.log());
    assert_eq!(result["echoes"], MESSAGES, "{}", context());
    assert_eq!(result["sent"], MESSAGES, "{}", context());
    let pair = &result["pair"];
    assert_eq!(pair["local"], "relay", "{}", context());
    assert_eq!(pair["remote"], "relay", "{}", context());
    assert_eq!(pair["relayProtocol"], "udp", "{}", context());
    let local = pair["localAddr"].as_str().unwrap_or_default();
    assert!(local.starts_with("127.0.0.1:"), "{}", context());
    let cands = candidates(&result);
    assert!(!cands.is_empty(), "{}", context());
    assert!(
        cands.iter().all(|c| c.contains(" typ relay")),
        "{}",
        context()
    );
}

#[test]
fn a_wrong_password_yields_no_relay_candidate() {
    let server = server();
    let urls = udp_url(&server);
    let page = Page {
        urls: &urls,
        user: USER,
        pass: "not-the-password",
        messages: MESSAGES,
        timeout_ms: 5_000,
    };
    let Some(result) = run_page(&page) else {
        return;
    };
    assert_eq!(result["echoes"], -1, "{result}");
    assert!(candidates(&result).is_empty(), "{result}");
    assert!(result["pair"].is_null(), "{result}");
}
