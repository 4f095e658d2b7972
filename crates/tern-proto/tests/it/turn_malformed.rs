//! Malformed and hostile input to the TURN core, table-driven: each packet gets no answer unless
//! the RFC asks for one (420 for unknown comprehension-required attributes, 400 for bad values,
//! 401 for a bad MESSAGE-INTEGRITY; RFC 8489 §6.3, §9.2.4, RFC 8656 §12.4), is counted under
//! exactly one reason, and the shard still serves a good client afterwards. Duplicate
//! attributes: the first wins; attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5).
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;

use crate::turn_harness::*;
use tern_proto::auth::long_term_key;
use tern_proto::options::Options;
use tern_proto::stun::{attr, Class, MessageBuilder, MessageType, Method};
use tern_proto::turn::{Client, DropReason, Drops};

#[derive(Debug)]
enum Expect {
    /// No answer; counted under this reason.
    Silent(DropReason),
    /// An error response with this code; counted under the reason if any.
    Error(u16, Option<DropReason>),
    /// A success response, with the LIFETIME it must carry.
    Lifetime(u32),
}

struct Row {
    name: &'static str,
    from: Client,
    bytes: Vec<u8>,
    expect: Expect,
}

fn binding() -> Vec<u8> {
    build(
        Method::BINDING,
        Class::Request,
        [7; 12],
        &|_| Ok(()),
        None,
        false,
    )
}

fn binding_fp() -> Vec<u8> {
    build(
        Method::BINDING,
        Class::Request,
        [7; 12],
        &|_| Ok(()),
        None,
        true,
    )
}

fn with_len(mut m: Vec<u8>, len: u16) -> Vec<u8> {
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

/// A request signed by `c` (or with `key`), with raw attributes added after MESSAGE-INTEGRITY.
fn signed_raw(
    c: &mut TestClient,
    method: Method,
    before: &[(u16, &[u8])],
    key: Option<[u8; 16]>,
    after: &[(u16, &[u8])],
) -> Vec<u8> {
    let tid = c.tid();
    let mut buf = [0u8; 1500];
    let typ = MessageType::new(method, Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, &tid).unwrap();
    for (t, v) in before {
        b.add_raw(*t, v).unwrap();
    }
    b.add_str(attr::USERNAME, &c.user).unwrap();
    b.add_str(attr::REALM, REALM).unwrap();
    b.add_raw(attr::NONCE, &c.nonce).unwrap();
    b.add_message_integrity(&key.unwrap_or(c.key)).unwrap();
    for (t, v) in after {
        b.add_raw(*t, v).unwrap();
    }
    let n = b.finish();
    buf[..n].to_vec()
}

fn channel_data(channel: u16, len_field: u16, payload: usize) -> Vec<u8> {
    let mut p = channel.to_be_bytes().to_vec();
    p.extend_from_slice(&len_field.to_be_bytes());
    p.resize(4 + payload, 0xCD);
    p
}

fn send_indication(peer: SocketAddr, extra: Option<u16>) -> Vec<u8> {
    build(
        Method::SEND,
        Class::Indication,
        [8; 12],
        &|b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)?;
            if let Some(t) = extra {
                b.add_raw(t, &[0; 4])?;
            }
            b.add_raw(attr::DATA, b"hello")
        },
        None,
        false,
    )
}

fn rows(c: &mut TestClient) -> Vec<Row> {
    let me = c.client;
    let stranger = udp_client("198.51.100.99:4444");
    let no_perm_peer: SocketAddr = "203.0.113.50:9".parse().unwrap();
    // A wrong cookie on a TURN method: a cookie-less Binding is a classic RFC 3489 request and
    // answered (crates/tern-proto/tests/it/turn_binding.rs), anything else without the cookie is malformed.
    let mut wrong_cookie = binding();
    wrong_cookie[1] = 0x03;
    wrong_cookie[4] ^= 0xFF;
    let mut first_byte = binding();
    first_byte[0] = 0x80;
    let mut bad_fp = binding_fp();
    let last = bad_fp.len() - 1;
    bad_fp[last] ^= 1;
    let fp_not_last = build(
        Method::BINDING,
        Class::Request,
        [7; 12],
        &|b| {
            b.add_fingerprint()?;
            b.add_str(attr::SOFTWARE, "late")
        },
        None,
        false,
    );
    let mut overflow = binding();
    overflow.extend_from_slice(&[0x80, 0x22, 0x00, 0x64, 0, 0, 0, 0]);
    let overflow = with_len(overflow, 8);
    let mut trailing = binding();
    trailing.extend_from_slice(&[0; 4]);
    let mut oversized = binding();
    oversized.resize(9000, 0x11);
    let response = build(
        Method::BINDING,
        Class::Success,
        [7; 12],
        &|_| Ok(()),
        None,
        false,
    );
    let allocate_indication = build(
        Method::ALLOCATE,
        Class::Indication,
        [7; 12],
        &|_| Ok(()),
        None,
        false,
    );
    let unknown_binding = build(
        Method::BINDING,
        Class::Request,
        [7; 12],
        &|b| b.add_raw(0x0077, &[1, 2, 3, 4]),
        None,
        false,
    );
    let wrong_key = long_term_key(&c.user, REALM, "not the password");
    let lifetime = |v: u32| v.to_be_bytes();
    let (l1200, l0) = (lifetime(1200), lifetime(0));
    let chan = |n: u16| [(n >> 8) as u8, n as u8, 0, 0];
    let peer_attr = {
        let mut b = [0u8; 64];
        let mut m = MessageBuilder::new(
            &mut b,
            MessageType::new(Method::BINDING, Class::Request),
            &[0; 12],
        )
        .unwrap();
        m.add_xor_address(attr::XOR_PEER_ADDRESS, "127.0.0.1:40001".parse().unwrap())
            .unwrap();
        b[24..32].to_vec()
    };
    let r = |name, from, bytes, expect| Row {
        name,
        from,
        bytes,
        expect,
    };
    use Expect::*;
    vec![
        r("empty datagram", me, vec![], Silent(DropReason::Truncated)),
        r("one byte", me, vec![0], Silent(DropReason::Truncated)),
        r(
            "19-byte header",
            me,
            binding()[..19].to_vec(),
            Silent(DropReason::Truncated),
        ),
        r(
            "first byte 0x80",
            me,
            first_byte,
            Silent(DropReason::NotStun),
        ),
        r(
            "100 bytes of 0xFF",
            me,
            vec![0xFF; 100],
            Silent(DropReason::NotStun),
        ),
        r(
            "Allocate with a wrong magic cookie",
            me,
            wrong_cookie,
            Silent(DropReason::BadCookie),
        ),
        r(
            "length beyond the datagram",
            me,
            with_len(binding(), 8),
            Silent(DropReason::BadLength),
        ),
        r(
            "length not a multiple of 4",
            me,
            with_len(binding_fp(), 6),
            Silent(DropReason::BadLength),
        ),
        r(
            "bytes after the length",
            me,
            trailing,
            Silent(DropReason::BadLength),
        ),
        r(
            "attribute runs past the end",
            me,
            overflow,
            Silent(DropReason::BadLength),
        ),
        r(
            "oversized 9000-byte datagram",
            me,
            oversized,
            Silent(DropReason::BadLength),
        ),
        r(
            "bad FINGERPRINT",
            me,
            bad_fp,
            Silent(DropReason::BadFingerprint),
        ),
        r(
            "FINGERPRINT not last",
            me,
            fp_not_last,
            Silent(DropReason::BadFingerprint),
        ),
        r(
            "a response sent to the server",
            me,
            response,
            Silent(DropReason::UnexpectedMessage),
        ),
        r(
            "an Allocate indication",
            me,
            allocate_indication,
            Silent(DropReason::UnexpectedMessage),
        ),
        r(
            "ChannelData of 3 bytes",
            me,
            vec![0x40, 0, 0],
            Silent(DropReason::Truncated),
        ),
        r(
            "ChannelData length past the datagram",
            me,
            channel_data(0x4000, 100, 10),
            Silent(DropReason::BadChannelLength),
        ),
        r(
            "zero-length ChannelData on an unbound channel",
            me,
            channel_data(0x4002, 0, 0),
            Silent(DropReason::NoChannel),
        ),
        r(
            "ChannelData on an unbound channel",
            me,
            channel_data(0x4001, 4, 4),
            Silent(DropReason::NoChannel),
        ),
        r(
            "ChannelData without an allocation",
            stranger,
            channel_data(0x4000, 4, 4),
            Silent(DropReason::NoAllocation),
        ),
        r(
            "Send without an allocation",
            stranger,
            send_indication(no_perm_peer, None),
            Silent(DropReason::NoAllocation),
        ),
        r(
            "Send to a peer without permission",
            me,
            send_indication(no_perm_peer, None),
            Silent(DropReason::NoPermission),
        ),
        r(
            "Send with an unknown required attribute",
            me,
            send_indication(no_perm_peer, Some(0x0077)),
            Silent(DropReason::UnknownAttribute),
        ),
        r(
            "Binding with an unknown required attribute",
            me,
            unknown_binding,
            Error(420, Some(DropReason::UnknownAttribute)),
        ),
        r(
            "Refresh with an unknown required attribute",
            me,
            signed_raw(c, Method::REFRESH, &[(0x0077, &[0; 4])], None, &[]),
            Error(420, Some(DropReason::UnknownAttribute)),
        ),
        r(
            "wrong MESSAGE-INTEGRITY",
            me,
            signed_raw(c, Method::REFRESH, &[], Some(wrong_key), &[]),
            Error(401, Some(DropReason::BadIntegrity)),
        ),
        r(
            "LIFETIME of 2 bytes",
            me,
            signed_raw(c, Method::REFRESH, &[(attr::LIFETIME, &[0, 1])], None, &[]),
            Error(400, None),
        ),
        r(
            "ChannelBind to channel 0x3FFF",
            me,
            signed_raw(
                c,
                Method::CHANNEL_BIND,
                &[
                    (attr::CHANNEL_NUMBER, &chan(0x3FFF)),
                    (attr::XOR_PEER_ADDRESS, &peer_attr),
                ],
                None,
                &[],
            ),
            Error(400, None),
        ),
        r(
            "ChannelBind to channel 0x8000",
            me,
            signed_raw(
                c,
                Method::CHANNEL_BIND,
                &[
                    (attr::CHANNEL_NUMBER, &chan(0x8000)),
                    (attr::XOR_PEER_ADDRESS, &peer_attr),
                ],
                None,
                &[],
            ),
            Error(400, None),
        ),
        r(
            "duplicate LIFETIME: the first wins",
            me,
            signed_raw(
                c,
                Method::REFRESH,
                &[(attr::LIFETIME, &l1200), (attr::LIFETIME, &l0)],
                None,
                &[],
            ),
            Lifetime(1200),
        ),
        r(
            "attributes after MESSAGE-INTEGRITY are ignored",
            me,
            signed_raw(
                c,
                Method::REFRESH,
                &[(attr::LIFETIME, &l1200)],
                None,
                &[(0x0077, &[0; 4]), (attr::LIFETIME, &l0)],
            ),
            Lifetime(1200),
        ),
    ]
}

fn changed(before: &Drops, after: &Drops) -> Vec<(&'static str, u64)> {
    before
        .by_reason()
        .zip(after.by_reason())
        .filter(|((_, b), (_, a))| a != b)
        .map(|((name, b), (_, a))| (name, a - b))
        .collect()
}

#[test]
fn malformed_packets_are_dropped_or_answered_as_the_rfcs_say_and_counted_by_reason() {
    let mut h = Harness::new(Options {
        allow_loopback_peers: true,
        ..config()
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut c = TestClient::new("192.0.2.10:1001");
    let relayed = c.allocated(&mut h);
    assert!(is_success(&c.bind(&mut h, 0x4000, peer)));
    let table = rows(&mut c);
    assert!(table.len() >= 20);
    for row in table {
        let before = h.shard.drops().clone();
        let malformed = h.shard.counters().malformed;
        let out = h.client_in(&row.from, &row.bytes);
        let diff = changed(&before, h.shard.drops());
        let name = row.name;
        match row.expect {
            Expect::Silent(reason) => {
                assert_eq!(out, Out::Nothing, "{name}: answered");
                assert_eq!(diff, vec![(reason.name(), 1)], "{name}");
                let counted = u64::from(reason.is_malformed());
                assert_eq!(h.shard.counters().malformed, malformed + counted, "{name}");
            }
            Expect::Error(code_wanted, reason) => {
                assert_eq!(code(&out), code_wanted, "{name}");
                let want: Vec<_> = reason.iter().map(|r| (r.name(), 1)).collect();
                assert_eq!(diff, want, "{name}");
            }
            Expect::Lifetime(secs) => {
                assert!(is_success(&out), "{name}: {:?}", out.error_code());
                let got = out.message().u32_attr(attr::LIFETIME).unwrap().unwrap();
                assert_eq!(got, secs, "{name}");
                assert_eq!(diff, vec![], "{name}");
            }
        }
        // Keeps every row under the per-source limit on unauthenticated answers.
        h.advance(1);
    }
    // The allocation survived it all and still relays both ways.
    assert!(is_success(&c.refresh(&mut h, None)));
    let relay = relay_id_of(&h, relayed);
    let out = h.client_in(&c.client, &channel_data(0x4000, 5, 5));
    assert!(matches!(out, Out::Peer { to, .. } if to == peer), "{out:?}");
    let out = h.peer_in(relay, peer, b"back");
    assert!(matches!(out, Out::Client { .. }), "{out:?}");
    // Zero-length ChannelData on a bound channel is legal (RFC 8656 §12.4): an empty datagram.
    let out = h.client_in(&c.client, &channel_data(0x4000, 0, 0));
    assert!(
        matches!(&out, Out::Peer { bytes, .. } if bytes.is_empty()),
        "{out:?}"
    );
    // And a new client is served from scratch.
    let mut fresh = TestClient::new("192.0.2.11:2002");
    fresh.allocated(&mut h);
}

#[test]
fn data_from_a_peer_without_permission_is_dropped_and_counted() {
    let mut h = Harness::new(Options {
        allow_loopback_peers: true,
        ..config()
    });
    let mut c = TestClient::new("192.0.2.10:1001");
    let relayed = c.allocated(&mut h);
    let relay = relay_id_of(&h, relayed);
    let stranger: SocketAddr = "127.0.0.1:40009".parse().unwrap();
    assert_eq!(h.peer_in(relay, stranger, b"knock"), Out::Nothing);
    assert_eq!(h.shard.drops().get(DropReason::NoPermission), 1);
    // A channel outlives its permission (600 s vs 300 s): ChannelData then has no permission.
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    assert!(is_success(&c.bind(&mut h, 0x4000, peer)));
    h.advance(301);
    let out = h.client_in(&c.client, &channel_data(0x4000, 4, 4));
    assert_eq!(out, Out::Nothing);
    assert_eq!(h.shard.drops().get(DropReason::NoPermission), 2);
}
