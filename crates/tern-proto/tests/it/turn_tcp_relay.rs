//! RFC 6062 in the sans-IO core on a virtual clock: TCP allocations only over streams (§5.1),
//! Connect answered once the engine reports (§5.2), 446 for a second connection to one peer,
//! ConnectionAttempt only with a permission (§5.3), the 30-second ConnectionBind deadline,
//! ConnectionBind splicing a data connection (§5.4), and connections closed with the allocation.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::turn_harness::*;
use tern_proto::options::{ExternalIp, IpRange, Options};
use tern_proto::stun::{attr, Class, Method};
use tern_proto::turn::{connection_shard, ConnectionId, EventKind, Settings, Shard, Shared, Via};

const TCP: u8 = 6;

fn tcp_allocation(h: &mut Harness, c: &mut TestClient) -> SocketAddr {
    let out = c.request(h, Method::ALLOCATE, &|b| {
        b.add_raw(attr::REQUESTED_TRANSPORT, &[TCP, 0, 0, 0])
    });
    assert!(is_success(&out), "{:?}", out.error_code());
    out.message()
        .xor_address(attr::XOR_RELAYED_ADDRESS)
        .unwrap()
        .unwrap()
}

fn connect(h: &mut Harness, c: &mut TestClient, peer: SocketAddr) -> Out {
    c.request(h, Method::CONNECT, &move |b| {
        b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
    })
}

fn connection_bind(h: &mut Harness, c: &mut TestClient, id: ConnectionId) -> Out {
    c.request(h, Method::CONNECTION_BIND, &move |b| {
        b.add_u32(attr::CONNECTION_ID, id.0)
    })
}

fn config_with_peers() -> Options {
    Options {
        allowed_peer_ips: vec![tern_proto::options::IpRange {
            start: ip("198.51.100.0"),
            end: ip("198.51.100.255"),
        }],
        ..config()
    }
}

#[test]
fn tcp_allocations_only_over_streams_and_only_when_enabled() {
    let mut h = Harness::new(config());
    let mut udp = TestClient::new("203.0.113.5:40000");
    let out = udp.request(&mut h, Method::ALLOCATE, &|b| {
        b.add_raw(attr::REQUESTED_TRANSPORT, &[TCP, 0, 0, 0])
    });
    assert_eq!(code(&out), 400);
    let mut tcp = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut tcp);
    assert_eq!(h.io.tcp_binds.len(), 1);
    assert!(h.io.binds.is_empty());
    // Channels do not exist on TCP allocations.
    let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    assert_eq!(code(&tcp.bind(&mut h, 0x4000, peer)), 400);

    let mut h = Harness::new(Options {
        no_tcp_relay: true,
        ..config()
    });
    let mut tcp = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    let out = tcp.request(&mut h, Method::ALLOCATE, &|b| {
        b.add_raw(attr::REQUESTED_TRANSPORT, &[TCP, 0, 0, 0])
    });
    assert_eq!(code(&out), 442);
}

#[test]
fn connect_is_answered_when_the_engine_reports() {
    let mut h = Harness::new(config_with_peers());
    let mut ctl = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut ctl);
    let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    assert_eq!(connect(&mut h, &mut ctl, peer), Out::Nothing);
    let (id, relay, to) = h.io.connects[0];
    assert_eq!(to, peer);
    assert_eq!(relay, h.io.tcp_binds[0].1.id);
    assert_eq!(code(&connect(&mut h, &mut ctl, peer)), 446);

    let answer = h.connected(id, true);
    let msg = answer.message();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::CONNECT, Class::Success)
    );
    assert_eq!(msg.connection_id().unwrap().unwrap(), id.0);
    msg.verify_integrity(&ctl.key)
        .expect("signed with the client's key");

    let mut data = TestClient::with(tcp_client("203.0.113.5:40002", 2), USER, PASSWORD);
    data.nonce = ctl.nonce.clone();
    assert!(is_success(&connection_bind(&mut h, &mut data, id)));
    assert_eq!(h.io.splices, vec![(id, Via::Stream(2))]);
    let mut again = TestClient::with(tcp_client("203.0.113.5:40003", 3), USER, PASSWORD);
    assert_eq!(code(&connection_bind(&mut h, &mut again, id)), 400);
}

#[test]
fn a_failed_connect_is_447_and_a_refused_peer_403() {
    let mut h = Harness::new(config_with_peers());
    let mut ctl = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut ctl);
    let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    connect(&mut h, &mut ctl, peer);
    let (id, _, _) = h.io.connects[0];
    let answer = h.connected(id, false);
    assert_eq!(answer.error_code(), Some(447));
    // Forgotten: the same peer can be tried again.
    assert_eq!(connect(&mut h, &mut ctl, peer), Out::Nothing);
    let private: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    assert_eq!(code(&connect(&mut h, &mut ctl, private)), 403);
}

#[test]
fn peer_connections_need_a_permission_and_wait_30_seconds_for_a_bind() {
    let mut h = Harness::new(config_with_peers());
    let mut ctl = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut ctl);
    let relay = h.io.tcp_binds[0].1.id;
    let peer: SocketAddr = "198.51.100.7:6000".parse().unwrap();
    assert!(h.peer_connects(relay, peer).is_none());
    assert!(is_success(&ctl.permit(&mut h, peer)));
    let (id, attempt) = h.peer_connects(relay, peer).expect("announced");
    assert_eq!(
        attempt,
        Out::Client {
            via: Via::Stream(1),
            to: "203.0.113.5:40001".parse().unwrap(),
            bytes: attempt.client_bytes().to_vec(),
        }
    );
    let msg = attempt.message();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(msg.connection_id().unwrap().unwrap(), id.0);
    assert_eq!(
        msg.xor_address(attr::XOR_PEER_ADDRESS).unwrap().unwrap(),
        peer
    );
    h.advance(29);
    assert!(h.io.closed_connections.is_empty());
    h.advance(3);
    assert_eq!(h.io.closed_connections, vec![id]);
    let mut data = TestClient::with(tcp_client("203.0.113.5:40002", 2), USER, PASSWORD);
    assert_eq!(code(&connection_bind(&mut h, &mut data, id)), 400);
}

#[test]
fn ending_the_allocation_closes_its_connections() {
    let mut h = Harness::new(config_with_peers());
    let mut ctl = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut ctl);
    let relay = h.io.tcp_binds[0].1.id;
    connect(&mut h, &mut ctl, "198.51.100.7:5000".parse().unwrap());
    let (first, _, _) = h.io.connects[0];
    h.connected(first, true);
    let peer: SocketAddr = "198.51.100.8:6000".parse().unwrap();
    ctl.permit(&mut h, peer);
    let (second, _) = h.peer_connects(relay, peer).unwrap();
    assert_eq!(h.shard.tcp_connection_count(), 2);
    assert!(is_success(&ctl.refresh(&mut h, Some(0))));
    let mut closed = h.io.closed_connections.clone();
    closed.sort_by_key(|c| c.0);
    let mut want = vec![first, second];
    want.sort_by_key(|c| c.0);
    assert_eq!(closed, want);
    assert_eq!(h.io.closed, vec![relay]);
    assert_eq!(h.shard.tcp_connection_count(), 0);
}

#[test]
fn connection_ids_name_their_shard() {
    let settings =
        Arc::new(Settings::from_options(&config_with_peers(), &listeners(), &[]).unwrap());
    let mut h = Harness::new(config_with_peers());
    h.shard = Shard::new(settings, Arc::new(Shared::new([9; 32])), 3);
    let mut ctl = TestClient::with(tcp_client("203.0.113.5:40001", 1), USER, PASSWORD);
    tcp_allocation(&mut h, &mut ctl);
    for port in 5000..5010 {
        connect(&mut h, &mut ctl, SocketAddr::new(ip("198.51.100.7"), port));
    }
    assert_eq!(h.io.connects.len(), 10);
    for (id, _, _) in &h.io.connects {
        assert_eq!(connection_shard(*id), 3);
    }
}

/// The events the shard reported since the last call.
fn events(h: &mut Harness) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    h.shard.drain_events(&mut |e| kinds.push(e.kind));
    kinds
}

/// A cloud VM: 10.0.0.10 on the interface behind a 1:1 NAT from 203.0.113.10.
fn nat_host(cfg: Options) -> Harness {
    let cfg = Options {
        external_ips: vec![ExternalIp {
            public: ip("203.0.113.10"),
            private: None,
        }],
        ..cfg
    };
    Harness::on_host(cfg, &["127.0.0.1", "10.0.0.10"])
}

#[test]
fn a_connect_into_this_host_is_refused_and_reported_once_per_allocation() {
    let mut h = nat_host(config_with_peers());
    let mut ctl = TestClient::with(tcp_client("198.51.100.1:40001", 1), USER, PASSWORD);
    ctl.client.local = "10.0.0.10:3478".parse().unwrap();
    tcp_allocation(&mut h, &mut ctl);
    events(&mut h);
    let database: SocketAddr = "203.0.113.10:5432".parse().unwrap();
    assert_eq!(code(&connect(&mut h, &mut ctl, database)), 403);
    assert_eq!(
        events(&mut h),
        [EventKind::TcpOwnAddressRefused {
            named: database,
            peer: "10.0.0.10:5432".parse().unwrap(),
        }]
    );
    let private: SocketAddr = "10.0.0.10:22".parse().unwrap();
    assert_eq!(code(&connect(&mut h, &mut ctl, private)), 403);
    assert_eq!(events(&mut h), [], "reported once per allocation");
    // Relay addresses are this host too: no TCP relaying between allocations by default.
    let relay: SocketAddr = "203.0.113.10:50000".parse().unwrap();
    assert_eq!(code(&connect(&mut h, &mut ctl, relay)), 403);
    assert!(h.io.connects.is_empty());

    let mut other = TestClient::with(tcp_client("198.51.100.2:40001", 2), USER, PASSWORD);
    other.client.local = "10.0.0.10:3478".parse().unwrap();
    tcp_allocation(&mut h, &mut other);
    events(&mut h);
    assert_eq!(code(&connect(&mut h, &mut other, database)), 403);
    assert_eq!(
        events(&mut h).len(),
        1,
        "another allocation reports its own"
    );
}

#[test]
fn allowed_peer_ip_admits_tcp_into_this_host_but_never_its_listeners() {
    let mut cfg = config_with_peers();
    cfg.allowed_peer_ips.push(IpRange {
        start: ip("10.0.0.10"),
        end: ip("10.0.0.10"),
    });
    let mut h = nat_host(cfg);
    let mut ctl = TestClient::with(tcp_client("198.51.100.1:40001", 1), USER, PASSWORD);
    ctl.client.local = "10.0.0.10:3478".parse().unwrap();
    tcp_allocation(&mut h, &mut ctl);
    let database: SocketAddr = "203.0.113.10:5432".parse().unwrap();
    assert_eq!(connect(&mut h, &mut ctl, database), Out::Nothing);
    assert_eq!(h.io.connects[0].2, "10.0.0.10:5432".parse().unwrap());
    let listener: SocketAddr = "203.0.113.10:3478".parse().unwrap();
    assert_eq!(code(&connect(&mut h, &mut ctl, listener)), 403);
}
