//! State shared by every shard, control plane only: the nonce key (RFC 8489 §9.2 stateless
//! nonces), the secret behind RESERVATION-TOKENs (RFC 8656 §7.2), and the allocation quota hook.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::auth::NonceKey;

pub struct Shared {
    nonce: NonceKey,
    token_secret: [u8; 32],
    /// Drain mode (coturn 4.17 SIGUSR1): new allocations are refused, existing ones live on.
    draining: AtomicBool,
}

impl Shared {
    /// `key`: 32 random bytes (the engine reads them from getrandom).
    pub fn new(key: [u8; 32]) -> Shared {
        let mut h = Sha256::new();
        h.update(b"tern reservation token");
        h.update(key);
        Shared {
            nonce: NonceKey::from_bytes(key),
            token_secret: h.finalize().into(),
            draining: AtomicBool::new(false),
        }
    }

    pub(crate) fn nonce(&self) -> &NonceKey {
        &self.nonce
    }

    pub(crate) fn token_secret(&self) -> &[u8; 32] {
        &self.token_secret
    }

    /// Enters or leaves drain mode; every shard sees it at its next Allocate.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Quota hook (user-quota / total-quota, 486): admits everything until quotas land.
    pub(crate) fn acquire(&self, _quota_user: &str) -> bool {
        true
    }

    /// Gives back what `acquire` took when an allocation ends.
    pub(crate) fn release(&self, _quota_user: &str) {}
}

impl Default for Shared {
    /// A fresh random key from the OS.
    fn default() -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // std seeds RandomState from the OS too; only used if getrandom itself fails.
            let state = RandomState::new();
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(&state.hash_one(i).to_le_bytes());
            }
        }
        Shared::new(key)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shared { .. }")
    }
}
