//! How another thread wakes a ring shard: an eventfd the ring watches with a multishot poll.
//! The user database resolver writes it when an answer that a parked request waits for is in
//! (the portable shards get the same from their `mio::Waker`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

pub(crate) struct Waker {
    eventfd: File,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        // Non-blocking: a reader finding the counter at 0 (woken for a wake it already cleared)
        // must not stall the shard.
        // SAFETY: eventfd(2) takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor eventfd(2) has just opened, owned by nothing else.
        let eventfd = unsafe { File::from_raw_fd(fd) };
        Ok(Waker { eventfd })
    }

    /// Makes the eventfd readable, which completes the ring's poll. A failed write leaves the
    /// counter non-zero (EAGAIN: it is full), so the wake is never lost.
    pub(crate) fn wake(&self) {
        let _ = (&self.eventfd).write(&1u64.to_ne_bytes());
    }

    /// Resets the counter once the shard has seen the wake: a later wake is a new event.
    pub(crate) fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = (&self.eventfd).read(&mut count);
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }
}
