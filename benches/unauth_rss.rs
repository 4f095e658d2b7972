//! Memory under a flood of unauthenticated Allocates (RFC 8656 §7.2 with RFC 8489 §9.2 stateless
//! nonces): the release binary gets one Allocate without credentials from each of many distinct
//! source addresses (a distinct loopback IP each, 127.1.x.y), every one must get a 401 with a
//! NONCE, and the server's VmRSS must stay flat. Prints RSS before and after and the growth per
//! request. `cargo bench --bench unauth_rss`; `TERN_BENCH_ALLOCATES=N` changes the count. Under
//! `cargo test` it runs a short smoke pass.

#![allow(clippy::disallowed_methods)]

use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

const DEFAULT_REQUESTS: u32 = 10_000;
const SMOKE_REQUESTS: u32 = 300;
/// Requests before the baseline is read, so that first-use buffers are not counted as growth.
const WARMUP: u32 = 1_000;
/// Sockets open at once.
const BATCH: u32 = 250;
const TRY_TIMEOUT: Duration = Duration::from_millis(500);
const TRIES: u32 = 6;
/// Growth per request above which the bench fails: any per-sender state (an allocation, a
/// nonce record) costs far more than this, while page-granular RSS noise over 10,000 requests
/// stays far below.
const MAX_BYTES_PER_REQUEST: f64 = 64.0;

/// The release `tern`, killed by PID on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                "--listening-port=0",
                "--user=bench:bench-password",
                "--realm=bench.test",
                "--no-tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tern");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on udp ").nth(1) {
                    if let Some(addr) = rest.split_whitespace().next() {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("tern reports its UDP listener")
            .parse()
            .expect("a socket address");
        Server { child, addr }
    }

    /// VmRSS from /proc/PID/status, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Source `i`: its own loopback IP in 127.1.0.0/16 (the whole of 127/8 reaches `lo`).
fn source(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7F01_0000 + 1 + i)
}

fn allocate_request(i: u32) -> ([u8; 12], Vec<u8>) {
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(b"tern");
    tid[8..].copy_from_slice(&i.to_be_bytes());
    let mut buf = vec![0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        &tid,
    )
    .expect("header fits");
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .expect("fits");
    let n = b.finish();
    buf.truncate(n);
    (tid, buf)
}

/// Whether `answer` is a 401 to `tid` carrying a NONCE and a REALM.
fn is_challenge(answer: &[u8], tid: &[u8; 12]) -> bool {
    let Ok(msg) = Message::parse(answer) else {
        return false;
    };
    let code = msg.error_code().and_then(Result::ok).map(|(c, _)| c.0);
    msg.transaction_id() == tid
        && msg.class() == Class::Error
        && code == Some(401)
        && msg.nonce().is_some()
        && msg.realm().is_some()
}

/// Sends one unauthenticated Allocate from each source in `range`; returns how many got a 401.
fn flood(server: SocketAddr, range: std::ops::Range<u32>) -> io::Result<u32> {
    let mut challenged = 0;
    let mut start = range.start;
    while start < range.end {
        let end = (start + BATCH).min(range.end);
        let mut pending = Vec::new();
        for i in start..end {
            let socket = UdpSocket::bind((source(i), 0))?;
            socket.set_read_timeout(Some(TRY_TIMEOUT))?;
            let (tid, request) = allocate_request(i);
            socket.send_to(&request, server)?;
            pending.push((socket, tid, request));
        }
        let mut buf = [0u8; 1500];
        for (socket, tid, request) in &pending {
            for _ in 0..TRIES {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        if is_challenge(&buf[..n], tid) {
                            challenged += 1;
                        }
                        break;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        socket.send_to(request, server)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        start = end;
    }
    Ok(challenged)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let requests = std::env::var("TERN_BENCH_ALLOCATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching {
            DEFAULT_REQUESTS
        } else {
            SMOKE_REQUESTS
        });
    let warmup = if benching { WARMUP } else { SMOKE_REQUESTS / 3 };
    let server = Server::start();
    let started = server.rss_kib();
    let warmed = flood(server.addr, 0..warmup).expect("warm-up flood");
    assert_eq!(warmed, warmup, "every warm-up Allocate gets a 401");
    let before = server.rss_kib();
    let t0 = Instant::now();
    let challenged = flood(server.addr, warmup..warmup + requests).expect("flood");
    let elapsed = t0.elapsed();
    let after = server.rss_kib();
    assert_eq!(
        challenged, requests,
        "every unauthenticated Allocate gets a 401 with NONCE and REALM"
    );
    let growth = after.saturating_sub(before);
    let per_request = growth as f64 * 1024.0 / f64::from(requests);
    println!(
        "unauth_rss: {requests} unauthenticated Allocates from {requests} distinct source addresses, \
         all answered 401, in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "unauth_rss: VmRSS at start {started} KiB, after {warmup} warm-up requests {before} KiB, \
         after the flood {after} KiB"
    );
    println!(
        "unauth_rss: growth {growth} KiB over {requests} requests = {per_request:.1} bytes per request"
    );
    if requests >= DEFAULT_REQUESTS {
        assert!(
            per_request <= MAX_BYTES_PER_REQUEST,
            "memory grew {per_request:.1} bytes per unauthenticated request"
        );
    }
}
