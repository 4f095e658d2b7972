//! The few STUN/TURN requests the drills send (RFC 8489 §6, RFC 8656 §7-§12), built with the
//! library's encoder, and a reader that turns any answer into a small `Reply`.

use std::net::SocketAddr;

use tern::auth::{long_term_key, Key};
use tern::stun::{attr, Class, EncodeError, Message, MessageBuilder, MessageType, Method};

pub type Tid = [u8; 12];

/// REQUESTED-TRANSPORT value for UDP.
const UDP: u8 = 17;

/// The channel every drill allocation binds to its echo peer.
pub const CHANNEL: u16 = 0x4000;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Binding,
    Allocate,
    /// Refresh with this LIFETIME (0 deallocates).
    Refresh(u32),
    ChannelBind(SocketAddr),
}

impl Ask {
    fn method(self) -> Method {
        match self {
            Ask::Binding => Method::BINDING,
            Ask::Allocate => Method::ALLOCATE,
            Ask::Refresh(_) => Method::REFRESH,
            Ask::ChannelBind(_) => Method::CHANNEL_BIND,
        }
    }

    fn attrs(self, b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
        match self {
            Ask::Binding => Ok(()),
            Ask::Allocate => b.add_raw(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0]),
            Ask::Refresh(lifetime) => b.add_u32(attr::LIFETIME, lifetime),
            Ask::ChannelBind(peer) => {
                let [hi, lo] = CHANNEL.to_be_bytes();
                b.add_raw(attr::CHANNEL_NUMBER, &[hi, lo, 0, 0])?;
                b.add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            }
        }
    }
}

/// Long-term credentials with the realm and nonce the server last gave.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    realm: String,
    nonce: Vec<u8>,
    key: Key,
}

impl Auth {
    /// Takes the realm and nonce of a 401/438; false if the answer carried none or the same nonce
    /// again (the credentials themselves were refused).
    pub fn challenge(&mut self, realm: &str, nonce: &[u8], user: &str, password: &str) -> bool {
        if nonce.is_empty() || nonce == self.nonce.as_slice() {
            return false;
        }
        if realm != self.realm || self.nonce.is_empty() {
            self.key = long_term_key(user, realm, password);
            self.realm = realm.to_owned();
        }
        self.nonce = nonce.to_vec();
        true
    }

    pub fn forget(&mut self) {
        self.nonce.clear();
    }
}

/// Encodes `ask` into `out` (signed when `auth` holds a nonce); the length written.
pub fn request(out: &mut [u8], ask: Ask, tid: &Tid, user: &str, auth: &Auth) -> usize {
    let typ = MessageType::new(ask.method(), Class::Request);
    let built = MessageBuilder::new(out, typ, tid).and_then(|mut b| {
        ask.attrs(&mut b)?;
        if !auth.nonce.is_empty() {
            b.add_str(attr::USERNAME, user)?;
            b.add_str(attr::REALM, &auth.realm)?;
            b.add_raw(attr::NONCE, &auth.nonce)?;
            b.add_message_integrity(&auth.key)?;
        }
        Ok(b.finish())
    });
    // The buffers the drills pass are 512 bytes; these requests are under 200.
    built.unwrap_or(0)
}

/// A server answer, reduced to what the drills act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Success {
        relayed: Option<SocketAddr>,
        lifetime: Option<u32>,
    },
    /// 401 or 438 with the realm and nonce to retry with.
    Challenge {
        code: u16,
        realm: String,
        nonce: Vec<u8>,
    },
    Error(u16),
}

/// Reads a STUN answer: its transaction id and what it says; None for anything else.
pub fn reply(bytes: &[u8]) -> Option<(Tid, Reply)> {
    let msg = Message::parse(bytes).ok()?;
    let tid = *msg.transaction_id();
    let reply = match msg.class() {
        Class::Success => Reply::Success {
            relayed: msg
                .xor_address(attr::XOR_RELAYED_ADDRESS)
                .and_then(Result::ok),
            lifetime: msg.u32_attr(attr::LIFETIME).and_then(Result::ok),
        },
        Class::Error => {
            let code = match msg.error_code() {
                Some(Ok((code, _))) => code.0,
                _ => 0,
            };
            match (code, msg.nonce()) {
                (401 | 438, Some(nonce)) => Reply::Challenge {
                    code,
                    realm: msg.realm().and_then(Result::ok).unwrap_or("").to_owned(),
                    nonce: nonce.to_vec(),
                },
                _ => Reply::Error(code),
            }
        }
        _ => return None,
    };
    Some((tid, reply))
}

/// A fresh random transaction id.
pub fn tid() -> Tid {
    let mut t = [0u8; 12];
    // Uniqueness, not secrecy: a failed read leaves zeros and the caller still matches answers.
    let _ = getrandom::fill(&mut t);
    t
}
