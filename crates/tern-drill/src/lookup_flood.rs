//! The user-database lookup flood drill (issue 18 item 2): tern on a SQLite user database with
//! real users; from many loopback sources, each holding a nonce it fetched, a flood of Allocates
//! signed for random usernames with made-up keys (tern cannot check MESSAGE-INTEGRITY before it
//! knows the key, so each one asks for a lookup) while the real users keep authenticating. Passes
//! when the real users' complete Allocates (challenge included) stay under the p99 bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tern::auth::db::{self, DbSpec};
use tern::auth::long_term_key;

use super::proc::Tern;
use super::{Outcome, REALM};
use tern::client::{self, Algorithm, Auth, Credentials, Request};
use tern_testkit::histogram::ms;
use tern_testkit::Histogram;
use tern_testkit::UdpClient;

/// A real user's retransmission timer: a loss shows as this much latency, past any bound.
const RTO: Duration = Duration::from_millis(250);
const TRIES: u32 = 8;

#[derive(Clone)]
pub struct LookupFloodOpts {
    pub bin: PathBuf,
    /// Random usernames per second, over all sources.
    pub rate: u32,
    /// Flooding source addresses (127.1.x.y).
    pub sources: u16,
    pub duration: Duration,
    /// Real users in the database; each authenticates over and over during the flood.
    pub users: usize,
    /// p99 bound on a real user's complete Allocate.
    pub p99: Duration,
}

pub fn run(o: &LookupFloodOpts) -> Outcome {
    super::raise_nofile();
    let dir = std::env::temp_dir().join(format!("tern-lookup-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join("turndb");
    let _ = std::fs::remove_file(&file);
    let outcome = flood(o, &file);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn user(i: usize) -> (String, String) {
    (format!("real-{i}"), format!("password-{i}"))
}

fn flood(o: &LookupFloodOpts, file: &std::path::Path) -> Outcome {
    let spec = DbSpec::Sqlite(file.to_path_buf());
    let mut writer = db::open(&spec).map_err(|e| format!("create {}: {e}", file.display()))?;
    for i in 0..o.users {
        let (name, password) = user(i);
        writer
            .add_user(REALM, &name, &long_term_key(&name, REALM, &password))
            .map_err(|e| format!("add {name}: {e}"))?;
    }
    drop(writer);
    let args = [
        format!("--userdb={}", file.display()),
        "--prometheus".into(),
        "--prometheus-port=0".into(),
        "--prometheus-address=127.0.0.1".into(),
    ];
    let tern = Tern::start(&o.bin, &[], &args)?;
    let metrics = metrics_addr(&tern)?;

    // Every real user authenticates once before the flood (as they would have before it began),
    // each from its own source so that first lookups do not share a budget.
    let mut warm = Histogram::default();
    for i in 0..o.users {
        let t0 = Instant::now();
        allocate(tern.udp, real_source(i), i).map_err(|e| format!("warm-up: {e}"))?;
        warm.record_duration(t0.elapsed());
    }

    let sources = flood_sources(tern.udp, o.sources)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (rate, duration) = (o.rate, o.duration);
    let flooder = thread::spawn(move || send_flood(&sources, rate, duration, &flag));
    let mut real = Histogram::default();
    let mut failures = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < o.duration {
        let t0 = Instant::now();
        match allocate(tern.udp, real_source(i % o.users), i % o.users) {
            Ok(()) => real.record_duration(t0.elapsed()),
            Err(e) => failures.push(e),
        }
        i += 1;
        thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let flood = flooder
        .join()
        .map_err(|_| String::from("the flooding thread panicked"))?;
    let drops = scrape(metrics)?;
    let reason = |r: &str| drops.iter().find(|(n, _)| n == r).map_or(0, |(_, v)| *v);
    let (budget, overloaded, too_long) = (
        reason("userdb_budget"),
        reason("userdb_overloaded"),
        reason("userdb_name_too_long"),
    );
    let secs = flood.elapsed.as_secs_f64().max(0.001);
    let refused = budget + overloaded + too_long;
    let summary = format!(
        "{} sources sent {} random names ({:.0}/s, {} answered 401, {} other answers); \
         refused without a lookup: {budget} over budget, {overloaded} overloaded, {too_long} \
         too long; looked up about {}; real users ({}): Allocate {} ({} failed; before the \
         flood {})",
        o.sources,
        flood.sent,
        flood.sent as f64 / secs,
        flood.unauthorized,
        flood.other,
        flood.unauthorized.saturating_sub(refused),
        o.users,
        real.summary(),
        failures.len(),
        warm.summary()
    );
    let mut problems = Vec::new();
    if (flood.sent as f64) < f64::from(o.rate) * secs * 0.8 {
        problems.push(format!(
            "the flood reached only {:.0}/s",
            flood.sent as f64 / secs
        ));
    }
    if real.count() == 0 || real.quantile_duration(0.99) > o.p99 {
        problems.push(format!("real users' p99 over {}", ms(o.p99)));
    }
    if let Some(first) = failures.first() {
        problems.push(format!("{} real Allocates failed: {first}", failures.len()));
    }
    if flood.other > 0 {
        problems.push(String::from("a random name was not refused"));
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{}: {summary}", problems.join("; ")))
    }
}

/// Real user `i`'s source: 127.0.1.x, one per user (up to 254, then shared).
fn real_source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, (i % 254 + 1) as u8))
}

/// A complete Allocate for real user `i` from a fresh socket on `ip` (challenge, signed
/// Allocate), then its deallocation.
fn allocate(server: SocketAddr, ip: IpAddr, i: usize) -> Result<(), String> {
    let (name, password) = user(i);
    let creds = Credentials::long_term(&name, &password);
    let mut c = UdpClient::bind(SocketAddr::new(ip, 0), server, Some(creds), Algorithm::Md5)
        .map_err(|e| format!("bind {ip}: {e}"))?
        .timing(RTO, TRIES, false);
    match c.request(Request::ALLOCATE).map(|a| a.response.outcome) {
        Some(Ok(_)) => {
            let _ = c.request(Request::Refresh(0));
            Ok(())
        }
        Some(Err(refusal)) if refusal.is_challenge() => {
            Err(format!("{name} from {ip}: credentials refused"))
        }
        other => Err(format!("{name} from {ip}: {other:?}")),
    }
}

/// One flooding source: its socket and the nonce tern gave it.
struct Source {
    sock: UdpSocket,
    auth: Auth,
}

/// `n` sources on 127.1.x.y (up to 64,000), each with a nonce fetched by an unsigned Allocate.
fn flood_sources(server: SocketAddr, n: u16) -> Result<Vec<Source>, String> {
    let mut out = Vec::with_capacity(usize::from(n));
    for k in 0..n {
        let (hi, lo) = ((k / 250) as u8, (k % 250 + 1) as u8);
        let ip = IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo));
        let mut c = UdpClient::bind(SocketAddr::new(ip, 0), server, None, Algorithm::Md5)
            .map_err(|e| format!("bind {ip}: {e}"))?
            .timing(RTO, TRIES, false);
        // A made-up password: the key is wrong for every name the flood sends.
        let mut auth = Auth::new(Credentials::long_term("nobody", "made-up"), Algorithm::Md5);
        match c.request(Request::ALLOCATE).map(|a| a.response.outcome) {
            Some(Err(refusal)) if refusal.is_challenge() => {
                let realm = refusal.realm.as_deref().unwrap_or_default();
                auth.challenge(realm, refusal.nonce.as_deref().unwrap_or_default(), None);
            }
            other => return Err(format!("no nonce for {ip}: {other:?}")),
        }
        let sock = c.socket;
        sock.connect(server)
            .and_then(|()| sock.set_nonblocking(true))
            .map_err(|e| format!("connect {ip}: {e}"))?;
        out.push(Source { sock, auth });
    }
    Ok(out)
}

#[derive(Default)]
struct FloodResult {
    sent: u64,
    unauthorized: u64,
    other: u64,
    elapsed: Duration,
}

/// Sends `rate` random-name Allocates a second, round-robin over `sources`, reading answers as
/// it goes, until `duration` passes or `stop` is set; then collects the last answers.
fn send_flood(sources: &[Source], rate: u32, duration: Duration, stop: &AtomicBool) -> FloodResult {
    let mut r = FloodResult::default();
    let start = Instant::now();
    let mut out = [0u8; 512];
    let mut buf = [0u8; 2048];
    let mut next = 0usize;
    let mut tids = tern_testkit::tid_gen();
    let per = Duration::from_secs(1) / rate.max(1);
    while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        // Open loop: catch up to the schedule in bursts of at most 64.
        let due = (start.elapsed().as_nanos() / per.as_nanos().max(1)) as u64;
        let burst = due.saturating_sub(r.sent).min(64);
        for _ in 0..burst {
            let Some(s) = sources.get(next % sources.len().max(1)) else {
                break;
            };
            next += 1;
            let mut signer = Auth::new(
                Credentials::long_term(&random_name(), "made-up"),
                Algorithm::Md5,
            );
            signer.adopt(&s.auth);
            let n = client::encode(
                &mut out,
                &tids.next_tid(),
                &Request::ALLOCATE,
                Some(&signer),
                false,
            )
            .unwrap_or(0);
            if s.sock.send(out.get(..n).unwrap_or_default()).is_ok() {
                r.sent += 1;
            }
        }
        drain(sources, &mut buf, &mut r);
        if burst == 0 {
            thread::sleep(Duration::from_micros(200));
        }
    }
    r.elapsed = start.elapsed();
    let tail = Instant::now() + Duration::from_secs(1);
    while Instant::now() < tail {
        drain(sources, &mut buf, &mut r);
        thread::sleep(Duration::from_millis(10));
    }
    r
}

fn drain(sources: &[Source], buf: &mut [u8], r: &mut FloodResult) {
    for s in sources {
        while let Ok(len) = s.sock.recv(buf) {
            match buf.get(..len).and_then(client::response) {
                Some(reply) if matches!(&reply.outcome, Err(f) if f.code == 401 && f.is_challenge()) => {
                    r.unauthorized += 1
                }
                Some(_) => r.other += 1,
                None => {}
            }
        }
    }
}

/// 16 random hex digits with a prefix: a name no database holds.
fn random_name() -> String {
    let mut b = [0u8; 8];
    // A failed read repeats a name: still unknown, still a lookup once it leaves the cache.
    let _ = getrandom::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("flood-{hex}")
}

/// The metrics address tern logged.
fn metrics_addr(tern: &Tern) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let log = tern.log();
        if let Some(rest) = log.split("metrics on http://").nth(1) {
            if let Some(addr) = rest.split('/').next().and_then(|a| a.parse().ok()) {
                return Ok(addr);
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no metrics address in the log:\n{}", tern.log()))
}

/// `tern_drops_total` by reason.
fn scrape(addr: SocketAddr) -> Result<Vec<(String, u64)>, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("metrics: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: drill\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("metrics: {e}"))?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("metrics: {e}"))?;
    Ok(body
        .lines()
        .filter_map(|l| l.strip_prefix("tern_drops_total{reason=\""))
        .filter_map(|l| {
            let (reason, value) = l.split_once("\"} ")?;
            Some((reason.to_owned(), value.trim().parse().ok()?))
        })
        .collect())
}
