//! RFC 8489 SHA-256 long-term credentials and USERHASH through the real binary: a server that
//! offers them (`password-algorithms=sha256,md5`, `userhash`) allocates and relays for a client
//! that negotiates SHA-256, with USERHASH or USERNAME, from static users, REST secrets and a
//! SQLite user database; refuses a downgraded or incomplete PASSWORD-ALGORITHMS and a wrong
//! password; and still serves MD5 clients that do not negotiate.

use crate::support;
use crate::userdb_support;

use std::net::UdpSocket;
use std::time::Duration;

use support::turn_client::{Echo, Refused, Sha256, TurnClient};
use support::{transaction_id, Server, PASSWORD, REALM, USER};
use tern::auth::{long_term_key_sha256, rest_password, userhash};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};

const OFFER: &str = "--password-algorithms=sha256,md5";
/// PASSWORD-ALGORITHMS for `sha256,md5`: SHA-256 (2), then MD5 (1), no parameters.
const OFFERED: [u8; 8] = [0, 2, 0, 0, 0, 1, 0, 0];

fn offering() -> Server {
    Server::start(&[OFFER, "--userhash", "--allow-loopback-peers"])
}

/// Allocate, permission, channel, and a datagram each way between `client` and a peer.
fn relays(client: &mut TurnClient) {
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind a peer");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let relayed = client.allocate().expect("an allocation");
    let peer_addr = peer.local_addr().expect("peer address");
    client.create_permission(peer_addr).expect("a permission");
    client.channel_bind(0x4000, peer_addr).expect("a channel");
    client.send_channel(0x4000, b"to the peer");
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).expect("data at the peer");
    assert_eq!((&buf[..n], from), (&b"to the peer"[..], relayed));
    peer.send_to(b"to the client", relayed).expect("send back");
    assert_eq!(client.recv_channel(), (0x4000, b"to the client".to_vec()));
}

#[test]
fn sha256_with_userhash_allocates_and_relays() {
    let server = offering();
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD).sha256(true);
    relays(&mut client);
    assert_eq!(client.offered(), Some(&OFFERED[..]));
    // The answer to a USERHASH request does not name the user.
    let reply = client.last_reply();
    assert!(!reply.is_empty());
    assert!(
        !reply.windows(USER.len()).any(|w| w == USER.as_bytes()),
        "the username leaks into the answer"
    );
    assert!(Message::parse(reply)
        .expect("valid")
        .get(attr::USERNAME)
        .is_none());
    assert_eq!(client.refresh(600), Ok(600));
}

#[test]
fn sha256_with_username_allocates() {
    let server = offering();
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD).sha256(false);
    relays(&mut client);
}

/// A 438 under an offering nonce lists PASSWORD-ALGORITHMS too, with a fresh nonce that offers
/// the same features (RFC 8489 §9.2.4).
#[test]
fn a_stale_nonce_gets_a_438_with_the_offer() {
    let server = Server::start(&[OFFER, "--userhash", "--stale-nonce=1"]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let exchange = |nonce: Option<&[u8]>| -> Vec<u8> {
        let mut buf = [0u8; 512];
        let tid = transaction_id();
        let typ = MessageType::new(Method::ALLOCATE, Class::Request);
        let mut b = MessageBuilder::new(&mut buf, typ, &tid).expect("header");
        b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .expect("fits");
        if let Some(nonce) = nonce {
            b.add_raw(attr::USERHASH, &userhash(USER, REALM))
                .expect("fits");
            b.add_str(attr::REALM, REALM).expect("fits");
            b.add_raw(attr::NONCE, nonce).expect("fits");
            b.add_raw(attr::PASSWORD_ALGORITHMS, &OFFERED)
                .expect("fits");
            b.add_raw(attr::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
                .expect("fits");
            let key = long_term_key_sha256(USER, REALM, PASSWORD);
            b.add_message_integrity_sha256(&key).expect("fits");
        }
        let n = b.finish();
        socket.send_to(&buf[..n], server.udp_addr()).expect("send");
        let mut reply = [0u8; 512];
        let len = socket.recv(&mut reply).expect("an answer");
        reply[..len].to_vec()
    };
    let challenge = exchange(None);
    let first = Message::parse(&challenge).expect("valid");
    let nonce = first.nonce().expect("NONCE").to_vec();
    assert!(nonce.starts_with(b"obMatJos2AAAD"), "{nonce:?}");
    std::thread::sleep(Duration::from_millis(2500));
    let stale = exchange(Some(&nonce));
    let msg = Message::parse(&stale).expect("valid");
    assert_eq!(msg.error_code().map(|c| c.map(|(c, _)| c.0)), Some(Ok(438)));
    assert_eq!(msg.get(attr::PASSWORD_ALGORITHMS), Some(&OFFERED[..]));
    let fresh = msg.nonce().expect("a fresh NONCE");
    assert!(fresh.starts_with(b"obMatJos2AAAD") && fresh != nonce.as_slice());
}

/// A man in the middle that removes SHA-256 from the list, or the list itself, is caught: the
/// list the client echoes is not the one the server sent (RFC 8489 §9.2.4), 400.
#[test]
fn a_downgraded_or_missing_list_is_refused() {
    let server = offering();
    for echo in [Echo::Md5Only, Echo::Stripped] {
        let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD).negotiating(Sha256 {
            userhash: false,
            echo,
        });
        assert_eq!(
            client.allocate(),
            Err(Refused {
                code: 400,
                alternate: None
            }),
            "{echo:?}"
        );
    }
}

#[test]
fn a_wrong_password_is_refused() {
    let server = offering();
    for userhash in [true, false] {
        let mut client =
            TurnClient::new(server.udp_addr(), USER, "not-the-password").sha256(userhash);
        assert_eq!(client.allocate().map_err(|r| r.code), Err(401));
    }
    let mut stranger = TurnClient::new(server.udp_addr(), "nobody", PASSWORD).sha256(true);
    assert_eq!(stranger.allocate().map_err(|r| r.code), Err(401));
}

/// Clients that do not negotiate (every browser) keep MD5 on a server that offers SHA-256.
#[test]
fn md5_clients_are_served_alongside() {
    let server = offering();
    let mut client = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    relays(&mut client);
    assert_eq!(client.offered(), Some(&OFFERED[..]));
}

/// Without `password-algorithms`, nothing is offered: 401s carry no PASSWORD-ALGORITHMS and a
/// client asking for SHA-256 anyway is refused; USERHASH needs `userhash`.
#[test]
fn nothing_is_offered_by_default() {
    let server = Server::start(&[]);
    let mut md5 = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    md5.allocate().expect("MD5 allocates");
    assert_eq!(md5.offered(), None);
    let mut sha = TurnClient::new(server.udp_addr(), USER, PASSWORD).sha256(false);
    assert_eq!(sha.allocate().map_err(|r| r.code), Err(400));

    let no_userhash = Server::start(&[OFFER]);
    let mut hashed = TurnClient::new(no_userhash.udp_addr(), USER, PASSWORD).sha256(true);
    assert_eq!(hashed.allocate().map_err(|r| r.code), Err(400));
    let mut named = TurnClient::new(no_userhash.udp_addr(), USER, PASSWORD).sha256(false);
    named.allocate().expect("SHA-256 with USERNAME allocates");
}

/// TURN REST credentials: the password derived from the secret keys SHA-256 too.
#[test]
fn rest_credentials_with_sha256() {
    let secret = "sha-rest-secret";
    let server = Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--use-auth-secret",
        &format!("--static-auth-secret={secret}"),
        &format!("--realm={REALM}"),
        OFFER,
        "--userhash",
    ]);
    // An expiry in 2096: valid whenever the test runs, without reading the clock.
    let name = "4000000000:carol";
    let password = rest_password(secret, name);
    let mut client = TurnClient::new(server.udp_addr(), name, &password).sha256(false);
    client
        .allocate()
        .expect("a REST user allocates with SHA-256");
    let mut wrong =
        TurnClient::new(server.udp_addr(), name, &rest_password("other", name)).sha256(false);
    assert_eq!(wrong.allocate().map_err(|r| r.code), Err(401));
    // A hash cannot be turned back into a REST name (its password derives from the name).
    let mut hashed = TurnClient::new(server.udp_addr(), name, &password).sha256(true);
    assert_eq!(hashed.allocate().map_err(|r| r.code), Err(401));
}

/// `tern admin -a` stores the SHA-256 key and the USERHASH index beside coturn's MD5 row; a
/// row coturn's `turnadmin` wrote (before tern's table exists, on PostgreSQL) stays an MD5-only
/// user. `db` names the database for both admin tools, `server_db` for the server.
fn database_users_with_sha256_and_userhash(db: &[&str], server_db: &str) {
    let with_db = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(db.iter().map(|a| a.to_string()));
        all
    };
    let run = |f: fn(&[&str]) -> _, args: &[&str]| {
        let all = with_db(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        f(&refs)
    };
    let coturn_row = run(
        userdb_support::turnadmin,
        &["-a", "-u", "bob", "-r", REALM, "-p", "pw-b"],
    )
    .is_some();
    let start = || {
        Server::start_args(&[
            "-n",
            "--listening-ip=127.0.0.1",
            "--listening-port=0",
            &format!("--realm={REALM}"),
            server_db,
            OFFER,
            "--userhash",
        ])
    };
    let server = start();
    let to = server.udp_addr();
    if coturn_row {
        TurnClient::new(to, "bob", "pw-b")
            .allocate()
            .expect("coturn's MD5 row allocates with MD5");
        let mut bob = TurnClient::new(to, "bob", "pw-b").sha256(false);
        assert_eq!(bob.allocate().map_err(|r| r.code), Err(401));
    }
    let tern_admin = |args: &[&str]| {
        let all = with_db(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        userdb_support::tern_admin(&refs);
    };
    tern_admin(&["-a", "-u", "alice", "-r", REALM, "-p", "pw-a"]);
    for userhash in [true, false] {
        let mut alice = TurnClient::new(to, "alice", "pw-a").sha256(userhash);
        alice.allocate().expect("alice allocates with SHA-256");
    }
    TurnClient::new(to, "alice", "pw-a")
        .allocate()
        .expect("alice allocates with MD5");
    let mut wrong = TurnClient::new(to, "alice", "pw-b").sha256(true);
    assert_eq!(wrong.allocate().map_err(|r| r.code), Err(401));
    // Deleting a user removes its SHA-256 key and its USERHASH entry too (a fresh server: the
    // running one trusts its cache for `POSITIVE_TTL`).
    tern_admin(&["-d", "-u", "alice", "-r", REALM]);
    let fresh = start();
    for userhash in [true, false] {
        let mut gone = TurnClient::new(fresh.udp_addr(), "alice", "pw-a").sha256(userhash);
        assert_eq!(gone.allocate().map_err(|r| r.code), Err(401));
    }
}

#[test]
fn sqlite_users_with_sha256_and_userhash() {
    let dir = support::TempDir::new("sha256-sqlite");
    let file = dir.path("turndb");
    let file = file.to_str().expect("utf-8 path");
    database_users_with_sha256_and_userhash(&["-b", file], &format!("--userdb={file}"));
}

#[test]
fn postgres_users_with_sha256_and_userhash() {
    let Some(pg) = userdb_support::Postgres::start() else {
        return;
    };
    pg.load_coturn_schema();
    let conn = pg.conn();
    database_users_with_sha256_and_userhash(&["-e", &conn], &format!("--psql-userdb={conn}"));
}

#[test]
fn redis_users_with_sha256_and_userhash() {
    let Some(redis) = userdb_support::Redis::start() else {
        return;
    };
    let conn = redis.conn();
    database_users_with_sha256_and_userhash(&["-N", &conn], &format!("--redis-userdb={conn}"));
}
