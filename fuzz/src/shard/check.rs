//! The invariants the `shard` target checks after each step (RFC 8489 §9.2 authentication before
//! state, RFC 8656 §7-§12 allocations, permissions and relaying, tern's counters and buffers).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use tern::stun::classic::{self, ClassicBinding};
use tern::stun::{attr, channel, Class, Message, Method};
use tern::turn::{Client, Output, RelayId, Span, Transport};

use super::ledger::Owner;
use super::step::user_key;
use super::World;

/// The longest answer to a sender whose MESSAGE-INTEGRITY did not verify: header, ERROR-CODE,
/// REALM, NONCE, SOFTWARE and FINGERPRINT fit well below; a reflection stays small.
pub const MAX_UNAUTHENTICATED_ANSWER: usize = 200;

/// Peer IPs each client 5-tuple was ever granted a permission for (expiry aside).
pub type Permitted = HashMap<Owner, HashSet<IpAddr>>;

/// Whether `msg` is a request whose MESSAGE-INTEGRITY(-SHA256) verifies with the user's key.
fn verified(msg: Option<&Message<'_>>) -> bool {
    let key = user_key();
    msg.is_some_and(|m| {
        m.class() == Class::Request
            && (m.verify_integrity(&key).is_ok() || m.verify_integrity_sha256(&key).is_ok())
    })
}

fn signed_by_user(m: &Message<'_>) -> bool {
    let key = user_key();
    m.verify_integrity(&key).is_ok() || m.verify_integrity_sha256(&key).is_ok()
}

/// The bytes of an output, after checking that its span lies inside the buffer it names.
fn span_bytes<'b>(span: &Span, buf: &'b [u8], scratch: &'b [u8]) -> &'b [u8] {
    match span {
        Span::Packet(r) => {
            assert!(
                r.start <= r.end && r.end <= buf.len(),
                "span {r:?} outside a buffer of {}",
                buf.len()
            );
            &buf[r.clone()]
        }
        Span::Scratch(n) => {
            assert!(
                *n <= scratch.len(),
                "scratch span {n} outside {}",
                scratch.len()
            );
            &scratch[..*n]
        }
    }
}

/// An RFC 3489 Binding request (no magic cookie) is answered with exactly the classic success
/// response: its whole 16-byte transaction id and MAPPED-ADDRESS of the sender, nothing larger.
fn check_classic_response(request: &ClassicBinding<'_>, bytes: &[u8], owner: Owner) {
    let mut expected = [0u8; MAX_UNAUTHENTICATED_ANSWER];
    let n = classic::write_binding_response(&mut expected, request.transaction_id(), owner.1)
        .expect("a classic answer fits");
    assert_eq!(
        bytes,
        &expected[..n],
        "the answer to a classic Binding is not the classic response for its sender"
    );
}

impl World {
    pub(super) fn check_client_output(
        &mut self,
        client: &Client,
        input: &[u8],
        buf: &[u8],
        out: Output,
        before: usize,
    ) {
        let owner: Owner = (client.via, client.remote);
        let parsed = match input.first() {
            Some(b) if b & 0xC0 == 0 => Message::parse(input).ok(),
            _ => None,
        };
        let verified = verified(parsed.as_ref());
        let allocate = verified
            && parsed
                .as_ref()
                .is_some_and(|m| m.method() == Method::ALLOCATE);
        let fresh = std::mem::take(&mut self.io.fresh);
        assert!(
            fresh.len() <= 2,
            "one Allocate bound {} relays",
            fresh.len()
        );
        if !fresh.is_empty() {
            assert!(
                allocate,
                "a relay was bound for an input that is not a verified Allocate"
            );
        }
        for id in &fresh {
            if let Some(r) = self.io.relays.get_mut(id) {
                r.owner = Some(owner);
            }
        }
        let after = self.shard.allocation_count();
        if after > before {
            assert!(
                allocate,
                "an allocation appeared without a verified Allocate"
            );
            assert_eq!(after, before + 1);
        }
        match out {
            Output::Nothing => {}
            Output::Client { via, to, data } => {
                assert_eq!((via, to), owner, "an answer went to another client");
                let bytes = span_bytes(&data, buf, &self.scratch).to_vec();
                self.count_client_tx(bytes.len());
                let request = parsed.as_ref().filter(|m| m.class() == Class::Request);
                match (request, ClassicBinding::parse(input)) {
                    (Some(request), _) => self.check_response(request, &bytes, verified, owner),
                    (None, Some(classic)) => check_classic_response(&classic, &bytes, owner),
                    (None, None) => {
                        panic!("a client got an answer to something that is not a request")
                    }
                }
            }
            Output::Peer {
                relay, to, data, ..
            } => {
                let bytes = span_bytes(&data, buf, &self.scratch).to_vec();
                self.expected.peer_tx_packets += 1;
                self.expected.peer_tx_bytes += bytes.len() as u64;
                self.check_to_peer(relay, to, owner);
                let payload = match input.first() {
                    Some(b) if channel::is_channel_data(*b) => {
                        channel::parse(input).ok().map(|(_, p)| p)
                    }
                    _ => parsed
                        .as_ref()
                        .filter(|m| m.method() == Method::SEND)
                        .and_then(|m| m.data()),
                };
                assert_eq!(
                    Some(bytes.as_slice()),
                    payload,
                    "relayed bytes are not the client's payload"
                );
            }
        }
    }

    fn check_response(
        &mut self,
        request: &Message<'_>,
        bytes: &[u8],
        verified: bool,
        owner: Owner,
    ) {
        let Ok(resp) = Message::parse(bytes) else {
            panic!("the answer is not a valid STUN message: {bytes:02x?}");
        };
        assert_eq!(resp.transaction_id(), request.transaction_id());
        assert_eq!(resp.method(), request.method());
        assert!(matches!(resp.class(), Class::Success | Class::Error));
        if !verified {
            assert!(
                bytes.len() <= MAX_UNAUTHENTICATED_ANSWER,
                "{} bytes answer an unauthenticated request",
                bytes.len()
            );
            assert!(
                !resp.has_integrity() && !resp.has_integrity_sha256(),
                "an unauthenticated answer is signed"
            );
        }
        if resp.class() != Class::Success || resp.method() == Method::BINDING {
            return;
        }
        assert!(verified, "success for a request that did not verify");
        assert!(
            signed_by_user(&resp),
            "a success response is not signed with the user's key"
        );
        match resp.method() {
            Method::ALLOCATE => {
                if let Some(Ok(token)) = resp.reservation_token() {
                    self.tokens.push(token);
                }
            }
            Method::CREATE_PERMISSION | Method::CHANNEL_BIND => {
                let ips = self.permitted.entry(owner).or_default();
                for peer in request.xor_addresses(attr::XOR_PEER_ADDRESS).flatten() {
                    ips.insert(peer.ip());
                }
            }
            _ => {}
        }
    }

    /// Client -> peer: from an open relay of the sender's own allocation, to a peer the policy
    /// admits and the client once permitted.
    fn check_to_peer(&self, relay: RelayId, to: SocketAddr, owner: Owner) {
        let Some(state) = self.io.relays.get(&relay) else {
            panic!("sent from relay {relay:?} that was never bound");
        };
        assert!(state.open, "sent from closed relay {relay:?}");
        assert_eq!(state.owner, Some(owner), "sent from another client's relay");
        assert!(
            self.policy.check(to).is_ok(),
            "sent to {to}, which the peer policy refuses"
        );
        assert!(
            self.was_permitted(owner, to.ip()),
            "sent to {to} without a permission"
        );
    }

    pub(super) fn check_peer_output(
        &mut self,
        relay: RelayId,
        from: SocketAddr,
        input: &[u8],
        buf: &[u8],
        out: Output,
    ) {
        let (via, to, data) = match out {
            Output::Nothing => return,
            Output::Peer { .. } => panic!("a peer datagram was sent to a peer"),
            Output::Client { via, to, data } => (via, to, data),
        };
        let bytes = span_bytes(&data, buf, &self.scratch).to_vec();
        self.count_client_tx(bytes.len());
        self.from_peers += 1;
        let Some(state) = self.io.relays.get(&relay) else {
            panic!("relay {relay:?} was never bound");
        };
        assert!(state.open, "relayed through closed relay {relay:?}");
        let Some(owner) = state.owner else {
            panic!("relay {relay:?} has no owner");
        };
        assert_eq!(
            (via, to),
            owner,
            "relayed to a client that does not own the relay"
        );
        assert!(
            self.was_permitted(owner, from.ip()),
            "relayed from {from} without a permission"
        );
        let udp = self
            .clients
            .iter()
            .any(|c| (c.via, c.remote) == owner && c.transport == Transport::Udp);
        match bytes.first() {
            Some(b) if channel::is_channel_data(*b) => {
                let Ok((_, payload)) = channel::parse(&bytes) else {
                    panic!("malformed ChannelData to the client");
                };
                assert_eq!(payload, input);
                if udp {
                    assert_eq!(bytes.len(), channel::HEADER_LEN + input.len());
                } else {
                    assert_eq!(
                        bytes.len(),
                        channel::HEADER_LEN + channel::padded_len(input.len())
                    );
                }
            }
            _ => {
                let Ok(m) = Message::parse(&bytes) else {
                    panic!("malformed Data indication: {bytes:02x?}");
                };
                assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
                assert_eq!(m.data(), Some(input));
                assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(from)));
            }
        }
    }

    fn was_permitted(&self, owner: Owner, ip: IpAddr) -> bool {
        self.permitted
            .get(&owner)
            .is_some_and(|ips| ips.contains(&ip))
    }

    fn count_client_tx(&mut self, n: usize) {
        self.expected.client_tx_packets += 1;
        self.expected.client_tx_bytes += n as u64;
    }

    /// After every step: counters agree with what the harness saw, and allocations agree with
    /// the relay sockets the engine holds open.
    pub(super) fn check_state(&self) {
        assert!(
            self.io.fresh.is_empty(),
            "relays bound outside a client request"
        );
        let c = self.shard.counters();
        let e = &self.expected;
        let seen = |c: &tern::turn::Counters| {
            [
                c.client_rx_packets,
                c.client_rx_bytes,
                c.client_tx_packets,
                c.client_tx_bytes,
                c.peer_rx_packets,
                c.peer_rx_bytes,
                c.peer_tx_packets,
                c.peer_tx_bytes,
            ]
        };
        assert_eq!(
            seen(c),
            seen(e),
            "counters (rx, tx for clients, then peers) disagree"
        );
        let count = self.shard.allocation_count();
        assert_eq!(c.allocations, count as u64);
        let mut owners = HashSet::new();
        for (id, r) in self.io.open_relays() {
            let Some(owner) = r.owner else {
                panic!("open relay {id:?} without an owner");
            };
            owners.insert(owner);
        }
        assert_eq!(
            owners.len(),
            count,
            "allocations and open relay sockets disagree"
        );
    }
}
