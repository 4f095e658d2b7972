//! Per-source budgets across shards, against the real binary: with two relay threads, a spoofed
//! victim address that varies its source port still gets one `unauthorized-ratelimit-rps`
//! budget, not one per shard, because the UDP listeners are steered to a shard by the source IP
//! alone; another source IP keeps a budget of its own. tern does not limit loopback sources
//! (they cannot be spoofed from the network), so the test runs in a network namespace of its own
//! whose loopback interface carries documentation addresses (RFC 5737, RFC 3849); that takes
//! root, and the test prints `SKIP` without it (fails under `TERN_REQUIRE_INTEROP=1`).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{transaction_id, Server, PASSWORD, REALM, USER};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

/// tern's listening addresses.
const SERVER: &str = "203.0.113.10";
const SERVER6: &str = "2001:db8:a::10";
/// The spoofed victim, in each family, and another source.
const VICTIM: &str = "198.51.100.1";
const VICTIM6: &str = "2001:db8:c::1";
const OTHER: &str = "198.51.100.2";
/// Answers per source IP per second (`unauthorized-ratelimit-rps`).
const RPS: u32 = 50;
/// Source ports per flooding IP: far more than enough to reach every shard by 4-tuple.
const PORTS: usize = 64;
const FLOOD: Duration = Duration::from_millis(1500);
/// One request from each port per round: 64 every 10 ms is 6,400 requests per second per IP,
/// so every one-second window the flood touches, however short its part, runs out of budget.
const ROUND: Duration = Duration::from_millis(10);
/// Time for answers still on their way after the last request.
const SETTLE: Duration = Duration::from_millis(300);

/// An Allocate without credentials: answered 401 within the budget, dropped beyond it.
fn unauthenticated_allocate() -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, &transaction_id()).expect("header fits");
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .expect("attribute fits");
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// 401 answers waiting on `socks` (non-blocking), read until none is left.
fn count_401(socks: &[UdpSocket]) -> u32 {
    let mut buf = [0u8; 1500];
    let mut n = 0;
    for s in socks {
        loop {
            match s.recv(&mut buf) {
                Ok(len) => {
                    let msg = Message::parse(&buf[..len]).expect("a STUN answer");
                    let code = msg.error_code().map(|r| r.expect("ERROR-CODE").0 .0);
                    assert_eq!(code, Some(401), "unexpected answer");
                    n += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
    n
}

/// Floods `server` with unauthenticated Allocates from `PORTS` sockets on `ip` for `FLOOD`;
/// the 401 answers they got.
fn flood(ip: IpAddr, server: SocketAddr) -> u32 {
    let request = unauthenticated_allocate();
    let socks: Vec<UdpSocket> = (0..PORTS)
        .map(|_| {
            let s = UdpSocket::bind((ip, 0)).expect("bind a flooding socket");
            s.connect(server).expect("connect");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    let start = Instant::now();
    let mut answers = 0;
    while start.elapsed() < FLOOD {
        for s in &socks {
            // A full send buffer only slows the flood down.
            let _ = s.send(&request);
        }
        answers += count_401(&socks);
        thread::sleep(ROUND);
    }
    thread::sleep(SETTLE);
    answers + count_401(&socks)
}

/// Runs `f` on a thread in a network namespace of its own (gone with the thread and the
/// processes it started), whose loopback interface is up and also carries `addrs`: every socket
/// `f` opens and every process it starts lives there. Err: why the namespace cannot be made.
fn in_private_net<T: Send>(addrs: &[&str], f: impl FnOnce() -> T + Send) -> Result<T, String> {
    thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(2) with CLONE_NEWNET only moves the calling thread to a new
            // network namespace; the other threads of the process keep theirs.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(format!("a network namespace of its own needs root: {e}"));
            }
            ip(&["link", "set", "lo", "up"])?;
            for a in addrs {
                let v6 = a.contains(':');
                let with_prefix = format!("{a}/{}", if v6 { 128 } else { 32 });
                let mut args = vec!["addr", "add", &with_prefix, "dev", "lo"];
                if v6 {
                    // Usable at once, not after duplicate address detection.
                    args.push("nodad");
                }
                ip(&args)?;
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn parse(ip: &str) -> IpAddr {
    ip.parse().expect("an address")
}

#[test]
fn one_source_ip_gets_one_budget_across_shards_and_another_ip_its_own() {
    let run = || {
        let user = format!("--user={USER}:{PASSWORD}");
        let realm = format!("--realm={REALM}");
        let (on4, on6) = (
            format!("--listening-ip={SERVER}"),
            format!("--listening-ip={SERVER6}"),
        );
        let rps = format!("--unauthorized-ratelimit-rps={RPS}");
        let server = Server::start_args(&[
            "-n",
            &on4,
            &on6,
            "--listening-port=0",
            "--no-tcp",
            "--relay-threads=2",
            &rps,
            &user,
            &realm,
        ]);
        // Every listening address has the same port.
        let port = server.udp_addr().port();
        let (to4, to6) = (
            SocketAddr::new(parse(SERVER), port),
            SocketAddr::new(parse(SERVER6), port),
        );
        let floods: Vec<_> = [(VICTIM, to4), (OTHER, to4), (VICTIM6, to6)]
            .into_iter()
            .map(|(from, to)| (from, thread::spawn(move || flood(parse(from), to))))
            .collect();
        let seconds = FLOOD.as_secs_f64();
        let got: Vec<(&str, u32)> = floods
            .into_iter()
            .map(|(from, flood)| (from, flood.join().expect("a flood")))
            .collect();
        for (from, n) in &got {
            eprintln!(
                "{from}, {PORTS} ports for {FLOOD:?}, budget {RPS}/s: {n} answers ({:.0}/s)",
                f64::from(*n) / seconds
            );
        }
        // The flood touches two or three one-second windows, each worth RPS answers per source
        // IP (one budget); one budget per shard would give up to twice that, and a budget
        // shared with another source less.
        for (from, n) in got {
            assert!(
                (2 * RPS..=3 * RPS).contains(&n),
                "{from} got {n} answers; one budget of {RPS}/s over {FLOOD:?} is {}..={}",
                2 * RPS,
                3 * RPS
            );
        }
        assert!(
            server
                .log()
                .contains("UDP listeners steered by source IP (reuseport CBPF)"),
            "log:\n{}",
            server.log()
        );
    };
    if let Err(why) = in_private_net(&[SERVER, SERVER6, VICTIM, OTHER, VICTIM6], run) {
        support::lab::skip(&why);
    }
}

/// 401 answers to `n` unauthenticated Allocates sent at once from one socket on `ip`.
fn burst(ip: IpAddr, server: SocketAddr, n: usize) -> u32 {
    let request = unauthenticated_allocate();
    let sock = UdpSocket::bind((ip, 0)).expect("bind");
    sock.connect(server).expect("connect");
    sock.set_nonblocking(true).expect("non-blocking");
    for _ in 0..n {
        // A full send buffer only makes the burst smaller.
        let _ = sock.send(&request);
    }
    thread::sleep(SETTLE);
    count_401(std::slice::from_ref(&sock))
}

#[test]
fn sighup_applies_a_new_unauthorized_ratelimit_rps() {
    let run = || {
        let dir = support::TempDir::new("ratelimit-reload");
        let conf = dir.path("turnserver.conf");
        let write = |rps: u32| {
            let text = format!(
                "user={USER}:{PASSWORD}\nrealm={REALM}\nlistening-ip={SERVER}\n\
                 listening-port=0\nunauthorized-ratelimit-rps={rps}\n"
            );
            std::fs::write(&conf, text).expect("write config");
        };
        write(20);
        let path = conf.to_str().expect("utf-8 path");
        let server = Server::start_args(&["-c", path, "--no-tcp"]);
        let to = SocketAddr::new(parse(SERVER), server.udp_addr().port());
        // A burst may straddle two one-second windows: one budget or two.
        let n = burst(parse(VICTIM), to, 400);
        assert!((20..=40).contains(&n), "{n} answers with a budget of 20/s");
        write(80);
        server.signal(libc::SIGHUP);
        server
            .wait_for_log("reload done", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reload; log:\n{}", server.log()));
        // A fresh window: what the first burst spent does not count.
        thread::sleep(Duration::from_millis(1100));
        let n = burst(parse(VICTIM), to, 400);
        assert!((80..=160).contains(&n), "{n} answers with a budget of 80/s");
        assert!(
            server
                .log()
                .contains("reload: unauthorized-ratelimit-rps: 20 -> 80"),
            "{}",
            server.log()
        );
    };
    if let Err(why) = in_private_net(&[SERVER, VICTIM], run) {
        support::lab::skip(&why);
    }
}
