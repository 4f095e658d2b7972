//! A fleet of tern nodes on one real `redis-server` (`redis-statsdb`, docs/fleet.md "Shared
//! quotas and relaying between nodes"): `user-quota` across three nodes on distinct loopback
//! addresses (486 for the third allocation on any node), a SIGKILLed node's leases lapsing
//! within the lease time, Redis stopped and started again under both `fleet-redis-down`
//! behaviours, keys written by something else, two relay-only clients on different nodes
//! reaching each other's relayed addresses where the public addresses do not hairpin, and a
//! draining node redirecting to the least loaded live node.
// Deadlines for real processes need the real clock.
#![allow(clippy::disallowed_methods)]

use crate::support;
use crate::userdb_support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use support::Server;
use tern::stun::{attr, Class, Message, Method};
use userdb_support::{allocate_until, relayed, Outcome, Redis, TurnClient, REALM};

/// Short, so a killed node's leases lapse quickly; beats run every second.
const LEASE_S: u64 = 3;
/// A loaded machine's slack on top of the lease time.
const SLACK: Duration = Duration::from_secs(3);

/// A node on `ip` sharing `redis`, with users alice..erin (password "pw"), plus `extra`.
fn node(redis: &Redis, ip: &str, extra: &[&str]) -> Server {
    let listen = format!("--listening-ip={ip}");
    let realm = format!("--realm={REALM}");
    let statsdb = format!("--redis-statsdb={}", redis.conn());
    let lease = format!("--fleet-lease-time={LEASE_S}");
    let mut args = vec![
        "-n",
        listen.as_str(),
        "--listening-port=0",
        "--no-tls",
        "--lt-cred-mech",
        realm.as_str(),
        "--user=alice:pw",
        "--user=bob:pw",
        "--user=carol:pw",
        "--user=dave:pw",
        "--user=erin:pw",
        statsdb.as_str(),
        lease.as_str(),
    ];
    args.extend_from_slice(extra);
    Server::start_args(&args)
}

fn allocate(server: &Server, user: &str) -> (TurnClient, Outcome) {
    let mut client = TurnClient::new(server.udp_addr(), user, "pw", REALM);
    let outcome = client.allocate();
    (client, outcome)
}

fn redis_cmd(redis: &Redis, args: &[&str]) -> redis::Value {
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let mut conn = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connect to the test redis");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn).expect("redis command")
}

/// `tern_fleet_events_total{event}` scraped from `server`'s metrics endpoint.
fn fleet_events(server: &Server, event: &str) -> f64 {
    let line = server
        .wait_for_log("metrics on http://", SLACK)
        .unwrap_or_else(|| panic!("no metrics line; log:\n{}", server.log()));
    let url = line.split("metrics on http://").nth(1).expect("an address");
    let addr: SocketAddr = url[..url.find('/').expect("a path")]
        .parse()
        .expect("metrics address");
    let (body, scrape) = support::metrics::fetch(addr);
    let labels = [("event", event)];
    support::metrics::find(&scrape, "tern_fleet_events_total", &labels)
        .unwrap_or_else(|| panic!("no tern_fleet_events_total{{event={event:?}}}:\n{body}"))
}

/// user-quota=2 over three nodes: two allocations anywhere, the third refused on every node;
/// an allocation that ends gives its place back at once; a node killed with SIGKILL gives its
/// places back within the lease time.
#[test]
fn user_quota_holds_across_three_nodes_and_a_killed_node_releases_its_leases() {
    let Some(redis) = Redis::start() else { return };
    let quota = ["--fleet-quotas", "--user-quota=2"];
    let nodes = [
        node(&redis, "127.0.0.2", &quota),
        node(&redis, "127.0.0.3", &quota),
        node(&redis, "127.0.0.4", &quota),
    ];
    let logs = || {
        nodes
            .iter()
            .map(Server::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let (mut first, a) = allocate(&nodes[0], "alice");
    let (_second, b) = allocate(&nodes[1], "alice");
    assert!(relayed(&a) && relayed(&b), "{a:?} {b:?}\n{}", logs());
    for n in &nodes {
        let (_c, third) = allocate(n, "alice");
        assert_eq!(third, Outcome::Error(486), "{}", logs());
    }
    let (_other, bob) = allocate(&nodes[2], "bob");
    assert!(relayed(&bob), "another user is not counted: {bob:?}");

    // An allocation that ends is released at once.
    assert!(relayed(&first.deallocate()), "{}", logs());
    let (_again, c) = allocate(&nodes[2], "alice");
    assert!(relayed(&c), "the released place is free: {c:?}\n{}", logs());

    // alice holds one allocation on node 1 and one on node 2; node 1 dies.
    let (_full, d) = allocate(&nodes[0], "alice");
    assert_eq!(d, Outcome::Error(486));
    let killed = Instant::now();
    nodes[1].signal(libc::SIGKILL);
    let within = Duration::from_secs(LEASE_S) + SLACK;
    let took = allocate_until(nodes[0].udp_addr(), "alice", "pw", within, relayed)
        .unwrap_or_else(|last| panic!("no place came back: {last:?}\n{}", logs()));
    let since_kill = killed.elapsed();
    assert!(
        since_kill <= within,
        "a killed node's lease lapsed after {since_kill:?} (lease {LEASE_S} s): took {took:?}"
    );
    assert!(
        since_kill >= Duration::from_secs(1),
        "the lease outlived the node for a while, as it must: {since_kill:?}"
    );
    // The killed node's record is gone too; the live ones say where they listen.
    let records = || node_records(&redis);
    let deadline = Instant::now() + within;
    while records().len() != 2 {
        assert!(Instant::now() < deadline, "{:?}", records());
        thread::sleep(Duration::from_millis(200));
    }
    let listening: Vec<String> = records().into_iter().map(|r| r["listen"].clone()).collect();
    for n in [&nodes[0], &nodes[2]] {
        assert!(
            listening.contains(&n.udp_addr().to_string()),
            "{listening:?}"
        );
    }
}

/// Every node record in Redis, as field → value.
fn node_records(redis: &Redis) -> Vec<std::collections::HashMap<String, String>> {
    let ids: Vec<String> = match redis_cmd(redis, &["ZRANGE", "tern/fleet/nodes", "0", "-1"]) {
        redis::Value::Array(items) => items
            .iter()
            .filter_map(|v| redis::from_redis_value(v).ok())
            .collect(),
        _ => Vec::new(),
    };
    ids.iter()
        .map(|id| {
            let key = format!("tern/fleet/node/{id}");
            redis::from_redis_value(&redis_cmd(redis, &["HGETALL", &key])).unwrap_or_default()
        })
        .filter(|r: &std::collections::HashMap<String, String>| !r.is_empty())
        .collect()
}

/// A node stopped with SIGTERM withdraws its leases and record before it exits: its places are
/// free at once, long before the lease time.
#[test]
fn a_stopped_node_withdraws_at_once() {
    let Some(redis) = Redis::start() else { return };
    let quota = ["--fleet-quotas", "--user-quota=1", "--fleet-lease-time=600"];
    let mut one = node(&redis, "127.0.0.2", &quota);
    let two = node(&redis, "127.0.0.3", &quota);
    let (_alice, a) = allocate(&one, "alice");
    assert!(relayed(&a), "{a:?}");
    let (_refused, b) = allocate(&two, "alice");
    assert_eq!(b, Outcome::Error(486));
    one.signal(libc::SIGTERM);
    assert!(
        one.wait_exit(Duration::from_secs(10)).is_some(),
        "{}",
        one.log()
    );
    let (_again, c) = allocate(&two, "alice");
    assert!(relayed(&c), "{c:?}\n{}", two.log());
    assert_eq!(node_records(&redis).len(), 1);
}

/// total-quota=3 over two nodes: three allocations of different users anywhere, the fourth
/// refused on both nodes.
#[test]
fn total_quota_holds_across_nodes() {
    let Some(redis) = Redis::start() else { return };
    let quota = ["--fleet-quotas", "--total-quota=3"];
    let nodes = [
        node(&redis, "127.0.0.2", &quota),
        node(&redis, "127.0.0.3", &quota),
    ];
    let mut held = Vec::new();
    for (user, n) in [("alice", 0), ("bob", 1), ("carol", 0)] {
        let (client, outcome) = allocate(&nodes[n], user);
        assert!(relayed(&outcome), "{user}: {outcome:?}\n{}", nodes[n].log());
        held.push(client);
    }
    for n in &nodes {
        let (_c, fourth) = allocate(n, "dave");
        assert_eq!(fourth, Outcome::Error(486), "{}", n.log());
    }
}

/// Redis stops: `fleet-redis-down=open` admits within the node's own quota (one log line, then
/// counted in the fleet once Redis is back), `closed` refuses with 508; both recover when Redis
/// starts again.
#[test]
fn redis_stopped_and_started_again_follows_fleet_redis_down() {
    let Some(redis) = Redis::start() else { return };
    let metrics = [
        "--prometheus",
        "--prometheus-port=0",
        "--prometheus-address=127.0.0.1",
    ];
    let with = |down: &'static str| {
        let mut args = vec!["--fleet-quotas", "--user-quota=1", down];
        args.extend_from_slice(&metrics);
        args
    };
    let open = node(&redis, "127.0.0.2", &with("--fleet-redis-down=open"));
    let closed = node(&redis, "127.0.0.3", &with("--fleet-redis-down=closed"));
    let logs = || format!("open:\n{}\nclosed:\n{}", open.log(), closed.log());
    let (_alice, a) = allocate(&open, "alice");
    assert!(relayed(&a), "{a:?}");
    let (_refused, b) = allocate(&closed, "alice");
    assert_eq!(b, Outcome::Error(486), "{}", logs());

    let redis = std::cell::RefCell::new(redis);
    redis.borrow_mut().stop();
    let (_carol, c) = allocate(&open, "carol");
    assert!(relayed(&c), "fail open admits: {c:?}\n{}", logs());
    let (_carol2, c2) = allocate(&open, "carol");
    assert_eq!(c2, Outcome::Error(486), "the node's own quota still holds");
    let (_dave, d) = allocate(&closed, "dave");
    assert_eq!(d, Outcome::Error(508), "fail closed refuses\n{}", logs());
    let (_dave2, d2) = allocate(&open, "dave");
    assert!(relayed(&d2), "{d2:?}");
    let unreachable = open.log().matches(" unreachable: ").count();
    assert_eq!(unreachable, 1, "one log line for the outage\n{}", logs());
    assert!(fleet_events(&open, "admitted_redis_down") >= 2.0);
    assert!(fleet_events(&closed, "refused_redis_down") >= 1.0);

    redis.borrow_mut().resume();
    let within = Duration::from_secs(LEASE_S) + SLACK;
    // The closed node takes Allocates again, and carol's allocation admitted while Redis was
    // away now counts in the fleet.
    allocate_until(closed.udp_addr(), "erin", "pw", within, relayed)
        .unwrap_or_else(|last| panic!("closed node did not recover: {last:?}\n{}", logs()));
    allocate_until(closed.udp_addr(), "carol", "pw", within, |o| {
        *o == Outcome::Error(486)
    })
    .unwrap_or_else(|last| panic!("carol's lease was not published: {last:?}\n{}", logs()));
    assert!(
        open.wait_for_log("reachable again", within).is_some(),
        "{}",
        logs()
    );
}

/// A stopped node withdraws itself, a node started while Redis is down says so and admits
/// (open), and keys written by something else are left alone and never stop the node.
#[test]
fn unreachable_redis_at_start_and_foreign_keys_are_survived() {
    let Some(redis) = Redis::start() else { return };
    redis_cmd(&redis, &["SET", "tern/fleet/user/eve", "not a lease set"]);
    // A member no node writes: scored a year ahead; it must not count.
    redis_cmd(
        &redis,
        &[
            "ZADD",
            "tern/fleet/user/bob",
            "99999999999999",
            "someone-else",
        ],
    );
    redis_cmd(
        &redis,
        &["ZADD", "tern/fleet/nodes", "99999999999999", "bogus"],
    );
    redis_cmd(&redis, &["HSET", "tern/fleet/node/bogus", "relay", "x=y"]);
    let quota = ["--fleet-quotas", "--user-quota=1", "--user=eve:pw"];
    let n = node(&redis, "127.0.0.2", &quota);
    let (_eve, e) = allocate(&n, "eve");
    assert!(
        relayed(&e),
        "a foreign key does not stop eve: {e:?}\n{}",
        n.log()
    );
    assert!(
        n.wait_for_log("not what tern writes", SLACK).is_some(),
        "{}",
        n.log()
    );
    let (_bob, b) = allocate(&n, "bob");
    assert!(
        relayed(&b),
        "a foreign member is not counted: {b:?}\n{}",
        n.log()
    );
    let (_bob2, b2) = allocate(&n, "bob");
    assert_eq!(b2, Outcome::Error(486));
    assert_eq!(
        redis_cmd(&redis, &["GET", "tern/fleet/user/eve"]),
        redis::Value::BulkString(b"not a lease set".to_vec()),
        "left alone"
    );

    // A Redis that is not there at start: the node starts, logs it, and admits (open).
    let port = redis.port;
    drop(redis);
    let statsdb = format!("--redis-statsdb=ip=127.0.0.1 port={port} connect_timeout=1");
    let realm = format!("--realm={REALM}");
    let alone = Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.3",
        "--listening-port=0",
        "--no-tls",
        "--lt-cred-mech",
        &realm,
        "--user=alice:pw",
        &statsdb,
        "--fleet-quotas",
        "--user-quota=1",
    ]);
    assert!(
        alone.wait_for_log(" unreachable: ", SLACK).is_some(),
        "{}",
        alone.log()
    );
    let (_a, a) = allocate(&alone, "alice");
    assert!(relayed(&a), "{a:?}\n{}", alone.log());
}

/// Reads Data indications on `client` until one carries `want`; the peer it names.
fn receive(client: &TurnClient, want: &[u8], within: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        client
            .socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let Ok((n, _)) = client.socket.recv_from(&mut buf) else {
            return None;
        };
        let Ok(msg) = Message::parse(&buf[..n]) else {
            continue;
        };
        if msg.method() != Method::DATA || msg.class() != Class::Indication {
            continue;
        }
        if msg.data() == Some(want) {
            return msg.xor_address(attr::XOR_PEER_ADDRESS).and_then(Result::ok);
        }
    }
    None
}

/// Two nodes behind a "NAT" that does not hairpin: each advertises a public address (127.0.1.x,
/// where nothing listens: a packet sent there is lost, as in a cloud without hairpinning) for
/// its private relay address (127.0.0.x). With `fleet-relay`, a client on one node reaches the
/// other node's relayed address by its public address, the peer sees the sender's public
/// address, and the rest of the private (here loopback) range stays refused.
#[test]
fn relay_only_clients_on_two_nodes_reach_each_other_without_hairpin() {
    let Some(redis) = Redis::start() else { return };
    let a = node(
        &redis,
        "127.0.0.2",
        &["--fleet-relay", "--external-ip=127.0.1.2/127.0.0.2"],
    );
    let b = node(
        &redis,
        "127.0.0.3",
        &["--fleet-relay", "--external-ip=127.0.1.3/127.0.0.3"],
    );
    let logs = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    let mut alice = TurnClient::new(a.udp_addr(), "alice", "pw", REALM);
    let mut bob = TurnClient::new(b.udp_addr(), "bob", "pw", REALM);
    let Outcome::Relayed(relay_a) = alice.allocate() else {
        panic!("{}", logs())
    };
    let Outcome::Relayed(relay_b) = bob.allocate() else {
        panic!("{}", logs())
    };
    assert_eq!(relay_a.ip().to_string(), "127.0.1.2");
    assert_eq!(relay_b.ip().to_string(), "127.0.1.3");
    // The nodes see each other within a beat or two.
    let deadline = Instant::now() + Duration::from_secs(LEASE_S) + SLACK;
    while alice.create_permission(relay_b) != Outcome::Relayed(a.udp_addr()) {
        assert!(Instant::now() < deadline, "never admitted\n{}", logs());
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        bob.create_permission(relay_a),
        Outcome::Relayed(b.udp_addr()),
        "{}",
        logs()
    );
    let other: SocketAddr = "127.0.0.9:50000".parse().unwrap();
    assert_eq!(
        alice.create_permission(other),
        Outcome::Error(403),
        "the rest of the range stays refused"
    );
    for _ in 0..3 {
        alice.send(relay_b, b"from alice");
        if let Some(from) = receive(&bob, b"from alice", Duration::from_secs(1)) {
            assert_eq!(from, relay_a, "the peer is named by its public address");
            bob.send(relay_a, b"from bob");
            let back = receive(&alice, b"from bob", Duration::from_secs(2));
            assert_eq!(back, Some(relay_b), "{}", logs());
            return;
        }
    }
    panic!("bob never heard alice\n{}", logs());
}

/// A draining node (`alternate-server-mode=draining`, no list of its own) sends new clients to
/// the least loaded live node of the fleet, as the nodes publish themselves in Redis; a client
/// that follows the 300 relays there.
#[test]
fn a_draining_node_redirects_to_the_least_loaded_live_node() {
    use support::turn_client::{Refused, TurnClient as Client};
    let Some(redis) = Redis::start() else { return };
    let draining = node(&redis, "127.0.0.2", &["--alternate-server-mode=draining"]);
    let idle = node(&redis, "127.0.0.3", &[]);
    let busy = node(&redis, "127.0.0.4", &[]);
    let (_held, held) = allocate(&busy, "alice");
    assert!(relayed(&held), "{held:?}");
    // A draining node exits once its last allocation ends: it keeps one through the test.
    let (_kept, kept) = allocate(&draining, "carol");
    assert!(relayed(&kept), "{kept:?}");
    draining.signal(libc::SIGUSR1);
    draining
        .wait_for_log("draining", SLACK)
        .expect("drain logged");
    let redirect = || Client::new(draining.udp_addr(), "bob", "pw").allocate();
    let want = Err(Refused {
        code: 300,
        alternate: Some(idle.udp_addr()),
    });
    // Node records are published every second: wait until the draining node has seen both.
    let deadline = Instant::now() + Duration::from_secs(LEASE_S) + SLACK;
    while redirect() != want {
        assert!(
            Instant::now() < deadline,
            "never redirected to the idle node: {:?}\n{}",
            redirect(),
            draining.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        assert_eq!(redirect(), want, "the busy node holds an allocation");
    }
    let (_bob, followed) = allocate(&idle, "bob");
    assert!(relayed(&followed), "{followed:?}\n{}", idle.log());
}
