//! The core's side of the fast path (docs/fast-path.md): which channels it offers the engine,
//! until when, when it takes them back, and how the traffic the engine relayed comes back into
//! the allocation's counters, events and per-user traffic.

use std::net::SocketAddr;
use std::time::Duration;

use crate::turn_harness::*;
use tern_proto::options::Options;
use tern_proto::stun::{attr, Method};
use tern_proto::turn::{Command, EventKind, FastChannel, FastId, FastTraffic, Traffic};

const PEER: &str = "198.51.100.7:9000";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

/// A shard with the fast path on, and one UDP client with an allocation.
fn setup(cfg: Options) -> (Harness, TestClient, SocketAddr) {
    let mut h = Harness::new(cfg);
    h.shard.set_fast_path(true);
    let mut c = TestClient::new("203.0.113.5:40000");
    let relayed = c.allocated(&mut h);
    (h, c, relayed)
}

/// The routes of the FastOpen (`open`) or FastClose commands the shard left, in order.
fn routes(h: &Harness, open: bool) -> Vec<FastChannel> {
    h.io.fast
        .iter()
        .filter_map(|c| match (c, open) {
            (Command::FastOpen(route), true) | (Command::FastClose(route), false) => Some(*route),
            _ => None,
        })
        .collect()
}

fn opened(h: &Harness) -> Vec<FastChannel> {
    routes(h, true)
}

fn closed(h: &Harness) -> Vec<FastChannel> {
    routes(h, false)
}

fn refresh(c: &mut TestClient, h: &mut Harness, lifetime: u32) {
    let out = c.request(h, Method::REFRESH, &move |b| {
        b.add_u32(attr::LIFETIME, lifetime)
    });
    assert!(is_success(&out), "{:?}", out.error_code());
}

fn deleted_events(h: &mut Harness) -> Vec<Traffic> {
    let mut deleted = Vec::new();
    h.shard.drain_events(&mut |e| {
        if e.kind == EventKind::AllocationDeleted {
            deleted.push(e.traffic);
        }
    });
    deleted
}

#[test]
fn a_bound_channel_is_offered_until_its_permission_ends_and_refreshed_by_create_permission() {
    let (mut h, mut c, relayed) = setup(config());
    let bound_at = h.now;
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    let routes = opened(&h);
    assert_eq!(routes.len(), 1, "{:?}", h.io.fast);
    let route = routes[0];
    assert_eq!(route.number, 0x4001);
    assert_eq!(route.peer, peer());
    assert_eq!(route.client, c.client.remote);
    assert_eq!(route.server, c.client.local);
    assert_eq!(route.relay.port(), relayed.port());
    // The channel lasts 600 s, its permission 300 s (RFC 8656 §9, §11): the route ends with
    // the earlier.
    assert_eq!(route.until, bound_at + Duration::from_secs(300));

    h.advance(100);
    assert!(is_success(&c.permit(&mut h, peer())));
    let routes = opened(&h);
    assert_eq!(routes.len(), 2, "{:?}", h.io.fast);
    assert_eq!(routes[1].until, h.now + Duration::from_secs(300));
    assert!(closed(&h).is_empty());
}

#[test]
fn an_expired_permission_takes_the_route_back() {
    let (mut h, mut c, _) = setup(config());
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    let route = opened(&h)[0];
    h.advance(299);
    assert!(closed(&h).is_empty());
    h.advance(3);
    assert_eq!(closed(&h), vec![route]);
}

#[test]
fn with_the_fast_path_off_the_core_offers_nothing() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("203.0.113.5:40000");
    c.allocated(&mut h);
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    refresh(&mut c, &mut h, 0);
    assert!(h.io.fast.is_empty(), "{:?}", h.io.fast);
}

#[test]
fn bandwidth_limited_allocations_and_stream_clients_stay_in_user_space() {
    let limited = Options {
        max_bps: 100_000,
        ..config()
    };
    let (mut h, mut c, _) = setup(limited);
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    assert!(h.io.fast.is_empty(), "max-bps: {:?}", h.io.fast);

    let mut h = Harness::new(config());
    h.shard.set_fast_path(true);
    let mut c = TestClient::with(tcp_client("203.0.113.5:40000", 7), USER, PASSWORD);
    c.allocated(&mut h);
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    assert!(h.io.fast.is_empty(), "TCP client: {:?}", h.io.fast);
}

#[test]
fn the_deletion_event_waits_for_the_last_fast_path_counts() {
    let (mut h, mut c, _) = setup(config());
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    let route = opened(&h)[0];
    let id = route.alloc;
    let first = FastTraffic {
        to_peer_packets: 3,
        to_peer_bytes: 300,
        to_client_packets: 2,
        to_client_bytes: 100,
    };
    h.shard.fast_traffic(id, first);

    refresh(&mut c, &mut h, 0);
    assert_eq!(closed(&h), vec![route]);
    assert_eq!(h.io.fast.last(), Some(&Command::FastForget(id)));
    assert!(deleted_events(&mut h).is_empty(), "the event waits");

    let last = FastTraffic {
        to_peer_packets: 1,
        to_peer_bytes: 50,
        ..FastTraffic::default()
    };
    h.shard.fast_forgotten(id, last);
    let expected = Traffic {
        rcvp: 4,
        rcvb: 350 + 4 * 4,
        sentp: 2,
        sentb: 100 + 2 * 4,
        peer_rcvp: 2,
        peer_rcvb: 100,
        peer_sentp: 4,
        peer_sentb: 350,
    };
    assert_eq!(deleted_events(&mut h), vec![expected]);
    let mut users = Traffic::default();
    h.shard.drain_user_traffic(&mut |_, user, t| {
        assert_eq!(user, USER);
        users.add(&t);
    });
    assert_eq!(users, expected);
    let counters = h.shard.counters();
    assert_eq!(counters.fast_to_peer_packets, 4);
    assert_eq!(counters.fast_to_peer_bytes, 350);
    assert_eq!(counters.fast_to_client_packets, 2);
    assert_eq!(counters.fast_to_client_bytes, 100);
    // The unsigned and the signed Allocate, the ChannelBind and the Refresh: no data.
    assert_eq!(counters.client_rx_packets, 4, "the requests only");
}

#[test]
fn counts_for_an_allocation_that_is_gone_do_not_land_on_its_successor() {
    let (mut h, mut c, _) = setup(config());
    assert!(is_success(&c.bind(&mut h, 0x4001, peer())));
    let old: FastId = opened(&h)[0].alloc;
    refresh(&mut c, &mut h, 0);
    h.shard.fast_forgotten(old, FastTraffic::default());
    deleted_events(&mut h);

    // The same client allocates again: the slot is reused with a new generation.
    c.allocated(&mut h);
    assert!(is_success(&c.bind(&mut h, 0x4002, peer())));
    let new = opened(&h).last().unwrap().alloc;
    assert_ne!(new, old);
    let stray = FastTraffic {
        to_peer_packets: 9,
        to_peer_bytes: 900,
        ..FastTraffic::default()
    };
    h.shard.fast_traffic(old, stray);
    refresh(&mut c, &mut h, 0);
    h.shard.fast_forgotten(new, FastTraffic::default());
    let deleted = deleted_events(&mut h);
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].rcvp, 0, "{:?}", deleted[0]);
}
