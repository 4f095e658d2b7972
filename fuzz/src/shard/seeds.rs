//! Seed inputs for the `shard` target, written as steps: allocations over UDP and streams, both
//! integrity algorithms, permissions, channels and relaying both ways (RFC 8656 §7-§12),
//! reservations, bind failures and the answers to unauthenticated senders.

use super::encode::Encode;
use super::step::{ChannelSel, Cred, Meth, PeerSel, Request, Step, TokenSel};

const UDP: Option<u8> = Some(17);

fn req(who: u8, method: Meth, cred: Cred) -> Request {
    Request {
        method,
        tid: who,
        cred,
        transport: None,
        lifetime: None,
        family: None,
        additional: None,
        even_port: None,
        token: None,
        dont_fragment: false,
        peer: None,
        more_peers: Vec::new(),
        channel: None,
        data: None,
        unknown: None,
        fingerprint: false,
    }
}

fn step(who: u8, req: Request) -> Step {
    Step::Request { who, req }
}

fn allocate(who: u8, cred: Cred) -> Request {
    Request {
        transport: UDP,
        ..req(who, Meth::Allocate, cred)
    }
}

fn with_peer(who: u8, method: Meth, cred: Cred, peer: u8) -> Request {
    Request {
        peer: Some(PeerSel::Fixed(peer)),
        ..req(who, method, cred)
    }
}

fn peer(relay: u8, from: u8, payload: &[u8]) -> Step {
    Step::Peer {
        relay,
        from: PeerSel::Fixed(from),
        payload: payload.to_vec(),
    }
}

/// A UDP client allocates, permits one peer, binds a channel to another, relays both ways.
fn udp_relay() -> Vec<Step> {
    vec![
        step(
            0,
            Request {
                lifetime: Some(1200),
                ..allocate(0, Cred::Valid)
            },
        ),
        step(0, with_peer(0, Meth::CreatePermission, Cred::Valid, 0)),
        step(
            0,
            Request {
                channel: Some(ChannelSel::Small(1)),
                ..with_peer(0, Meth::ChannelBind, Cred::Valid, 1)
            },
        ),
        step(
            0,
            Request {
                data: Some(b"to peer 0".to_vec()),
                ..with_peer(0, Meth::Send, Cred::None, 0)
            },
        ),
        Step::ChannelData {
            who: 0,
            channel: ChannelSel::Small(1),
            payload: b"to peer 1".to_vec(),
            tail: 3,
        },
        peer(0, 0, b"from peer 0"),
        peer(0, 1, b"from peer 1"),
        Step::Advance(301_000),
        peer(0, 0, b"after the permission expired"),
        step(
            0,
            Request {
                lifetime: Some(0),
                ..req(0, Meth::Refresh, Cred::Valid)
            },
        ),
    ]
}

/// IPv6 with MESSAGE-INTEGRITY-SHA256, a dual allocation over TCP, then the stream closes.
fn v6_and_streams() -> Vec<Step> {
    vec![
        step(
            1,
            Request {
                family: Some(2),
                ..allocate(1, Cred::Sha256)
            },
        ),
        step(1, with_peer(1, Meth::CreatePermission, Cred::Sha256, 2)),
        peer(0, 2, b"v6 peer"),
        step(
            2,
            Request {
                additional: Some(2),
                ..allocate(2, Cred::Valid)
            },
        ),
        step(
            2,
            Request {
                channel: Some(ChannelSel::Small(2)),
                ..with_peer(2, Meth::ChannelBind, Cred::Valid, 0)
            },
        ),
        peer(1, 0, b"odd"),
        Step::ChannelData {
            who: 2,
            channel: ChannelSel::Small(2),
            payload: b"pad".to_vec(),
            tail: 1,
        },
        Step::StreamClosed(1),
    ]
}

/// EVEN-PORT with a reservation claimed by a token, a failing engine, refused credentials.
fn reservations_and_refusals() -> Vec<Step> {
    vec![
        step(
            0,
            Request {
                even_port: Some(0x80),
                ..allocate(0, Cred::Valid)
            },
        ),
        step(
            3,
            Request {
                token: Some(TokenSel::Issued(0)),
                ..allocate(3, Cred::Valid)
            },
        ),
        step(
            2,
            Request {
                even_port: Some(0x80),
                ..allocate(2, Cred::Valid)
            },
        ),
        Step::BindFailure(Some(0)),
        step(1, allocate(1, Cred::Valid)),
        Step::BindFailure(None),
        step(1, allocate(1, Cred::None)),
        step(1, allocate(1, Cred::WrongPassword)),
        step(1, allocate(1, Cred::StaleNonce)),
        step(1, allocate(1, Cred::OtherUser)),
        step(
            1,
            Request {
                unknown: Some(0x7777),
                ..allocate(1, Cred::Valid)
            },
        ),
        Step::Advance(4_000_000),
    ]
}

/// What anyone may send: Binding, unknown methods, garbage, ChannelData without allocation.
fn unauthenticated() -> Vec<Step> {
    vec![
        step(
            0,
            Request {
                fingerprint: true,
                ..req(0, Meth::Binding, Cred::None)
            },
        ),
        step(
            1,
            Request {
                unknown: Some(0x0031),
                ..req(1, Meth::Binding, Cred::None)
            },
        ),
        step(0, req(0, Meth::Other(0x0abc), Cred::GarbageNonce)),
        step(0, with_peer(0, Meth::CreatePermission, Cred::Valid, 0)),
        Step::Raw {
            who: 0,
            bytes: vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12],
        },
        Step::ChannelData {
            who: 1,
            channel: ChannelSel::Raw(0x4000),
            payload: vec![1, 2, 3],
            tail: 0,
        },
    ]
}

/// (name, input): the fingerprint flag, then the encoded steps.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let scenarios: [(&str, bool, Vec<Step>); 4] = [
        ("udp-relay", false, udp_relay()),
        ("v6-and-streams", true, v6_and_streams()),
        (
            "reservations-and-refusals",
            false,
            reservations_and_refusals(),
        ),
        ("unauthenticated", true, unauthenticated()),
    ];
    scenarios
        .into_iter()
        .map(|(name, fingerprint, steps)| {
            let mut out = Vec::new();
            fingerprint.encode(&mut out);
            for s in &steps {
                s.encode(&mut out);
            }
            (name, out)
        })
        .collect()
}
