//! Requests waiting for a user database answer (RFC 8489 §9.2.4: the key is needed before
//! MESSAGE-INTEGRITY can be checked). A shard keeps a bounded list of them and the engine feeds
//! them back through `handle_client` once the resolver wakes it; one not resumed in time is
//! dropped, and the client's retransmission asks again.

use std::time::{Duration, Instant};

use super::io::{Client, HEADROOM};

/// Requests one shard keeps waiting at most; more are dropped (the client retransmits).
const MAX_PARKED: usize = 256;
/// A parked request older than this is dropped rather than resumed.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// One request to run again: where it came from and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parked {
    pub client: Client,
    pub bytes: Vec<u8>,
    since: Instant,
}

impl Parked {
    /// Copies the request into `buf` at `HEADROOM`, where `handle_client` expects a packet that
    /// has just arrived; its length, or None when `buf` is too short for it.
    pub fn load(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.bytes.len();
        buf.get_mut(HEADROOM..HEADROOM + len)?
            .copy_from_slice(&self.bytes);
        Some(len)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ParkedQueue {
    items: Vec<Parked>,
}

impl ParkedQueue {
    /// Keeps `bytes` from `client`; false when the queue is full. A retransmission of a request
    /// already waiting is not kept twice.
    pub(crate) fn park(&mut self, client: &Client, bytes: &[u8], now: Instant) -> bool {
        let same = |p: &Parked| p.client == *client && p.bytes == bytes;
        if self.items.iter().any(same) {
            return true;
        }
        if self.items.len() >= MAX_PARKED {
            // Answers that never came (a stuck database) must not block the queue for good.
            self.items
                .retain(|p| now.saturating_duration_since(p.since) < MAX_WAIT);
            if self.items.len() >= MAX_PARKED {
                return false;
            }
        }
        self.items.push(Parked {
            client: *client,
            bytes: bytes.to_vec(),
            since: now,
        });
        true
    }

    /// Every parked request still worth resuming; the queue is left empty.
    pub(crate) fn take(&mut self, now: Instant) -> Vec<Parked> {
        let mut items = std::mem::take(&mut self.items);
        items.retain(|p| now.saturating_duration_since(p.since) < MAX_WAIT);
        items
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
