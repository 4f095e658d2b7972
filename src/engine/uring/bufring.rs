//! The provided-buffer ring of one io_uring shard: buffers the kernel fills on multishot
//! `recvmsg`, each with `turn::HEADROOM` bytes in front of the payload and tailroom behind it.
//!
//! With a provided buffer the kernel writes from the buffer's start: an `io_uring_recvmsg_out`
//! header (16 bytes), the source address (a fixed `sockaddr_in6` field), then the payload. Once
//! the address is read, those bytes are free, so they serve as the core's headroom; `PAD` spare
//! bytes before each buffer make up the rest. So the core sees one slice per buffer:
//! `[PAD][header][name][payload ...][TAILROOM]`, payload at offset `HEADROOM`.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use crate::engine::batch::TAILROOM;
use crate::turn::HEADROOM;

/// Bytes of one buffer, including headroom and tailroom (a page: aligned, and a 1500-byte MTU
/// datagram fits with room for a Send indication's headers).
pub(crate) const STRIDE: usize = 4096;
/// `io_uring_recvmsg_out`.
pub(crate) const OUT_HEADER: usize = 16;
/// The name field reserved for the source address (large enough for IPv6).
pub(crate) const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();
/// Spare bytes before the kernel's part of each buffer, so that the payload starts at HEADROOM.
pub(crate) const PAD: usize = HEADROOM.saturating_sub(OUT_HEADER + NAME_LEN);
/// Bytes handed to the kernel per buffer.
const KERNEL_LEN: usize = STRIDE - PAD - TAILROOM;
/// The largest payload that fits (a longer datagram arrives truncated and is dropped): 3,984
/// bytes, above any path MTU TURN meets on the Internet.
pub(crate) const MAX_PAYLOAD: usize = KERNEL_LEN - OUT_HEADER - NAME_LEN;
// The payload lands exactly at HEADROOM, with the tailroom the core's contract asks for behind
// the largest one, and a full-MTU datagram with Send indication headers fits.
const _: () = assert!(PAD + OUT_HEADER + NAME_LEN == HEADROOM);
const _: () = assert!(HEADROOM + MAX_PAYLOAD + TAILROOM == STRIDE);
const _: () = assert!(MAX_PAYLOAD >= 1500 + 36);
/// Buffers a ring starts with. The kernel takes buffers in the order they were given back, so
/// every buffer in the ring is written to within one round and stays in RSS: a ring holds only as
/// many as its load needs, and grows (`publish`) when the kernel is about to run short.
const INITIAL: u16 = 64;

/// An anonymous mapping; `populate`: faulted in at once, so the kernel never faults while it
/// writes the ring's entries.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize, populate: bool) -> io::Result<Mapping> {
        let populate = if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: a fresh private anonymous mapping; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `Mapping::new` with this length.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

pub(crate) struct BufRing {
    /// The ring entries shared with the kernel (page-aligned, as the kernel requires).
    entries: Mapping,
    /// Room for `count` buffers; only the first `active` are in use (and in RSS).
    buffers: Mapping,
    count: u16,
    active: u16,
    tail: u16,
    /// Buffers the kernel filled (completions seen): `tail - taken` are left to it.
    taken: u16,
    group: u16,
    /// The id of the first buffer: ids are `first..first + count`, unique across a shard's pools.
    first: u16,
}

impl BufRing {
    /// Registers room for `count` (a power of two) buffers, ids from `first`, as buffer group
    /// `group`, and hands the kernel the first few.
    pub(crate) fn new(ring: &IoUring, count: u16, group: u16, first: u16) -> io::Result<BufRing> {
        if !count.is_power_of_two() || first.checked_add(count).is_none() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let entries = Mapping::new(
            usize::from(count) * std::mem::size_of::<BufRingEntry>(),
            true,
        )?;
        let buffers = Mapping::new(usize::from(count) * STRIDE, false)?;
        let mut r = BufRing {
            entries,
            buffers,
            count,
            active: 0,
            tail: 0,
            taken: 0,
            group,
            first,
        };
        // SAFETY: the entry array lives as long as `r`; `BufRing` is dropped only after the
        // buffer group is unregistered (`unregister`) or the ring is gone.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                r.entries.ptr.as_ptr() as u64,
                count,
                group,
                0,
            )?;
        }
        r.grow(INITIAL.min(count));
        r.publish();
        Ok(r)
    }

    /// Puts `more` buffers into use, faulted in here rather than while the kernel writes them.
    fn grow(&mut self, more: u16) {
        let more = more.min(self.count - self.active);
        let start = self.first + self.active;
        self.active += more;
        for bid in start..start + more {
            if let Some(b) = self.buffer(bid) {
                b[0] = 0;
            }
            self.recycle(bid);
        }
    }

    /// Whether the kernel holds less than a quarter of the buffers in use, and more may be used.
    fn running_short(&self) -> bool {
        self.tail.wrapping_sub(self.taken) < self.active / 4 && self.active < self.count
    }

    /// The kernel filled buffer `bid` of this ring.
    fn take(&mut self) {
        self.taken = self.taken.wrapping_add(1);
    }

    pub(crate) fn group(&self) -> u16 {
        self.group
    }

    /// Whether buffer `bid` belongs to this ring (and is in use).
    fn owns(&self, bid: u16) -> bool {
        bid.wrapping_sub(self.first) < self.active
    }

    /// The whole buffer `bid` (headroom, kernel part, tailroom), or None for an unknown id.
    pub(crate) fn buffer(&mut self, bid: u16) -> Option<&mut [u8]> {
        if !self.owns(bid) {
            return None;
        }
        let index = usize::from(bid - self.first);
        // SAFETY: `index < count`, so the range lies inside the buffer mapping; the kernel does
        // not write to a buffer between handing it out and getting it back through `recycle`.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.buffers.ptr.as_ptr().add(index * STRIDE), STRIDE)
        })
    }

    /// The address of byte `offset` of buffer `bid` (for send iovecs).
    pub(crate) fn addr(&self, bid: u16, offset: usize) -> *mut u8 {
        let index = bid.wrapping_sub(self.first).min(self.count - 1);
        let at = (usize::from(index) * STRIDE) + offset.min(STRIDE);
        // SAFETY: `at` is at most the mapping's length.
        unsafe { self.buffers.ptr.as_ptr().add(at) }
    }

    /// Hands buffer `bid` back to the kernel (visible after `publish`).
    pub(crate) fn recycle(&mut self, bid: u16) {
        if !self.owns(bid) {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index < count`; the entry array has `count` entries. The kernel only reads
        // entries between its head and the published tail, and this one is past the tail.
        unsafe {
            let entry = &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(index);
            entry.set_addr(self.addr(bid, PAD) as u64);
            entry.set_len(KERNEL_LEN as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel, first doubling the buffers in use when it
    /// has less than a quarter of them left (it ran dry or came close this turn: a multishot
    /// receive that finds none ends, and its socket waits until it is armed again).
    pub(crate) fn publish(&mut self) {
        if self.running_short() {
            self.grow(self.active);
        }
        // SAFETY: the tail field of the ring shares the first entry's reserved field; the kernel
        // reads it with acquire ordering.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.ptr.as_ptr().cast()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

/// A shard's receive buffers in two pools: listeners (clients' requests and data) and relay
/// sockets (peers' data) draw from separate groups. With one pool, a flood of peer traffic took
/// every buffer under overload; each listener's multishot receive then ended with ENOBUFS as soon
/// as it was re-armed, and clients (and their Allocate and Binding requests) hashed to that shard
/// went unheard for seconds while relays were served.
pub(crate) struct Pools {
    clients: BufRing,
    peers: BufRing,
}

impl Pools {
    /// `clients` and `peers` buffers (powers of two), as buffer groups `group` and `group + 1`.
    pub(crate) fn new(ring: &IoUring, clients: u16, peers: u16, group: u16) -> io::Result<Pools> {
        let clients_ring = BufRing::new(ring, clients, group, 0)?;
        let peers_ring = match BufRing::new(ring, peers, group.wrapping_add(1), clients) {
            Ok(r) => r,
            Err(e) => {
                let _ = ring.submitter().unregister_buf_ring(group);
                return Err(e);
            }
        };
        Ok(Pools {
            clients: clients_ring,
            peers: peers_ring,
        })
    }

    /// The buffer group a listener (`true`) or a relay socket (`false`) receives into.
    pub(crate) fn group(&self, listener: bool) -> u16 {
        if listener {
            self.clients.group
        } else {
            self.peers.group
        }
    }

    pub(crate) fn groups(&self) -> [u16; 2] {
        [self.clients.group, self.peers.group]
    }

    /// A completion carried buffer `bid`.
    pub(crate) fn taken(&mut self, bid: u16) {
        self.of_mut(bid).take();
    }

    fn of(&self, bid: u16) -> &BufRing {
        if self.clients.owns(bid) {
            &self.clients
        } else {
            &self.peers
        }
    }

    fn of_mut(&mut self, bid: u16) -> &mut BufRing {
        if self.clients.owns(bid) {
            &mut self.clients
        } else {
            &mut self.peers
        }
    }

    pub(crate) fn buffer(&mut self, bid: u16) -> Option<&mut [u8]> {
        self.of_mut(bid).buffer(bid)
    }

    pub(crate) fn addr(&self, bid: u16, offset: usize) -> *mut u8 {
        self.of(bid).addr(bid, offset)
    }

    pub(crate) fn recycle(&mut self, bid: u16) {
        self.of_mut(bid).recycle(bid);
    }

    pub(crate) fn publish(&mut self) {
        self.clients.publish();
        self.peers.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers the kernel holds (published and not yet filled).
    fn in_kernel(r: &BufRing) -> u16 {
        r.tail.wrapping_sub(r.taken)
    }

    #[test]
    fn a_ring_starts_small_and_doubles_when_the_kernel_runs_short() {
        let ring = IoUring::new(8).unwrap();
        let mut r = BufRing::new(&ring, 256, 0, 100).unwrap();
        assert_eq!((r.active, in_kernel(&r)), (INITIAL, INITIAL));
        // Buffers beyond those in use are not handed out, nor taken back.
        assert!(r.buffer(100 + INITIAL).is_none());
        // The kernel fills three quarters and a send holds them: it has a quarter left.
        for _ in 0..INITIAL / 4 * 3 {
            r.take();
        }
        r.publish();
        assert_eq!(r.active, INITIAL, "a quarter left is enough");
        r.take();
        r.publish();
        assert_eq!(r.active, 2 * INITIAL);
        assert_eq!(in_kernel(&r), INITIAL / 4 - 1 + INITIAL);
        assert!(r.buffer(100 + INITIAL).is_some());
        // Every buffer taken and given back: the ring does not grow again.
        for bid in 100..100 + INITIAL / 4 * 3 + 1 {
            r.recycle(bid);
        }
        r.publish();
        assert_eq!((r.active, in_kernel(&r)), (2 * INITIAL, 2 * INITIAL));
        // It never grows past its room.
        for _ in 0..4 {
            for _ in 0..in_kernel(&r) {
                r.take();
            }
            r.publish();
        }
        assert_eq!(r.active, 256);
        let _ = ring.submitter().unregister_buf_ring(0);
    }
}
