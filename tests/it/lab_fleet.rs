//! Two tern nodes behind one cloud NAT that does not hairpin (tests/it/support/lab.rs,
//! `Vm::TwoBehindNat`), sharing a real `redis-server` (`redis-statsdb`, `fleet-relay`;
//! docs/fleet.md "Shared quotas and relaying between nodes"): relay-only clients on the
//! Internet side, one allocated on each node, reach each other's relayed (public) addresses,
//! first with tern's own client over channels, then as headless Chromium peers.
// Deadlines for real processes need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::{run_groups, Page};
use support::lab::{self, Lab, Vm, PRIVATE, PRIVATE2, PUBLIC, PUBLIC2};
use support::turn_client::TurnClient;
use support::{Server, PASSWORD, USER};

const REALM: &str = "fleet.example";
const REDIS_PORT: u16 = 6379;
const MESSAGES: u32 = 20;

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// redis-server on the first VM's private address, killed by PID on drop.
struct RedisOnVm(Child);

impl Drop for RedisOnVm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(lab: &Lab) -> RedisOnVm {
    let child = lab
        .command("vm", "redis-server")
        .args(["--bind", PRIVATE, "--port", &REDIS_PORT.to_string()])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let guard = RedisOnVm(child);
    // Reached from the other VM, across the NAT router's inside: as a node would.
    let up = lab.in_host("vm2", || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(at(PRIVATE, REDIS_PORT)).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    });
    assert!(up, "redis-server did not listen on {PRIVATE}:{REDIS_PORT}");
    guard
}

/// tern on `host` behind the NAT (`private` on its interface, `public` outside), in the fleet.
fn start_node(lab: &Lab, host: &str, public: &str, private: &str) -> Server {
    let on = lab.on(host);
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let args = [
        "-n".to_string(),
        format!("--listening-ip={private}"),
        "--listening-port=3478".into(),
        format!("--external-ip={public}/{private}"),
        "--no-tls".into(),
        "--lt-cred-mech".into(),
        format!("--realm={REALM}"),
        format!("--user={USER}:{PASSWORD}"),
        format!("--redis-statsdb=ip={PRIVATE} port={REDIS_PORT} connect_timeout=2"),
        "--fleet-relay".into(),
        "--fleet-lease-time=3".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_wrapped(&on, &args)
}

/// Whether a datagram sent from `from` (its host) to `to` arrives at `listen` on `at_host`.
fn udp_reaches(lab: &Lab, from: &str, to: SocketAddr, at_host: &str, listen: SocketAddr) -> bool {
    let rx = lab.in_host(at_host, || UdpSocket::bind(listen).expect("bind"));
    rx.set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    lab.in_host(from, || {
        let tx = UdpSocket::bind("0.0.0.0:0").expect("bind");
        tx.send_to(b"hairpin?", to).expect("send");
    });
    let mut buf = [0u8; 64];
    rx.recv_from(&mut buf).is_ok()
}

/// Waits until each node has seen the other join (one beat, about a second): until then a node
/// takes the other's public address for an ordinary peer.
fn wait_joined(one: &Server, two: &Server) {
    for node in [one, two] {
        assert!(
            node.wait_for_log(" joined (", Duration::from_secs(10))
                .is_some(),
            "{}",
            node.log()
        );
    }
}

fn build() -> Option<(Lab, RedisOnVm)> {
    support::interop_tool("redis-server")?;
    let lab = match Lab::new(Vm::TwoBehindNat) {
        Ok(lab) => lab,
        Err(why) => {
            lab::skip(&why.0);
            return None;
        }
    };
    // The lab is what it claims: the VMs reach each other privately, not by public address.
    let listen = at(PRIVATE2, 40000);
    assert!(udp_reaches(&lab, "vm", listen, "vm2", listen));
    let public = at(PUBLIC2, 40000);
    assert!(
        !udp_reaches(&lab, "vm", public, "vm2", listen),
        "the NAT hairpins"
    );
    let redis = start_redis(&lab);
    Some((lab, redis))
}

/// tern's own client: alice on node 1, bob on node 2, each binding a channel to the other's
/// relayed (public) address; data goes both ways, and the NAT's other private addresses stay
/// refused.
#[test]
fn own_clients_on_two_nodes_behind_nat_reach_each_other() {
    let Some((lab, _redis)) = build() else { return };
    let one = start_node(&lab, "vm", PUBLIC, PRIVATE);
    let two = start_node(&lab, "vm2", PUBLIC2, PRIVATE2);
    let logs = || format!("node 1:\n{}\nnode 2:\n{}", one.log(), two.log());
    wait_joined(&one, &two);
    lab.in_host("client", || {
        let any: SocketAddr = "0.0.0.0:0".parse().expect("address");
        let mut alice = TurnClient::bound(any, at(PUBLIC, 3478), USER, PASSWORD);
        let mut bob = TurnClient::bound(any, at(PUBLIC2, 3478), USER, PASSWORD);
        let relay_a = alice.allocate().expect("allocate on node 1");
        let relay_b = bob.allocate().expect("allocate on node 2");
        assert_eq!(relay_a.ip().to_string(), PUBLIC);
        assert_eq!(relay_b.ip().to_string(), PUBLIC2);
        alice
            .create_permission(relay_b)
            .expect("node 1 admits node 2");
        bob.create_permission(relay_a)
            .expect("node 2 admits node 1");
        let refused = alice
            .create_permission(at("10.20.1.1", 50000))
            .expect_err("the rest of the private range");
        assert_eq!(refused.code, 403);
        alice.channel_bind(0x4000, relay_b).expect("bind");
        bob.channel_bind(0x4001, relay_a).expect("bind");
        alice.send_channel(0x4000, b"from alice");
        assert_eq!(
            bob.recv_channel(),
            (0x4001, b"from alice".to_vec()),
            "{}",
            logs()
        );
        bob.send_channel(0x4001, b"from bob");
        assert_eq!(
            alice.recv_channel(),
            (0x4000, b"from bob".to_vec()),
            "{}",
            logs()
        );
    });
}

/// Headless Chromium: one relay-only peer connection allocating on node 1, the other on node 2,
/// a data channel echoing every message; the selected pair is relay/relay over the public
/// addresses.
#[test]
fn chromium_relay_only_peers_on_two_nodes_behind_nat_connect() {
    let Some((lab, _redis)) = build() else { return };
    let one = start_node(&lab, "vm", PUBLIC, PRIVATE);
    let two = start_node(&lab, "vm2", PUBLIC2, PRIVATE2);
    wait_joined(&one, &two);
    let group = vec![format!(
        "turn:{PUBLIC}:3478?transport=udp>turn:{PUBLIC2}:3478?transport=udp"
    )];
    let page = Page {
        urls: &[],
        user: USER,
        pass: PASSWORD,
        messages: MESSAGES,
        timeout_ms: 30_000,
    };
    let Some(runs) = lab.in_host("client", || run_groups(&page, &[group])) else {
        return;
    };
    let run = &runs[0];
    let context = || format!("{run}\nnode 1:\n{}\nnode 2:\n{}", one.log(), two.log());
    assert_eq!(run["echoes"], MESSAGES, "{}", context());
    assert_eq!(run["pair"]["local"], "relay", "{}", context());
    assert_eq!(run["pair"]["remote"], "relay", "{}", context());
    let candidates: Vec<&str> = run["candidates"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for public in [PUBLIC, PUBLIC2] {
        assert!(
            candidates
                .iter()
                .any(|c| c.contains(" typ relay") && c.split_whitespace().nth(4) == Some(public)),
            "no relay candidate on {public}: {}",
            context()
        );
    }
}
