//! Shared by the user database tests: a TURN client doing Allocate with long-term credentials
//! (RFC 8656 §7.2, RFC 8489 §9.2) over UDP, private Redis and PostgreSQL servers on free loopback
//! ports (started and stopped by PID), coturn's `turnserver` on a user database, and `tern admin`.
// Each test binary uses a different part of this module; deadlines need the real clock.
#![allow(dead_code, clippy::disallowed_methods)]

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tern::auth::{long_term_key, Key};
use tern::stun::{attr, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

pub use crate::support::TempDir;
use crate::support::{interop_tool, output_within, tern_bin, transaction_id};

pub mod scenarios;

pub const REALM: &str = "userdb.test";

/// What an Allocate came back with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Relayed(SocketAddr),
    Error(u16),
    /// No answer at all within the retransmissions.
    Silent,
}

/// One client 5-tuple with its long-term credentials.
pub struct TurnClient {
    pub socket: UdpSocket,
    server: SocketAddr,
    user: String,
    key: Key,
    realm: String,
    nonce: Vec<u8>,
    /// Datagrams sent, retransmissions included.
    sent: Cell<usize>,
}

impl TurnClient {
    pub fn new(server: SocketAddr, user: &str, password: &str, realm: &str) -> TurnClient {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
        TurnClient {
            socket,
            server,
            user: user.to_owned(),
            key: long_term_key(user, realm, password),
            realm: realm.to_owned(),
            nonce: Vec::new(),
            sent: Cell::new(0),
        }
    }

    /// How many requests were sent, retransmissions included.
    pub fn sent(&self) -> usize {
        self.sent.get()
    }

    /// Sends `msg` and waits for the response to its transaction id, retransmitting as RFC 8489
    /// §6.2.1 does (RTO 500 ms, doubling, 7 tries).
    fn transact(&self, msg: &[u8], tid: &[u8; 12]) -> Option<Vec<u8>> {
        let mut rto = Duration::from_millis(500);
        let mut buf = [0u8; 1500];
        for _ in 0..7 {
            self.socket.send_to(msg, self.server).ok()?;
            self.sent.set(self.sent.get() + 1);
            let deadline = Instant::now() + rto;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                self.socket
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .ok()?;
                match self.socket.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let got = &buf[..n];
                        if Message::parse(got).is_ok_and(|m| m.transaction_id() == tid) {
                            return Some(got.to_vec());
                        }
                    }
                    Err(_) => break,
                }
            }
            rto = (rto * 2).min(Duration::from_secs(3));
        }
        None
    }

    /// A request of `method` with `add` attributes, signed when a nonce is known.
    fn request(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageBuilder<'_>),
    ) -> Option<Vec<u8>> {
        let tid = transaction_id();
        let mut buf = vec![0u8; 1500];
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), &tid)
            .expect("header");
        add(&mut b);
        if !self.nonce.is_empty() {
            b.add_str(attr::USERNAME, &self.user).expect("username");
            b.add_str(attr::REALM, &self.realm).expect("realm");
            b.add_raw(attr::NONCE, &self.nonce).expect("nonce");
            b.add_message_integrity(&self.key).expect("integrity");
        }
        let n = b.finish();
        buf.truncate(n);
        self.transact(&buf, &tid)
    }

    /// Sends a request, and once more with credentials when challenged (401 / 438).
    fn authed(&mut self, method: Method, add: &dyn Fn(&mut MessageBuilder<'_>)) -> Outcome {
        for _ in 0..3 {
            let Some(resp) = self.request(method, add) else {
                return Outcome::Silent;
            };
            let msg = Message::parse(&resp).expect("a STUN response");
            match msg.class() {
                Class::Success => {
                    let relayed = msg
                        .xor_address(attr::XOR_RELAYED_ADDRESS)
                        .and_then(Result::ok)
                        .unwrap_or(self.server);
                    return Outcome::Relayed(relayed);
                }
                _ => {
                    let code = msg
                        .error_code()
                        .and_then(Result::ok)
                        .map_or(0, |(c, _)| c.0);
                    let challenged = code == ErrorCode::UNAUTHORIZED.0 && self.nonce.is_empty()
                        || code == ErrorCode::STALE_NONCE.0;
                    match msg.nonce() {
                        Some(nonce) if challenged => self.nonce = nonce.to_vec(),
                        _ => return Outcome::Error(code),
                    }
                }
            }
        }
        Outcome::Error(ErrorCode::UNAUTHORIZED.0)
    }

    /// Allocate (UDP relay).
    pub fn allocate(&mut self) -> Outcome {
        self.authed(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
                .expect("transport");
        })
    }

    pub fn refresh(&mut self) -> Outcome {
        self.authed(Method::REFRESH, &|b| {
            b.add_u32(attr::LIFETIME, 600).expect("lifetime");
        })
    }

    /// Refresh with LIFETIME 0: the allocation ends (RFC 8656 §7.3).
    pub fn deallocate(&mut self) -> Outcome {
        self.authed(Method::REFRESH, &|b| {
            b.add_u32(attr::LIFETIME, 0).expect("lifetime");
        })
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Outcome {
        self.authed(Method::CREATE_PERMISSION, &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
                .expect("peer");
        })
    }

    /// A Send indication to `peer` (RFC 8656 §10).
    pub fn send(&self, peer: SocketAddr, data: &[u8]) {
        let tid = transaction_id();
        let mut buf = vec![0u8; 1500];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::SEND, Class::Indication),
            &tid,
        )
        .expect("header");
        b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            .expect("peer");
        b.add_raw(attr::DATA, data).expect("data");
        let n = b.finish();
        self.socket.send_to(&buf[..n], self.server).expect("send");
    }
}

/// Allocates with fresh sockets until `want(outcome)` holds or `within` passes; returns how long
/// it took, or the last outcome.
pub fn allocate_until(
    server: SocketAddr,
    user: &str,
    password: &str,
    within: Duration,
    want: impl Fn(&Outcome) -> bool,
) -> Result<Duration, Outcome> {
    let start = Instant::now();
    loop {
        let outcome = TurnClient::new(server, user, password, REALM).allocate();
        if want(&outcome) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            return Err(outcome);
        }
        thread::sleep(Duration::from_millis(250));
    }
}

pub fn relayed(o: &Outcome) -> bool {
    matches!(o, Outcome::Relayed(_))
}

pub fn refused(o: &Outcome) -> bool {
    *o == Outcome::Error(401)
}

/// `tern admin ARGS`; panics with its output unless it succeeds.
pub fn tern_admin(args: &[&str]) -> String {
    let out = Command::new(tern_bin())
        .arg("admin")
        .args(args)
        .output()
        .expect("run tern admin");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tern admin {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// coturn's `turnadmin ARGS` (None when not installed); panics unless it succeeds.
pub fn turnadmin(args: &[&str]) -> Option<()> {
    let tool = interop_tool("turnadmin")?;
    let out = output_within(Command::new(tool).args(args), Duration::from_secs(30))
        .expect("turnadmin finishes");
    assert!(
        out.status.success(),
        "turnadmin {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// A free port on 127.0.0.1 for both TCP and UDP (as far as a probe can tell).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let port = udp.local_addr().expect("probe address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn wait_tcp(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill(child: &mut Option<Child>, signal: i32) {
    if let Some(mut c) = child.take() {
        if let Ok(pid) = i32::try_from(c.id()) {
            // SAFETY: kill(2) on the PID of a child this harness started and has not reaped.
            unsafe { libc::kill(pid, signal) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A private `redis-server` on a free loopback port, saving to its own directory so a stop and
/// a start keep the data.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        interop_tool("redis-server")?;
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
        };
        r.resume();
        Some(r)
    }

    /// The connection string coturn and tern read.
    pub fn conn(&self) -> String {
        format!("ip=127.0.0.1 port={} dbname=0 connect_timeout=2", self.port)
    }

    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "3600 1", "--appendonly", "no", "--dir"])
            .arg(self.dir.path(""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        assert!(
            wait_tcp(self.port, Duration::from_secs(20)),
            "redis-server did not listen"
        );
    }

    /// SIGTERM: redis saves its data, then exits.
    pub fn stop(&mut self) {
        kill(&mut self.child, libc::SIGTERM);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        kill(&mut self.child, libc::SIGKILL);
    }
}

/// A private PostgreSQL cluster (initdb in a temp dir, trust authentication on loopback), run
/// as the `postgres` system user when the tests run as root.
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
    uid: Option<u32>,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        let Some(bin) = postgres_bin() else {
            // Same rule as interop_tool: a notice, or a failure when interop is required.
            interop_tool("postgresql-initdb");
            return None;
        };
        interop_tool("psql")?;
        // SAFETY: geteuid(2) has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let uid = if root {
            let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        } else {
            None
        };
        let dir = TempDir::new("pg");
        if let Some(uid) = uid {
            let c = std::ffi::CString::new(dir.path("").as_os_str().as_encoded_bytes()).ok()?;
            // SAFETY: chown(2) on a path this test created; the string is NUL-terminated.
            unsafe { libc::chown(c.as_ptr(), uid, uid) };
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(dir.path("data"));
        if let Some(uid) = uid {
            std::os::unix::process::CommandExt::uid(&mut initdb, uid);
            std::os::unix::process::CommandExt::gid(&mut initdb, uid);
        }
        let out = output_within(&mut initdb, Duration::from_secs(120)).expect("initdb finishes");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            bin,
            dir,
            uid,
        };
        pg.resume();
        Some(pg)
    }

    /// A libpq connection string.
    pub fn conn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=postgres user=postgres connect_timeout=2",
            self.port
        )
    }

    pub fn resume(&mut self) {
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path("").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(uid) = self.uid {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, uid);
        }
        self.child = Some(cmd.spawn().expect("spawn postgres"));
        assert!(
            wait_tcp(self.port, Duration::from_secs(30)),
            "postgres did not listen"
        );
        // Listening comes slightly before accepting queries.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.psql("SELECT 1") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL with psql; true on success.
    pub fn psql(&self, sql: &str) -> bool {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// coturn's own `schema.sql` (as an operator loads it before `turnadmin`).
    pub fn load_coturn_schema(&self) {
        let file = [
            "/usr/share/coturn/schema.sql",
            "/usr/share/doc/coturn/schema.sql",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file());
        let sql = match file {
            Some(f) => std::fs::read_to_string(f).expect("read coturn's schema.sql"),
            None => String::from(
                "CREATE TABLE turnusers_lt (realm varchar(127) default '', name varchar(512), hmackey char(128), PRIMARY KEY (realm,name)); \
                 CREATE TABLE turn_secret (realm varchar(127) default '', value varchar(256), primary key (realm,value)); \
                 CREATE TABLE turn_realm_option (realm varchar(127) default '', opt varchar(32), value varchar(128), primary key (realm,opt));",
            ),
        };
        assert!(self.psql(&sql), "loading coturn's schema failed");
    }

    /// SIGINT: PostgreSQL's fast shutdown.
    pub fn stop(&mut self) {
        kill(&mut self.child, libc::SIGINT);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        kill(&mut self.child, libc::SIGINT);
    }
}

/// coturn's `turnserver` on a user database, on a free loopback port; killed by PID on drop.
pub struct Coturn {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl Coturn {
    /// `db` is coturn's flag and value, e.g. `["-b", FILE]`; None when turnserver is absent.
    pub fn start(db: &[&str]) -> Option<Coturn> {
        let tool = interop_tool("turnserver")?;
        let port = free_port();
        let dir = TempDir::new("coturn");
        let log = dir.path("turn.log");
        let child = Command::new(tool)
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--lt-cred-mech", "--no-tls", "--no-dtls", "--no-cli"])
            .arg(format!("--realm={REALM}"))
            .arg(format!("--log-file={}", log.display()))
            .args(["--simple-log", "--min-port=40000", "--max-port=40999"])
            .arg(format!("--pidfile={}", dir.path("pid").display()))
            .args(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnserver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let c = Coturn {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        };
        // Ready when it answers a Binding request.
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let tid = transaction_id();
        let req = crate::support::binding_request(&tid, false);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 1500];
        loop {
            let _ = probe.send_to(&req, addr);
            if probe.recv_from(&mut buf).is_ok() {
                return Some(c);
            }
            assert!(
                Instant::now() < deadline,
                "turnserver did not answer; log:\n{}",
                c.log()
            );
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        kill(&mut self.child, libc::SIGKILL);
    }
}
