//! The inverse of the `Arbitrary` decoding of the `shard` steps (arbitrary 1.x: integers little
//! endian, `bool` the low bit of a byte, `Option` a bool then the value, an enum variant from a
//! `u32` scaled to the variant count, a `Vec` one "more" byte before each element and a 0 after
//! the last), so that seeds can be written as steps. `tests/it/fuzz_corpus.rs` checks the round trip.

use super::step::{ChannelSel, Cred, Meth, PeerSel, Request, Step, TokenSel};

pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// The `u32` that the derive turns into variant `index` of `count`.
fn variant(out: &mut Vec<u8>, index: u64, count: u64) {
    let x = (index << 32).div_ceil(count);
    out.extend_from_slice(&(x as u32).to_le_bytes());
}

impl Encode for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl Encode for u16 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Encode for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Encode for [u8; 8] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(v) = self {
            v.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for v in self {
            out.push(1);
            v.encode(out);
        }
        out.push(0);
    }
}

impl Encode for ChannelSel {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ChannelSel::Small(n) => {
                variant(out, 0, 2);
                n.encode(out);
            }
            ChannelSel::Raw(n) => {
                variant(out, 1, 2);
                n.encode(out);
            }
        }
    }
}

impl Encode for PeerSel {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            PeerSel::Fixed(i) => {
                variant(out, 0, 3);
                i.encode(out);
            }
            PeerSel::Relay(i) => {
                variant(out, 1, 3);
                i.encode(out);
            }
            PeerSel::V4(ip, port) => {
                variant(out, 2, 3);
                ip.encode(out);
                port.encode(out);
            }
        }
    }
}

impl Encode for Meth {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = match self {
            Meth::Allocate => 0,
            Meth::Refresh => 1,
            Meth::CreatePermission => 2,
            Meth::ChannelBind => 3,
            Meth::Send => 4,
            Meth::Binding => 5,
            Meth::Other(_) => 6,
        };
        variant(out, index, 7);
        if let Meth::Other(m) = self {
            m.encode(out);
        }
    }
}

impl Encode for Cred {
    fn encode(&self, out: &mut Vec<u8>) {
        let all = [
            Cred::None,
            Cred::Valid,
            Cred::Sha256,
            Cred::WrongPassword,
            Cred::OtherUser,
            Cred::StaleNonce,
            Cred::OtherClientNonce,
            Cred::GarbageNonce,
            Cred::WrongRealm,
            Cred::NoUsername,
        ];
        let index = all.iter().position(|c| c == self).unwrap_or(0);
        variant(out, index as u64, all.len() as u64);
    }
}

impl Encode for TokenSel {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TokenSel::Issued(i) => {
                variant(out, 0, 2);
                i.encode(out);
            }
            TokenSel::Raw(t) => {
                variant(out, 1, 2);
                t.encode(out);
            }
        }
    }
}

impl Encode for Request {
    fn encode(&self, out: &mut Vec<u8>) {
        self.method.encode(out);
        self.tid.encode(out);
        self.cred.encode(out);
        self.transport.encode(out);
        self.lifetime.encode(out);
        self.family.encode(out);
        self.additional.encode(out);
        self.even_port.encode(out);
        self.token.encode(out);
        self.dont_fragment.encode(out);
        self.peer.encode(out);
        self.more_peers.encode(out);
        self.channel.encode(out);
        self.data.encode(out);
        self.unknown.encode(out);
        self.fingerprint.encode(out);
    }
}

impl Encode for Step {
    fn encode(&self, out: &mut Vec<u8>) {
        const COUNT: u64 = 7;
        match self {
            Step::Raw { who, bytes } => {
                variant(out, 0, COUNT);
                who.encode(out);
                bytes.encode(out);
            }
            Step::Request { who, req } => {
                variant(out, 1, COUNT);
                who.encode(out);
                req.encode(out);
            }
            Step::ChannelData {
                who,
                channel,
                payload,
                tail,
            } => {
                variant(out, 2, COUNT);
                who.encode(out);
                channel.encode(out);
                payload.encode(out);
                tail.encode(out);
            }
            Step::Peer {
                relay,
                from,
                payload,
            } => {
                variant(out, 3, COUNT);
                relay.encode(out);
                from.encode(out);
                payload.encode(out);
            }
            Step::Advance(ms) => {
                variant(out, 4, COUNT);
                ms.encode(out);
            }
            Step::StreamClosed(c) => {
                variant(out, 5, COUNT);
                c.encode(out);
            }
            Step::BindFailure(f) => {
                variant(out, 6, COUNT);
                f.encode(out);
            }
        }
    }
}
