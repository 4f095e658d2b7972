//! The Prometheus endpoint over real HTTP on loopback: shard publishing, sums, coturn names,
//! types and labels, parsed with an independent text-format parser.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use tern::metrics::{
    AllocationCounts, Histogram, MetricsServer, Registry, ShardExtra, Traffic, UserTrafficBatch,
};
use tern::turn::Counters;

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics server");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

fn start(registry: Arc<Registry>, username_labels: bool) -> MetricsServer {
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = MetricsServer::start(any_port, "/metrics".into(), registry, username_labels)
        .expect("start the metrics server");
    assert_ne!(
        server.local_addr().port(),
        0,
        "port 0 must resolve to the bound port"
    );
    server
}

fn parse(body: &str) -> Scrape {
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("valid exposition")
}

/// Declared type of every metric, from the `# TYPE` lines.
fn types(body: &str) -> HashMap<String, SampleType> {
    body.lines()
        .filter_map(|l| match LineInfo::parse(l) {
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => Some((metric_alias.unwrap_or(metric_name), sample_type)),
            _ => None,
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include every pair in `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Value {
    let found: Vec<&Value> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| &s.value)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {name}{labels:?} sample");
    found[0].clone()
}

fn counters(scale: u64) -> Counters {
    Counters {
        client_rx_packets: 10 * scale,
        client_rx_bytes: 1000 * scale,
        client_tx_packets: 9 * scale,
        client_tx_bytes: 900 * scale,
        peer_rx_packets: 8 * scale,
        peer_rx_bytes: 800 * scale,
        peer_tx_packets: 7 * scale,
        peer_tx_bytes: 700 * scale,
        malformed: scale,
        dropped: 2 * scale,
        binding_requests: 3 * scale,
        binding_responses: 3 * scale - 1,
        binding_errors: 1,
        unauthenticated_401: 4 * scale,
        allocations: 5 * scale,
        redirects: 6 * scale,
        fast_to_peer_packets: scale,
        fast_to_peer_bytes: 50 * scale,
        fast_to_client_packets: 2 * scale,
        fast_to_client_bytes: 60 * scale,
    }
}

fn traffic(n: u64) -> Traffic {
    Traffic {
        rcvp: n,
        rcvb: 100 * n,
        sentp: 2 * n,
        sentb: 200 * n,
        peer_rcvp: 3 * n,
        peer_rcvb: 300 * n,
        peer_sentp: 4 * n,
        peer_sentb: 400 * n,
    }
}

/// Two UDP shards and one stream shard, as the engines would publish them.
fn populated() -> Arc<Registry> {
    let reg = Arc::new(Registry::new(2, 1));
    let (s0, s1) = (reg.slot(0).expect("slot 0"), reg.slot(1).expect("slot 1"));
    let st = reg.stream_slot(0).expect("stream slot 0");
    assert!(reg.slot(2).is_none() && reg.stream_slot(1).is_none());
    // A stale publication is overwritten, not added.
    s0.publish(&counters(100));
    s0.publish(&counters(1));
    s1.publish(&counters(2));
    st.publish(&counters(3));
    s0.publish_extra(&ShardExtra {
        allocations: AllocationCounts {
            udp: 4,
            ..Default::default()
        },
        unauthenticated_401_dropped: 5,
        drops: std::array::from_fn(|i| i as u64),
    });
    st.publish_extra(&ShardExtra {
        allocations: AllocationCounts {
            tcp: 2,
            tls: 3,
            ..Default::default()
        },
        unauthenticated_401_dropped: 0,
        drops: std::array::from_fn(|i| 100 * i as u64),
    });
    let mut h = Histogram::default();
    h.observe(Duration::from_micros(80));
    h.observe(Duration::from_millis(3));
    s1.publish_setup_latency(&h);

    let mut b0 = UserTrafficBatch::new(Arc::clone(reg.users()));
    let mut b1 = UserTrafficBatch::new(Arc::clone(reg.users()));
    b0.add("example.org", "alice", &traffic(1));
    b1.add("example.org", "alice", &traffic(2));
    b1.add("example.org", "bob", &traffic(4));
    b1.add("other.net", "carol", &traffic(8));
    assert!(b0.flush() && b1.flush());
    reg
}

#[test]
fn scrape_sums_every_shard_with_coturn_names_and_types() {
    let server = start(populated(), false);
    let reply = request(server.local_addr(), "GET", "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let scrape = parse(&reply.body);
    let types = types(&reply.body);

    for (name, kind, _) in tern::metrics::expose::METRICS {
        assert!(scrape.docs.contains_key(*name), "HELP for {name}");
        let want = match kind {
            tern::metrics::expose::Kind::Counter => SampleType::Counter,
            tern::metrics::expose::Kind::Gauge => SampleType::Gauge,
            tern::metrics::expose::Kind::Histogram => SampleType::Histogram,
        };
        assert_eq!(types.get(*name), Some(&want), "TYPE of {name}");
    }
    let coturn = [
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
        "stun_binding_request",
        "stun_binding_response",
        "stun_binding_error",
        "turn_packet_processed",
        "turn_packet_dropped",
        "turn_unauthenticated_401_requests",
        "turn_unauthenticated_401_responses",
        "turn_unauthenticated_401_dropped_responses",
    ];
    for name in coturn {
        assert_eq!(
            types.get(name),
            Some(&SampleType::Counter),
            "{name} is a counter"
        );
    }
    assert_eq!(
        types.get("turn_total_allocations"),
        Some(&SampleType::Gauge)
    );

    // Shards published scales 1, 2 and 3: every total is 6x the per-unit value; coturn's
    // totals include what the fast path relayed, with the ChannelData headers (4 bytes each)
    // on the client's side.
    let c = |name| value(&scrape, name, &[]);
    assert_eq!(c("turn_total_traffic_rcvp"), Value::Counter(66.0));
    assert_eq!(c("turn_total_traffic_rcvb"), Value::Counter(6324.0));
    assert_eq!(c("turn_total_traffic_sentp"), Value::Counter(66.0));
    assert_eq!(c("turn_total_traffic_sentb"), Value::Counter(5808.0));
    assert_eq!(c("turn_total_traffic_peer_rcvp"), Value::Counter(60.0));
    assert_eq!(c("turn_total_traffic_peer_rcvb"), Value::Counter(5160.0));
    assert_eq!(c("turn_total_traffic_peer_sentp"), Value::Counter(48.0));
    assert_eq!(c("turn_total_traffic_peer_sentb"), Value::Counter(4500.0));
    assert_eq!(c("stun_binding_request"), Value::Counter(18.0));
    assert_eq!(c("stun_binding_response"), Value::Counter(15.0));
    assert_eq!(c("stun_binding_error"), Value::Counter(3.0));
    assert_eq!(c("turn_packet_processed"), Value::Counter(126.0));
    assert_eq!(c("turn_packet_dropped"), Value::Counter(18.0));
    assert_eq!(c("tern_malformed_packets_total"), Value::Counter(6.0));
    assert_eq!(c("tern_redirects_total"), Value::Counter(36.0));
    let fast = |name, direction| value(&scrape, name, &[("direction", direction)]);
    let packets = "tern_fast_path_packets_total";
    assert_eq!(fast(packets, "to_peer"), Value::Counter(6.0));
    assert_eq!(fast(packets, "to_client"), Value::Counter(12.0));
    let bytes = "tern_fast_path_bytes_total";
    assert_eq!(fast(bytes, "to_peer"), Value::Counter(300.0));
    assert_eq!(fast(bytes, "to_client"), Value::Counter(360.0));
    assert_eq!(c("tern_dropped_packets_total"), Value::Counter(12.0));
    assert_eq!(
        c("turn_unauthenticated_401_responses"),
        Value::Counter(24.0)
    );
    assert_eq!(
        c("turn_unauthenticated_401_dropped_responses"),
        Value::Counter(5.0)
    );
    assert_eq!(c("turn_unauthenticated_401_requests"), Value::Counter(29.0));
    // Drops by reason: the sum over shards, one sample per reason.
    for (i, reason) in tern::turn::DropReason::ALL.iter().enumerate() {
        assert_eq!(
            value(&scrape, "tern_drops_total", &[("reason", reason.name())]),
            Value::Counter(101.0 * i as f64),
            "{}",
            reason.name()
        );
    }

    let alloc = |t| value(&scrape, "turn_total_allocations", &[("type", t)]);
    assert_eq!(alloc("UDP"), Value::Gauge(4.0));
    assert_eq!(alloc("TCP"), Value::Gauge(2.0));
    assert_eq!(alloc("TLS"), Value::Gauge(3.0));
    assert_eq!(alloc("DTLS"), Value::Gauge(0.0));

    let shard = |i, kind| {
        value(
            &scrape,
            "tern_shard_packets_total",
            &[("shard", i), ("kind", kind)],
        )
    };
    assert_eq!(shard("0", "udp"), Value::Counter(18.0));
    assert_eq!(shard("1", "udp"), Value::Counter(36.0));
    assert_eq!(shard("2", "stream"), Value::Counter(54.0));

    // Per realm, users folded: example.org = 1 + 2 + 4, other.net = 8.
    let realm = |name, r| value(&scrape, name, &[("realm", r)]);
    assert_eq!(
        realm("turn_traffic_rcvp", "example.org"),
        Value::Counter(7.0)
    );
    assert_eq!(
        realm("turn_traffic_peer_sentb", "example.org"),
        Value::Counter(2800.0)
    );
    assert_eq!(
        realm("turn_traffic_sentp", "other.net"),
        Value::Counter(16.0)
    );
    let traffic_samples = scrape
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("turn_traffic_"));
    for s in traffic_samples {
        assert_eq!(
            s.labels.len(),
            1,
            "{} has only realm without username labels",
            s.metric
        );
    }

    let hist = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tern_allocation_setup_seconds")
        .expect("histogram buckets");
    let Value::Histogram(buckets) = &hist.value else {
        panic!(
            "tern_allocation_setup_seconds is not a histogram: {:?}",
            hist.value
        )
    };
    let at = |le: f64| buckets.iter().find(|b| b.less_than == le).map(|b| b.count);
    assert_eq!(at(0.00005), Some(0.0));
    assert_eq!(at(0.0001), Some(1.0));
    assert_eq!(at(0.005), Some(2.0));
    assert_eq!(at(f64::INFINITY), Some(2.0));
    server.stop();
}

#[test]
fn username_labels_only_when_enabled() {
    let server = start(populated(), true);
    let scrape = parse(&request(server.local_addr(), "GET", "/metrics").body);
    let user = |u| {
        value(
            &scrape,
            "turn_traffic_rcvp",
            &[("realm", "example.org"), ("user", u)],
        )
    };
    assert_eq!(user("alice"), Value::Counter(3.0));
    assert_eq!(user("bob"), Value::Counter(4.0));
    let carol = &[("realm", "other.net"), ("user", "carol")];
    assert_eq!(
        value(&scrape, "turn_traffic_peer_rcvb", carol),
        Value::Counter(2400.0)
    );
    server.stop();
}

#[test]
fn root_missing_paths_and_other_methods() {
    let server = start(Arc::new(Registry::new(1, 0)), false);
    let addr = server.local_addr();

    let root = request(addr, "GET", "/");
    assert_eq!(root.status, 200);
    assert!(
        root.body.contains("/metrics"),
        "root points at the metrics path: {}",
        root.body
    );

    assert_eq!(request(addr, "GET", "/metrics?x=1").status, 200);
    assert_eq!(request(addr, "GET", "/nope").status, 404);
    assert_eq!(request(addr, "GET", "/metrics/extra").status, 404);

    let post = request(addr, "POST", "/metrics");
    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").map(String::as_str), Some("GET"));
    assert_eq!(request(addr, "DELETE", "/").status, 405);
    server.stop();
    // tiny_http's accept thread closes the listener right after stop, not inside it.
    let closed = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
    });
    assert!(closed, "stop closes the listener");
}

#[test]
fn a_custom_path_replaces_metrics() {
    let reg = Arc::new(Registry::new(1, 0));
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = MetricsServer::start(any_port, "/prom".into(), reg, false).expect("start");
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/prom").status, 200);
    assert_eq!(request(addr, "GET", "/metrics").status, 404);
    server.stop();
}

#[test]
fn shards_publishing_from_their_own_threads_are_summed() {
    let reg = Arc::new(Registry::new(2, 0));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let slot = reg.slot(i).expect("slot");
            std::thread::spawn(move || {
                let mut c = Counters::default();
                for n in 0..10_000u64 {
                    c.client_rx_packets += 1;
                    c.client_rx_bytes += 100;
                    if n % 64 == 0 {
                        slot.publish(&c);
                    }
                }
                slot.publish(&c);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("shard thread");
    }
    let server = start(Arc::clone(&reg), false);
    let scrape = parse(&request(server.local_addr(), "GET", "/metrics").body);
    assert_eq!(
        value(&scrape, "turn_total_traffic_rcvp", &[]),
        Value::Counter(20_000.0)
    );
    assert_eq!(
        value(&scrape, "turn_total_traffic_rcvb", &[]),
        Value::Counter(2_000_000.0)
    );
    assert_eq!(reg.snapshot().client_rx_packets, 20_000);
    server.stop();
}
