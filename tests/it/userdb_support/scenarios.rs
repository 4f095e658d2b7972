//! The acceptance scenarios of the user databases, each run against SQLite, Redis and
//! PostgreSQL by the `userdb_*` test files: interop with coturn's `turnadmin` and `turnserver`,
//! two tern nodes on one database, a database outage, and the first request of a user answered
//! without waiting for a retransmission on either engine.
// Deadlines for real processes need the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use tern::auth::{long_term_key, NEGATIVE_TTL, POSITIVE_TTL};
use tern::stun::{attr, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

use super::{
    allocate_until, refused, relayed, tern_admin, turnadmin, Coturn, Outcome, TurnClient, REALM,
};
use crate::support::{read_stun, transaction_id, Server};

/// Slack on top of a cache TTL for a loaded machine: generous, the bound is what is asserted.
const SLACK: Duration = Duration::from_secs(8);

/// The engines a scenario runs on when it names them itself (`--io-engine=`).
const ENGINES: [&str; 2] = ["uring", "epoll"];
/// How long the first answer to a user may take: a UDP client would retransmit after 500 ms
/// (RFC 8489 §6.2.1), so an answer later than this is one a client waited for; half of it
/// leaves room for a database connection and the debug build on a loaded machine.
const FIRST_ANSWER: Duration = Duration::from_millis(250);

/// tern on the database named by `tern_db` (e.g. `--userdb=FILE`).
pub fn tern_on(tern_db: &str) -> Server {
    tern_with(tern_db, &[])
}

/// tern on the database named by `tern_db`, with `extra` arguments.
fn tern_with(tern_db: &str, extra: &[&str]) -> Server {
    let realm = format!("--realm={REALM}");
    let mut args = vec![
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        &realm,
        "--allow-loopback-peers",
        tern_db,
    ];
    args.extend_from_slice(extra);
    Server::start_args(&args)
}

/// A user written by coturn's `turnadmin -a` (into `db`, coturn's flags) allocates on tern on
/// both engines, its first signed request answered without a retransmission; a wrong password
/// and an unknown user are refused.
pub fn coturn_user_allocates_on_tern(db: &[&str], tern_db: &str) {
    let mut args = vec![
        "-a",
        "-u",
        "written-by-turnadmin",
        "-r",
        REALM,
        "-p",
        "pw-1",
    ];
    args.extend_from_slice(db);
    if turnadmin(&args).is_none() {
        return;
    }
    for engine in ENGINES {
        let server = tern_with(tern_db, &[&format!("--io-engine={engine}")]);
        let addr = server.udp_addr();
        let mut client = TurnClient::new(addr, "written-by-turnadmin", "pw-1", REALM);
        let ok = client.allocate();
        assert!(relayed(&ok), "{engine}: {ok:?}\nlog:\n{}", server.log());
        // The challenge and the signed request, each answered the first time it was sent.
        assert_eq!(
            client.sent(),
            2,
            "{engine}: retransmitted\n{}",
            server.log()
        );
        let wrong = TurnClient::new(addr, "written-by-turnadmin", "pw-2", REALM).allocate();
        assert_eq!(wrong, Outcome::Error(401), "{engine}: {}", server.log());
        let mut unknown = TurnClient::new(addr, "nobody", "pw-1", REALM);
        assert_eq!(unknown.allocate(), Outcome::Error(401), "{}", server.log());
        assert_eq!(
            unknown.sent(),
            2,
            "{engine}: retransmitted\n{}",
            server.log()
        );
    }
}

/// A user written by `tern admin -a` allocates on coturn's `turnserver` (on `coturn_db`).
pub fn tern_user_allocates_on_coturn(db: &[&str], coturn_db: &[&str]) {
    let mut args = vec!["-a", "-u", "written-by-tern", "-r", REALM, "-p", "pw-3"];
    args.extend_from_slice(db);
    tern_admin(&args);
    let Some(coturn) = Coturn::start(coturn_db) else {
        return;
    };
    let ok = TurnClient::new(coturn.addr, "written-by-tern", "pw-3", REALM).allocate();
    assert!(relayed(&ok), "{ok:?}\ncoturn log:\n{}", coturn.log());
    let wrong = TurnClient::new(coturn.addr, "written-by-tern", "pw-4", REALM).allocate();
    assert_eq!(wrong, Outcome::Error(401), "{}", coturn.log());
}

/// Two tern processes on one database: a user added with `tern admin` allocates on the second
/// within the negative-cache TTL, and once deleted is refused there within the positive TTL.
pub fn two_nodes_share_users(db: &[&str], tern_db: &str) {
    let (a, b) = (tern_on(tern_db), tern_on(tern_db));
    let user = "fleet-user";
    // Both nodes have just been told "no such user" and cache it.
    for node in [&a, &b] {
        let o = TurnClient::new(node.udp_addr(), user, "pw", REALM).allocate();
        assert_eq!(o, Outcome::Error(401), "{}", node.log());
    }
    let mut add = vec!["-a", "-u", user, "-r", REALM, "-p", "pw"];
    add.extend_from_slice(db);
    tern_admin(&add);
    for node in [&b, &a] {
        let took = allocate_until(node.udp_addr(), user, "pw", NEGATIVE_TTL + SLACK, relayed)
            .unwrap_or_else(|o| panic!("added user not seen: {o:?}\n{}", node.log()));
        assert!(took <= NEGATIVE_TTL + SLACK, "{took:?}");
    }
    let mut delete = vec!["-d", "-u", user, "-r", REALM];
    delete.extend_from_slice(db);
    tern_admin(&delete);
    for node in [&b, &a] {
        allocate_until(node.udp_addr(), user, "pw", POSITIVE_TTL + SLACK, refused)
            .unwrap_or_else(|o| panic!("deleted user still allocates: {o:?}\n{}", node.log()));
    }
}

/// With the database stopped an existing allocation keeps relaying and refreshing, a new
/// authentication is refused with 401 at once and counted in the log; once the database is
/// back, the same user allocates without restarting tern.
pub fn outage(db: &[&str], tern_db: &str, stop: &mut dyn FnMut(), resume: &mut dyn FnMut()) {
    for user in ["before", "during"] {
        let mut add = vec!["-a", "-u", user, "-r", REALM, "-p", "pw"];
        add.extend_from_slice(db);
        tern_admin(&add);
    }
    let server = tern_on(tern_db);
    let addr = server.udp_addr();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let peer_addr: SocketAddr = peer.local_addr().expect("peer address");
    let mut client = TurnClient::new(addr, "before", "pw", REALM);
    assert!(relayed(&client.allocate()), "{}", server.log());
    assert!(
        relayed(&client.create_permission(peer_addr)),
        "{}",
        server.log()
    );
    let relays = |client: &TurnClient, tag: &[u8]| {
        client.send(peer_addr, tag);
        let mut buf = [0u8; 64];
        let got = peer.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
        assert_eq!(got.ok().as_deref(), Some(tag), "{}", server.log());
    };
    relays(&client, b"before the outage");

    stop();
    let o = TurnClient::new(addr, "during", "pw", REALM).allocate();
    assert_eq!(o, Outcome::Error(401), "{}", server.log());
    relays(&client, b"during the outage");
    assert!(relayed(&client.refresh()), "{}", server.log());
    assert!(
        log_shows(&server, &["unavailable", "refused so far"]),
        "no counted reason in the log:\n{}",
        server.log()
    );

    resume();
    allocate_until(addr, "during", "pw", tern::auth::DOWN_TTL + SLACK, relayed)
        .unwrap_or_else(|o| panic!("no recovery: {o:?}\n{}", server.log()));
    assert!(log_shows(&server, &["reachable again"]), "{}", server.log());
    relays(&client, b"after the outage");
}

/// Whether the server's log shows every one of `needles` within a few seconds (the log is read
/// from a pipe by another thread, a little after the fact).
fn log_shows(server: &Server, needles: &[&str]) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if needles.iter().all(|n| log.contains(n)) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// coturn's peer address lists in the database (`allowed_peer_ip`, `denied_peer_ip`) join the
/// configuration's, as in coturn: a range denied for the server's realm is refused with 403
/// although the configuration admits loopback peers, a range denied for another realm does not
/// apply, an allowed range admits private peers the default policy refuses, and a row added
/// while tern runs applies within seconds. `db` names the database for `tern admin`;
/// `add(list, realm, range)` writes one row into `allowed` or `denied`.
pub fn peer_lists_apply(db: &[&str], tern_db: &str, add: &mut dyn FnMut(&str, &str, &str)) {
    let mut args = vec!["-a", "-u", "peer-lists", "-r", REALM, "-p", "pw"];
    args.extend_from_slice(db);
    tern_admin(&args);
    add("denied", REALM, "127.0.0.2");
    add("denied", "another.realm", "127.0.0.3");
    add("allowed", REALM, "10.0.0.1-10.0.0.255");
    let server = tern_on(tern_db);
    let log = || server.log();
    let peer = |ip: &str| SocketAddr::new(ip.parse().expect("an IP"), 9);
    // The policy tern logs at start (just after it listens) is the one it applies, the
    // database's ranges included.
    let policy = server
        .wait_for_log(
            "allowed-peer-ip (wins over denied):",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no peer policy logged; log:\n{}", log()));
    assert_eq!(
        policy,
        "allowed-peer-ip (wins over denied): 10.0.0.1-10.0.0.255; denied-peer-ip: 127.0.0.2"
    );
    let mut c = TurnClient::new(server.udp_addr(), "peer-lists", "pw", REALM);
    assert!(relayed(&c.allocate()), "{}", log());
    assert_eq!(
        c.create_permission(peer("127.0.0.2")),
        Outcome::Error(403),
        "{}",
        log()
    );
    assert!(
        relayed(&c.create_permission(peer("127.0.0.3"))),
        "{}",
        log()
    );
    assert!(relayed(&c.create_permission(peer("10.0.0.7"))), "{}", log());
    assert_eq!(
        c.create_permission(peer("10.0.1.7")),
        Outcome::Error(403),
        "{}",
        log()
    );

    // A row added while tern runs applies within coturn's re-read period (5 s), without a
    // SIGHUP; existing permissions to that peer are refused at their next refresh.
    add("denied", REALM, "127.0.0.4");
    let deadline = Instant::now() + Duration::from_secs(15);
    while relayed(&c.create_permission(peer("127.0.0.4"))) {
        assert!(
            Instant::now() < deadline,
            "the new row never applied:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.create_permission(peer("127.0.0.4")),
        Outcome::Error(403),
        "{}",
        log()
    );
    assert!(relayed(&c.create_permission(peer("10.0.0.7"))), "{}", log());
    server
        .wait_for_log("user database: denied-peer-ip", Duration::from_secs(1))
        .unwrap_or_else(|| panic!("the change was not logged:\n{}", log()));
}

/// The first authenticated request of a user whose key is not cached yet is answered at once,
/// on both engines, over UDP and TCP, and again after a reload (which builds a new resolver):
/// the request the shard parks while the database is asked runs again when the answer is in.
/// The client sends the signed Allocate exactly once: no retransmission can stand in for a
/// request left parked.
pub fn first_request_answered_at_once(db: &[&str], tern_db: &str) {
    let cases: Vec<(&str, bool, bool)> = [false, true]
        .into_iter()
        .flat_map(|reloaded| [("udp", false, reloaded), ("tcp", true, reloaded)])
        .collect();
    let user = |engine: &str, (name, _, reloaded): (&str, bool, bool)| {
        let after = if reloaded { "-reloaded" } else { "" };
        format!("first-{engine}-{name}{after}")
    };
    for engine in ENGINES {
        for &case in &cases {
            let user = user(engine, case);
            let mut add = vec!["-a", "-u", &user, "-r", REALM, "-p", "pw"];
            add.extend_from_slice(db);
            tern_admin(&add);
        }
    }
    for engine in ENGINES {
        let server = tern_with(tern_db, &[&format!("--io-engine={engine}")]);
        for case @ (_, tcp, reloaded) in cases.iter().copied() {
            if reloaded && !server.log().contains("reload done") {
                server.signal(libc::SIGHUP);
                server
                    .wait_for_log("reload done", Duration::from_secs(10))
                    .unwrap_or_else(|| panic!("no reload:\n{}", server.log()));
            }
            let mut wire = if tcp {
                Wire::tcp(server.tcp_addr())
            } else {
                Wire::udp(server.udp_addr())
            };
            let user = user(engine, case);
            let took = wire
                .first_allocate(&user, "pw")
                .unwrap_or_else(|why| panic!("{user}: {why}\n{}", server.log()));
            eprintln!("{tern_db} io-engine={engine} {user}: first answer in {took:?}");
            assert!(
                took < FIRST_ANSWER,
                "{user}: the first answer took {took:?}\n{}",
                server.log()
            );
        }
    }
}

/// A client's connection to tern for one-shot requests: each message sent once, never again.
enum Wire {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
}

impl Wire {
    fn udp(server: SocketAddr) -> Wire {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
        Wire::Udp(socket, server)
    }

    fn tcp(server: SocketAddr) -> Wire {
        Wire::Tcp(TcpStream::connect(server).expect("connect to tern over TCP"))
    }

    /// Sends `msg` once and returns the message answering it, or None within 2 s.
    fn exchange(&mut self, msg: &[u8]) -> Option<Vec<u8>> {
        let within = Some(Duration::from_secs(2));
        let tid = msg.get(8..20)?.to_vec();
        match self {
            Wire::Udp(socket, server) => {
                socket.set_read_timeout(within).ok()?;
                socket.send_to(msg, *server).ok()?;
                let mut buf = [0u8; 1500];
                loop {
                    let n = socket.recv(&mut buf).ok()?;
                    if buf.get(8..20) == Some(&tid[..]) {
                        return buf.get(..n).map(<[u8]>::to_vec);
                    }
                }
            }
            Wire::Tcp(stream) => {
                stream.set_read_timeout(within).ok()?;
                stream.write_all(msg).ok()?;
                loop {
                    let got = read_stun(stream).ok()?;
                    if got.get(8..20) == Some(&tid[..]) {
                        return Some(got);
                    }
                }
            }
        }
    }

    /// An Allocate without credentials for the nonce (401), then exactly one signed Allocate;
    /// how long its success answer took, or what went wrong.
    fn first_allocate(&mut self, user: &str, password: &str) -> Result<Duration, String> {
        let challenge = self
            .exchange(&allocate(None))
            .ok_or("no answer to the unauthenticated Allocate")?;
        let challenge = Message::parse(&challenge).map_err(|e| format!("{e:?}"))?;
        let code = challenge.error_code().and_then(Result::ok).map(|(c, _)| c);
        if code != Some(ErrorCode::UNAUTHORIZED) {
            return Err(format!("challenged with {code:?}, not 401"));
        }
        let nonce = challenge.nonce().ok_or("a 401 without NONCE")?;
        let signed = allocate(Some((user, password, nonce)));
        let sent = Instant::now();
        let answer = self
            .exchange(&signed)
            .ok_or("no answer to the one signed Allocate")?;
        let took = sent.elapsed();
        let answer = Message::parse(&answer).map_err(|e| format!("{e:?}"))?;
        match answer.class() {
            Class::Success => Ok(took),
            other => Err(format!(
                "{other:?} {:?} to the signed Allocate",
                answer.error_code()
            )),
        }
    }
}

/// An Allocate for a UDP relay, signed with the long-term key when `creds` (user, password,
/// nonce) are given.
fn allocate(creds: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let tid = transaction_id();
    let mut buf = vec![0u8; 1500];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, &tid).expect("header");
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .expect("transport");
    if let Some((user, password, nonce)) = creds {
        b.add_str(attr::USERNAME, user).expect("username");
        b.add_str(attr::REALM, REALM).expect("realm");
        b.add_raw(attr::NONCE, nonce).expect("nonce");
        b.add_message_integrity(&long_term_key(user, REALM, password))
            .expect("integrity");
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}
