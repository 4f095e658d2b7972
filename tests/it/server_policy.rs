//! The peer policy on the real binary (RFC 8656 §9.1, §12; tern's safe defaults): CreatePermission
//! and ChannelBind for loopback, unspecified, link-local and private peers get 403 unless
//! `allow-loopback-peers` / `allowed-peer-ip` admit them; IPv4-mapped IPv6 forms are normalised
//! first, and 6to4, Teredo, local-use NAT64 and discard-only peers are refused by default. Peers
//! are only values here: CreatePermission sends nothing to them.

use crate::support;

use std::net::{SocketAddr, UdpSocket};

use support::turn_client::TurnClient;
use support::uclient::{self, Peer};
use support::{interop_tool, Server, PASSWORD, USER};

/// A client of the harness's static user.
fn client(server: &Server) -> TurnClient {
    TurnClient::new(server.udp_addr(), USER, PASSWORD)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const REFUSED_BY_DEFAULT: [&str; 4] = [
    "127.0.0.1:5000",
    "0.0.0.0:5000",
    "169.254.169.254:80",
    "10.0.0.1:5000",
];

/// Both ways of admitting a peer answer 403.
fn assert_refused(c: &mut TurnClient, peer: &str) {
    assert_eq!(
        c.create_permission(sa(peer)).map_err(|r| r.code),
        Err(403),
        "CreatePermission {peer}"
    );
    assert_eq!(
        c.channel_bind(0x4001, sa(peer)).map_err(|r| r.code),
        Err(403),
        "ChannelBind {peer}"
    );
}

#[test]
fn special_peers_get_403_and_a_public_address_is_admitted() {
    let server = Server::start(&[]);
    let mut c = client(&server);
    c.allocate().expect("allocate");
    for peer in REFUSED_BY_DEFAULT {
        assert_refused(&mut c, peer);
    }
    // Only a value in the request: nothing is ever sent to it.
    assert_eq!(
        c.create_permission(sa("8.8.8.8:5000")).map_err(|r| r.code),
        Ok(())
    );
    assert_eq!(
        c.channel_bind(0x4002, sa("8.8.8.8:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
    // The IPv4-mapped form on an IPv4 allocation is another family (443), refused either way.
    assert_eq!(
        c.create_permission(sa("[::ffff:127.0.0.1]:5000"))
            .map_err(|r| r.code),
        Err(443)
    );
}

#[test]
fn ipv4_mapped_loopback_is_refused_on_an_ipv6_relay() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let server = Server::start(&["--listening-ip=::1"]);
    let mut c = client(&server);
    let relayed = c.allocate_family(true).expect("an IPv6 allocation");
    assert!(relayed.is_ipv6(), "{relayed}");
    for peer in [
        "[::ffff:127.0.0.1]:5000",
        "[::ffff:10.0.0.1]:5000",
        "[::1]:5000",
    ] {
        assert_refused(&mut c, peer);
    }
    assert_eq!(
        c.create_permission(sa("[2001:4860:4860::8888]:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
}

/// IPv6 forms that reach an IPv4 address through a gateway (6to4, Teredo, local-use NAT64) and
/// the discard prefix are refused by default; admitting 2002::/16 still refuses the loopback
/// address inside `2002:7f00:1::`.
#[test]
fn gateway_forms_are_refused_on_an_ipv6_relay() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let gateway_forms = [
        "[2002:7f00:1::]:5000",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:5000",
        "[64:ff9b:1::a00:1]:5000",
        "[100::1]:5000",
    ];
    let server = Server::start(&["--listening-ip=::1"]);
    let mut c = client(&server);
    assert!(c
        .allocate_family(true)
        .expect("an IPv6 allocation")
        .is_ipv6());
    for peer in gateway_forms {
        assert_refused(&mut c, peer);
    }

    let server = Server::start(&["--listening-ip=::1", "--allowed-peer-ip=2002::/16"]);
    let mut c = client(&server);
    assert!(c
        .allocate_family(true)
        .expect("an IPv6 allocation")
        .is_ipv6());
    assert_refused(&mut c, "[2002:7f00:1::]:5000");
    assert_eq!(
        c.create_permission(sa("[2002:808:808::1]:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
    assert_eq!(
        c.channel_bind(0x4002, sa("[2002:808:808::1]:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
}

#[test]
fn allow_loopback_peers_admits_loopback_only() {
    let server = Server::start(&["--allow-loopback-peers"]);
    let mut c = client(&server);
    c.allocate().expect("allocate");
    assert_eq!(
        c.create_permission(sa("127.0.0.1:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
    assert_eq!(
        c.channel_bind(0x4001, sa("127.0.0.1:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
    for peer in &REFUSED_BY_DEFAULT[1..] {
        assert_eq!(
            c.create_permission(sa(peer)).map_err(|r| r.code),
            Err(403),
            "{peer}"
        );
    }
}

#[test]
fn allowed_peer_ip_admits_a_private_range() {
    let server = Server::start(&["--allowed-peer-ip=10.0.0.0/8"]);
    let mut c = client(&server);
    c.allocate().expect("allocate");
    assert_eq!(
        c.create_permission(sa("10.0.0.1:5000")).map_err(|r| r.code),
        Ok(())
    );
    assert_eq!(
        c.channel_bind(0x4001, sa("10.0.0.1:5000"))
            .map_err(|r| r.code),
        Ok(())
    );
    for peer in ["127.0.0.1:5000", "169.254.169.254:80", "11.0.0.1:5000"] {
        let want = if peer.starts_with("11.") {
            Ok(())
        } else {
            Err(403)
        };
        assert_eq!(
            c.create_permission(sa(peer)).map_err(|r| r.code),
            want,
            "{peer}"
        );
    }
}

/// The uclient run that relays everything with `allow-loopback-peers` relays nothing without it.
#[test]
fn uclient_without_allow_loopback_peers_is_refused() {
    let (Some(tool), Some(_)) = (uclient::tool(), interop_tool("turnutils_peer")) else {
        return;
    };
    let server = Server::start(&[]);
    let peer = Peer::start().expect("turnutils_peer");
    let port = server.udp_addr().port();
    for (mode, refused) in [
        ("-c", "channel bind: error 403"),
        ("-s", "create permission error 403"),
    ] {
        let args = ["-u", USER, "-w", PASSWORD, "-m", "1", "-n", "10", mode];
        let text = uclient::run(&tool, port, peer.port, &args);
        assert!(text.contains(refused), "uclient {mode}:\n{text}");
        let received = uclient::totals(&text).map_or(0, |(_, received)| received);
        assert_eq!(received, 0, "uclient {mode}:\n{text}");
    }
}

/// The `denied-peer-ip` lines of the Matrix homeserver TURN guide, which configurations copy
/// whole, ending with the IPv4-mapped range against the mapped bypass.
const MATRIX_GUIDE_DENIED: [&str; 15] = [
    "10.0.0.0-10.255.255.255",
    "192.168.0.0-192.168.255.255",
    "172.16.0.0-172.31.255.255",
    "0.0.0.0-0.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "192.0.0.0-192.0.0.255",
    "192.0.2.0-192.0.2.255",
    "192.88.99.0-192.88.99.255",
    "198.18.0.0-198.19.255.255",
    "198.51.100.0-198.51.100.255",
    "203.0.113.0-203.0.113.255",
    "240.0.0.0-255.255.255.255",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
];

/// The mapped range denies peers written in the mapped form, never the whole IPv4 space: a public
/// IPv4 peer is admitted (it was refused when the range was read as 0.0.0.0/0), the guide's IPv4
/// ranges are denied, and a public address written in the mapped form is denied.
#[test]
fn the_matrix_guides_denied_list_denies_mapped_forms_not_all_of_ipv4() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let denied: Vec<String> = MATRIX_GUIDE_DENIED
        .iter()
        .map(|r| format!("--denied-peer-ip={r}"))
        .collect();
    let mut args: Vec<&str> = denied.iter().map(String::as_str).collect();
    args.extend([
        "--listening-ip=::1",
        "--relay-ip=127.0.0.1",
        "--relay-ip=::1",
    ]);
    let server = Server::start(&args);
    let policy = server
        .wait_for_log("denied-peer-ip:", std::time::Duration::from_secs(5))
        .unwrap_or_default();
    assert!(!policy.contains("0.0.0.0/0"), "{policy}");
    let mut v4 = client(&server);
    v4.allocate_family(false).expect("an IPv4 allocation");
    assert_eq!(
        v4.create_permission(sa("8.8.8.8:5000")).map_err(|r| r.code),
        Ok(()),
        "a public IPv4 peer:\n{}",
        server.log()
    );
    for peer in ["192.0.2.1:5000", "203.0.113.9:5000", "100.64.0.1:5000"] {
        assert_refused(&mut v4, peer);
    }
    let mut v6 = client(&server);
    v6.allocate_family(true).expect("an IPv6 allocation");
    for peer in ["[::ffff:8.8.8.8]:5000", "[::ffff:127.0.0.1]:5000"] {
        assert_refused(&mut v6, peer);
    }
}
