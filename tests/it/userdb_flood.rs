//! A flood of signed requests naming users the database does not hold (issue 18): anyone with a
//! nonce can make tern look a name up, so lookups of uncached names are budgeted per source IP,
//! overlong names are never looked up, and a full lookup queue is reported as overload, not as a
//! database that is down. Real users keep authenticating throughout. SQLite, through the binary.
// Deadlines for real processes need the real clock.
#![allow(clippy::disallowed_methods)]

use crate::support;
use crate::userdb_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tern::auth::long_term_key;
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

use support::{transaction_id, Server};
use userdb_support::{relayed, tern_admin, TempDir, TurnClient, REALM};

/// A source that fetched a nonce and now signs Allocates for made-up users with made-up keys:
/// tern cannot check MESSAGE-INTEGRITY before it knows the user's key.
struct Flooder {
    socket: UdpSocket,
    server: SocketAddr,
    nonce: Vec<u8>,
}

impl Flooder {
    fn new(server: SocketAddr, ip: &str) -> Flooder {
        let socket = UdpSocket::bind((ip, 0)).expect("bind the flooding source");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut f = Flooder {
            socket,
            server,
            nonce: Vec::new(),
        };
        let tid = f.send("");
        let reply = f.reply_to(&tid).expect("a challenge to the first Allocate");
        let msg = Message::parse(&reply).expect("STUN");
        f.nonce = msg.nonce().expect("a NONCE in the challenge").to_vec();
        f
    }

    /// One Allocate, signed for `name` once a nonce is known; its transaction id.
    fn send(&self, name: &str) -> [u8; 12] {
        let tid = transaction_id();
        let mut buf = vec![0u8; 1500];
        let typ = MessageType::new(Method::ALLOCATE, Class::Request);
        let mut b = MessageBuilder::new(&mut buf, typ, &tid).expect("header");
        b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .expect("transport");
        if !self.nonce.is_empty() {
            b.add_str(attr::USERNAME, name).expect("username");
            b.add_str(attr::REALM, REALM).expect("realm");
            b.add_raw(attr::NONCE, &self.nonce).expect("nonce");
            b.add_message_integrity(&long_term_key(name, REALM, "guess"))
                .expect("integrity");
        }
        let n = b.finish();
        self.socket
            .send_to(&buf[..n], self.server)
            .expect("send the Allocate");
        tid
    }

    fn reply_to(&self, tid: &[u8; 12]) -> Option<Vec<u8>> {
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            if Message::parse(&buf[..n]).is_ok_and(|m| m.transaction_id() == tid) {
                return Some(buf[..n].to_vec());
            }
        }
        None
    }

    /// Every answer that comes within `within`, by error code (0 for a success).
    fn codes(&self, within: Duration) -> Vec<u16> {
        let mut codes = Vec::new();
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                if let Ok(m) = Message::parse(&buf[..n]) {
                    codes.push(m.error_code().and_then(Result::ok).map_or(0, |(c, _)| c.0));
                }
            }
        }
        codes
    }
}

/// A random name no database holds.
fn random_name(tag: &str) -> String {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).expect("random");
    let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    format!("{tag}-{hex}")
}

/// tern on the SQLite file with Prometheus on a free port; the metrics address.
fn tern_with_metrics(file: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let realm = format!("--realm={REALM}");
    let db = format!("--userdb={file}");
    let mut args = vec![
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--allow-loopback-peers",
        "--prometheus",
        "--prometheus-port=0",
        "--prometheus-address=127.0.0.1",
        &realm,
        &db,
    ];
    args.extend_from_slice(extra);
    let server = Server::start_args(&args);
    let line = server
        .wait_for_log("metrics on http://", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no metrics line; log:\n{}", server.log()));
    let url = line.split("metrics on http://").nth(1).expect("an address");
    let addr = url.split('/').next().expect("host:port");
    let addr = addr.parse().expect("metrics address");
    (server, addr)
}

/// `tern_drops_total{reason="<reason>"}` now (0 when the reason is not exposed).
fn drops(metrics: SocketAddr, reason: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(metrics).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send the scrape");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read the scrape");
    let needle = format!("tern_drops_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn sqlite_file(dir: &TempDir) -> String {
    let file = dir.path("turndb");
    file.to_str().expect("utf-8 path").to_owned()
}

fn add_user(file: &str, user: &str, password: &str) {
    tern_admin(&["-a", "-u", user, "-r", REALM, "-p", password, "-b", file]);
}

/// 300 random names from one source in a burst: all but its budget (10 a second) are answered
/// 401 without a lookup and counted; real users from another source allocate meanwhile.
#[test]
fn one_source_spends_its_budget_and_real_users_still_authenticate() {
    const FLOOD: usize = 300;
    let dir = TempDir::new("flood");
    let file = sqlite_file(&dir);
    add_user(&file, "alice", "pw-a");
    add_user(&file, "bob", "pw-b");
    let (server, metrics) = tern_with_metrics(&file, &[]);
    let addr = server.udp_addr();
    let mut alice = TurnClient::new(addr, "alice", "pw-a", REALM);
    assert!(relayed(&alice.allocate()), "{}", server.log());

    let flooder = Flooder::new(addr, "127.0.0.3");
    let start = Instant::now();
    for _ in 0..FLOOD {
        flooder.send(&random_name("flood"));
    }
    let windows = start.elapsed().as_secs() + 2;
    let codes = flooder.codes(Duration::from_secs(2));
    let mut bob = TurnClient::new(addr, "bob", "pw-b", REALM);
    assert!(relayed(&bob.allocate()), "{}", server.log());
    assert!(relayed(&alice.refresh()), "{}", server.log());

    assert_eq!(codes.len(), FLOOD, "every flood request is answered");
    assert!(codes.iter().all(|&c| c == 401), "{codes:?}");
    let refused = drops(metrics, "userdb_budget");
    let budget = 10 * windows;
    assert!(
        refused >= FLOOD as u64 - budget && refused <= FLOOD as u64,
        "{refused} refused over budget, budget {budget} for the burst\n{}",
        server.log()
    );
}

/// A USERNAME over `userdb-max-username-length` (128 bytes by default) is refused without a
/// lookup, even when the database holds it; a name of exactly 128 bytes authenticates.
#[test]
fn overlong_names_are_not_looked_up() {
    let dir = TempDir::new("flood");
    let file = sqlite_file(&dir);
    let longest = "l".repeat(128);
    let overlong = "o".repeat(129);
    add_user(&file, &longest, "pw");
    add_user(&file, &overlong, "pw");
    let (server, metrics) = tern_with_metrics(&file, &[]);
    let addr = server.udp_addr();
    let ok = TurnClient::new(addr, &longest, "pw", REALM).allocate();
    assert!(relayed(&ok), "{ok:?}\n{}", server.log());
    assert_eq!(drops(metrics, "userdb_name_too_long"), 0);
    let no = TurnClient::new(addr, &overlong, "pw", REALM).allocate();
    assert_eq!(no, userdb_support::Outcome::Error(401), "{}", server.log());
    let flooder = Flooder::new(addr, "127.0.0.3");
    flooder.send(&"x".repeat(400));
    assert_eq!(flooder.codes(Duration::from_millis(500)), [401]);
    assert_eq!(
        drops(metrics, "userdb_name_too_long"),
        2,
        "{}",
        server.log()
    );
    assert_eq!(drops(metrics, "userdb_budget"), 0);
}

/// With the database stalled (SQLite locked by another process) and the budget off, a burst of
/// unknown names fills the lookup queue: the rest are refused as overload, counted and logged as
/// such, and nothing says the database is unavailable. Once the lock goes, users allocate.
#[test]
fn a_full_lookup_queue_is_overload_not_unavailability() {
    let dir = TempDir::new("flood");
    let file = sqlite_file(&dir);
    add_user(&file, "alice", "pw-a");
    let (server, metrics) = tern_with_metrics(&file, &["--userdb-lookup-rps=0"]);
    let addr = server.udp_addr();
    let lock = rusqlite::Connection::open(&file).expect("open the SQLite file");
    lock.execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the database");
    let locked = Instant::now();
    let flooder = Flooder::new(addr, "127.0.0.3");
    for _ in 0..1200 {
        flooder.send(&random_name("stall"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut overloaded = 0;
    while overloaded == 0 && Instant::now() < deadline {
        overloaded = drops(metrics, "userdb_overloaded");
    }
    let seen = server
        .wait_for_log("overloaded", Duration::from_secs(5))
        .unwrap_or_default();
    // The stalled lookup fails only after SQLite's busy timeout (2 s): the log so far must not
    // blame the database.
    let log = server.log();
    let stalled = locked.elapsed();
    lock.execute_batch("COMMIT").expect("unlock the database");
    drop(lock);
    assert!(overloaded > 0, "no overload counted\n{log}");
    assert!(
        seen.contains("user database"),
        "overload not logged:\n{log}"
    );
    if stalled < Duration::from_secs(2) {
        assert!(
            !log.lines()
                .any(|l| l.contains("user database") && l.contains("unavailable")),
            "a full queue reported as unavailability:\n{log}"
        );
    }
    let took =
        userdb_support::allocate_until(addr, "alice", "pw-a", Duration::from_secs(15), relayed);
    assert!(took.is_ok(), "{took:?}\n{}", server.log());
}
