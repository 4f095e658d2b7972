//! The slowloris drill (issue 18): many TCP connections from many loopback addresses, each
//! trickling a byte of a never-finished STUN message every half second, while the probe keeps
//! making allocations from another client. Passes when tern closes every trickling connection by
//! its deadline (counted from accept, whatever trickles in), the probe's Allocate p99 under
//! attack stays within twice the idle server's (measured first, in the same run), and tern's
//! RSS stays bounded and falls back once they are gone.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::probe::{Probe, ProbeResult};
use super::proc::Tern;
use super::Outcome;
use tern_testkit::histogram::ms;

/// Between two bytes of one trickling connection.
const TRICKLE: Duration = Duration::from_millis(500);
/// How often the driver looks at every connection.
const TICK: Duration = Duration::from_millis(100);
/// Past the deadline, what tern may take to notice (its sweep runs every second) and the driver
/// to see it (a tick).
const GRACE: Duration = Duration::from_millis(2500);
/// Connections per source address (tern's default per-address cap is 512).
const PER_SOURCE: usize = 50;
/// The probe: a Binding and a whole Allocate every 20 ms.
const BINDING_EVERY: Duration = Duration::from_millis(20);
const ALLOCATE_EVERY: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
pub struct SlowlorisOpts {
    pub bin: PathBuf,
    /// Trickling connections.
    pub connections: usize,
    /// tern's `max-allocate-timeout` and `stream-first-message-timeout`, in seconds.
    pub deadline: u32,
    /// How long the probe measures the idle server.
    pub idle: Duration,
    /// The most tern's RSS may grow per trickling connection, in bytes.
    pub rss_per_connection: u64,
    /// The least the Allocate p99 bound (twice the idle p99) may be: below it a p99 is the
    /// scheduler's noise on a shared machine (with a few hundred samples, p99 is one of the
    /// slowest few), not the attack's doing.
    pub p99_floor: Duration,
}

/// A trickling connection: when it opened and, once tern closed it, when that was seen.
struct Loris {
    stream: TcpStream,
    opened: Instant,
    closed: Option<Instant>,
    sent: usize,
}

/// A STUN Binding header announcing 65,532 bytes of attributes: it never completes.
const HEADER: [u8; 8] = [0x00, 0x01, 0xff, 0xfc, 0x21, 0x12, 0xa4, 0x42];

pub fn run(o: &SlowlorisOpts) -> Outcome {
    let limit = super::raise_nofile();
    let needed = o.connections as u64 + 256;
    if limit < needed {
        return Err(format!(
            "RLIMIT_NOFILE {limit} is below the {needed} descriptors {} connections need",
            o.connections
        ));
    }
    let deadline = format!("{}", o.deadline);
    let extra = [
        "--no-tcp=off".to_owned(),
        "--io-engine=epoll".to_owned(),
        format!("--max-allocate-timeout={deadline}"),
        format!("--stream-first-message-timeout={deadline}"),
    ];
    let tern = Tern::start(&o.bin, &[], &extra)?;
    let server = tern.udp;
    let idle = probe_for(server, o.idle);
    let rss_before = tern.rss_kib().unwrap_or(0);
    let probe = Probe::start(server, BINDING_EVERY, ALLOCATE_EVERY);
    let attack = attack(&tern, o);
    let under = probe.finish();
    let (lorises, rss_peak, opening) = attack?;
    let rss_after = tern.rss_kib().unwrap_or(0);
    let limit = Duration::from_secs(u64::from(o.deadline)) + GRACE;
    let open: Vec<&Loris> = lorises.iter().filter(|l| l.closed.is_none()).collect();
    let late = lorises
        .iter()
        .filter_map(|l| l.closed.map(|c| c.duration_since(l.opened)))
        .filter(|held| *held > limit)
        .count();
    let longest = lorises
        .iter()
        .filter_map(|l| l.closed.map(|c| c.duration_since(l.opened)))
        .max()
        .unwrap_or_default();
    let sent: usize = lorises.iter().map(|l| l.sent).sum();
    let (idle_p99, under_p99) = (
        idle.allocate.quantile_duration(0.99),
        under.allocate.quantile_duration(0.99),
    );
    let bound = (idle_p99 * 2).max(o.p99_floor);
    let grown = rss_peak.saturating_sub(rss_before);
    let rss_bound = o.connections as u64 * o.rss_per_connection / 1024;
    let summary = format!(
        "{} connections from {} loopback addresses (opened in {}), {sent} bytes trickled, one \
         every {}; deadline {} s: {} closed, longest held {}, {late} late, {} still open; \
         Allocate p99 idle {} ({}), under attack {} ({}), bound {} (2x idle, at least {}); {} Allocates failed; RSS \
         {rss_before} KiB before, {rss_peak} KiB peak (+{grown} KiB, bound +{rss_bound}), \
         {rss_after} KiB after",
        o.connections,
        o.connections.div_ceil(PER_SOURCE),
        ms(opening),
        ms(TRICKLE),
        o.deadline,
        lorises.len() - open.len(),
        ms(longest),
        open.len(),
        ms(idle_p99),
        idle.allocate.summary(),
        ms(under_p99),
        under.allocate.summary(),
        ms(bound),
        ms(o.p99_floor),
        under.allocate_failed + idle.allocate_failed,
    );
    if !open.is_empty() || late > 0 {
        return Err(format!(
            "trickling connections outlived the deadline: {summary}"
        ));
    }
    if under_p99 > bound || under.allocate_failed > 0 || under.allocate.count() == 0 {
        return Err(format!(
            "the probe suffered: {summary}; failures {:?}",
            under.allocate_failures
        ));
    }
    if grown > rss_bound {
        return Err(format!("RSS grew past its bound: {summary}"));
    }
    Ok(summary)
}

fn probe_for(server: SocketAddr, d: Duration) -> ProbeResult {
    let probe = Probe::start(server, BINDING_EVERY, ALLOCATE_EVERY);
    thread::sleep(d);
    probe.finish()
}

/// Opens the connections, trickles until tern has closed them all or the deadline and grace
/// are well past; the connections, the peak RSS seen and how long opening took.
fn attack(tern: &Tern, o: &SlowlorisOpts) -> Result<(Vec<Loris>, u64, Duration), String> {
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), tern.udp.port());
    let start = Instant::now();
    let mut lorises = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let stream = connect_from(source(i / PER_SOURCE), to)
            .map_err(|e| format!("connection {i} of {}: {e}", o.connections))?;
        let opened = Instant::now();
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("set_nonblocking: {e}"))?;
        lorises.push(Loris {
            stream,
            opened,
            closed: None,
            sent: 0,
        });
    }
    let opening = start.elapsed();
    let give_up = Instant::now() + Duration::from_secs(u64::from(o.deadline)) + GRACE * 2;
    let mut peak = 0;
    let mut buf = [0u8; 64];
    while Instant::now() < give_up && lorises.iter().any(|l| l.closed.is_none()) {
        let now = Instant::now();
        for l in lorises.iter_mut().filter(|l| l.closed.is_none()) {
            if gone(&mut l.stream, &mut buf) {
                l.closed = Some(now);
                continue;
            }
            let due = l.opened + TRICKLE * l.sent as u32;
            if now >= due {
                let byte = HEADER[l.sent % HEADER.len()];
                match l.stream.write(&[byte]) {
                    Ok(_) => l.sent += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => l.closed = Some(now),
                }
            }
        }
        peak = peak.max(tern.rss_kib().unwrap_or(0));
        thread::sleep(TICK.saturating_sub(now.elapsed()));
    }
    Ok((lorises, peak, opening))
}

/// Whether the server ended the connection (end of stream or an error other than "no data").
fn gone(s: &mut TcpStream, buf: &mut [u8]) -> bool {
    match s.read(buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted,
    }
}

/// Source address `n`: 127.20.0.1 onwards, skipping .0 and .255 in the last byte.
fn source(n: usize) -> IpAddr {
    let net = n / 254;
    let [_, _, b, c] = u32::try_from(net).unwrap_or(0).to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(
        127,
        20u8.wrapping_add(b),
        c,
        (n % 254 + 1) as u8,
    ))
}

fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}
