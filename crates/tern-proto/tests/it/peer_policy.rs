//! Peer-address policy: defaults, IPv6 forms of IPv4 addresses, allowed/denied ranges, the
//! server's own listeners and relays. Addresses are only values here; nothing is sent.

use std::net::{IpAddr, SocketAddr};

use tern_proto::limits::{PeerPolicy, Refusal};
use tern_proto::options::{IpRange, Options};

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

fn policy(cfg: &Options) -> PeerPolicy {
    PeerPolicy::from_options(cfg, &[], &[])
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
    let p = policy(&Options::default());
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
        ("2002:7f00:1::", Refusal::SixToFour),
        ("2002:808:808::1", Refusal::SixToFour),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Refusal::Teredo),
        ("2001::1", Refusal::Teredo),
        ("64:ff9b:1::a00:1", Refusal::Nat64),
        ("64:ff9b:1::808:808", Refusal::Nat64),
        ("100::1", Refusal::Discard),
    ];
    for (addr, refusal) in cases {
        assert_eq!(verdict(&p, addr), Err(refusal), "{addr}");
    }
}

#[test]
fn default_admits_public_addresses() {
    let p = policy(&Options::default());
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

/// 6to4 and local-use NAT64 addresses reach the IPv4 address inside them through a gateway:
/// refused as what they are by default, and once a range admits them the IPv4 address is checked
/// as well, with every rule an IPv4 peer meets.
#[test]
fn gateway_forms_are_admitted_by_range_and_their_ipv4_is_checked() {
    let cfg = Options {
        allowed_peer_ips: vec![
            range("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            range("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"),
        ],
        denied_peer_ips: vec![range("8.8.4.4", "8.8.4.4")],
        ..Options::default()
    };
    let p = policy(&cfg);
    let cases = [
        ("2002:808:808::1", Ok(())),
        ("2002:7f00:1::", Err(Refusal::Loopback)),
        ("2002:a00:1::", Err(Refusal::Private)),
        ("2002:a9fe:a9fe::", Err(Refusal::LinkLocal)),
        ("2002:0:1::", Err(Refusal::Unspecified)),
        ("2002:e000:1::", Err(Refusal::Multicast)),
        ("2002:ffff:ffff::", Err(Refusal::Broadcast)),
        ("2002:808:404::", Err(Refusal::Denied)),
        ("64:ff9b:1::808:808", Ok(())),
        ("64:ff9b:1:abcd::808:808", Ok(())),
        ("64:ff9b:1::7f00:1", Err(Refusal::Loopback)),
        ("64:ff9b:1::a00:1", Err(Refusal::Private)),
        ("64:ff9b:1::a9fe:a9fe", Err(Refusal::LinkLocal)),
        ("64:ff9b:1::1", Err(Refusal::Unspecified)),
        // Not admitted by these ranges.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Err(Refusal::Teredo)),
        ("100::1", Err(Refusal::Discard)),
    ];
    for (addr, want) in cases {
        assert_eq!(verdict(&p, addr), want, "{addr}");
    }
    // An admitted IPv4 address does not admit the 6to4 form of it: the form is its own range.
    let v4_only = Options {
        allowed_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        ..Options::default()
    };
    let p = policy(&v4_only);
    assert_eq!(verdict(&p, "2002:a00:1::"), Err(Refusal::SixToFour));
    assert_eq!(verdict(&p, "64:ff9b:1::a00:1"), Err(Refusal::Nat64));
    // Both admitted: the IPv4 address inside passes its own check.
    let both = Options {
        allowed_peer_ips: vec![
            range("10.0.0.0", "10.255.255.255"),
            range("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ],
        ..Options::default()
    };
    assert_eq!(verdict(&policy(&both), "2002:a00:1::"), Ok(()));
    // Loopback inside 6to4 follows allow-loopback-peers like loopback itself.
    let loopback = Options {
        allow_loopback_peers: true,
        ..cfg.clone()
    };
    assert_eq!(verdict(&policy(&loopback), "2002:7f00:1::"), Ok(()));
}

/// Teredo's embedded addresses are not checked (the client's is its NAT's mapping), and the
/// discard prefix embeds nothing: a range admits them as they are.
#[test]
fn teredo_and_discard_are_admitted_by_range_as_they_are() {
    let cfg = Options {
        allowed_peer_ips: vec![
            range("2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"),
            range("100::", "100::ffff:ffff:ffff:ffff"),
        ],
        ..Options::default()
    };
    let p = policy(&cfg);
    for addr in ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::1", "100::1"] {
        assert_eq!(verdict(&p, addr), Ok(()), "{addr}");
    }
    assert_eq!(verdict(&p, "2002:7f00:1::"), Err(Refusal::SixToFour));
}

/// The listener and TCP rules see the IPv4 address inside an admitted 6to4 address too.
#[test]
fn the_ipv4_inside_6to4_meets_the_listener_and_tcp_rules() {
    let cfg = Options {
        allowed_peer_ips: vec![range("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff")],
        ..Options::default()
    };
    // 203.0.113.10 is 2002:cb00:710a::.
    let p = public_host(&cfg);
    assert_eq!(
        p.check(sa("[2002:cb00:710a::1]:3478")),
        Err(Refusal::OwnListener)
    );
    assert_eq!(p.check(sa("[2002:cb00:710a::1]:10000")), Ok(()));
    assert_eq!(
        p.check_tcp(sa("[2002:cb00:710a::1]:10000")),
        Err(Refusal::OwnAddress)
    );
    assert_eq!(
        p.check_tcp(sa("[2002:7f00:1::]:10000")),
        Err(Refusal::Loopback)
    );
    assert_eq!(p.check_tcp(sa("[2002:808:808::]:10000")), Ok(()));
}

#[test]
fn allow_loopback_peers() {
    let cfg = Options {
        allow_loopback_peers: true,
        ..Options::default()
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
    let cfg = Options {
        allowed_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        ..Options::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "10.0.0.1"), Ok(()));
    assert_eq!(verdict(&p, "10.1.0.0"), Ok(()));
    assert_eq!(verdict(&p, "10.255.255.255"), Ok(()));
    assert_eq!(verdict(&p, "::ffff:10.2.3.4"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.1"), Err(Refusal::Private));
    assert_eq!(verdict(&p, "127.0.0.1"), Err(Refusal::Loopback));

    let slash16 = Options {
        allowed_peer_ips: vec![range("10.0.0.0", "10.0.255.255")],
        ..Options::default()
    };
    let p = policy(&slash16);
    assert_eq!(verdict(&p, "10.0.255.255"), Ok(()));
    assert_eq!(verdict(&p, "10.1.0.0"), Err(Refusal::Private));

    let narrow = Options {
        allowed_peer_ips: vec![range("192.168.1.10", "192.168.1.20")],
        ..Options::default()
    };
    let p = policy(&narrow);
    assert_eq!(verdict(&p, "192.168.1.9"), Err(Refusal::Private));
    assert_eq!(verdict(&p, "192.168.1.10"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.20"), Ok(()));
    assert_eq!(verdict(&p, "192.168.1.21"), Err(Refusal::Private));
}

#[test]
fn allowed_range_admits_loopback_link_local_and_ipv6() {
    let cfg = Options {
        allowed_peer_ips: vec![
            range("127.0.0.1", "127.0.0.1"),
            range("169.254.0.0", "169.254.255.255"),
            range("fd00::", "fd00::ffff"),
        ],
        ..Options::default()
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
    let cfg = Options {
        denied_peer_ips: vec![
            range("8.8.8.0", "8.8.8.255"),
            range("2001:4860::", "2001:4860::ffff"),
        ],
        ..Options::default()
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
    let cfg = Options {
        allowed_peer_ips: vec![range("10.0.0.5", "10.0.0.5"), range("8.8.8.8", "8.8.8.8")],
        denied_peer_ips: vec![
            range("10.0.0.0", "10.255.255.255"),
            range("8.8.8.0", "8.8.8.255"),
        ],
        ..Options::default()
    };
    let p = policy(&cfg);
    assert_eq!(verdict(&p, "10.0.0.5"), Ok(()));
    assert_eq!(verdict(&p, "10.0.0.6"), Err(Refusal::Denied));
    assert_eq!(verdict(&p, "8.8.8.8"), Ok(()));
    assert_eq!(verdict(&p, "8.8.8.9"), Err(Refusal::Denied));
}

#[test]
fn multicast_and_unspecified_never_admitted() {
    let cfg = Options {
        allowed_peer_ips: vec![
            range("0.0.0.0", "255.255.255.255"),
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ],
        allow_loopback_peers: true,
        ..Options::default()
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
    let cfg = Options {
        allow_loopback_peers: true,
        ..Options::default()
    };
    let p = PeerPolicy::from_options(&cfg, &[sa("127.0.0.1:3478"), sa("[::1]:3478")], &[]);
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
    let cfg = Options {
        allowed_peer_ips: vec![range("203.0.113.0", "203.0.113.255")],
        ..Options::default()
    };
    let p = PeerPolicy::from_options(&cfg, &[sa("203.0.113.7:3478")], &[]);
    assert_eq!(p.check(sa("203.0.113.7:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("203.0.113.7:3477")), Ok(()));
}

#[test]
fn configured_listening_ips_count_as_listeners() {
    let cfg = Options {
        listening_ips: vec![ip("198.51.100.4")],
        tls_listening_port: 5350,
        ..Options::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("198.51.100.4:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("198.51.100.4:5350")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("198.51.100.4:5349")), Ok(()));
}

#[test]
fn own_relay_ip_in_port_range_is_admitted() {
    let cfg = Options {
        min_port: 49152,
        max_port: 50000,
        ..Options::default()
    };
    let p = PeerPolicy::from_options(
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
    let cfg = Options {
        denied_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        relay_ips: vec![ip("10.0.0.2")],
        ..Options::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("10.0.0.2:60000")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.3:60000")), Err(Refusal::Denied));
}

#[test]
fn external_ip_forms_count_as_own_relays() {
    let cfg = Options {
        external_ips: vec![tern_proto::options::ExternalIp {
            public: ip("203.0.113.9"),
            private: Some(ip("172.16.0.9")),
        }],
        denied_peer_ips: vec![range("203.0.113.0", "203.0.113.255")],
        ..Options::default()
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
    let cfg = Options {
        allowed_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        denied_peer_ips: vec![range("8.8.8.1", "8.8.8.3")],
        allow_loopback_peers: true,
        ..Options::default()
    };
    let text =
        PeerPolicy::from_options(&cfg, &[sa("127.0.0.1:3478")], &[ip("192.0.2.7")]).describe();
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
    let host = PeerPolicy::from_options(&cfg, &[sa("10.0.0.10:3478")], &[ip("10.0.0.10")])
        .with_interfaces(&[ip("127.0.0.1"), ip("10.0.0.10"), ip("203.0.113.10")])
        .with_mapped(&[ip("10.0.0.10")])
        .describe();
    assert!(host.lines().count() <= 4, "{host}");
    for needle in [
        "on every address of this host the ports 3478, 5349",
        "this host behind external-ip admitted over UDP on any other port: 10.0.0.10",
        "TCP relaying (RFC 6062) into an address of this host refused unless an allowed-peer-ip \
         admits it: 10.0.0.10, 127.0.0.1, 203.0.113.10",
    ] {
        assert!(host.contains(needle), "{needle:?} missing from:\n{host}");
    }
    let metrics = Options {
        prometheus: true,
        ..Options::default()
    };
    let text = policy(&metrics).describe();
    assert!(
        text.contains("and the metrics port 9641 (also on loopback)"),
        "{text}"
    );
    let default = policy(&Options::default()).describe();
    assert!(!default.contains("metrics port"), "{default}");
    for needle in [
        "6to4 2002::/16",
        "Teredo 2001::/32",
        "64:ff9b:1::/48",
        "100::/64",
        "the IPv4 address inside an admitted 6to4 or NAT64 address is checked as well",
    ] {
        assert!(
            default.contains(needle),
            "{needle:?} missing from:\n{default}"
        );
    }
    assert!(default.contains("loopback refused"), "{default}");
    assert!(
        default.contains("allowed-peer-ip (wins over denied): none"),
        "{default}"
    );
}

/// A VM with 203.0.113.10 on its interface (topology a), listening on it and on loopback.
fn public_host(cfg: &Options) -> PeerPolicy {
    let host = [ip("127.0.0.1"), ip("203.0.113.10")];
    let listeners = [sa("127.0.0.1:3478"), sa("203.0.113.10:3478")];
    PeerPolicy::from_options(cfg, &listeners, &host).with_interfaces(&host)
}

#[test]
fn the_hosts_public_address_is_an_ordinary_udp_peer_but_refused_over_tcp() {
    let p = public_host(&Options::default());
    // An SFU beside the relay.
    assert_eq!(p.check(sa("203.0.113.10:10000")), Ok(()));
    assert_eq!(p.check_ip(ip("203.0.113.10")), Ok(()));
    // Relay to relay.
    assert_eq!(p.check(sa("203.0.113.10:50000")), Ok(()));
    assert_eq!(
        p.check_tcp(sa("203.0.113.10:5432")),
        Err(Refusal::OwnAddress)
    );
    assert_eq!(
        p.check_tcp(sa("[::ffff:203.0.113.10]:5432")),
        Err(Refusal::OwnAddress)
    );
    assert_eq!(
        p.check_tcp(sa("203.0.113.10:50000")),
        Err(Refusal::OwnAddress),
        "over TCP, relay addresses are this host like any other"
    );
    // Not this host: TCP is judged like UDP.
    assert_eq!(p.check_tcp(sa("203.0.113.11:5432")), Ok(()));
    assert_eq!(p.check_tcp(sa("10.0.0.1:5432")), Err(Refusal::Private));
}

#[test]
fn allowed_peer_ip_admits_tcp_into_the_host() {
    let cfg = Options {
        allowed_peer_ips: vec![range("203.0.113.10", "203.0.113.10")],
        ..Options::default()
    };
    let p = public_host(&cfg);
    assert_eq!(p.check_tcp(sa("203.0.113.10:5432")), Ok(()));
    assert_eq!(
        p.check_tcp(sa("203.0.113.10:3478")),
        Err(Refusal::OwnListener)
    );
    let wide = Options {
        allowed_peer_ips: vec![range("203.0.113.0", "203.0.113.255")],
        ..Options::default()
    };
    assert_eq!(public_host(&wide).check_tcp(sa("203.0.113.10:22")), Ok(()));
}

#[test]
fn loopback_over_tcp_follows_allow_loopback_peers() {
    let p = public_host(&Options::default());
    assert_eq!(p.check_tcp(sa("127.0.0.1:5432")), Err(Refusal::Loopback));
    let open = Options {
        allow_loopback_peers: true,
        ..Options::default()
    };
    let p = public_host(&open);
    assert_eq!(p.check_tcp(sa("127.0.0.1:5432")), Ok(()));
    assert_eq!(p.check_tcp(sa("127.0.0.1:3478")), Err(Refusal::OwnListener));
}

#[test]
fn listener_ports_are_refused_on_every_address_of_the_host() {
    // A second public address the server does not listen on still reaches its wildcard-bound
    // neighbours, but not tern's own ports.
    let p = public_host(&Options::default()).with_interfaces(&[ip("198.51.100.7")]);
    for peer in [
        "198.51.100.7:3478",
        "203.0.113.10:5349",
        "[::ffff:198.51.100.7]:3478",
    ] {
        assert_eq!(p.check(sa(peer)), Err(Refusal::OwnListener), "{peer}");
        assert_eq!(p.check_tcp(sa(peer)), Err(Refusal::OwnListener), "{peer}");
    }
    assert_eq!(p.check(sa("198.51.100.7:10000")), Ok(()));
    assert_eq!(
        p.check_tcp(sa("198.51.100.7:10000")),
        Err(Refusal::OwnAddress)
    );
    assert_eq!(
        p.check(sa("198.51.100.8:3478")),
        Ok(()),
        "another host's port 3478"
    );
}

#[test]
fn the_metrics_port_is_refused_on_every_address_of_the_host_and_loopback() {
    let cfg = Options {
        prometheus: true,
        prometheus_port: 9641,
        allow_loopback_peers: true,
        allowed_peer_ips: vec![range("203.0.113.10", "203.0.113.10")],
        ..Options::default()
    };
    let p = public_host(&cfg);
    for peer in [
        "203.0.113.10:9641",
        "127.0.0.1:9641",
        "127.0.0.2:9641",
        "[::1]:9641",
    ] {
        assert_eq!(p.check(sa(peer)), Err(Refusal::OwnListener), "{peer}");
        assert_eq!(p.check_tcp(sa(peer)), Err(Refusal::OwnListener), "{peer}");
    }
    assert_eq!(p.check(sa("198.51.100.8:9641")), Ok(()));
    let off = Options {
        prometheus: false,
        ..cfg
    };
    assert_eq!(public_host(&off).check_tcp(sa("127.0.0.1:9641")), Ok(()));
}

#[test]
fn the_private_address_behind_a_nat_mapping_is_this_host_over_udp() {
    let cfg = Options {
        prometheus: true,
        denied_peer_ips: vec![range("10.0.0.0", "10.255.255.255")],
        ..Options::default()
    };
    let host = [ip("127.0.0.1"), ip("10.0.0.10")];
    let p = PeerPolicy::from_options(&cfg, &[sa("10.0.0.10:3478")], &host)
        .with_interfaces(&host)
        .with_mapped(&[ip("10.0.0.10")]);
    assert_eq!(p.check(sa("10.0.0.10:10000")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.10:1000")), Ok(()));
    assert_eq!(p.check_ip(ip("10.0.0.10")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.10:3478")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("10.0.0.10:9641")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sa("10.0.0.11:10000")), Err(Refusal::Denied));
    assert_eq!(p.check_tcp(sa("10.0.0.10:10000")), Err(Refusal::OwnAddress));
    // Without the mapping, the same address is an ordinary private one outside the relay ports.
    let unmapped = PeerPolicy::from_options(&cfg, &[sa("10.0.0.10:3478")], &host);
    assert_eq!(unmapped.check(sa("10.0.0.10:10000")), Err(Refusal::Denied));
    assert_eq!(unmapped.check(sa("10.0.0.10:50000")), Ok(()));
}

#[test]
fn a_loopback_mapping_opens_nothing() {
    let host = [ip("127.0.0.1")];
    let p = PeerPolicy::from_options(&Options::default(), &[sa("127.0.0.1:3478")], &host)
        .with_mapped(&host);
    assert_eq!(p.check(sa("127.0.0.1:10000")), Err(Refusal::Loopback));
    assert_eq!(p.check_ip(ip("127.0.0.1")), Err(Refusal::Loopback));
}

#[test]
fn the_private_side_of_public_slash_private_is_mapped_without_settings() {
    let cfg = Options {
        external_ips: vec![tern_proto::options::ExternalIp {
            public: ip("203.0.113.9"),
            private: Some(ip("172.16.0.9")),
        }],
        ..Options::default()
    };
    let p = policy(&cfg);
    assert_eq!(p.check(sa("172.16.0.9:10000")), Ok(()));
    assert_eq!(
        p.check_tcp(sa("172.16.0.9:10000")),
        Err(Refusal::OwnAddress)
    );
    assert_eq!(
        p.check_tcp(sa("203.0.113.9:10000")),
        Err(Refusal::OwnAddress)
    );
}

#[test]
fn own_address_refusal_says_what_admits_it() {
    assert_eq!(
        Refusal::OwnAddress.to_string(),
        "an address of this host, refused for TCP relaying (an allowed-peer-ip range admits it)"
    );
}
