//! Limits against the real binary over loopback UDP, with a minimal TURN client of our own:
//! `user-quota` / `total-quota` (486, and free again after a deallocation), `max-bps` measured at
//! a UDP peer socket, and a table of malformed datagrams that get no answer (or the 420/400 the
//! RFC asks for) while a good client is still served.
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::{transaction_id, Server, PASSWORD, REALM, USER};
use tern::auth::{long_term_key, Key};
use tern::stun::{attr, Class, EncodeError, Message, MessageBuilder, MessageType, Method};

const BOB: &str = "bob";
const BOB_PASSWORD: &str = "bob-password";

type Attrs<'a> = &'a dyn Fn(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

/// A TURN client over UDP: long-term credentials, retransmission, one allocation.
struct TurnClient {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    key: Key,
    nonce: Vec<u8>,
}

/// What the server answered: the class and error code, and the message bytes.
struct Answer {
    bytes: Vec<u8>,
}

impl Answer {
    fn msg(&self) -> Message<'_> {
        Message::parse(&self.bytes).expect("a STUN answer")
    }

    fn code(&self) -> Option<u16> {
        self.msg().error_code().map(|r| r.expect("ERROR-CODE").0 .0)
    }

    fn ok(&self) -> bool {
        self.msg().class() == Class::Success
    }
}

impl TurnClient {
    fn new(server: SocketAddr, user: &str, password: &str) -> TurnClient {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
        TurnClient {
            sock,
            server,
            user: user.into(),
            key: long_term_key(user, REALM, password),
            nonce: Vec::new(),
        }
    }

    fn build(&self, method: Method, attrs: Attrs<'_>) -> (Vec<u8>, [u8; 12]) {
        let tid = transaction_id();
        let mut buf = [0u8; 1500];
        let typ = MessageType::new(method, Class::Request);
        let mut b = MessageBuilder::new(&mut buf, typ, &tid).unwrap();
        attrs(&mut b).unwrap();
        if !self.nonce.is_empty() {
            b.add_str(attr::USERNAME, &self.user).unwrap();
            b.add_str(attr::REALM, REALM).unwrap();
            b.add_raw(attr::NONCE, &self.nonce).unwrap();
            b.add_message_integrity(&self.key).unwrap();
        }
        let n = b.finish();
        (buf[..n].to_vec(), tid)
    }

    /// Sends until the answer to this transaction arrives (UDP may lose either).
    fn transact(&self, bytes: &[u8], tid: &[u8; 12]) -> Answer {
        let mut buf = [0u8; 1500];
        for _ in 0..10 {
            self.sock.send_to(bytes, self.server).unwrap();
            self.sock
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let deadline = Instant::now() + Duration::from_millis(700);
            while Instant::now() < deadline {
                match self.sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let answer = Answer {
                            bytes: buf[..n].to_vec(),
                        };
                        if Message::parse(&answer.bytes).is_ok_and(|m| m.transaction_id() == tid) {
                            return answer;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break
                    }
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        panic!("no answer from {}", self.server);
    }

    /// A request with credentials, fetching the nonce first (and again on 438).
    fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Answer {
        for _ in 0..3 {
            let (bytes, tid) = self.build(method, attrs);
            let answer = self.transact(&bytes, &tid);
            match answer.code() {
                Some(401) if self.nonce.is_empty() => {}
                Some(438) => {}
                _ => return answer,
            }
            self.nonce = answer.msg().nonce().expect("NONCE").to_vec();
        }
        panic!("authentication did not complete");
    }

    fn allocate(&mut self) -> Answer {
        self.request(Method::ALLOCATE, &|b| {
            b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        })
    }

    fn deallocate(&mut self) -> Answer {
        self.request(Method::REFRESH, &|b| b.add_u32(attr::LIFETIME, 0))
    }

    fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Answer {
        self.request(Method::CHANNEL_BIND, &move |b| {
            b.add_raw(
                attr::CHANNEL_NUMBER,
                &[(channel >> 8) as u8, channel as u8, 0, 0],
            )?;
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
    }

    fn channel_data(&self, channel: u16, payload: &[u8]) {
        let mut p = channel.to_be_bytes().to_vec();
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(payload);
        self.sock.send_to(&p, self.server).unwrap();
    }
}

fn start(extra: &[&str]) -> Server {
    let bob = format!("--user={BOB}:{BOB_PASSWORD}");
    let mut args = vec![bob.as_str(), "--no-tcp"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn user_quota_refuses_a_third_allocation_with_486_until_one_ends() {
    let server = start(&["--user-quota=2"]);
    let addr = server.udp_addr();
    let mut alice: Vec<_> = (0..3)
        .map(|_| TurnClient::new(addr, USER, PASSWORD))
        .collect();
    assert!(alice[0].allocate().ok());
    assert!(alice[1].allocate().ok());
    assert_eq!(alice[2].allocate().code(), Some(486));
    assert!(TurnClient::new(addr, BOB, BOB_PASSWORD).allocate().ok());
    assert!(alice[0].deallocate().ok());
    let third = alice[2].allocate();
    assert!(third.ok(), "{:?}", third.code());
}

#[test]
fn total_quota_refuses_everyone_with_486_until_one_ends() {
    let server = start(&["--total-quota=2"]);
    let addr = server.udp_addr();
    let mut a = TurnClient::new(addr, USER, PASSWORD);
    assert!(a.allocate().ok());
    assert!(TurnClient::new(addr, BOB, BOB_PASSWORD).allocate().ok());
    let mut late = TurnClient::new(addr, BOB, BOB_PASSWORD);
    assert_eq!(late.allocate().code(), Some(486));
    assert_eq!(
        TurnClient::new(addr, USER, PASSWORD).allocate().code(),
        Some(486)
    );
    assert!(a.deallocate().ok());
    assert!(late.allocate().ok());
}

/// An allocation with channel 0x4000 bound to a fresh UDP peer socket on loopback.
fn relay_to_peer(server: &Server) -> (TurnClient, UdpSocket) {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut c = TurnClient::new(server.udp_addr(), USER, PASSWORD);
    assert!(c.allocate().ok());
    assert!(c.channel_bind(0x4000, peer.local_addr().unwrap()).ok());
    (c, peer)
}

/// Counts payload bytes arriving at `peer` until it has been quiet for a while.
fn drain(peer: &UdpSocket) -> (u64, u64) {
    peer.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (mut bytes, mut packets) = (0, 0);
    while let Ok((n, _)) = peer.recv_from(&mut buf) {
        bytes += n as u64;
        packets += 1;
    }
    (bytes, packets)
}

#[test]
fn max_bps_lets_its_rate_through_at_the_peer() {
    const RATE: f64 = 20_000.0;
    const OFFER: f64 = 80_000.0;
    const SIZE: usize = 1000;
    let server = start(&["--max-bps=20000", "--allow-loopback-peers"]);
    let (c, peer) = relay_to_peer(&server);
    let payload = [0x5Au8; SIZE];
    let receiver = std::thread::spawn(move || drain(&peer));
    // Paced by the clock, catching up after a late wakeup, so the offer stays 80 kB/s even on
    // a busy machine; the rate is computed over the time actually spent sending.
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(5) {
        let due = (start.elapsed().as_secs_f64() * OFFER / SIZE as f64) as u64 + 1;
        while sent < due {
            c.channel_data(0x4000, &payload);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (bytes, _) = receiver.join().unwrap();
    let rate = bytes as f64 / elapsed;
    let offered = (sent as usize * SIZE) as f64 / elapsed;
    eprintln!("max-bps=20000: offered {offered:.0} B/s, {rate:.0} B/s reached the peer");
    assert!(
        offered > 3.0 * RATE,
        "the client offered only {offered:.0} B/s"
    );
    assert!(
        (RATE * 0.85..=RATE * 1.15).contains(&rate),
        "{rate:.0} B/s reached the peer ({bytes} bytes in {elapsed:.2} s)"
    );
}

#[test]
fn a_client_within_max_bps_loses_nothing() {
    let server = start(&["--max-bps=20000", "--allow-loopback-peers"]);
    let (c, peer) = relay_to_peer(&server);
    let receiver = std::thread::spawn(move || drain(&peer));
    // 500 bytes every 50 ms at most: 10 kB/s, never a burst even if the thread is late.
    for i in 0..60u8 {
        c.channel_data(0x4000, &[i; 500]);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(receiver.join().unwrap(), (30_000, 60));
}

/// No answer within a short wait.
fn silent(sock: &UdpSocket) -> bool {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1500];
    sock.recv_from(&mut buf).is_err()
}

fn binding(attrs: Attrs<'_>, fingerprint: bool) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let typ = MessageType::new(Method::BINDING, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, &transaction_id()).unwrap();
    attrs(&mut b).unwrap();
    if fingerprint {
        b.add_fingerprint().unwrap();
    }
    let n = b.finish();
    buf[..n].to_vec()
}

#[test]
fn malformed_datagrams_get_no_answer_or_the_rfc_error_and_a_good_client_is_served() {
    let server = start(&["--allow-loopback-peers"]);
    let addr = server.udp_addr();
    let plain = binding(&|_| Ok(()), false);
    let with_fp = binding(&|_| Ok(()), true);
    // A wrong cookie on a TURN method: a cookie-less Binding is a classic RFC 3489 request and
    // answered (tests/it/server_binding.rs), anything else without the cookie is malformed.
    let mut cookie = plain.clone();
    cookie[1] = 0x03;
    cookie[5] ^= 0x40;
    let mut long = plain.clone();
    long[3] = 8;
    let mut odd = with_fp.clone();
    odd[3] = 6;
    let mut fp = with_fp.clone();
    let last = fp.len() - 1;
    fp[last] ^= 1;
    let mut trailing = plain.clone();
    trailing.extend_from_slice(&[0; 4]);
    let mut overflow = plain.clone();
    overflow.extend_from_slice(&[0x80, 0x22, 0x00, 0x40, 0, 0, 0, 0]);
    overflow[3] = 8;
    let mut big = plain.clone();
    big.resize(9000, 0x11);
    let mut response = plain.clone();
    response[0] = 0x01;
    let silent_rows: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one byte", vec![0]),
        ("19-byte header", plain[..19].to_vec()),
        ("first byte 0x80", [&[0x80u8][..], &plain[1..]].concat()),
        ("0xFF garbage", vec![0xFF; 200]),
        ("Allocate with a wrong cookie", cookie),
        ("length past the datagram", long),
        ("length not a multiple of 4", odd),
        ("bytes after the length", trailing),
        ("attribute past the end", overflow),
        ("bad FINGERPRINT", fp),
        ("9000-byte datagram", big),
        ("a Binding response", response),
        ("ChannelData of 3 bytes", vec![0x40, 0, 0]),
        (
            "ChannelData length past the end",
            vec![0x40, 0, 0, 200, 1, 2, 3, 4],
        ),
        (
            "zero-length ChannelData, no allocation",
            vec![0x40, 0, 0, 0],
        ),
        (
            "ChannelData without allocation",
            vec![0x40, 1, 0, 4, 1, 2, 3, 4],
        ),
    ];
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (name, bytes) in &silent_rows {
        probe.send_to(bytes, addr).unwrap();
        assert!(silent(&probe), "{name}: answered");
    }
    // The RFC wants an answer for an unknown comprehension-required attribute: 420.
    let unknown = binding(&|b| b.add_raw(0x0077, &[0; 4]), false);
    probe.send_to(&unknown, addr).unwrap();
    let mut buf = [0u8; 1500];
    probe
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (n, _) = probe.recv_from(&mut buf).expect("a 420 answer");
    let answer = Answer {
        bytes: buf[..n].to_vec(),
    };
    assert_eq!(answer.code(), Some(420));
    // A Binding with a duplicate SOFTWARE and a good one after everything: answered normally.
    let dup = binding(
        &|b| {
            b.add_str(attr::SOFTWARE, "first")?;
            b.add_str(attr::SOFTWARE, "second")
        },
        true,
    );
    probe.send_to(&dup, addr).unwrap();
    let (n, _) = probe.recv_from(&mut buf).expect("a Binding answer");
    assert!(Answer {
        bytes: buf[..n].to_vec()
    }
    .ok());
    // A good client still allocates and relays.
    let (c, peer) = relay_to_peer(&server);
    c.channel_data(0x4000, b"still here");
    peer.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (n, _) = peer.recv_from(&mut buf).expect("relayed data");
    assert_eq!(&buf[..n], b"still here");
}

/// The allocation ceiling the server logged at start-up.
fn logged_ceiling(server: &Server) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log();
        let found = log
            .split("at most ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok());
        if let Some(n) = found {
            return n;
        }
        assert!(Instant::now() < deadline, "no descriptor line in:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_descriptor_ceiling_answers_508() {
    let Some(prlimit) = support::interop_tool("prlimit") else {
        return;
    };
    let prlimit = prlimit.to_string_lossy().into_owned();
    let (user, realm) = (
        format!("--user={USER}:{PASSWORD}"),
        format!("--realm={REALM}"),
    );
    let args = [
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--no-tcp",
        "--relay-threads=1",
        "--unauthorized-ratelimit-rps=0",
        &user,
        &realm,
    ];
    let server = Server::start_wrapped(&[&prlimit, "--nofile=96:96", "--"], &args);
    let ceiling = logged_ceiling(&server);
    assert!((1..=32).contains(&ceiling), "ceiling {ceiling}");
    eprintln!("descriptor ceiling under nofile=96: {ceiling} allocations");
    let mut clients: Vec<_> = (0..=ceiling)
        .map(|_| TurnClient::new(server.udp_addr(), USER, PASSWORD))
        .collect();
    for c in &mut clients[..ceiling] {
        let a = c.allocate();
        assert!(a.ok(), "{:?}", a.code());
    }
    assert_eq!(clients[ceiling].allocate().code(), Some(508));
    assert!(clients[0].deallocate().ok());
    assert!(clients[ceiling].allocate().ok());
}
