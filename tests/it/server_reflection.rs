//! What an unauthenticated UDP sender draws from the real binary, in bytes: each answer is what a
//! spoofed source makes tern send to a victim (RFC 8489 §9.2.4 requires REALM and NONCE in a
//! 401). Errors to unauthenticated requests carry no SOFTWARE, no reason phrase and no
//! FINGERPRINT the request did not carry, so a 401 to a 20-byte Allocate stays within 4x under
//! the harness's realm; authenticated answers keep SOFTWARE. Each test prints its rows of the
//! amplification table (`--nocapture`).

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

use support::{transaction_id, Server, PASSWORD, REALM, USER};
use tern::auth::long_term_key;
use tern::stun::{
    attr, Class, EncodeError, Message, MessageBuilder, MessageType, Method, TransactionId,
};

/// The bound this file holds every answer of the default setup to.
const MAX_FACTOR: usize = 4;

type Attrs<'a> = &'a dyn Fn(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

fn request(method: Method, tid: &TransactionId, attrs: Attrs<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let typ = MessageType::new(method, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, tid).expect("header fits");
    attrs(&mut b).expect("attributes fit");
    let n = b.finish();
    buf.truncate(n);
    buf
}

fn bare(method: Method) -> Vec<u8> {
    request(method, &transaction_id(), &|_| Ok(()))
}

/// One UDP exchange from a fresh socket; the answer's bytes.
fn exchange(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let local = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(local).expect("bind");
    exchange_on(&socket, server, bytes)
}

fn exchange_on(socket: &UdpSocket, server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).expect("an answer");
    buf[..n].to_vec()
}

/// Prints one row of the table and returns the answer, checked to be the error `code` (or a
/// success for `None`) to the same transaction.
fn row(what: &str, sent: &[u8], got: &[u8], code: Option<u16>) -> Vec<u8> {
    let msg = Message::parse(got).expect("a valid STUN answer");
    let req = Message::parse(sent).expect("a valid request");
    assert_eq!(msg.transaction_id(), req.transaction_id(), "{what}");
    let got_code = msg.error_code().map(|c| c.expect("valid ERROR-CODE").0 .0);
    assert_eq!(got_code, code, "{what}");
    eprintln!(
        "| {what} | {} | {} | {:.1}x |",
        sent.len(),
        got.len(),
        got.len() as f64 / sent.len() as f64
    );
    got.to_vec()
}

/// An error to an unauthenticated request: nothing but what the RFCs require.
fn assert_bare(what: &str, sent: &[u8], got: &[u8]) {
    let msg = Message::parse(got).expect("valid");
    assert!(msg.software().is_none(), "{what}: SOFTWARE in {msg:?}");
    let (_, reason) = msg.error_code().expect("ERROR-CODE").expect("valid");
    assert_eq!(reason, "", "{what}: a reason phrase");
    let echoed = Message::parse(sent).expect("valid").has_fingerprint();
    assert_eq!(msg.has_fingerprint(), echoed, "{what}: FINGERPRINT");
    assert!(!msg.has_integrity(), "{what}");
}

fn within_bound(what: &str, sent: &[u8], got: &[u8]) {
    assert!(
        got.len() <= MAX_FACTOR * sent.len(),
        "{what}: {} bytes for {}",
        got.len(),
        sent.len()
    );
}

#[test]
fn a_401_to_a_minimal_request_is_at_most_4x_and_carries_only_realm_and_nonce() {
    let server = Server::start(&[]);
    let to = server.udp_addr();
    for (method, name) in [
        (Method::ALLOCATE, "Allocate"),
        (Method::REFRESH, "Refresh"),
        (Method::CREATE_PERMISSION, "CreatePermission"),
        (Method::CHANNEL_BIND, "ChannelBind"),
    ] {
        let sent = bare(method);
        assert_eq!(sent.len(), 20);
        let what = format!("{name}, no attributes: 401");
        let got = row(&what, &sent, &exchange(to, &sent), Some(401));
        assert_bare(&what, &sent, &got);
        within_bound(&what, &sent, &got);
        let msg = Message::parse(&got).expect("valid");
        assert_eq!(msg.realm(), Some(Ok(REALM)), "{what}");
        assert_eq!(msg.nonce().map(<[u8]>::len), Some(32), "{what}");
    }
}

#[test]
fn fingerprint_on_adds_nothing_to_unauthenticated_errors_unless_the_request_had_one() {
    let server = Server::start(&["--fingerprint"]);
    let to = server.udp_addr();
    let sent = bare(Method::ALLOCATE);
    let what = "Allocate, no attributes, fingerprint on: 401";
    let got = row(what, &sent, &exchange(to, &sent), Some(401));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);

    let sent = request(Method::ALLOCATE, &transaction_id(), &|b| {
        b.add_fingerprint()
    });
    let what = "Allocate with FINGERPRINT: 401";
    let got = row(what, &sent, &exchange(to, &sent), Some(401));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);

    // A Binding success is not an error: `fingerprint` governs it.
    let sent = bare(Method::BINDING);
    let got = row(
        "Binding, fingerprint on: success",
        &sent,
        &exchange(to, &sent),
        None,
    );
    assert!(Message::parse(&got).expect("valid").has_fingerprint());
}

#[test]
fn every_unauthenticated_answer_is_bare_and_within_4x() {
    let server = Server::start(&[]);
    let to = server.udp_addr();

    let sent = request(Method::ALLOCATE, &transaction_id(), &|b| {
        b.add_message_integrity(&[0u8; 16])
    });
    let what = "Allocate with MESSAGE-INTEGRITY, no USERNAME: 400";
    let got = row(what, &sent, &exchange(to, &sent), Some(400));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);

    let sent = request(Method::ALLOCATE, &transaction_id(), &|b| {
        b.add_str(attr::USERNAME, USER)?;
        b.add_str(attr::REALM, REALM)?;
        b.add_raw(attr::NONCE, b"obMatJos2AAAAnot-a-nonce-of-tern")?;
        b.add_message_integrity(&[0u8; 16])
    });
    let what = "Allocate with a forged NONCE: 401";
    let got = row(what, &sent, &exchange(to, &sent), Some(401));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);

    let sent = request(Method::BINDING, &transaction_id(), &|b| {
        b.add_raw(0x0077, &[])
    });
    let what = "Binding with an unknown comprehension-required attribute: 420";
    let got = row(what, &sent, &exchange(to, &sent), Some(420));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);

    // A Binding success is no error: `software-attribute` governs it (on by default).
    let sent = bare(Method::BINDING);
    let what = "Binding: success";
    let got = row(what, &sent, &exchange(to, &sent), None);
    within_bound(what, &sent, &got);
    assert!(Message::parse(&got).expect("valid").software().is_some());
}

#[test]
fn a_stale_nonce_gets_a_bare_438() {
    let server = Server::start(&["--stale-nonce=1"]);
    let to = server.udp_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let first = exchange_on(&socket, to, &bare(Method::ALLOCATE));
    let nonce = Message::parse(&first)
        .expect("valid")
        .nonce()
        .expect("NONCE")
        .to_vec();
    // stale-nonce=1: stale two seconds on.
    thread::sleep(Duration::from_millis(2100));
    let key = long_term_key(USER, REALM, PASSWORD);
    let sent = request(Method::ALLOCATE, &transaction_id(), &|b| {
        b.add_u32(attr::REQUESTED_TRANSPORT, 17 << 24)?;
        b.add_str(attr::USERNAME, USER)?;
        b.add_str(attr::REALM, REALM)?;
        b.add_raw(attr::NONCE, &nonce)?;
        b.add_message_integrity(&key)
    });
    let what = "Allocate with a stale NONCE: 438";
    let got = row(what, &sent, &exchange_on(&socket, to, &sent), Some(438));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);
}

#[test]
fn secure_stun_challenges_a_binding_with_a_bare_401() {
    let server = Server::start(&["--secure-stun"]);
    let sent = bare(Method::BINDING);
    let what = "Binding under secure-stun: 401";
    let got = row(what, &sent, &exchange(server.udp_addr(), &sent), Some(401));
    assert_bare(what, &sent, &got);
    within_bound(what, &sent, &got);
}

/// REALM must be echoed (RFC 8489 §9.2.4), so a long realm is the operator's amplification: the
/// row is printed, not bounded.
#[test]
fn a_long_realm_is_echoed_in_full() {
    let realm = "r".repeat(127);
    let arg = format!("--realm={realm}");
    let server = Server::start(&[&arg]);
    let sent = bare(Method::ALLOCATE);
    let what = "Allocate, no attributes, 127-character realm: 401";
    let got = row(what, &sent, &exchange(server.udp_addr(), &sent), Some(401));
    assert_bare(what, &sent, &got);
    let msg = Message::parse(&got).expect("valid");
    assert_eq!(msg.realm(), Some(Ok(realm.as_str())));
}

/// `password-algorithms=sha256,md5` puts PASSWORD-ALGORITHMS (12 bytes) in every 401 (RFC 8489
/// §9.2.4): beyond the bound, which is why the default offers nothing. The row is printed.
#[test]
fn a_sha256_offer_costs_twelve_bytes_per_401() {
    let sent = bare(Method::ALLOCATE);
    let plain = exchange(Server::start(&[]).udp_addr(), &sent);
    let server = Server::start(&["--password-algorithms=sha256,md5", "--userhash"]);
    let what = "Allocate, no attributes, SHA-256 and USERHASH offered: 401";
    let got = row(what, &sent, &exchange(server.udp_addr(), &sent), Some(401));
    assert_bare(what, &sent, &got);
    assert_eq!(got.len(), plain.len() + 12);
    let msg = Message::parse(&got).expect("valid");
    assert_eq!(
        msg.get(attr::PASSWORD_ALGORITHMS),
        Some(&[0, 2, 0, 0, 0, 1, 0, 0][..])
    );
}

/// The IPv6 Binding success (both mapped addresses are 20-byte attributes) is printed, not
/// bounded: it is a success, which `software-attribute` governs.
#[test]
fn ipv6_binding_answer_is_measured() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let server = Server::start(&["--listening-ip=::1"]);
    let to = server
        .udp
        .iter()
        .copied()
        .find(SocketAddr::is_ipv6)
        .expect("an IPv6 listener");
    let sent = bare(Method::BINDING);
    row(
        "Binding over IPv6: success",
        &sent,
        &exchange(to, &sent),
        None,
    );
}

/// Once a request authenticates, SOFTWARE and the reason phrase are back, errors included.
#[test]
fn authenticated_answers_keep_software_and_the_reason_phrase() {
    let server = Server::start(&[]);
    let to = server.udp_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let challenge = exchange_on(&socket, to, &bare(Method::ALLOCATE));
    let nonce = Message::parse(&challenge)
        .expect("valid")
        .nonce()
        .expect("NONCE")
        .to_vec();
    let key = long_term_key(USER, REALM, PASSWORD);
    let signed = |method: Method, attrs: Attrs<'_>| {
        request(method, &transaction_id(), &|b| {
            attrs(b)?;
            b.add_str(attr::USERNAME, USER)?;
            b.add_str(attr::REALM, REALM)?;
            b.add_raw(attr::NONCE, &nonce)?;
            b.add_message_integrity(&key)
        })
    };
    let allocate = signed(Method::ALLOCATE, &|b| {
        b.add_u32(attr::REQUESTED_TRANSPORT, 17 << 24)
    });
    let got = exchange_on(&socket, to, &allocate);
    let msg = Message::parse(&got).expect("valid");
    assert_eq!(msg.class(), Class::Success, "{msg:?}");
    assert!(msg.software().is_some());

    let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let permit = signed(Method::CREATE_PERMISSION, &|b| {
        b.add_xor_address(attr::XOR_PEER_ADDRESS, loopback)
    });
    let got = exchange_on(&socket, to, &permit);
    let msg = Message::parse(&got).expect("valid");
    let (code, reason) = msg.error_code().expect("ERROR-CODE").expect("valid");
    assert_eq!((code.0, reason), (403, "Forbidden"));
    assert!(msg.software().is_some());
    assert!(msg.has_integrity());
}
