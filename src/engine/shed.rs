//! Load shedding on a shard that falls behind (docs/architecture.md, "Errors and safety"; RFC 8656
//! §7 and §12 put requests and relayed data on the same 5-tuple). Binding, Allocate and Refresh
//! share the listener sockets with clients' ChannelData and Send indications, so under overload
//! the kernel drops them at the same rate as data, and a client retrying its Allocate waits for
//! seconds. A shard that falls behind therefore relays at most a budget of client data per turn
//! and drops the rest unprocessed (counted as `overload`); requests are always served. Reading
//! and dropping a datagram costs a fraction of relaying it, so a shard that relays less reads
//! more, and once it reads everything the kernel stops dropping requests.
//!
//! Two signals say the shard is behind. Input left waiting at the end of a turn caps the turn's
//! relaying at `BEHIND_BUDGET`. The kernel's own count of datagrams dropped at the listeners
//! (their receive queues were full: the shard did not read fast enough) drives a budget that
//! halves at every check that finds new drops and grows by an eighth at every check that finds
//! none, until it is large enough to lift: the shard settles on the most it can relay while still
//! reading all of its input, whatever the packet sizes, the CPU and the share of work the kernel
//! does for it.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::sockets::kernel_drops;

/// Client data datagrams relayed per turn while input is left waiting; the rest are shed.
const BEHIND_BUDGET: usize = 256;
/// The smallest budget the kernel's drops can bring it to: relaying never stops altogether.
const MIN_BUDGET: usize = 8;
/// A budget that has grown past this without new drops is lifted.
const MAX_BUDGET: usize = 4096;
/// How often the listeners' drop counters are read (one `getsockopt` per listener).
const CHECK_EVERY: Duration = Duration::from_millis(1);

/// One shard's shedding state.
#[derive(Default)]
pub(crate) struct Shed {
    /// The previous turn left input waiting.
    waiting: bool,
    relayed: usize,
    /// Client data relayed per turn while the kernel drops at the listeners (None: it does not).
    budget: Option<usize>,
    /// The listeners' drop counters at the last check (they start at zero with the sockets),
    /// and when the next check is due.
    drops: u64,
    next_check: Option<Instant>,
}

impl Shed {
    /// Starts a turn at `now`; `waiting`: the previous turn left input waiting. When a check is
    /// due, reads the drop counters of the shard's UDP listeners `fds` and adjusts the budget.
    /// Returns how many datagrams the kernel dropped at them since the last check.
    #[must_use]
    pub(crate) fn turn(
        &mut self,
        waiting: bool,
        now: Instant,
        fds: impl Iterator<Item = RawFd>,
    ) -> u64 {
        let mut dropped = 0;
        if self.next_check.is_none_or(|at| now >= at) {
            self.next_check = Some(now + CHECK_EVERY);
            let total: u64 = fds.filter_map(kernel_drops).map(u64::from).sum();
            // The kernel's counters are 32 bits and may wrap: a wrap goes uncounted.
            dropped = total.saturating_sub(std::mem::replace(&mut self.drops, total));
            self.observe(dropped > 0);
        }
        self.start(waiting);
        dropped
    }

    fn start(&mut self, waiting: bool) {
        self.waiting = waiting;
        self.relayed = 0;
    }

    /// Whether the shard is behind: it left input waiting, or the kernel drops at its listeners.
    pub(crate) fn behind(&self) -> bool {
        self.waiting || self.budget.is_some()
    }

    /// One check of the listeners, before the next turn starts: `dropped`, the kernel dropped
    /// datagrams since the last one.
    fn observe(&mut self, dropped: bool) {
        self.budget = match (self.budget, dropped) {
            // Half of what the last turn relayed: the rate at which the kernel started dropping.
            (None, true) => Some((self.relayed / 2).max(MIN_BUDGET)),
            (Some(b), true) => Some((b / 2).max(MIN_BUDGET)),
            (Some(b), false) => Some(b + b / 8 + 1).filter(|&b| b <= MAX_BUDGET),
            (None, false) => None,
        };
    }

    /// Whether to drop the client datagram `payload` unprocessed.
    pub(crate) fn sheds(&mut self, payload: &[u8]) -> bool {
        if !is_relayed_data(payload) {
            return false;
        }
        let budget = self.budget.unwrap_or(usize::MAX);
        let budget = if self.waiting {
            budget.min(BEHIND_BUDGET)
        } else {
            budget
        };
        if self.relayed >= budget {
            return true;
        }
        self.relayed += 1;
        false
    }
}

/// ChannelData (first two bits 01, RFC 8656 §12.4) or a Send indication (STUN type 0x0016).
fn is_relayed_data(payload: &[u8]) -> bool {
    match payload {
        [b, ..] if b & 0xC0 == 0x40 => true,
        [0x00, 0x16, ..] => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL_DATA: &[u8] = b"\x40\x00\x00\x04ping";
    const SEND: &[u8] = b"\x00\x16\x00\x00\x21\x12\xa4\x42";
    const ALLOCATE: &[u8] = b"\x00\x03\x00\x00\x21\x12\xa4\x42";
    const BINDING: &[u8] = b"\x00\x01\x00\x00\x21\x12\xa4\x42";

    /// How many of `n` ChannelData datagrams one turn relays.
    fn relays(s: &mut Shed, waiting: bool, n: usize) -> usize {
        s.start(waiting);
        (0..n).filter(|_| !s.sheds(CHANNEL_DATA)).count()
    }

    #[test]
    fn nothing_is_shed_while_the_shard_keeps_up() {
        let mut s = Shed::default();
        s.start(false);
        for _ in 0..10 * BEHIND_BUDGET {
            assert!(!s.sheds(CHANNEL_DATA));
            assert!(!s.sheds(SEND));
        }
        s.observe(false);
        assert!(!s.behind());
        assert_eq!(relays(&mut s, false, 10_000), 10_000);
    }

    #[test]
    fn behind_data_over_the_budget_is_shed_and_requests_never() {
        let mut s = Shed::default();
        s.start(true);
        for _ in 0..BEHIND_BUDGET {
            assert!(!s.sheds(CHANNEL_DATA));
        }
        assert!(s.sheds(CHANNEL_DATA));
        assert!(s.sheds(SEND));
        assert!(!s.sheds(ALLOCATE));
        assert!(!s.sheds(BINDING));
        assert!(!s.sheds(b""));
        // A new turn that is not behind relays again.
        s.start(false);
        assert!(!s.sheds(CHANNEL_DATA));
    }

    #[test]
    fn kernel_drops_halve_the_budget_and_quiet_checks_lift_it() {
        let mut s = Shed::default();
        assert_eq!(relays(&mut s, false, 1000), 1000);
        // The kernel dropped at the listeners: half of the last turn's relaying.
        s.observe(true);
        assert!(s.behind());
        assert_eq!(relays(&mut s, false, 1000), 500);
        s.observe(true);
        assert_eq!(relays(&mut s, false, 1000), 250);
        // Requests are still never shed.
        assert!(!s.sheds(ALLOCATE));
        // Input left waiting caps a turn at BEHIND_BUDGET even when the budget is larger.
        for _ in 0..20 {
            s.observe(false);
        }
        assert!(relays(&mut s, false, 10_000) > BEHIND_BUDGET);
        assert_eq!(relays(&mut s, true, 10_000), BEHIND_BUDGET);
        // Quiet checks grow the budget until it is lifted.
        s.start(false);
        let mut checks = 0;
        while s.behind() {
            s.observe(false);
            checks += 1;
            assert!(checks < 100, "the budget was never lifted");
        }
        assert_eq!(relays(&mut s, false, 100_000), 100_000);
    }

    #[test]
    fn a_turn_reads_the_kernels_drops_on_real_listeners() {
        use std::net::UdpSocket;
        use std::os::fd::AsRawFd;
        let rx = crate::engine::sockets::udp_listener(
            "127.0.0.1:0".parse().unwrap(),
            crate::engine::sockets::Group::Open,
        )
        .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let fds = || std::iter::once(rx.as_raw_fd());
        let mut s = Shed::default();
        let t0 = crate::engine::clock::now().0;
        // A fresh socket has dropped nothing.
        assert_eq!(s.turn(false, t0, fds()), 0);
        assert_eq!(relays(&mut s, false, 1000), 1000);
        for _ in 0..20_000 {
            let _ = tx.send_to(&[0; 1000], to);
        }
        // Not yet due: nothing is read.
        assert_eq!(s.turn(false, t0 + CHECK_EVERY / 2, fds()), 0);
        assert!(!s.behind());
        assert_eq!(relays(&mut s, false, 1000), 1000);
        let dropped = s.turn(false, t0 + CHECK_EVERY, fds());
        assert!(dropped > 0);
        assert_eq!(
            Some(dropped),
            crate::engine::sockets::kernel_drops(rx.as_raw_fd()).map(u64::from)
        );
        assert!(s.behind());
        assert_eq!(relays(&mut s, false, 1000), 500);
        // The queue is read and nothing more is dropped: the budget grows back and is lifted.
        let mut buf = [0; 1500];
        rx.set_nonblocking(true).unwrap();
        while rx.recv(&mut buf).is_ok() {}
        let mut at = t0 + CHECK_EVERY;
        while s.behind() {
            at += CHECK_EVERY;
            assert_eq!(s.turn(false, at, fds()), 0);
            assert!(at < t0 + 100 * CHECK_EVERY, "the budget was never lifted");
        }
    }

    #[test]
    fn the_budget_never_falls_below_its_floor() {
        let mut s = Shed::default();
        relays(&mut s, false, 0);
        for _ in 0..100 {
            s.observe(true);
        }
        assert_eq!(relays(&mut s, false, 1000), MIN_BUDGET);
    }
}
