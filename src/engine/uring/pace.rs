//! How many completions an io_uring shard waits for, and how long (docs/architecture.md, "One
//! relayed packet": syscalls amortised over a batch; here never at the cost of a datagram's
//! latency).
//!
//! The sends of a turn go to the kernel with the next wait, and a UDP send completes inside that
//! `io_uring_enter` (unless the socket's buffer is full): its completion is in the queue before
//! the wait starts, and `min_complete` counts every completion not yet consumed. A wait for one
//! completion would therefore return at once, and every datagram would cost a second, empty turn.
//! So the wait asks for the turn's sends on top of the one receive it really waits for, and
//! returns as soon as the next datagram is there.
//!
//! It never waits for more than one datagram. An earlier version asked for a batch (a quarter of
//! the receives the last turn found waiting, for at most 200 us) after a turn that found 8 or
//! more: it saved about 5% of the CPU per packet in a closed loop, but at 20k packets/s it held
//! the datagrams caught in a window and doubled the round trip's p99 (BENCHMARKS.md,
//! "Latency-aware io_uring"). Real calls never run closed-loop. Under load the turns batch by
//! themselves: a turn handles every completion that arrived while the last one ran.

use std::time::Duration;

/// The longest wait that counts on the turn's sends completing inside it: a send the kernel
/// could not complete at once (a full socket buffer) completes later, when the buffer drains, and
/// until then the wait needs one completion more than it asked for.
///
/// A wait after a turn that sent arms a timer of this length, and a datagram nearly always ends
/// the wait first. With 1 ms the engine spent 10-15% more CPU per packet at 20k packets/s than
/// with 20 ms, for the same number of timers armed and cancelled (BENCHMARKS.md, "Latency-aware
/// io_uring"). The likely reason: a timer due before the CPU's next scheduler tick (4 ms at
/// 250 Hz, 10 ms at 100 Hz) is the earliest on a busy CPU, so the kernel reprograms the CPU's
/// timer device to arm it, which in a virtual machine is a trap to the hypervisor. A datagram
/// that arrives while a send is late waits until that send completes (a socket buffer drains as
/// the interface transmits), at most this long.
const SEND_GRACE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Send submissions queued since the last wait.
    fresh: usize,
    /// Send submissions whose completions have not been seen.
    unseen: usize,
}

impl Pace {
    /// `n` send submissions were queued.
    pub(crate) fn sends(&mut self, n: usize) {
        self.fresh += n;
        self.unseen += n;
    }

    /// A send's completion was seen.
    pub(crate) fn send_done(&mut self) {
        self.unseen = self.unseen.saturating_sub(1);
    }

    /// The next wait: how many completions (counting those already queued) and how long, given
    /// the time until the shard's next timer.
    pub(crate) fn wait(&mut self, until_timer: Duration) -> (usize, Duration) {
        // Sends from earlier turns still in flight: sockets are full and this turn's sends may
        // not complete inside the wait either, so none is counted on.
        let queued = if self.unseen > self.fresh {
            0
        } else {
            self.fresh
        };
        self.fresh = 0;
        if queued > 0 {
            (queued + 1, until_timer.min(SEND_GRACE))
        } else {
            (1, until_timer)
        }
    }

    /// A turn that did not wait (the shard is behind): its sends went without a wait.
    pub(crate) fn skipped(&mut self) {
        self.fresh = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(100);

    #[test]
    fn the_turns_own_sends_do_not_end_the_wait() {
        let mut p = Pace::default();
        assert_eq!(p.wait(LONG), (1, LONG));
        p.sends(3);
        // Three sends complete inside the wait; it returns with the next datagram, however long
        // that takes, bounded in case a send could not complete at once.
        assert_eq!(p.wait(LONG), (4, SEND_GRACE));
        for _ in 0..3 {
            p.send_done();
        }
        assert_eq!(p.wait(LONG), (1, LONG));
    }

    #[test]
    fn sends_still_in_flight_are_not_counted_on() {
        let mut p = Pace::default();
        p.sends(2);
        assert_eq!(p.wait(LONG).0, 3);
        p.send_done();
        // One send of the last turn has not completed: the socket is full.
        p.sends(2);
        assert_eq!(p.wait(LONG), (1, LONG));
    }

    #[test]
    fn a_skipped_wait_forgets_the_sends_it_submitted() {
        let mut p = Pace::default();
        p.sends(2);
        p.skipped();
        for _ in 0..2 {
            p.send_done();
        }
        assert_eq!(p.wait(LONG), (1, LONG));
    }

    #[test]
    fn a_wait_is_for_one_datagram_and_never_past_the_next_timer() {
        let mut p = Pace::default();
        let soon = Duration::from_micros(150);
        assert_eq!(p.wait(soon), (1, soon));
        p.sends(1);
        assert_eq!(p.wait(soon), (2, soon));
    }
}
