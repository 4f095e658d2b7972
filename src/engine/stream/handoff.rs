//! Moving a client connection to another shard. A ConnectionBind (RFC 6062 §5.4) arrives on a
//! new connection that the kernel may give to any shard; the shard that owns the allocation
//! (named by the CONNECTION-ID) must splice it, so the connection is handed there.

use std::sync::{Arc, Mutex};

use mio::Waker;

use super::conn::Conn;

/// One inbox per shard, and the waker that makes it look.
pub(crate) struct Handoff {
    inboxes: Vec<Mutex<Vec<Conn>>>,
    wakers: Vec<Arc<Waker>>,
}

impl Handoff {
    pub(crate) fn new(wakers: Vec<Arc<Waker>>) -> Handoff {
        Handoff {
            inboxes: wakers.iter().map(|_| Mutex::new(Vec::new())).collect(),
            wakers,
        }
    }

    pub(crate) fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Gives `conn` (deregistered from its poll) to shard `to`. Err: no such shard; the
    /// connection is closed and its client address returned.
    pub(crate) fn send(&self, to: usize, conn: Conn) -> Result<(), std::net::IpAddr> {
        let (Some(inbox), Some(waker)) = (self.inboxes.get(to), self.wakers.get(to)) else {
            return Err(conn.remote.ip());
        };
        inbox.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        // A lost wake-up is covered by the shard's bounded sleep.
        let _ = waker.wake();
        Ok(())
    }

    /// The connections handed to shard `me`.
    pub(crate) fn take(&self, me: usize) -> Vec<Conn> {
        match self.inboxes.get(me) {
            Some(inbox) => std::mem::take(&mut *inbox.lock().unwrap_or_else(|e| e.into_inner())),
            None => Vec::new(),
        }
    }
}
