//! Malformed input gets no answer and harms nothing (RFC 8489 §6.3: silently discard what is
//! not a valid STUN message; RFC 8656 §12.4 ChannelData without a channel is dropped).

use crate::support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::{binding_request, mapped_address, read_stun, transaction_id, Server};

/// Long enough for a loopback answer, short enough to keep the test quick.
const SILENCE: Duration = Duration::from_millis(300);

fn malformed_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    let good = binding_request(&transaction_id(), false);
    // A wrong cookie on a TURN method: a cookie-less Binding is a classic RFC 3489 request and
    // answered (tests/it/server_binding.rs), anything else without the cookie is malformed.
    let mut wrong_cookie = good.clone();
    wrong_cookie[1] = 0x03;
    wrong_cookie[4] ^= 0xFF;
    let mut long_length = good.clone();
    long_length[3] = 8;
    let mut odd_length = binding_request(&transaction_id(), true);
    odd_length[3] = 6;
    let mut bad_fingerprint = binding_request(&transaction_id(), true);
    let last = bad_fingerprint.len() - 1;
    bad_fingerprint[last] ^= 0x01;
    let garbage: Vec<u8> = (0..100u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8 | 0xC0)
        .collect();
    vec![
        ("truncated header", good[..10].to_vec()),
        ("Allocate with a wrong magic cookie", wrong_cookie),
        ("length beyond the datagram", long_length),
        ("length not a multiple of 4", odd_length),
        ("bad FINGERPRINT", bad_fingerprint),
        ("garbage", garbage),
        (
            "ChannelData without allocation",
            vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
        ),
        ("empty datagram", Vec::new()),
    ]
}

fn expect_silence(sock: &UdpSocket, what: &str) {
    let mut buf = [0u8; 1500];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => panic!("{what}: unexpected {n}-byte answer from {from}"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{what}: {e}"
        ),
    }
}

fn good_binding(sock: &UdpSocket, server: SocketAddr) {
    let tid = transaction_id();
    sock.send_to(&binding_request(&tid, false), server).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("a good Binding is answered");
    assert_eq!(mapped_address(&buf[..n], &tid), sock.local_addr().unwrap());
    sock.set_read_timeout(Some(SILENCE)).unwrap();
}

#[test]
fn malformed_datagrams_get_no_answer_and_good_ones_still_do() {
    let server = Server::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(SILENCE)).unwrap();
    for (what, bytes) in malformed_datagrams() {
        sock.send_to(&bytes, server.udp_addr()).unwrap();
        expect_silence(&sock, what);
        good_binding(&sock, server.udp_addr());
    }
}

/// Reads until the server closes the connection; false if it stays open past the timeout.
#[allow(clippy::disallowed_methods)]
fn closed_by_server(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_garbage_frame_closes_only_its_own_connection() {
    let server = Server::start(&[]);
    let mut healthy = TcpStream::connect(server.tcp_addr()).unwrap();
    healthy
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut bad = TcpStream::connect(server.tcp_addr()).unwrap();
    bad.write_all(&[0xFF; 64]).unwrap();
    assert!(
        closed_by_server(&mut bad, Duration::from_secs(3)),
        "the server kept a connection that sent garbage"
    );
    for _ in 0..2 {
        let tid = transaction_id();
        healthy.write_all(&binding_request(&tid, false)).unwrap();
        let resp = read_stun(&mut healthy).expect("the other connection still works");
        assert_eq!(mapped_address(&resp, &tid), healthy.local_addr().unwrap());
    }
    let mut fresh = TcpStream::connect(server.tcp_addr()).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let tid = transaction_id();
    fresh.write_all(&binding_request(&tid, false)).unwrap();
    assert_eq!(
        mapped_address(&read_stun(&mut fresh).unwrap(), &tid),
        fresh.local_addr().unwrap()
    );
}
