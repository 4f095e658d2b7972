//! The client and the server sides of the core talking in memory (a `Pair`, as quinn-proto tests
//! its endpoints): `tern_proto::client::Client` against a `turn::Shard` behind the fake engine
//! of `turn_harness`, no socket anywhere. Every exchange goes through the bytes each side
//! writes, so the two halves keep agreeing on the wire format (RFC 8489, RFC 8656).

use std::net::SocketAddr;

use tern_proto::auth::PasswordAlgorithm;
use tern_proto::client::{
    channel_frame, incoming, send_indication, Algorithm, Allocate, Client, Credentials, Echo,
    Event, Incoming, Request, Response, Success, TidGen,
};
use tern_proto::options::Options;
use tern_proto::turn::Client as Via5Tuple;

use crate::turn_harness::*;

const PEER: &str = "198.51.100.1:9";

/// One client on one 5-tuple and the shard it talks to.
struct Pair {
    h: Harness,
    client: Client,
    tuple: Via5Tuple,
}

impl Pair {
    fn new(options: Options, creds: Credentials, algorithm: Algorithm) -> Pair {
        Pair {
            h: Harness::new(options),
            client: Client::new(Some(creds), algorithm, TidGen::new(7)),
            tuple: udp_client("203.0.113.5:40000"),
        }
    }

    /// Runs `request` to its end: each challenge answered by the client as it would over a
    /// socket. Panics when the shard stays silent or a success does not verify.
    fn exchange(&mut self, request: Request) -> Response {
        self.client.start(request);
        for _ in 0..4 {
            let mut out = vec![0u8; 1500];
            let n = self.client.transmit(&mut out).expect("request encodes");
            let bytes = match self.h.client_in(&self.tuple, &out[..n]) {
                Out::Client { bytes, .. } => bytes,
                other => panic!("{request:?}: no answer to the client: {other:?}"),
            };
            match self.client.handle(&bytes) {
                Some(Event::Challenged) => continue,
                Some(Event::Done { response, verified }) => {
                    assert_ne!(verified, Some(false), "{request:?}: the answer's integrity");
                    return response;
                }
                None => panic!("{request:?}: the answer is not for this transaction"),
            }
        }
        panic!("{request:?}: still challenged after 4 rounds")
    }

    fn success(&mut self, request: Request) -> Success {
        match self.exchange(request).outcome {
            Ok(success) => success,
            Err(refusal) => panic!("{request:?} refused: {refusal:?}"),
        }
    }

    /// Allocate, ChannelBind 0x4000 to `PEER`; the relayed address.
    fn allocate_and_bind(&mut self) -> SocketAddr {
        let granted = self.success(Request::Allocate(Allocate::default()));
        let relayed = granted.relayed.expect("XOR-RELAYED-ADDRESS");
        assert_eq!(
            relayed, self.h.io.binds[0].1.addr,
            "the relay the engine bound"
        );
        assert_eq!(
            granted.mapped,
            Some(self.tuple.remote),
            "XOR-MAPPED-ADDRESS"
        );
        let bind = Request::ChannelBind {
            channel: 0x4000,
            peer: PEER.parse().unwrap(),
        };
        self.success(bind);
        relayed
    }

    /// ChannelData both ways: the client's payload leaves the relay for the peer, the peer's
    /// comes back to the client on the channel.
    fn relay_both_ways(&mut self) {
        let peer: SocketAddr = PEER.parse().unwrap();
        let frame = channel_frame(0x4000, b"to the peer", false);
        match self.h.client_in(&self.tuple, &frame) {
            Out::Peer { to, bytes, .. } => {
                assert_eq!(to, peer);
                assert_eq!(bytes, b"to the peer");
            }
            other => panic!("ChannelData did not reach the peer: {other:?}"),
        }
        let relay = self.h.io.binds[0].1.id;
        match self.h.peer_in(relay, peer, b"to the client") {
            Out::Client { bytes, .. } => match incoming(&bytes) {
                Some(Incoming::Channel { channel, payload }) => {
                    assert_eq!(channel, 0x4000);
                    assert_eq!(payload, b"to the client");
                }
                other => panic!("not ChannelData: {other:?}"),
            },
            other => panic!("the peer's datagram did not reach the client: {other:?}"),
        }
    }
}

#[test]
fn long_term_credentials_allocate_bind_and_relay() {
    let creds = Credentials::long_term(USER, PASSWORD);
    let mut pair = Pair::new(config(), creds, Algorithm::Md5);
    pair.allocate_and_bind();
    pair.relay_both_ways();
    let refreshed = pair.success(Request::Refresh(0));
    assert_eq!(refreshed.lifetime, Some(0));
    assert_eq!(
        pair.h.io.closed.len(),
        1,
        "the relay closes with the allocation"
    );
}

#[test]
fn a_wrong_password_gets_no_allocation() {
    let creds = Credentials::long_term(USER, "not the password");
    let mut pair = Pair::new(config(), creds, Algorithm::Md5);
    let refused = pair
        .exchange(Request::Allocate(Allocate::default()))
        .outcome
        .expect_err("refused");
    assert_eq!(refused.code, 401);
    assert!(pair.h.io.binds.is_empty());
}

#[test]
fn rest_credentials_allocate_until_they_expire() {
    let mut options = config();
    options.users.clear();
    options.use_auth_secret = true;
    options.static_auth_secrets = vec!["s3cr3t".into()];
    let creds = Credentials::rest("s3cr3t", "alice", UNIX_START + 3600);
    let mut pair = Pair::new(options.clone(), creds, Algorithm::Md5);
    pair.allocate_and_bind();
    pair.relay_both_ways();

    let expired = Credentials::rest("s3cr3t", "alice", UNIX_START - 1);
    let mut late = Pair::new(options, expired, Algorithm::Md5);
    let refused = late
        .exchange(Request::Allocate(Allocate::default()))
        .outcome
        .expect_err("an expired REST name is refused");
    assert_eq!(refused.code, 401);
}

#[test]
fn sha256_with_userhash_allocates_and_a_downgrade_is_refused() {
    let mut options = config();
    options.password_algorithms = vec![PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5];
    options.userhash = true;
    let honest = Algorithm::Sha256 {
        userhash: true,
        echo: Echo::Offered,
    };
    let creds = Credentials::long_term(USER, PASSWORD);
    let mut pair = Pair::new(options.clone(), creds.clone(), honest);
    pair.allocate_and_bind();
    pair.relay_both_ways();

    let downgraded = Algorithm::Sha256 {
        userhash: false,
        echo: Echo::Md5Only,
    };
    let mut mitm = Pair::new(options, creds, downgraded);
    let refused = mitm
        .exchange(Request::Allocate(Allocate::default()))
        .outcome
        .expect_err("a changed PASSWORD-ALGORITHMS is a downgrade");
    assert_eq!(refused.code, 400);
}

#[test]
fn a_stale_nonce_is_answered_and_the_refresh_goes_through() {
    let mut options = config();
    options.stale_nonce = 60;
    let creds = Credentials::long_term(USER, PASSWORD);
    let mut pair = Pair::new(options, creds, Algorithm::Md5);
    pair.allocate_and_bind();
    let nonce = pair.client.auth().nonce().to_vec();
    pair.h.advance(120);
    let refreshed = pair.success(Request::Refresh(600));
    assert_eq!(refreshed.lifetime, Some(600));
    assert_ne!(
        pair.client.auth().nonce(),
        nonce,
        "the 438's new nonce was taken"
    );
}

#[test]
fn send_indications_need_a_permission_and_data_indications_come_back() {
    let creds = Credentials::long_term(USER, PASSWORD);
    let mut pair = Pair::new(config(), creds, Algorithm::Md5);
    pair.success(Request::Allocate(Allocate::default()));
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut out = vec![0u8; 1500];
    let tid = pair.client.next_tid();
    let n = send_indication(&mut out, &tid, peer, b"early").unwrap();
    assert_eq!(
        pair.h.client_in(&pair.tuple, &out[..n]),
        Out::Nothing,
        "no permission yet"
    );
    pair.success(Request::CreatePermission(peer));
    let tid = pair.client.next_tid();
    let n = send_indication(&mut out, &tid, peer, b"permitted").unwrap();
    match pair.h.client_in(&pair.tuple, &out[..n]) {
        Out::Peer { to, bytes, .. } => {
            assert_eq!((to, bytes.as_slice()), (peer, &b"permitted"[..]))
        }
        other => panic!("the Send indication did not reach the peer: {other:?}"),
    }
    let relay = pair.h.io.binds[0].1.id;
    match pair.h.peer_in(relay, peer, b"back") {
        Out::Client { bytes, .. } => match incoming(&bytes) {
            Some(Incoming::Data {
                peer: from,
                payload,
            }) => {
                assert_eq!(from, Some(peer));
                assert_eq!(payload, b"back");
            }
            other => panic!("not a Data indication: {other:?}"),
        },
        other => panic!("the peer's datagram did not reach the client: {other:?}"),
    }
}
