//! The limits wired into the TURN core, on a virtual clock: `user-quota` / `total-quota` (486),
//! the file-descriptor ceiling (508), `max-bps` per allocation and direction, the per-source
//! limit on answers to unauthenticated senders, and `stun-only` / `no-stun` / `secure-stun`.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::turn_harness::*;
use tern_proto::options::{Options, User, UserSecret};
use tern_proto::stun::{attr, Class, Method};
use tern_proto::turn::{BindError, DropReason, Settings, Shared, Transport, Via};

const BOB: &str = "bob";
const BOB_PASSWORD: &str = "hunter2";

fn two_users(mut cfg: Options) -> Options {
    cfg.users.push(User {
        name: BOB.into(),
        secret: UserSecret::Password(BOB_PASSWORD.into()),
    });
    cfg
}

fn shared_for(cfg: &Options) -> Arc<Shared> {
    Arc::new(Shared::from_options([3; 32], cfg, Instant::now()))
}

fn alice(port: u16) -> TestClient {
    TestClient::new(&format!("192.0.2.10:{port}"))
}

fn bob(port: u16) -> TestClient {
    TestClient::with(
        udp_client(&format!("198.51.100.20:{port}")),
        BOB,
        BOB_PASSWORD,
    )
}

#[test]
fn user_quota_refuses_the_third_allocation_of_one_user_only() {
    let cfg = two_users(Options {
        user_quota: 2,
        ..config()
    });
    let shared = shared_for(&cfg);
    let mut h = Harness::with_shared(cfg, Arc::clone(&shared), 0);
    let (mut a1, mut a2, mut a3) = (alice(1001), alice(1002), alice(1003));
    a1.allocated(&mut h);
    a2.allocated(&mut h);
    assert_eq!(code(&a3.allocate(&mut h)), 486);
    assert_eq!(shared.quotas().user_allocations(USER), 2);
    bob(2001).allocated(&mut h);
    // Deallocating one gives its place back.
    assert!(is_success(&a1.refresh(&mut h, Some(0))));
    a3.allocated(&mut h);
    assert_eq!(code(&alice(1004).allocate(&mut h)), 486);
    assert_eq!(h.shard.drops().quota_refused, 2);
    assert_eq!(shared.quotas().allocations(), 3);
}

#[test]
fn total_quota_refuses_everyone_until_an_allocation_expires() {
    let cfg = two_users(Options {
        total_quota: 2,
        ..config()
    });
    let shared = shared_for(&cfg);
    let mut h = Harness::with_shared(cfg, Arc::clone(&shared), 0);
    alice(1001).allocated(&mut h);
    let mut b = bob(2001);
    b.allocated(&mut h);
    let mut late = bob(2002);
    assert_eq!(code(&late.allocate(&mut h)), 486);
    assert_eq!(code(&alice(1002).allocate(&mut h)), 486);
    // Both allocations expire (600 s default lifetime) and the wheel gives their quota back.
    b.refresh(&mut h, Some(600));
    h.advance(601);
    assert_eq!(shared.quotas().allocations(), 0);
    late.allocated(&mut h);
    assert_eq!(shared.quotas().allocations(), 1);
}

#[test]
fn quotas_hold_across_shards_sharing_one_state() {
    let cfg = Options {
        user_quota: 2,
        ..config()
    };
    let shared = shared_for(&cfg);
    let mut h0 = Harness::with_shared(cfg.clone(), Arc::clone(&shared), 0);
    let mut h1 = Harness::with_shared(cfg, Arc::clone(&shared), 1);
    alice(1001).allocated(&mut h0);
    alice(1002).allocated(&mut h1);
    assert_eq!(code(&alice(1003).allocate(&mut h1)), 486);
    assert_eq!(code(&alice(1004).allocate(&mut h0)), 486);
}

#[test]
fn the_descriptor_ceiling_answers_508() {
    let cfg = config();
    let shared = shared_for(&cfg);
    shared.quotas().set_max_allocations(1);
    let mut h = Harness::with_shared(cfg, Arc::clone(&shared), 0);
    alice(1001).allocated(&mut h);
    assert_eq!(code(&alice(1002).allocate(&mut h)), 508);
}

#[test]
fn a_failed_bind_and_shutdown_give_the_quota_back() {
    let cfg = Options {
        user_quota: 1,
        ..config()
    };
    let shared = shared_for(&cfg);
    let mut h = Harness::with_shared(cfg, Arc::clone(&shared), 0);
    h.io.fail = Some(BindError::Exhausted);
    assert_eq!(code(&alice(1001).allocate(&mut h)), 508);
    assert_eq!(shared.quotas().allocations(), 0);
    h.io.fail = None;
    alice(1002).allocated(&mut h);
    assert_eq!(shared.quotas().allocations(), 1);
    h.shard.shutdown();
    h.run_commands();
    assert_eq!(shared.quotas().allocations(), 0);
    assert_eq!(h.shard.allocation_count(), 0);
}

#[test]
fn a_closed_stream_gives_the_quota_back() {
    let cfg = Options {
        user_quota: 1,
        ..config()
    };
    let shared = shared_for(&cfg);
    let mut h = Harness::with_shared(cfg, Arc::clone(&shared), 0);
    let mut tcp = udp_client("192.0.2.10:1001");
    tcp.via = Via::Stream(7);
    tcp.transport = Transport::Tcp;
    TestClient::with(tcp, USER, PASSWORD).allocated(&mut h);
    assert_eq!(code(&alice(1002).allocate(&mut h)), 486);
    h.shard.handle_stream_closed(Via::Stream(7));
    h.run_commands();
    alice(1003).allocated(&mut h);
}

/// An allocation with channel 0x4000 bound to `peer`; returns its relay id.
fn channel_to(h: &mut Harness, c: &mut TestClient, peer: SocketAddr) -> tern_proto::turn::RelayId {
    let relayed = c.allocated(h);
    assert!(is_success(&c.bind(h, 0x4000, peer)));
    relay_id_of(h, relayed)
}

fn channel_data(len: usize) -> Vec<u8> {
    let mut p = vec![0x40, 0x00, (len >> 8) as u8, len as u8];
    p.resize(4 + len, 0xAB);
    p
}

/// Offers `rate` bytes/s in `size`-byte packets for `secs` seconds of virtual time in both
/// directions; returns the payload bytes that got through (to the peer, to the client).
fn offer(
    h: &mut Harness,
    c: &TestClient,
    relay: tern_proto::turn::RelayId,
    peer: SocketAddr,
    rate: u64,
    size: usize,
    secs: u64,
) -> (u64, u64) {
    let packets = rate * secs / size as u64;
    let step = Duration::from_secs(secs) / packets as u32;
    let (mut to_peer, mut to_client) = (0, 0);
    let payload = vec![0x55u8; size];
    for _ in 0..packets {
        h.now += step;
        if let Out::Peer { bytes, .. } = h.client_in(&c.client, &channel_data(size)) {
            to_peer += bytes.len() as u64;
        }
        if let Out::Client { bytes, .. } = h.peer_in(relay, peer, &payload) {
            to_client += (bytes.len() - 4) as u64;
        }
    }
    (to_peer, to_client)
}

#[test]
fn max_bps_passes_its_rate_in_each_direction_and_drops_the_rest() {
    let mut h = Harness::new(Options {
        max_bps: 20_000,
        allow_loopback_peers: true,
        ..config()
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut c = alice(1001);
    let relay = channel_to(&mut h, &mut c, peer);
    let (to_peer, to_client) = offer(&mut h, &c, relay, peer, 80_000, 1000, 5);
    // 5 s at 20 kB/s plus at most one burst (4000 B).
    for got in [to_peer, to_client] {
        assert!((100_000..=104_000).contains(&got), "{got} bytes in 5 s");
    }
    assert!(h.shard.drops().get(DropReason::Bandwidth) >= 2 * 290);
}

#[test]
fn a_client_within_max_bps_loses_nothing() {
    let mut h = Harness::new(Options {
        max_bps: 20_000,
        allow_loopback_peers: true,
        ..config()
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut c = alice(1001);
    let relay = channel_to(&mut h, &mut c, peer);
    let (to_peer, to_client) = offer(&mut h, &c, relay, peer, 18_000, 1200, 10);
    assert_eq!((to_peer, to_client), (180_000, 180_000));
    assert_eq!(h.shard.drops().get(DropReason::Bandwidth), 0);
}

#[test]
fn bps_capacity_caps_all_allocations_together() {
    let cfg = Options {
        max_bps: 50_000,
        bps_capacity: 20_000,
        allow_loopback_peers: true,
        ..config()
    };
    let shared = shared_for(&cfg);
    let mut h = Harness::with_shared(cfg, shared, 0);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut a = alice(1001);
    let mut b = alice(1002);
    channel_to(&mut h, &mut a, peer);
    channel_to(&mut h, &mut b, peer);
    let mut through = 0;
    let step = Duration::from_millis(25);
    // Each offers 40 kB/s (within its max-bps) for 5 s: 400 kB offered in all.
    for _ in 0..200 {
        h.now += step;
        for c in [&a, &b] {
            if let Out::Peer { bytes, .. } = h.client_in(&c.client, &channel_data(1000)) {
                through += bytes.len() as u64;
            }
        }
    }
    // 5 s of 20 kB/s, plus the burst and one chunk held by the shard.
    assert!((95_000..=110_000).contains(&through), "{through} bytes");
}

fn unauthenticated_allocate(port: u16, ip: &str) -> (tern_proto::turn::Client, Vec<u8>) {
    let client = udp_client(&format!("{ip}:{port}"));
    let bytes = build(
        Method::ALLOCATE,
        Class::Request,
        [port as u8; 12],
        &|b| b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]),
        None,
        false,
    );
    (client, bytes)
}

#[test]
fn answers_to_unauthenticated_sources_are_limited_per_ip_and_second() {
    let mut h = Harness::new(config());
    let mut answered = 0;
    for port in 0..130 {
        let (client, bytes) = unauthenticated_allocate(5000 + port, "203.0.113.7");
        if let Out::Client { .. } = h.client_in(&client, &bytes) {
            answered += 1;
        }
    }
    assert_eq!(answered, 100);
    assert_eq!(h.shard.drops().unauthenticated_401_dropped(), 30);
    assert_eq!(h.shard.counters().unauthenticated_401, 100);
    // Binding answers count against the same budget.
    let binding = build(
        Method::BINDING,
        Class::Request,
        [1; 12],
        &|_| Ok(()),
        None,
        false,
    );
    let src = udp_client("203.0.113.7:9999");
    assert_eq!(h.client_in(&src, &binding), Out::Nothing);
    // Another source is not affected; the next second the first one is answered again.
    let (other, bytes) = unauthenticated_allocate(5000, "203.0.113.8");
    assert_eq!(code(&h.client_in(&other, &bytes)), 401);
    h.advance(1);
    assert_eq!(code(&h.client_in(&src, &bytes)), 401);
}

/// 401 answers to `n` unauthenticated Allocates from `ip`, each from its own port.
fn answered(h: &mut Harness, ip: &str, n: u16) -> usize {
    (0..n)
        .filter(|port| {
            let (client, bytes) = unauthenticated_allocate(5000 + port, ip);
            matches!(h.client_in(&client, &bytes), Out::Client { .. })
        })
        .count()
}

#[test]
fn a_reload_changes_the_unauthenticated_budget_at_once() {
    let mut h = Harness::new(config());
    let reload = |h: &mut Harness, rps: u32| {
        let cfg = Options {
            unauthorized_ratelimit_rps: rps,
            ..config()
        };
        let settings = Settings::from_options(&cfg, &listeners(), &[]).expect("settings");
        h.shard.set_settings(Arc::new(settings));
    };
    assert_eq!(answered(&mut h, "203.0.113.7", 3), 3);
    reload(&mut h, 5);
    // The answers of this second count against the new budget too.
    assert_eq!(answered(&mut h, "203.0.113.7", 20), 2);
    assert_eq!(answered(&mut h, "203.0.113.8", 20), 5);
    h.advance(1);
    reload(&mut h, 150);
    assert_eq!(answered(&mut h, "203.0.113.7", 200), 150);
    reload(&mut h, 0);
    assert_eq!(answered(&mut h, "203.0.113.7", 200), 200);
}

#[test]
fn loopback_sources_are_not_limited() {
    // 127.0.0.0/8 and its IPv4-mapped form cannot arrive spoofed from the network.
    let mut h = Harness::new(config());
    for port in 0..300 {
        for source in [
            format!("127.0.0.1:{port}"),
            format!("[::ffff:127.0.0.9]:{port}"),
        ] {
            let client = udp_client(&source);
            let (_, bytes) = unauthenticated_allocate(5000 + port, "127.0.0.1");
            assert_eq!(code(&h.client_in(&client, &bytes)), 401);
        }
    }
    assert_eq!(h.shard.drops().unauthenticated_401_dropped(), 0);
}

#[test]
fn streams_and_a_disabled_limit_are_not_limited() {
    let mut h = Harness::new(Options {
        unauthorized_ratelimit_rps: 0,
        ..config()
    });
    for port in 0..130 {
        let (client, bytes) = unauthenticated_allocate(5000 + port, "203.0.113.7");
        assert_eq!(code(&h.client_in(&client, &bytes)), 401);
    }
    let mut h = Harness::new(config());
    for port in 0..130 {
        let (mut client, bytes) = unauthenticated_allocate(5000 + port, "203.0.113.7");
        client.via = Via::Stream(u32::from(port));
        client.transport = Transport::Tcp;
        assert_eq!(code(&h.client_in(&client, &bytes)), 401);
    }
}

fn binding_from(h: &mut Harness, remote: &str) -> Out {
    let binding = build(
        Method::BINDING,
        Class::Request,
        [1; 12],
        &|_| Ok(()),
        None,
        false,
    );
    h.client_in(&udp_client(remote), &binding)
}

#[test]
fn stun_only_ignores_turn_and_no_stun_ignores_binding() {
    let mut h = Harness::new(Options {
        stun_only: true,
        ..config()
    });
    assert_eq!(alice(1001).allocate(&mut h), Out::Nothing);
    assert!(is_success(&binding_from(&mut h, "192.0.2.10:1002")));
    assert_eq!(h.shard.drops().get(DropReason::Disabled), 1);

    let mut h = Harness::new(Options {
        no_stun: true,
        ..config()
    });
    assert_eq!(binding_from(&mut h, "192.0.2.10:1002"), Out::Nothing);
    alice(1001).allocated(&mut h);
    assert_eq!(h.shard.drops().get(DropReason::Disabled), 1);
}

#[test]
fn secure_stun_challenges_binding_and_answers_signed_ones() {
    let mut h = Harness::new(Options {
        secure_stun: true,
        ..config()
    });
    assert_eq!(code(&binding_from(&mut h, "192.0.2.10:1002")), 401);
    let mut c = alice(1002);
    let out = c.request(&mut h, Method::BINDING, &|_| Ok(()));
    let msg = out.message();
    assert_eq!(msg.class(), Class::Success);
    assert!(msg.verify_integrity(&c.key).is_ok());
    assert!(msg.xor_address(attr::XOR_MAPPED_ADDRESS).is_some());
}
