//! Redirects against the real binary (docs/fleet.md, "Redirects"): with `alternate-server` every
//! Allocate gets 300 Try Alternate (a new client's before the challenge, as coturn; a client
//! holding a nonce a signed one), in turn over the list and within the client's address family;
//! TLS clients get `tls-alternate-server` and its ALTERNATE-DOMAIN (RFC 8489 §14.16);
//! `alternate-server-mode=full` serves until the node is full; a malformed `alternate-server`
//! stops start-up at its line; coturn's `turnutils_uclient` follows the 300 of a draining node to
//! a second tern and relays through it, and headless Chromium follows a redirector front's and a
//! draining node's 300 and relays through the node named.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use support::browser::{run_page, Page};
use support::lab::{self, Lab, Vm};
use support::metrics::{fetch, find, start_with_metrics};
use support::stream_client::{TurnStream, UDP};
use support::tls::{client_config, connect, TestCert};
use support::turn_client::{Refused, TurnClient};
use support::uclient::{self, Peer};
use support::{interop_tool, run_tern, Server, TempDir, PASSWORD, USER};
use tern::stun::{attr, ErrorCode, Message};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn redirected_to(to: &str) -> Result<SocketAddr, Refused> {
    Err(Refused {
        code: 300,
        alternate: Some(addr(to)),
    })
}

/// The ALTERNATE-DOMAIN of a response, if any.
fn alternate_domain(response: &[u8]) -> Option<String> {
    let msg = Message::parse(response).expect("a STUN response");
    let raw = msg.get(attr::ALTERNATE_DOMAIN)?;
    Some(String::from_utf8(raw.to_vec()).expect("UTF-8 domain"))
}

fn has_integrity(response: &[u8]) -> bool {
    let msg = Message::parse(response).expect("a STUN response");
    msg.get(attr::MESSAGE_INTEGRITY).is_some()
}

#[test]
fn every_allocate_is_redirected_in_turn_within_the_clients_family() {
    let (server, metrics) = start_with_metrics(&[
        "--alternate-server=192.0.2.1:3478",
        "--alternate-server=[2001:db8::1]:3478",
        "--alternate-server=192.0.2.2",
    ]);
    for want in [
        "192.0.2.1:3478",
        "192.0.2.2:3478",
        "192.0.2.1:3478",
        "192.0.2.2:3478",
    ] {
        let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
        assert_eq!(client.allocate(), redirected_to(want));
        // As coturn, a new client is sent on before the challenge (docs/fleet.md).
        assert!(
            !has_integrity(client.last_refusal()),
            "a new client's 300 is signed"
        );
        assert_eq!(alternate_domain(client.last_refusal()), None);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let counted = loop {
        let (_, scrape) = fetch(metrics);
        let n = find(&scrape, "tern_redirects_total", &[]);
        if n == Some(4.0) || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(counted, Some(4.0));
}

#[test]
fn tls_clients_get_the_tls_list_and_its_alternate_domain() {
    let cert = TestCert::new("redirect");
    let [c, k] = cert.args();
    let server = Server::start(&[
        &c,
        &k,
        "--tls-listening-port=0",
        "--alternate-server=192.0.2.1:3478",
        "--tls-alternate-server=turn2.example.org@192.0.2.9:5350",
        "--tls-alternate-server=192.0.2.10",
    ]);
    let mut redirects = Vec::new();
    for _ in 0..2 {
        let tls = connect(server.tls_addr(), client_config(&cert.der, &[b"stun.turn"]))
            .unwrap_or_else(|e| panic!("handshake: {e}\n{}", server.log()));
        let mut turn = TurnStream::new(tls);
        let response = turn
            .request(tern::stun::Method::ALLOCATE, &|b| {
                b.add_raw(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0])
                    .expect("transport");
            })
            .expect("an answer");
        let msg = Message::parse(&response).expect("STUN");
        let code = msg.error_code().and_then(Result::ok).map(|(c, _)| c);
        assert_eq!(code, Some(ErrorCode::TRY_ALTERNATE), "{}", server.log());
        let to = msg
            .address(attr::ALTERNATE_SERVER)
            .and_then(Result::ok)
            .expect("ALTERNATE-SERVER");
        redirects.push((to, alternate_domain(&response)));
    }
    assert_eq!(
        redirects,
        [
            (addr("192.0.2.9:5350"), Some("turn2.example.org".to_owned())),
            (addr("192.0.2.10:5349"), None),
        ]
    );
    let mut udp = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert_eq!(udp.allocate(), redirected_to("192.0.2.1:3478"));
    assert_eq!(alternate_domain(udp.last_refusal()), None);
}

#[test]
fn full_mode_serves_until_total_quota_then_redirects() {
    let server = Server::start(&[
        "--alternate-server=192.0.2.1:3478",
        "--alternate-server-mode=full",
        "--total-quota=2",
    ]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
        client.allocate().expect("served while not full");
        held.push(client);
    }
    let mut late = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert_eq!(late.allocate(), redirected_to("192.0.2.1:3478"));
    // Room again: served here.
    assert_eq!(held[0].refresh(0), Ok(0));
    let mut again = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    again.allocate().expect("served once there is room");
    // Full again: a client that already holds this node's nonce gets a signed 300 (RFC 8489
    // §10), after authentication.
    assert_eq!(held[0].allocate(), redirected_to("192.0.2.1:3478"));
    assert!(
        has_integrity(held[0].last_refusal()),
        "an authenticated 300 unsigned"
    );
}

#[test]
fn full_mode_redirects_while_bps_capacity_is_spent() {
    let server = Server::start(&[
        "--alternate-server=192.0.2.1:3478",
        "--alternate-server-mode=full",
        "--bps-capacity=20000",
        "--max-bps=10000000",
        "--allow-loopback-peers",
    ]);
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let mut busy = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    busy.allocate().expect("served while idle");
    busy.channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    // 100 kB at once against 20 kB/s: the budget is spent.
    for _ in 0..100 {
        busy.send_channel(0x4000, &[7u8; 1000]);
    }
    let mut late = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert_eq!(late.allocate(), redirected_to("192.0.2.1:3478"));
    // Once traffic stops the budget refills and the node serves again.
    std::thread::sleep(Duration::from_secs(2));
    let mut calm = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    calm.allocate().expect("served once the capacity is free");
}

#[test]
fn a_server_listed_among_its_alternates_serves_instead_of_redirecting_to_itself() {
    let first = Server::start(&[]);
    let own = first.udp_addr().to_string();
    drop(first);
    let self_ref = format!("--alternate-server={own}");
    let args = [
        "-n",
        &format!("--listening-port={}", addr(&own).port()),
        "--listening-ip=127.0.0.1",
        &format!("--user={USER}:{PASSWORD}"),
        "--realm=tern.test",
        "--alternate-server=192.0.2.1:3478",
        &self_ref,
    ];
    let server = Server::start_args(&args);
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    client.allocate().expect("coturn's loop guard: served here");
}

#[test]
fn a_malformed_alternate_server_stops_start_up_at_its_line() {
    let dir = TempDir::new("badalt");
    let base = "listening-ip=127.0.0.1\nlistening-port=0\nno-tls\nno-auth\n";
    for (line, why) in [
        (
            "alternate-server=turn2.example.org:3478",
            "IP, IP:PORT or [IPv6]:PORT",
        ),
        ("alternate-server=192.0.2.1:99999", "99999"),
        (
            "alternate-server=turn2.example.org@192.0.2.1",
            "tls-alternate-server only",
        ),
        ("tls-alternate-server=bad_name@192.0.2.1", "bad_name"),
        ("alternate-server-mode=sometimes", "always, draining, full"),
    ] {
        let conf = dir.path("bad.conf");
        std::fs::write(&conf, format!("{base}{line}\n")).expect("write");
        let conf = conf.display().to_string();
        let name = line.split('=').next().unwrap_or(line);
        let at = format!("{conf}:5: {name}: ");
        let (started, text) = run_tern(&["-c", &conf]);
        assert!(!started, "{line}: started:\n{text}");
        assert!(text.contains(&at) && text.contains(why), "{line}:\n{text}");
        let (passed, text) = run_tern(&["check-config", &conf]);
        assert!(
            !passed && text.contains(&at),
            "{line}: check-config:\n{text}"
        );
    }
}

#[test]
fn check_config_says_what_the_lists_do() {
    let dir = TempDir::new("altcheck");
    let conf = dir.path("alt.conf");
    std::fs::write(
        &conf,
        "listening-ip=127.0.0.1\nno-auth\nalternate-server=192.0.2.1\nalternate-server=192.0.2.2\n\
         tls-alternate-server=turn3.example.org@192.0.2.3\n",
    )
    .expect("write");
    let (passed, text) = run_tern(&["check-config", &conf.display().to_string()]);
    assert!(passed, "{text}");
    for want in [
        "alternate-server=192.0.2.1:3478\n",
        "tls-alternate-server=turn3.example.org@192.0.2.3:5349\n",
        "alternate-server-mode=always\n",
        "UDP clients: every new Allocate gets 300 Try Alternate, in turn to 192.0.2.1:3478, \
         192.0.2.2:3478",
        "TLS clients: every new Allocate gets 300 Try Alternate, in turn to \
         turn3.example.org@192.0.2.3:5349",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}

/// The acceptance case: a draining node (alternate-server-mode=draining, SIGUSR1) sends coturn's
/// uclient to a second tern, where its allocations relay every message.
#[test]
fn uclient_follows_a_draining_nodes_redirect_to_a_live_node_and_relays() {
    let (Some(tool), Some(_)) = (uclient::tool(), interop_tool("turnutils_peer")) else {
        return;
    };
    let live = Server::start(&["--allow-loopback-peers"]);
    let to_live = format!("--alternate-server={}", live.udp_addr());
    let draining = Server::start(&[
        "--allow-loopback-peers",
        &to_live,
        "--alternate-server-mode=draining",
    ]);
    // One allocation keeps the draining node up while the client is redirected.
    let mut keep = TurnClient::new(draining.udp_addr(), USER, PASSWORD);
    keep.allocate().expect("allocate before the drain");
    draining.signal(libc::SIGUSR1);
    draining
        .wait_for_log("draining", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no drain; log:\n{}", draining.log()));

    let peer = Peer::start().expect("turnutils_peer");
    let args = [
        "-u", USER, "-w", PASSWORD, "-n", "50", "-l", "200", "-z", "5",
    ];
    let text = uclient::run(&tool, draining.udp_addr().port(), peer.port, &args);
    let context = || {
        format!(
            "{text}\ndraining node:\n{}\nlive node:\n{}",
            draining.log(),
            live.log()
        )
    };
    assert!(
        text.contains("error 300"),
        "no redirect seen:\n{}",
        context()
    );
    // RTP and RTCP: two allocations on the live node, 50 messages each.
    let (sent, received) = uclient::totals(&text).unwrap_or_else(|| panic!("{}", context()));
    assert!(sent == 100 && received == sent, "{}", context());
    assert!(text.contains("Total lost packets 0 "), "{}", context());
    assert_eq!(
        keep.refresh(600),
        Ok(600),
        "the draining node kept its allocation"
    );
}

/// How the first node of a Chromium case sends browsers on.
#[derive(Clone, Copy)]
enum First {
    /// A redirector front (`alternate-server-mode=always`) that never relays (`no-udp-relay`).
    Front,
    /// A pool node (`alternate-server-mode=draining`) drained with SIGUSR1, kept up by one
    /// allocation.
    Draining,
}

/// Headless Chromium on the lab's client host, given only the first node's URL: its Allocates
/// get 300 to the live node, where both browsers relay. Chromium refuses a redirect to a
/// loopback address, so the two nodes run on the two public addresses of the lab's VM, each
/// relaying on its own: a relay pair on the second address is the live node's.
fn chromium_is_sent_to_the_live_node(first: First) {
    let lab = match Lab::new(Vm::TwoPublic) {
        Ok(lab) => lab,
        Err(why) => return lab::skip(&why.0),
    };
    let on = lab.on("vm");
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let node = |ip: &str, extra: &[&str]| {
        let mut args = vec![
            "-n".to_owned(),
            format!("--listening-ip={ip}"),
            format!("--relay-ip={ip}"),
            "--listening-port=0".to_owned(),
            format!("--user={USER}:{PASSWORD}"),
            "--realm=tern.test".to_owned(),
            "--no-tls".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_wrapped(&on, &args)
    };
    let live = node(lab::PUBLIC2, &[]);
    let to_live = format!("--alternate-server={}", live.udp_addr());
    let (front, _keep) = match first {
        First::Front => (node(lab::PUBLIC, &["--no-udp-relay", &to_live]), None),
        First::Draining => {
            let mode = "--alternate-server-mode=draining";
            let node = node(lab::PUBLIC, &[&to_live, mode]);
            let server = node.udp_addr();
            let keep = lab.in_host("client", || {
                let local = format!("{}:0", lab::CLIENT)
                    .parse()
                    .expect("client address");
                let mut keep = TurnClient::bound(local, server, USER, PASSWORD);
                keep.allocate().expect("allocate before the drain");
                keep
            });
            node.signal(libc::SIGUSR1);
            node.wait_for_log("draining", Duration::from_secs(10))
                .unwrap_or_else(|| panic!("no drain; log:\n{}", node.log()));
            (node, Some(keep))
        }
    };
    let urls = vec![format!("turn:{}?transport=udp", front.udp_addr())];
    let page = Page {
        urls: &urls,
        user: USER,
        pass: PASSWORD,
        messages: 10,
        timeout_ms: 30_000,
    };
    let Some(result) = lab.in_host("client", || run_page(&page)) else {
        return;
    };
    let context = || {
        format!(
            "{result}\nfirst node's log:\n{}\nlive node's log:\n{}",
            front.log(),
            live.log()
        )
    };
    assert_eq!(result["echoes"], 10, "{}", context());
    let pair = &result["pair"];
    assert_eq!(
        (pair["local"].as_str(), pair["remote"].as_str()),
        (Some("relay"), Some("relay")),
        "{}",
        context()
    );
    let local = pair["localAddr"].as_str().unwrap_or_default();
    assert!(
        local.starts_with(&format!("{}:", lab::PUBLIC2)),
        "{}",
        context()
    );
}

#[test]
fn chromium_follows_a_redirector_front_to_the_live_node() {
    chromium_is_sent_to_the_live_node(First::Front);
}

#[test]
fn chromium_follows_a_draining_node_to_the_live_node() {
    chromium_is_sent_to_the_live_node(First::Draining);
}

/// SIGHUP applies a new list at once; a malformed one is refused with its line and the list in
/// force stays (nothing lost: allocations and redirects go on).
#[test]
fn sighup_applies_a_new_list_and_keeps_the_old_one_when_the_new_is_malformed() {
    let dir = TempDir::new("altreload");
    let conf = dir.path("turnserver.conf");
    let write = |list: &str| {
        let text = format!(
            "realm=tern.test\nuser={USER}:{PASSWORD}\nlistening-ip=127.0.0.1\nlistening-port=0\n\
             no-tls\n{list}"
        );
        std::fs::write(&conf, text).expect("write config");
    };
    write("alternate-server=192.0.2.1\n");
    let server = Server::start_args(&["-c", conf.to_str().expect("utf-8 path")]);
    let allocate = || TurnClient::new(server.udp_addr(), USER, PASSWORD).allocate();
    assert_eq!(allocate(), redirected_to("192.0.2.1:3478"));

    write("alternate-server=192.0.2.2\nalternate-server=192.0.2.3\n");
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));
    assert_eq!(allocate(), redirected_to("192.0.2.2:3478"));
    assert_eq!(allocate(), redirected_to("192.0.2.3:3478"));

    write("alternate-server=192.0.2.2\nalternate-server=turn9.example.org\n");
    server.signal(libc::SIGHUP);
    let line = server
        .wait_for_log("reload rejected", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no rejection; log:\n{}", server.log()));
    assert!(line.contains("keeping"), "{line}");
    let log = server.log();
    assert!(
        log.contains(":7: alternate-server: "),
        "no line number:\n{log}"
    );
    assert_eq!(allocate(), redirected_to("192.0.2.2:3478"));
}
