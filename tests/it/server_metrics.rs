//! Prometheus on the real binary (docs/migrating-from-coturn.md, "Metrics"): after relaying
//! ChannelData through a live allocation, a scrape shows live traffic and allocation counts under
//! coturn's names, and the exposition parses with an independent text-format parser.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::metrics::{fetch, find, get, start_with_metrics};
use support::turn_client::TurnClient;
use support::{PASSWORD, REALM, USER};

/// Every coturn metric name tern exports (docs/migrating-from-coturn.md, "Metrics").
const COTURN_NAMES: &[&str] = &[
    "turn_traffic_rcvp",
    "turn_traffic_rcvb",
    "turn_traffic_sentp",
    "turn_traffic_sentb",
    "turn_traffic_peer_rcvp",
    "turn_traffic_peer_rcvb",
    "turn_traffic_peer_sentp",
    "turn_traffic_peer_sentb",
    "turn_total_traffic_rcvp",
    "turn_total_traffic_rcvb",
    "turn_total_traffic_sentp",
    "turn_total_traffic_sentb",
    "turn_total_traffic_peer_rcvp",
    "turn_total_traffic_peer_rcvb",
    "turn_total_traffic_peer_sentp",
    "turn_total_traffic_peer_sentb",
    "turn_total_allocations",
    "stun_binding_request",
    "stun_binding_response",
    "stun_binding_error",
    "turn_packet_processed",
    "turn_packet_dropped",
    "turn_unauthenticated_401_requests",
    "turn_unauthenticated_401_responses",
    "turn_unauthenticated_401_dropped_responses",
];

const PACKETS: u64 = 25;

#[test]
fn a_scrape_shows_live_relayed_traffic_under_coturn_names() {
    let (server, addr) = start_with_metrics(&[]);

    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    let relay = client.allocate().expect("allocate");
    client
        .channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    let mut buf = [0u8; 1500];
    for i in 0..PACKETS {
        let payload = format!("packet {i}");
        client.send_channel(0x4000, payload.as_bytes());
        let (n, from) = peer.recv_from(&mut buf).expect("relayed to the peer");
        assert_eq!(from, relay);
        assert_eq!(&buf[..n], payload.as_bytes());
        peer.send_to(b"echo", relay).expect("peer answers");
        assert_eq!(client.recv_channel(), (0x4000, b"echo".to_vec()));
    }

    // Counters are published once per shard loop turn and per-user traffic once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (body, scrape) = loop {
        let (body, scrape) = fetch(addr);
        let realm = find(&scrape, "turn_traffic_peer_sentp", &[("realm", REALM)]);
        let total = find(&scrape, "turn_total_traffic_peer_sentp", &[]);
        let done = realm.is_some_and(|v| v >= PACKETS as f64)
            && total.is_some_and(|v| v >= PACKETS as f64);
        if done || Instant::now() > deadline {
            break (body, scrape);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let at_least = |name: &str, labels: &[(&str, &str)], min: u64| {
        let v = find(&scrape, name, labels).unwrap_or_else(|| panic!("{name} missing:\n{body}"));
        assert!(
            v >= min as f64,
            "{name}{labels:?} = {v}, want >= {min}:\n{body}"
        );
    };
    at_least("turn_total_traffic_rcvp", &[], PACKETS);
    at_least("turn_total_traffic_peer_sentp", &[], PACKETS);
    at_least("turn_total_traffic_peer_rcvp", &[], PACKETS);
    at_least("turn_total_traffic_sentp", &[], PACKETS);
    at_least("turn_traffic_rcvp", &[("realm", REALM)], PACKETS);
    at_least("turn_traffic_peer_sentp", &[("realm", REALM)], PACKETS);
    at_least("turn_traffic_sentp", &[("realm", REALM)], PACKETS);
    at_least("tern_allocation_setup_seconds_count", &[], 1);
    assert_eq!(
        find(&scrape, "turn_total_allocations", &[("type", "UDP")]),
        Some(1.0),
        "{body}"
    );
    assert!(
        !body.contains("user=\""),
        "user labels only with prometheus-username-labels:\n{body}"
    );
    for name in COTURN_NAMES {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{body}"
        );
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}:\n{body}"
        );
    }

    // The gauge follows the allocation's end.
    client.refresh(0).expect("delete the allocation");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (body, scrape) = fetch(addr);
        if find(&scrape, "turn_total_allocations", &[("type", "UDP")]) == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "allocation gauge stuck:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(get(addr, "/nothing").0, 404);
}

#[test]
fn username_labels_split_traffic_by_user() {
    let (server, addr) = start_with_metrics(&["--prometheus-username-labels"]);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    client.allocate().expect("allocate");
    client
        .channel_bind(0x4001, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    client.send_channel(0x4001, b"hello");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (body, scrape) = fetch(addr);
        let labels = [("realm", REALM), ("user", USER)];
        if find(&scrape, "turn_traffic_peer_sentp", &labels).is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no per-user row:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dropped_input_is_counted_by_reason() {
    let (server, addr) = start_with_metrics(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let mut bad_cookie = [0u8; 20];
    // An Allocate request whose magic cookie is zero (a classic RFC 3489 Binding without the
    // cookie is answered, so a TURN method stands for malformed STUN here).
    bad_cookie[1] = 0x03;
    let datagrams: [&[u8]; 3] = [
        b"\x00\x01\x00",         // shorter than any header
        &bad_cookie,             // STUN without the magic cookie
        b"\x40\x00\x00\x04ping", // ChannelData from a client without allocation
    ];
    for d in datagrams {
        sock.send_to(d, server.udp_addr()).expect("send");
    }
    let want = [
        ("truncated", 1.0),
        ("bad_cookie", 1.0),
        ("no_allocation", 1.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let (body, scrape) = loop {
        let (body, scrape) = fetch(addr);
        let all = want.iter().all(|(reason, n)| {
            find(&scrape, "tern_drops_total", &[("reason", reason)]) == Some(*n)
        });
        if all || Instant::now() > deadline {
            break (body, scrape);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (reason, n) in want {
        assert_eq!(
            find(&scrape, "tern_drops_total", &[("reason", reason)]),
            Some(n),
            "{reason}:\n{body}"
        );
    }
    // Every reason is exported, those not seen at zero.
    assert_eq!(
        find(&scrape, "tern_drops_total", &[("reason", "bandwidth")]),
        Some(0.0),
        "{body}"
    );
    assert!(body.contains("# TYPE tern_drops_total counter"), "{body}");
    // The totals the reasons break down.
    assert_eq!(
        find(&scrape, "tern_malformed_packets_total", &[]),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        find(&scrape, "tern_dropped_packets_total", &[]),
        Some(1.0),
        "{body}"
    );
}

/// Datagrams dropped by the kernel because this server's listener queue was full, summed over
/// the UDP sockets bound to `port` (`/proc/net/udp`, last column).
fn kernel_drops_on_port(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let bound = fields.get(1)?.ends_with(&local);
            bound.then(|| fields.last()?.parse::<u64>().ok()).flatten()
        })
        .sum()
}

#[test]
fn datagrams_the_kernel_drops_at_a_full_listener_are_counted() {
    let (server, addr) = start_with_metrics(&[]);
    let port = server.udp_addr().port();
    assert_eq!(kernel_drops_on_port(port), 0);
    // Stopped, tern reads nothing: a burst far beyond the listener's receive buffer (1 MiB at
    // most here) overflows it, and the kernel counts what it dropped.
    server.signal(libc::SIGSTOP);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("socket");
    for _ in 0..20_000 {
        let _ = sock.send_to(&[0u8; 1000], server.udp_addr());
    }
    let dropped = kernel_drops_on_port(port);
    server.signal(libc::SIGCONT);
    assert!(dropped > 0, "the kernel dropped nothing");
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let (_, scrape) = fetch(addr);
        let seen = find(&scrape, "tern_drops_total", &[("reason", "listener_queue")]);
        if seen == Some(dropped as f64) || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seen, Some(dropped as f64), "{}", server.log());
}
