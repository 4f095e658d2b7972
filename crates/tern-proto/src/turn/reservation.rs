//! RESERVATION-TOKENs (RFC 8656 §7.2, §14.9): an Allocate with EVEN-PORT R=1 keeps the next port;
//! a later Allocate carrying the token gets it. Tokens are unguessable and live 30 seconds. The
//! table sits in `Shared`: the claiming Allocate may come from another 5-tuple and so land on
//! another shard; the issuing shard's timer wheel expires the token.

use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hash::FxHashMap;

/// How long a reserved port waits for the Allocate that claims it.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(30);

pub(crate) type Token = [u8; 8];

#[derive(Default)]
pub(crate) struct Reservations {
    held: FxHashMap<Token, (SocketAddr, Instant)>,
    issued: u64,
}

impl Reservations {
    /// Records that `addr` is reserved until `until`; returns its token.
    pub(crate) fn issue(
        &mut self,
        secret: &[u8; 32],
        shard: usize,
        addr: SocketAddr,
        until: Instant,
    ) -> Token {
        loop {
            self.issued = self.issued.wrapping_add(1);
            let token = derive(secret, shard, self.issued);
            if let Entry::Vacant(slot) = self.held.entry(token) {
                slot.insert((addr, until));
                return token;
            }
        }
    }

    /// The reserved address for `token` if it is still valid; the token is used up. An expired
    /// token stays until `expire`, so the issuing shard still releases its port.
    pub(crate) fn take(&mut self, token: &Token, now: Instant) -> Option<SocketAddr> {
        match self.held.get(token) {
            Some(&(addr, until)) if until > now => {
                self.held.remove(token);
                Some(addr)
            }
            _ => None,
        }
    }

    /// Forgets `token` if it expired unused, returning the port to release.
    pub(crate) fn expire(&mut self, token: &Token, now: Instant) -> Option<SocketAddr> {
        match self.held.get(token) {
            Some(&(addr, until)) if until <= now => {
                self.held.remove(token);
                Some(addr)
            }
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

fn derive(secret: &[u8; 32], shard: usize, n: u64) -> Token {
    let mut token = [0u8; 8];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(&(shard as u64).to_be_bytes());
        mac.update(&n.to_be_bytes());
        let out = mac.finalize().into_bytes();
        if let Some(head) = out.get(..8) {
            token.copy_from_slice(head);
        }
    }
    token
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn token_is_single_use_and_expires() {
        let t0 = Instant::now();
        let addr: SocketAddr = "192.0.2.1:50001".parse().unwrap();
        let mut r = Reservations::default();
        let a = r.issue(&[7; 32], 0, addr, t0 + TOKEN_LIFETIME);
        let b = r.issue(&[7; 32], 0, addr, t0 + TOKEN_LIFETIME);
        assert_ne!(a, b);
        assert_eq!(r.take(&a, t0), Some(addr));
        assert_eq!(r.take(&a, t0), None);
        assert_eq!(r.expire(&b, t0), None);
        assert_eq!(r.take(&b, t0 + TOKEN_LIFETIME), None);
        assert_eq!(r.expire(&b, t0 + TOKEN_LIFETIME), Some(addr));
        assert_eq!(r.len(), 0);
    }
}
