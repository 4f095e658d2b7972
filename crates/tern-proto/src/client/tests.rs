//! The client against hand-built server answers: no sockets, no clock.

use std::net::SocketAddr;

use super::*;
use crate::auth::{long_term_key, long_term_key_sha256};
use crate::stun::{attr, ErrorCode, Family, MessageBuilder, MessageType, Method};
use crate::stun::{Class, Message};

const PEER: &str = "192.0.2.7:5000";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn client(algorithm: Algorithm) -> Client {
    Client::new(
        Some(Credentials::long_term("u", "p")),
        algorithm,
        TidGen::new(1),
    )
}

fn sent(c: &Client) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let n = c.transmit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// A 401 (or `code`) to `request` with realm "r", `nonce`, and PASSWORD-ALGORITHMS MD5, SHA-256.
fn challenge(request: &[u8], code: u16, nonce: &[u8]) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = vec![0u8; 512];
    let typ = MessageType::new(req.method(), Class::Error);
    let mut b = MessageBuilder::new(&mut buf, typ, req.transaction_id()).unwrap();
    b.add_error_code(ErrorCode(code), "challenge").unwrap();
    b.add_str(attr::REALM, "r").unwrap();
    b.add_raw(attr::NONCE, nonce).unwrap();
    b.add_raw(attr::PASSWORD_ALGORITHMS, &[0, 2, 0, 0, 0, 1, 0, 0])
        .unwrap();
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// A success to `request`, signed with `key` (MD5 or SHA-256 by its length).
fn success(request: &[u8], key: Option<&[u8]>) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = vec![0u8; 512];
    let typ = MessageType::new(req.method(), Class::Success);
    let mut b = MessageBuilder::new(&mut buf, typ, req.transaction_id()).unwrap();
    b.add_xor_address(
        attr::XOR_RELAYED_ADDRESS,
        "198.51.100.1:40000".parse().unwrap(),
    )
    .unwrap();
    b.add_xor_address(
        attr::XOR_RELAYED_ADDRESS,
        "[2001:db8::1]:40002".parse().unwrap(),
    )
    .unwrap();
    b.add_xor_address(
        attr::XOR_MAPPED_ADDRESS,
        "203.0.113.9:1234".parse().unwrap(),
    )
    .unwrap();
    b.add_u32(attr::LIFETIME, 600).unwrap();
    match key {
        Some(k) if k.len() == 32 => b.add_message_integrity_sha256(k).unwrap(),
        Some(k) => b.add_message_integrity(k).unwrap(),
        None => {}
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

#[test]
fn a_challenge_then_a_signed_retry_then_a_verified_success() {
    let mut c = client(Algorithm::Md5);
    c.start(Request::ALLOCATE);
    let first = sent(&c);
    let m = Message::parse(&first).unwrap();
    assert_eq!(m.method(), Method::ALLOCATE);
    assert_eq!(m.requested_transport(), Some(Ok(17)));
    assert!(!m.has_integrity(), "the first request is unsigned");

    assert_eq!(
        c.handle(&challenge(&first, 401, b"n1")),
        Some(Event::Challenged)
    );
    let second = sent(&c);
    let m = Message::parse(&second).unwrap();
    assert_ne!(
        m.transaction_id(),
        Message::parse(&first).unwrap().transaction_id()
    );
    assert_eq!(m.username(), Some(Ok("u")));
    assert_eq!(m.nonce(), Some(&b"n1"[..]));
    let key = long_term_key("u", "r", "p");
    assert!(m.verify_integrity(&key).is_ok());

    assert_eq!(
        c.handle(&success(&first, None)),
        None,
        "an answer to the old tid"
    );
    let Some(Event::Done { response, verified }) = c.handle(&success(&second, Some(&key))) else {
        panic!("no answer");
    };
    assert_eq!(verified, Some(true));
    let s = response.outcome.unwrap();
    assert_eq!(s.relayed, Some("198.51.100.1:40000".parse().unwrap()));
    assert_eq!(s.also_relayed, Some("[2001:db8::1]:40002".parse().unwrap()));
    assert_eq!(s.mapped, Some("203.0.113.9:1234".parse().unwrap()));
    assert_eq!(s.lifetime, Some(600));
    assert_eq!(c.pending(), None);
}

#[test]
fn a_stale_nonce_is_retried_and_the_same_nonce_again_is_a_refusal() {
    let mut c = client(Algorithm::Md5);
    c.start(Request::Refresh(0));
    let first = sent(&c);
    assert_eq!(
        c.handle(&challenge(&first, 401, b"n1")),
        Some(Event::Challenged)
    );
    let second = sent(&c);
    assert_eq!(
        c.handle(&challenge(&second, 438, b"n2")),
        Some(Event::Challenged)
    );
    let third = sent(&c);
    assert_eq!(Message::parse(&third).unwrap().nonce(), Some(&b"n2"[..]));
    let Some(Event::Done { response, .. }) = c.handle(&challenge(&third, 401, b"n2")) else {
        panic!("no answer");
    };
    let refusal = response.outcome.unwrap_err();
    assert_eq!((refusal.code, refusal.is_challenge()), (401, true));
}

#[test]
fn without_credentials_a_challenge_ends_the_transaction() {
    let mut c = Client::new(None, Algorithm::Md5, TidGen::new(2));
    c.start(Request::ALLOCATE);
    let first = sent(&c);
    let Some(Event::Done { response, verified }) = c.handle(&challenge(&first, 401, b"n")) else {
        panic!("no answer");
    };
    assert_eq!((response.outcome.unwrap_err().code, verified), (401, None));
}

#[test]
fn sha256_with_userhash_echoes_the_offer_or_a_downgrade() {
    for (echo, algorithms) in [
        (Echo::Offered, Some(&[0u8, 2, 0, 0, 0, 1, 0, 0][..])),
        (Echo::Stripped, None),
        (Echo::Md5Only, Some(&[0u8, 1, 0, 0][..])),
    ] {
        let mut c = client(Algorithm::Sha256 {
            userhash: true,
            echo,
        });
        c.start(Request::CreatePermission(peer()));
        let first = sent(&c);
        assert_eq!(
            c.handle(&challenge(&first, 401, b"n")),
            Some(Event::Challenged)
        );
        assert_eq!(c.auth().offered(), Some(&[0u8, 2, 0, 0, 0, 1, 0, 0][..]));
        let second = sent(&c);
        let m = Message::parse(&second).unwrap();
        assert_eq!(m.get(attr::PASSWORD_ALGORITHMS), algorithms, "{echo:?}");
        assert_eq!(m.get(attr::PASSWORD_ALGORITHM), Some(&[0u8, 2, 0, 0][..]));
        assert_eq!(m.username(), None);
        assert_eq!(
            m.get(attr::USERHASH),
            Some(&crate::auth::userhash("u", "r")[..])
        );
        let key = long_term_key_sha256("u", "r", "p");
        assert!(m.verify_integrity_sha256(&key).is_ok());
        let md5 = long_term_key("u", "r", "p");
        let Some(Event::Done { verified, .. }) = c.handle(&success(&second, Some(&md5))) else {
            panic!("no answer");
        };
        assert_eq!(
            verified,
            Some(false),
            "an MD5-signed answer to a SHA-256 request"
        );
    }
}

#[test]
fn every_request_carries_its_attributes() {
    let token = [1, 2, 3, 4, 5, 6, 7, 8];
    let cases = [
        Request::Binding,
        Request::Allocate(Allocate {
            transport: Transport::Tcp,
            family: Some(Family::V6),
            additional: None,
            even_port: Some(true),
            reservation_token: None,
            lifetime: Some(60),
        }),
        Request::Allocate(Allocate {
            additional: Some(Family::V6),
            reservation_token: Some(token),
            ..Allocate::default()
        }),
        Request::ChannelBind {
            channel: 0x4001,
            peer: peer(),
        },
        Request::Connect(peer()),
        Request::ConnectionBind(77),
    ];
    let mut buf = [0u8; 512];
    for req in cases {
        let n = encode(&mut buf, &[3; 12], &req, None, true).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.method(), req.method());
        assert!(m.has_fingerprint());
        match req {
            Request::Allocate(a) => {
                assert_eq!(m.requested_transport(), Some(Ok(a.transport.protocol())));
                assert_eq!(m.requested_address_family().map(Result::unwrap), a.family);
                assert_eq!(
                    m.additional_address_family().map(Result::unwrap),
                    a.additional
                );
                assert_eq!(m.even_port().map(Result::unwrap), a.even_port);
                assert_eq!(
                    m.reservation_token().map(Result::unwrap),
                    a.reservation_token
                );
                assert_eq!(m.u32_attr(attr::LIFETIME).map(Result::unwrap), a.lifetime);
            }
            Request::ChannelBind { channel, peer } => {
                assert_eq!(m.channel_number(), Some(Ok(channel)));
                assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(peer)));
            }
            Request::Connect(p) => assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(p))),
            Request::ConnectionBind(id) => assert_eq!(m.connection_id(), Some(Ok(id))),
            _ => {}
        }
    }
}

#[test]
fn rest_credentials_name_the_expiry() {
    let c = Credentials::rest("secret", "alice", 1_700_000_000);
    assert_eq!(c.username, "1700000000:alice");
    assert_eq!(
        c.password,
        crate::auth::rest_password("secret", "1700000000:alice")
    );
}

#[test]
fn channel_data_and_data_indications_come_in() {
    let mut buf = [0u8; 64];
    buf[4..9].copy_from_slice(b"hello");
    let n = channel_data(&mut buf, 0x4000, 5);
    assert_eq!(
        incoming(&buf[..n]),
        Some(Incoming::Channel {
            channel: 0x4000,
            payload: b"hello"
        })
    );
    buf[9..12].fill(0xff);
    let n = channel_data_padded(&mut buf, 0x4000, 5);
    assert_eq!((n, &buf[9..12]), (12, &[0u8; 3][..]));
    assert_eq!(channel_frame(0x4000, b"hello", true), buf[..12].to_vec());

    let n = send_indication(&mut buf, &[5; 12], peer(), b"hi").unwrap();
    assert_eq!(incoming(&buf[..n]), None, "a Send is not a Data indication");
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::DATA, Class::Indication),
        &[6; 12],
    )
    .unwrap();
    b.add_xor_address(attr::XOR_PEER_ADDRESS, peer()).unwrap();
    b.add_raw(attr::DATA, b"hi").unwrap();
    let n = b.finish();
    let got = incoming(&buf[..n]).unwrap();
    assert_eq!(
        got,
        Incoming::Data {
            peer: Some(peer()),
            payload: b"hi"
        }
    );
    assert_eq!(got.payload(), b"hi");
}

#[test]
fn a_stream_is_cut_into_frames_whatever_the_reads() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&channel_frame(0x4000, b"abcde", true));
    let mut buf = [0u8; 64];
    let n = encode(&mut buf, &[1; 12], &Request::Binding, None, false).unwrap();
    stream.extend_from_slice(&buf[..n]);
    let mut d = Deframer::default();
    let mut frames = Vec::new();
    for byte in &stream {
        assert!(d.wanted() > 0);
        d.push(std::slice::from_ref(byte));
        while let Some(f) = d.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames, vec![stream[..12].to_vec(), stream[12..].to_vec()]);
    d.push(&[0xC0, 0, 0, 0]);
    assert!(d.next_frame().is_err());
}

#[test]
fn seeded_tids_repeat_per_seed_and_differ_within_a_run() {
    let (mut a, mut b) = (TidGen::new(9), TidGen::new(9));
    let first = a.next_tid();
    assert_eq!(first, b.next_tid());
    assert_ne!(first, a.next_tid());
}
