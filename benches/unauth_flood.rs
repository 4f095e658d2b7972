//! Memory under a flood of unauthenticated Allocates (docs/architecture.md, "Errors and safety":
//! no state for unauthenticated senders): 100,000 Allocate requests without credentials from
//! 1,000 distinct source addresses (127.0.1.1 onwards; all of 127.0.0.0/8 is loopback on Linux),
//! then the server's RSS growth from /proc. Not a timed test: it prints numbers.
//!
//! Run: `cargo bench --bench unauth_flood` (tern, release build). The same traffic against
//! coturn's `turnserver`: `TERN_FLOOD_SERVER=coturn cargo bench --bench unauth_flood`.
//! `TERN_FLOOD_SOURCES` and `TERN_FLOOD_PER_SOURCE` change the shape (1000 x 100);
//! `TERN_FLOOD_ARGS` adds flags to tern's (e.g. `--unauthorized-ratelimit-rps=0` to answer all).
#![allow(clippy::disallowed_methods)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern::stun::{attr, Class, MessageBuilder, MessageType, Method};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A UDP port free right now on 127.0.0.1.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn allocate_request(n: u32) -> Vec<u8> {
    let mut tid = [0x42u8; 12];
    tid[8..].copy_from_slice(&n.to_be_bytes());
    let mut buf = [0u8; 64];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, &tid).expect("header");
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .expect("attribute");
    let n = b.finish();
    buf[..n].to_vec()
}

fn binding_request() -> Vec<u8> {
    let mut buf = [0u8; 20];
    let typ = MessageType::new(Method::BINDING, Class::Request);
    let n = MessageBuilder::new(&mut buf, typ, &[7; 12])
        .expect("header")
        .finish();
    buf[..n].to_vec()
}

fn start_server(which: &str, port: u16) -> Child {
    let port = port.to_string();
    let mut cmd = if which == "coturn" {
        let mut c = Command::new("turnserver");
        c.args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--no-tcp",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--lt-cred-mech",
            "--user=flood:flood",
            "--realm=flood.test",
            "--log-file=stdout",
            "--listening-port",
            &port,
        ]);
        c
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tern"));
        c.args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--no-tcp",
            "--user=flood:flood",
            "--realm=flood.test",
            "--listening-port",
            &port,
        ]);
        let extra = std::env::var("TERN_FLOOD_ARGS").unwrap_or_default();
        c.args(extra.split_whitespace());
        c
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {which}: {e}"))
}

/// Waits until the server answers a Binding request.
fn wait_ready(server: SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let _ = sock.send_to(&binding_request(), server);
        if sock.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("the server at {server} never answered");
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Reads and counts whatever answers are waiting on the sockets.
fn drain(socks: &[UdpSocket]) -> u64 {
    let mut buf = [0u8; 1500];
    let mut n = 0;
    for s in socks {
        while s.recv_from(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}

fn main() {
    let which = std::env::var("TERN_FLOOD_SERVER").unwrap_or_else(|_| "tern".into());
    let sources = env_or("TERN_FLOOD_SOURCES", 1000);
    let per_source = env_or("TERN_FLOOD_PER_SOURCE", 100);
    let port = free_port();
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
    let mut child = start_server(&which, port);
    wait_ready(server);
    let socks: Vec<UdpSocket> = (0..sources)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
            let s = UdpSocket::bind((ip, 0)).expect("bind a source address in 127/8");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(child.id());
    let started = Instant::now();
    let mut answers = 0;
    let mut n = 0u32;
    for round in 0..per_source {
        for s in &socks {
            n += 1;
            // A full socket buffer on the server side just loses the request, as on a real link.
            let _ = s.send_to(&allocate_request(n), server);
        }
        if round % 10 == 9 {
            answers += drain(&socks);
        }
    }
    let sending = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    answers += drain(&socks);
    let after = rss_kib(child.id());
    let growth = after.saturating_sub(before);
    println!(
        "unauth_flood/{which}: {n} unauthenticated Allocates from {sources} sources in {:.2} s, \
         {answers} answered; RSS {before} KiB -> {after} KiB: growth {growth} KiB \
         ({:.2} KiB per source)",
        sending.as_secs_f64(),
        growth as f64 / sources as f64,
    );
    let _ = child.kill();
    let _ = child.wait();
}
