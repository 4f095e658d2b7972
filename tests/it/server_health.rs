//! Health and load on the metrics listener of the real binary (docs/fleet.md, "Health and
//! load"): `/healthz` answers while the process serves, `/readyz` turns 503 once the node drains
//! (SIGUSR1, what the Kubernetes preStop hook sends), and `/load` reports allocations, the
//! configured capacity, the relayed bytes per second and the drain flag as JSON.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::metrics::{get, start_with_metrics};
use support::turn_client::TurnClient;
use support::{PASSWORD, USER};

fn load(metrics: SocketAddr) -> Value {
    let (status, body) = get(metrics, "/load");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Polls `/load` until `pred` holds (counts are published once per shard loop turn).
fn load_until(metrics: SocketAddr, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = load(metrics);
        if pred(&doc) || Instant::now() > deadline {
            return doc;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn healthz_readyz_and_load_follow_allocations_traffic_and_the_drain() {
    let (server, metrics) = start_with_metrics(&[
        "--total-quota=10",
        "--bps-capacity=5000000",
        "--max-bps=1000000",
    ]);
    assert_eq!(get(metrics, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(get(metrics, "/readyz"), (200, "ready\n".to_owned()));
    let idle = load(metrics);
    assert_eq!(idle["allocations"], 0, "{idle}");
    assert_eq!(idle["capacity"]["allocations"], 10, "{idle}");
    assert_eq!(idle["capacity"]["bps"], 5_000_000, "{idle}");
    assert_eq!(
        (idle["draining"].clone(), idle["ready"].clone()),
        (false.into(), true.into())
    );

    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    client.allocate().expect("allocate");
    client
        .channel_bind(0x4000, peer.local_addr().expect("peer address"))
        .expect("channel bind");
    // About 100 kB/s for two seconds: the rate sampled once a second sees it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        for _ in 0..10 {
            client.send_channel(0x4000, &[7u8; 1000]);
        }
        thread::sleep(Duration::from_millis(100));
    }
    let busy = load_until(metrics, |d| {
        d["allocations"] == 1 && d["bps"].as_u64() > Some(0)
    });
    assert_eq!(busy["allocations"], 1, "{busy}");
    let bps = busy["bps"].as_u64().expect("bps is a number");
    assert!((10_000..=1_000_000).contains(&bps), "{busy}");

    server.signal(libc::SIGUSR1);
    server
        .wait_for_log("draining", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no drain; log:\n{}", server.log()));
    assert_eq!(get(metrics, "/readyz"), (503, "draining\n".to_owned()));
    assert_eq!(get(metrics, "/healthz").0, 200, "alive while draining");
    let draining = load(metrics);
    assert_eq!(
        (draining["draining"].clone(), draining["ready"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(draining["allocations"], 1, "{draining}");
}

#[test]
fn the_index_names_the_health_paths_and_unknown_paths_are_404() {
    let (_server, metrics) = start_with_metrics(&[]);
    let (status, body) = get(metrics, "/");
    assert_eq!(status, 200);
    for path in ["/metrics", "/healthz", "/readyz", "/load"] {
        assert!(body.contains(path), "{path} not in {body}");
    }
    assert_eq!(get(metrics, "/healthz/extra").0, 404);
}

#[test]
fn without_total_quota_the_capacity_is_the_descriptor_ceiling() {
    let (server, metrics) = start_with_metrics(&[]);
    let line = server
        .wait_for_log(" allocations (2 descriptors each", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no descriptor line; log:\n{}", server.log()));
    let ceiling: u64 = line
        .split("at most ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line}"));
    let doc = load(metrics);
    assert_eq!(doc["capacity"]["allocations"], ceiling, "{doc}");
    assert!(doc["capacity"]["bps"].is_null(), "{doc}");
}
