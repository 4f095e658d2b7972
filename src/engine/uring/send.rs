//! Outgoing datagrams of one io_uring shard: `sendmsg` submissions built in slots that stay put
//! until the kernel completes them. Datagrams of one loop turn that leave the same socket for the
//! same destination with the same size share one submission as UDP GSO segments (`UDP_SEGMENT`,
//! the last segment may be shorter); without GSO each datagram is its own submission.

use std::net::SocketAddr;

use socket2::SockAddr;

use super::super::gso::{self, GSO_MAX_BYTES, GSO_MAX_SEGMENT, MAX_SEGMENTS};
use crate::engine::batch::SCRATCH;
/// Open slots searched for one with the same socket and destination.
const LOOKBACK: usize = 8;

/// The socket a datagram leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sock {
    Listener(u32),
    Relay(u32),
}

/// A buffer a send keeps until it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// A provided receive buffer (headers written into its headroom).
    Buffer(u16),
    /// A copied response.
    Response(u16),
}

pub(crate) struct Slot {
    hdr: libc::msghdr,
    name: libc::sockaddr_storage,
    iov: [libc::iovec; MAX_SEGMENTS],
    control: [u64; 4],
    held: [Held; MAX_SEGMENTS],
    count: usize,
    seg: usize,
    bytes: usize,
    short: bool,
    pub(crate) sock: Sock,
    to: SocketAddr,
}

pub(crate) struct Sends {
    /// Created as the load asks for them, up to the capacity reserved at start: a slot never
    /// moves (the kernel reads its header, iovecs and address until the send completes), and
    /// an idle shard does not hold memory for the sends of its busiest moment.
    slots: Vec<Slot>,
    /// The capacity reserved for `slots`.
    limit: usize,
    free: Vec<u32>,
    /// Slots being filled this turn.
    open: Vec<u32>,
    /// Responses copied out of the shard's scratch buffer.
    responses: Box<[u8]>,
    free_responses: Vec<u16>,
    /// Free slots relayed data may not take: kept for responses. Under overload completions
    /// wait in the queue and data took every slot, so a Binding or Allocate answer found none and
    /// was dropped after the work of answering it.
    reserve: usize,
    pub(crate) gso: bool,
}

/// Why a datagram was not queued; the caller gives the buffer back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full;

impl Sends {
    pub(crate) fn new(slots: usize, responses: u16, gso: bool) -> Sends {
        Sends {
            slots: Vec::with_capacity(slots),
            limit: slots,
            free: Vec::with_capacity(slots),
            open: Vec::with_capacity(slots),
            responses: vec![0; usize::from(responses) * SCRATCH].into_boxed_slice(),
            free_responses: (0..responses).rev().collect(),
            reserve: slots / 16,
            gso,
        }
    }

    /// A free slot: a used one first (its memory is warm), else a new one while the reserved
    /// capacity lasts.
    fn take(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.slots.len() >= self.limit {
            return None;
        }
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let i = self.slots.len() as u32;
        // Within the capacity reserved in `new`: the push does not reallocate, so no slot moves.
        self.slots.push(Slot {
            // SAFETY: all-zero is a valid msghdr and sockaddr_storage (null pointers, lengths 0).
            hdr: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            name: unsafe { std::mem::zeroed() },
            iov: [empty; MAX_SEGMENTS],
            control: [0; 4],
            held: [Held::Buffer(0); MAX_SEGMENTS],
            count: 0,
            seg: 0,
            bytes: 0,
            short: false,
            sock: Sock::Listener(0),
            to: SocketAddr::from(([0, 0, 0, 0], 0)),
        });
        Some(i)
    }

    /// Slots free or not yet created.
    fn available(&self) -> usize {
        self.free.len() + self.limit.saturating_sub(self.slots.len())
    }

    /// Copies a response out of the scratch buffer, so the scratch can serve the next input.
    pub(crate) fn copy_response(&mut self, bytes: &[u8]) -> Option<(Held, *mut u8)> {
        if bytes.len() > SCRATCH {
            return None;
        }
        let i = self.free_responses.pop()?;
        let start = usize::from(i) * SCRATCH;
        let dst = self.responses.get_mut(start..start + bytes.len())?;
        dst.copy_from_slice(bytes);
        Some((Held::Response(i), dst.as_mut_ptr()))
    }

    /// Gives back a response buffer that was never queued.
    pub(crate) fn release_response(&mut self, held: Held) {
        if let Held::Response(r) = held {
            self.free_responses.push(r);
        }
    }

    /// Queues `len` bytes at `base` (kept alive by `held` until the send completes).
    pub(crate) fn push(
        &mut self,
        sock: Sock,
        to: SocketAddr,
        base: *mut u8,
        len: usize,
        held: Held,
    ) -> Result<(), Full> {
        let gso = self.gso && len <= GSO_MAX_SEGMENT;
        let joinable = |s: &Slot| {
            gso && s.sock == sock
                && s.to == to
                && s.count < MAX_SEGMENTS
                && !s.short
                && len <= s.seg
                && s.bytes + len <= GSO_MAX_BYTES
        };
        let found = self
            .open
            .iter()
            .rev()
            .take(LOOKBACK)
            .copied()
            .find(|&i| self.slots.get(i as usize).is_some_and(joinable));
        let i = match found {
            Some(i) => i,
            None => {
                if matches!(held, Held::Buffer(_)) && self.available() <= self.reserve {
                    return Err(Full);
                }
                let i = self.take().ok_or(Full)?;
                self.open.push(i);
                let s = self.slot(i).ok_or(Full)?;
                s.count = 0;
                s.seg = len;
                s.bytes = 0;
                s.short = false;
                s.sock = sock;
                s.to = to;
                i
            }
        };
        let s = self.slot(i).ok_or(Full)?;
        let k = s.count;
        s.iov[k] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        s.held[k] = held;
        s.count += 1;
        s.bytes += len;
        s.short = len < s.seg;
        Ok(())
    }

    fn slot(&mut self, i: u32) -> Option<&mut Slot> {
        self.slots.get_mut(i as usize)
    }

    /// Finishes the slots filled this turn: `(slot, socket, header)` for each submission.
    pub(crate) fn seal(&mut self, out: &mut Vec<(u32, Sock, *const libc::msghdr)>) {
        for &i in &self.open {
            let Some(s) = self.slots.get_mut(i as usize) else {
                continue;
            };
            let name = SockAddr::from(s.to);
            let n = (name.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
            // SAFETY: `name` holds `n` valid bytes; `s.name` has room for a sockaddr_storage.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    name.as_ptr().cast::<u8>(),
                    (&mut s.name as *mut libc::sockaddr_storage).cast::<u8>(),
                    n,
                );
            }
            s.hdr.msg_name = (&mut s.name as *mut libc::sockaddr_storage).cast();
            s.hdr.msg_namelen = n as libc::socklen_t;
            s.hdr.msg_iov = s.iov.as_mut_ptr();
            s.hdr.msg_iovlen = s.count;
            s.hdr.msg_flags = 0;
            if s.count > 1 {
                let len = gso::write_segment_cmsg(&mut s.control, s.seg as u16);
                s.hdr.msg_control = s.control.as_mut_ptr().cast();
                s.hdr.msg_controllen = len;
            } else {
                s.hdr.msg_control = std::ptr::null_mut();
                s.hdr.msg_controllen = 0;
            }
            out.push((i, s.sock, &s.hdr));
        }
        self.open.clear();
    }

    /// A send completed: the buffers it held, and how many datagrams it carried.
    pub(crate) fn complete(&mut self, i: u32, mut release: impl FnMut(Held)) -> usize {
        let Some(s) = self.slots.get_mut(i as usize) else {
            return 0;
        };
        let count = s.count;
        for &held in &s.held[..count] {
            match held {
                Held::Response(r) => self.free_responses.push(r),
                other => release(other),
            }
        }
        s.count = 0;
        self.free.push(i);
        count
    }

    /// The socket slot `i` sends from.
    pub(crate) fn sock(&self, i: u32) -> Option<Sock> {
        self.slots.get(i as usize).map(|s| s.sock)
    }

    /// Whether slot `i` was a GSO send (for turning GSO off when the kernel refuses it).
    pub(crate) fn is_gso(&self, i: u32) -> bool {
        self.slots.get(i as usize).is_some_and(|s| s.count > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(s: &mut Sends, sock: Sock, to: SocketAddr, len: usize, bid: u16) {
        s.push(sock, to, std::ptr::null_mut(), len, Held::Buffer(bid))
            .unwrap();
    }

    #[test]
    fn the_last_slots_are_kept_for_responses() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let mut s = Sends::new(32, 4, false);
        let mut queued = 0;
        while s
            .push(
                Sock::Relay(1),
                a,
                std::ptr::null_mut(),
                100,
                Held::Buffer(0),
            )
            .is_ok()
        {
            queued += 1;
        }
        assert_eq!(queued, 32 - 32 / 16);
        for _ in 0..32 / 16 {
            let (held, base) = s.copy_response(b"answer").unwrap();
            assert_eq!(s.push(Sock::Listener(0), a, base, 6, held), Ok(()));
        }
        let (held, base) = s.copy_response(b"answer").unwrap();
        assert_eq!(s.push(Sock::Listener(0), a, base, 6, held), Err(Full));
    }

    #[test]
    fn slots_are_made_as_sends_need_them_and_reused() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let mut s = Sends::new(32, 4, false);
        assert!(s.slots.is_empty(), "an idle shard holds no slot");
        for round in 0..3 {
            queue(&mut s, Sock::Relay(1), a, 100, round);
            let mut out = Vec::new();
            s.seal(&mut out);
            for (i, _, _) in out {
                s.complete(i, |_| {});
            }
        }
        assert_eq!(s.slots.len(), 1);
        assert_eq!(s.available(), 32);
    }

    #[test]
    fn equal_datagrams_to_one_destination_share_a_send() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let mut s = Sends::new(8, 2, true);
        queue(&mut s, Sock::Relay(1), a, 100, 0);
        queue(&mut s, Sock::Relay(1), b, 100, 1);
        queue(&mut s, Sock::Relay(1), a, 100, 2);
        // Shorter: closes the GSO train; the next datagram starts a new send.
        queue(&mut s, Sock::Relay(1), a, 60, 3);
        queue(&mut s, Sock::Relay(1), a, 100, 4);
        queue(&mut s, Sock::Listener(0), a, 100, 5);
        let mut out = Vec::new();
        s.seal(&mut out);
        assert_eq!(out.len(), 4);
        let mut released = Vec::new();
        let counts: Vec<usize> = out
            .iter()
            .map(|(i, _, _)| s.complete(*i, |h| released.push(h)))
            .collect();
        assert_eq!(counts, vec![3, 1, 1, 1]);
        assert_eq!(released.len(), 6);
    }

    #[test]
    fn without_gso_every_datagram_is_its_own_send_until_slots_run_out() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let mut s = Sends::new(2, 1, false);
        queue(&mut s, Sock::Relay(1), a, 100, 0);
        queue(&mut s, Sock::Relay(1), a, 100, 1);
        let third = s.push(Sock::Relay(1), a, std::ptr::null_mut(), 1, Held::Buffer(2));
        assert_eq!(third, Err(Full));
        let (held, _) = s.copy_response(b"abc").unwrap();
        assert_eq!(held, Held::Response(0));
        assert!(s.copy_response(b"x").is_none());
    }
}
