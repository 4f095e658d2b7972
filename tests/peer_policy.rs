//! Peer-address policy: defaults, IPv6 forms of IPv4 addresses, allowed/denied ranges, the
//! server's own listeners and relays. Addresses are only values here; nothing is sent.

use std::net::{IpAddr, SocketAddr};

use tern::config::{Config, IpRange};
use tern::limits::{PeerPolicy, Refusal};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn range(a: &str, b: &str) -> IpRange {
    IpRange {
        start: ip(a),
        end: ip(b),
    }
}

fn policy(cfg: &Config) -> PeerPolicy {
    PeerPolicy::from_config(cfg, &[], &[])
}

/// Both entry points must agree when no port-dependent rule applies.
fn verdict(p: &PeerPolicy, addr: &str) -> Result<(), Refusal> {
    let a = ip(addr);
    let by_ip = p.check_ip(a);
    assert_eq!(p.check(SocketAddr::new(a, 40000)), by_ip, "{addr}");
    by_ip
}

#[test]
fn default_refusals() {
    let p = policy(&Config::default());
    let cases = [
        ("127.0.0.1", Refusal::Loopback),
        ("127.255.0.9", Refusal::Loopback),
        ("::1", Refusal::Loopback),
        ("::ffff:127.0.0.1", Refusal::Loopback),
        ("::127.0.0.1", Refusal::Loopback),
        ("::ffff:0:127.0.0.1", Refusal::Loopback),
        ("64:ff9b::127.0.0.1", Refusal::Loopback),
        ("0.0.0.0", Refusal::Unspecified),
        ("0.1.2.3", Refusal::Unspecified),
        ("::", Refusal::Unspecified),
        ("::ffff:0.0.0.0", Refusal::Unspecified),
        ("169.254.169.254", Refusal::LinkLocal),
        ("::ffff:169.254.169.254", Refusal::LinkLocal),
        ("64:ff9b::169.254.169.254", Refusal::LinkLocal),
        ("fe80::1", Refusal::LinkLocal),
        ("febf::1", Refusal::LinkLocal),
        ("10.0.0.1", Refusal::Private),
        ("::ffff:10.0.0.1", Refusal::Private),
        ("192.168.1.1", Refusal::Private),
        ("172.16.0.1", Refusal::Private),
        ("172.31.255.255", Refusal::Private),
        ("fd00::1", Refusal::Private),
        ("fc00::1", Refusal::Private),
        ("100.64.0.1", Refusal::SharedAddress),
        ("100.127.255.255", Refusal::SharedAddress),
        ("192.0.0.8", Refusal::Reserved),
        ("192.88.99.1", Refusal::Reserved),
        ("198.18.0.1", Refusal::Reserved),
        ("198.19.255.255", Refusal::Reserved),
        ("240.0.0.1", Refusal::Reserved),
        ("254.255.255.255", Refusal::Reserved),
        ("::ffff:240.0.0.1", Refusal::Reserved),
        ("224.0.0.1", Refusal::Multicast),
        ("239.255.255.250", Refusal::Multicast),
        ("::ffff:224.0.0.1", Refusal::Multicast),
        ("ff02::1", Refusal::Multicast),
        ("255.255.255.255", Refusal::Broadcast),
        ("::ffff:255.255.255.255", Refusal::Broadcast),
    ];
    for (addr, refusal) in cases {
        assert_eq!(verdict(&p, addr), Err(refusal), "{addr}");
    }
}

#[test]
fn default_admits_public_addresses() {
    let p = policy(&Config::default());
    for addr in [
        "8.8.8.8",
        "2001:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "172.32.0.1",
        "172.15.255.255",
        "100.128.0.1",
        "100.63.255.255",
        "169.253.255.255",
        "11.0.0.1",
        "192.0.1.1",
        "192.0.3.1",
        "192.0.2.1",
        "192.88.98.1",
        "198.17.255.255",
        "198.20.0.1",
    ] {
        assert_eq!(verdict(&p, addr), Ok(()), "{addr}");
    }
    // Deprecated site-local fec0::/10 is internal.
    assert_eq!(verdict(&p, "fec0::1"), Err(Refusal::Private));
}

#[test]
fn allow_loopback_peers() {
    let cfg = Config {
        allow_loopback_peers: true,
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "127.0.0.1"), Ok(()));
    assert_eq!(verdict(&p, "::1"), Ok(()));
    assert_eq!(verdict(&p, "::ffff:127.0.0.1"), Ok(()));
    // Only loopback opens.
    assert_eq!(verdict(&p, "10.0.0.1"), Err(Refusal::Private));
    assert_eq!(verdict(&p, "0.0.0.0"), Err(Refusal::Unspecified));
}

#[test]
fn allowed_range_is_precise() {
    let cfg = Config {
        allowed_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "10.0.0.1"), Ok(()));
    assert_eq!(verdict(&p, "10.1.0.0"), Ok(()));
    assert_eq!(verdict(&p, "10.255.255.255"), Ok(()));
    assert_eq!(verdict(&p, "::ffff:10.2.3.4"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.1"), Err(Refusal::Private));
    assert_eq!(verdict(&p, "127.0.0.1"), Err(Refusal::Loopback));

    let slash16 = Config {
        allowed_peer_ips: vec![range("10.0.0.0", "10.0.255.255")],
        ..Config::default()
    };
    let p = policy(&slash16);
    assert_eq!(verdict(&p, "10.0.255.255"), Ok(()));
    assert_eq!(verdict(&p, "10.1.0.0"), Err(Refusal::Private));

    let narrow = Config {
        allowed_peer_ips: vec![range("192.168.1.10", "192.168.1.20")],
        ..Config::default()
    };
    let p = policy(&narrow);
    assert_eq!(verdict(&p, "192.168.1.9"), Err(Refusal::Private));
    assert_eq!(verdict(&p, "192.168.1.10"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.20"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.21"), Err(Refusal::Private));
}

#[test]
fn allowed_range_admits_loopback_link_local_and_ipv6() {
    let cfg = Config {
        allowed_peer_ips: vec![
            range("127.0.0.1", "127.0.0.1"),
            range("169.254.0.0", "169.254.255.255"),
            range("fd00::", "fd00::ffff"),
        ],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "127.0.0.1"), Ok(()));
    assert_eq!(verdict(&p, "127.0.0.2"), Err(Refusal::Loopback));
    assert_eq!(verdict(&p, "169.254.169.254"), Ok(()));
    assert_eq!(verdict(&p, "fd00::1"), Ok(()));
    assert_eq!(verdict(&p, "fd00::1:0"), Err(Refusal::Private));
}

#[test]
fn denied_range_refuses_public_address() {
    let cfg = Config {
        denied_peer_ips: vec![
            range("8.8.8.0", "8.8.8.255"),
            range("2001:4860::", "2001:4860::ffff"),
        ],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "8.8.8.8"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "::ffff:8.8.8.8"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "64:ff9b::8.8.8.8"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "2001:4860::8888"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "8.8.9.8"), Ok(()));
    assert_eq!(verdict(&p, "2001:4860::1:8888"), Ok(()));
}

#[test]
fn allowed_wins_over_denied() {
    let cfg = Config {
        allowed_peer_ips: vec![range("10.0.0.5", "10.0.0.5"), range("8.8.8.8", "8.8.8.8")],
        denied_peer_ips: vec![
            range("10.0.0.0", "10.255.255.255"),
            range("8.8.8.0", "8.8.8.255"),
        ],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "10.0.0.5"), Ok(()));
    assert_eq!(verdict(&p, "10.0.0.6"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "8.8.8.8"), Ok(()));
    assert_eq!(verdict(&p, "8.8.8.9"), Err(Refusal::Denied));
}

#[test]
fn multicast_and_unspecified_never_admitted() {
    let cfg = Config {
        allowed_peer_ips: vec![
            range("0.0.0.0", "255.255.255.255"),
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ],
        allow_loopback_peers: true,
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "224.0.0.1"), Err(Refusal::Multicast));
    assert_eq!(verdict(&p, "ff02::1"), Err(Refusal::Multicast));
    assert_eq!(verdict(&p, "255.255.255.255"), Err(Refusal::Broadcast));
    assert_eq!(verdict(&p, "0.0.0.0"), Err(Refusal::Unspecified));
    assert_eq!(verdict(&p, "::"), Err(Refusal::Unspecified));
    assert_eq!(verdict(&p, "10.0.0.1"), Ok(()));
}

#[test]
fn own_listener_refused_even_with_loopback_allowed() {
    let cfg = Config {
        allow_loopback_peers: true,
        ..Config::default()
    };
    let p = PeerPolicy::from_config(&cfg, &[sa("127.0.0.1:3478"), sa("[::1]:3478")], &[]);
    assert_eq!(p.check(sa("127.0.0.1:3478")), Err(Refusal::OwnListener));
    assert_eq!(
        p.check(sa("[::ffff:127.0.0.1]:3478")),
        Err(Refusal::OwnListener)
    );
    assert_eq!(p.check(sa("[::127.0.0.1]:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("[::1]:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("127.0.0.1:3479")), Ok(()));
    assert_eq!(p.check(sa("127.0.0.2:3478")), Ok(()));
    // CreatePermission carries no port: the IP itself is fine.
    assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
}

#[test]
fn own_listener_refused_even_when_allowed_by_range() {
    let cfg = Config {
        allowed_peer_ips: vec![range("203.0.113.0", "203.0.113.255")],
        ..Config::default()
    };
    let p = PeerPolicy::from_config(&cfg, &[sa("203.0.113.7:3478")], &[]);
    assert_eq!(p.check(sa("203.0.113.7:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("203.0.113.7:3477")), Ok(()));
}

#[test]
fn configured_listening_ips_count_as_listeners() {
    let cfg = Config {
        listening_ips: vec![ip("198.51.100.4")],
        tls_listening_port: 5350,
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("198.51.100.4:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("198.51.100.4:5350")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("198.51.100.4:5349")), Ok(()));
}

#[test]
fn own_relay_ip_in_port_range_is_admitted() {
    let cfg = Config {
        min_port: 49152,
        max_port: 50000,
        ..Config::default()
    };
    let p = PeerPolicy::from_config(
        &cfg,
        &[sa("10.0.0.2:3478")],
        &[ip("10.0.0.2"), ip("127.0.0.1")],
    );
    assert_eq!(p.check(sa("10.0.0.2:49152")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.2:50000")), Ok(()));
    assert_eq!(p.check(sa("[::ffff:10.0.0.2]:49999")), Ok(()));
    // A loopback relay IP is not exempt (it would expose local services on high ports).
    assert_eq!(p.check(sa("127.0.0.1:49200")), Err(Refusal::Loopback));
    assert_eq!(p.check_ip(ip("127.0.0.1")), Err(Refusal::Loopback));
    assert_eq!(p.check(sa("10.0.0.2:49151")), Err(Refusal::Private));
    assert_eq!(p.check(sa("10.0.0.2:50001")), Err(Refusal::Private));
    assert_eq!(p.check(sa("127.0.0.1:50001")), Err(Refusal::Loopback));
    assert_eq!(p.check(sa("10.0.0.2:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("10.0.0.3:49152")), Err(Refusal::Private));
    assert_eq!(p.check_ip(ip("10.0.0.2")), Ok(()));
    assert_eq!(p.check_ip(ip("10.0.0.3")), Err(Refusal::Private));
}

#[test]
fn own_relay_ip_beats_denied() {
    let cfg = Config {
        denied_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        relay_ips: vec![ip("10.0.0.2")],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("10.0.0.2:60000")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.3:60000")), Err(Refusal::Denied));
}

#[test]
fn external_ip_forms_count_as_own_relays() {
    let cfg = Config {
        external_ips: vec![tern::config::ExternalIp {
            public: ip("203.0.113.9"),
            private: Some(ip("172.16.0.9")),
        }],
        denied_peer_ips: vec![range("203.0.113.0", "203.0.113.255")],
        ..Config::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("172.16.0.9:50000")), Ok(()));
    assert_eq!(p.check(sa("203.0.113.9:50000")), Ok(()));
    assert_eq!(p.check(sa("203.0.113.9:1000")), Err(Refusal::Denied));
}

#[test]
fn refusals_display_for_logs() {
    assert_eq!(
        Refusal::Loopback.to_string(),
        "loopback address (allow-loopback-peers admits it)"
    );
    assert_eq!(
        Refusal::OwnListener.to_string(),
        "one of the server's own listening addresses"
    );
}

#[test]
fn describe_names_the_effective_policy() {
    let cfg = Config {
        allowed_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        denied_peer_ips: vec![range("8.8.8.1", "8.8.8.3")],
        allow_loopback_peers: true,
        ..Config::default()
    };
    let text =
        PeerPolicy::from_config(&cfg, &[sa("127.0.0.1:3478")], &[ip("192.0.2.7")]).describe();
    assert!(text.lines().count() <= 4, "{text}");
    for needle in [
        "127.0.0.1:3478",
        "loopback admitted",
        "allowed-peer-ip (wins over denied): 10.0.0.0/8",
        "denied-peer-ip: 8.8.8.1-8.8.8.3",
        "ports 49152-65535: 192.0.2.7",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let default = policy(&Config::default()).describe();
    assert!(default.contains("loopback refused"), "{default}");
    assert!(
        default.contains("allowed-peer-ip (wins over denied): none"),
        "{default}"
    );
}
