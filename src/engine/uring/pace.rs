//! How many completions an io_uring shard waits for, and how long (docs/architecture.md, "One
//! relayed packet": syscalls amortised over a batch; here never at the cost of a datagram's
//! latency). Two things decide it.
//!
//! The sends of a turn go to the kernel with the next wait, and a UDP send completes inside that
//! `io_uring_enter` (unless the socket's buffer is full): its completion is in the queue before
//! the wait starts, and `min_complete` counts every completion not yet consumed. A wait for one
//! completion would therefore return at once, and every datagram would cost a second, empty turn.
//! So the wait asks for the turn's sends on top of what it really waits for.
//!
//! It waits for more than one datagram only while the load makes that free: when the last turn,
//! woken by one, already found many receives waiting, the next few are due within a fraction of
//! the time the shard needs anyway, and a wake-up per batch costs far less than one per datagram.
//! When a batch does not fill before the window ends, the load is too low to pay for it and the
//! next wait is for one again: at moderate rates a datagram is handled as soon as it is there.

use std::time::Duration;

/// The most receives a wait asks for.
const BATCH: usize = 32;
/// A batch is this share of the receives the last turn found waiting, so it fills well before
/// the window ends as long as the rate holds.
const SPREAD: usize = 4;
/// The longest a wait for a batch lasts: the latency a batch may add to a datagram, and only
/// while the shard finds `SPREAD` times as many datagrams per turn waiting anyway.
const BATCH_WAIT: Duration = Duration::from_micros(200);
/// The longest wait that counts on the turn's sends completing inside it: a send the kernel
/// could not complete at once (a full socket buffer) completes later, and until then the wait
/// needs one completion more than it asked for.
const SEND_GRACE: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Send submissions queued since the last wait.
    fresh: usize,
    /// Send submissions whose completions have not been seen.
    unseen: usize,
    /// Receives the next wait asks for (at least 1).
    batch: usize,
    /// Receives the last wait asked for.
    asked: usize,
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
        let batch = self.batch.max(1);
        let (receives, wait) = if batch > 1 && until_timer > BATCH_WAIT {
            (batch, BATCH_WAIT)
        } else {
            (1, until_timer)
        };
        self.asked = receives;
        let wait = if queued > 0 {
            wait.min(SEND_GRACE)
        } else {
            wait
        };
        (queued + receives, wait)
    }

    /// A turn handled `received` receives after the wait.
    pub(crate) fn turn(&mut self, received: usize) {
        self.batch = if self.asked > 1 && received < self.asked {
            // The window ended before the batch filled: it cost latency and saved little.
            1
        } else {
            (received / SPREAD).clamp(1, BATCH)
        };
    }

    /// A turn that did not wait (the shard is behind): the next wait starts afresh.
    pub(crate) fn skipped(&mut self) {
        self.fresh = 0;
        self.asked = 0;
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
        p.turn(1);
        p.sends(3);
        // Three sends complete inside the wait; it returns with the next datagram, however long
        // that takes, bounded in case a send could not complete at once.
        assert_eq!(p.wait(LONG), (4, SEND_GRACE));
        for _ in 0..3 {
            p.send_done();
        }
        p.turn(1);
        assert_eq!(p.wait(LONG), (1, LONG));
    }

    #[test]
    fn sends_still_in_flight_are_not_counted_on() {
        let mut p = Pace::default();
        p.sends(2);
        assert_eq!(p.wait(LONG).0, 3);
        p.send_done();
        p.turn(1);
        // One send of the last turn has not completed: the socket is full.
        p.sends(2);
        assert_eq!(p.wait(LONG), (1, LONG));
    }

    #[test]
    fn moderate_rates_never_wait_for_a_batch() {
        let mut p = Pace::default();
        for received in [1, 2, 3, 7, 1, 5] {
            p.turn(received);
            assert_eq!(p.wait(LONG), (1, LONG));
        }
    }

    #[test]
    fn a_turn_that_found_many_waiting_batches_until_a_window_runs_dry() {
        let mut p = Pace::default();
        p.turn(100);
        assert_eq!(p.wait(LONG), (25, BATCH_WAIT));
        p.turn(400);
        assert_eq!(p.wait(LONG), (BATCH, BATCH_WAIT));
        // The window ended with fewer: back to one at once.
        p.turn(BATCH - 1);
        assert_eq!(p.wait(LONG), (1, LONG));
        // A batch is never waited for past the next timer.
        p.turn(100);
        assert_eq!(p.wait(BATCH_WAIT / 2), (1, BATCH_WAIT / 2));
    }
}
