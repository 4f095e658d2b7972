//! A hashed timer wheel with one-second ticks: allocation, permission and channel expiry
//! (RFC 8656 §7, §9, §11) as data, not one task per item.
//!
//! Entries are never removed early; their owner recognises a stale entry by its tick (see
//! `Shard::handle_timeout`). Deadlines are rounded up to the next tick, so an item expires at most
//! one second late, never early; the data path checks exact `Instant`s itself.

use std::time::{Duration, Instant};

const SLOTS: usize = 4096;
const TICK_MS: u128 = 1000;
/// How far before the first deadline tick 0 lies (longer than any relative deadline the core
/// sets before its first one fires).
const ORIGIN_LEAD: Duration = Duration::from_secs(3600);

pub(crate) struct Wheel<K> {
    /// Time of tick 0: up to an hour before the first deadline ever inserted, so that a later,
    /// shorter deadline (a 300 s permission after a 600 s allocation, a 30 s RFC 6062 bind
    /// deadline) gets its own tick instead of waiting for the first one.
    origin: Option<Instant>,
    slots: Box<[Vec<(u64, K)>]>,
    /// The next tick not yet processed.
    cursor: u64,
    len: usize,
    /// A lower bound of the earliest pending tick.
    earliest: Option<u64>,
}

impl<K: Copy> Wheel<K> {
    pub(crate) fn new() -> Self {
        Wheel {
            origin: None,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            len: 0,
            earliest: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn ticks_since(&self, origin: Instant, t: Instant) -> u128 {
        t.saturating_duration_since(origin).as_millis()
    }

    /// The tick an entry with `deadline` lands on (what `insert` returns).
    pub(crate) fn tick_of(&mut self, deadline: Instant) -> u64 {
        let origin = *self.origin.get_or_insert_with(|| origin_for(deadline));
        let ms = self.ticks_since(origin, deadline);
        let tick = u64::try_from(ms.div_ceil(TICK_MS)).unwrap_or(u64::MAX);
        tick.max(self.cursor)
    }

    /// Schedules `key` at `deadline`; returns the tick, which `expire` reports back.
    pub(crate) fn insert(&mut self, deadline: Instant, key: K) -> u64 {
        let tick = self.tick_of(deadline);
        if let Some(slot) = self.slots.get_mut(slot_index(tick)) {
            slot.push((tick, key));
            self.len += 1;
            self.earliest = Some(self.earliest.map_or(tick, |e| e.min(tick)));
        }
        tick
    }

    /// Moves every entry due at `now` into `out` as (tick, key).
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<(u64, K)>) {
        // Before the origin nothing is due (saturating to tick 0 would fire tick-0 entries early).
        let Some(origin) = self.origin.filter(|o| *o <= now) else {
            return;
        };
        let current = u64::try_from(self.ticks_since(origin, now) / TICK_MS).unwrap_or(u64::MAX);
        if current < self.cursor || self.earliest.is_none_or(|e| e > current) {
            return;
        }
        let steps = (current - self.cursor).saturating_add(1).min(SLOTS as u64);
        for step in 0..steps {
            let index = slot_index(self.cursor.wrapping_add(step));
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            let before = slot.len();
            let mut i = 0;
            while i < slot.len() {
                match slot.get(i) {
                    Some(&(tick, key)) if tick <= current => {
                        out.push((tick, key));
                        slot.swap_remove(i);
                    }
                    _ => i += 1,
                }
            }
            self.len -= before - slot.len();
        }
        self.cursor = current.saturating_add(1);
        self.earliest = self.scan();
    }

    fn scan(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        (0..SLOTS as u64)
            .map(|step| self.cursor.wrapping_add(step))
            .find(|&tick| {
                self.slots
                    .get(slot_index(tick))
                    .is_some_and(|s| !s.is_empty())
            })
    }

    /// When `expire` next has something to do (possibly a little early, never late).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let origin = self.origin?;
        let tick = self.earliest?;
        let ms = u64::try_from(u128::from(tick) * TICK_MS).unwrap_or(u64::MAX);
        origin.checked_add(Duration::from_millis(ms))
    }
}

/// Tick 0 for a wheel whose first deadline is `deadline`: an hour earlier, or as much earlier as
/// the monotonic clock allows (it may start at boot).
fn origin_for(deadline: Instant) -> Instant {
    let mut back = ORIGIN_LEAD;
    while !back.is_zero() {
        if let Some(origin) = deadline.checked_sub(back) {
            return origin;
        }
        back /= 2;
    }
    deadline
}

fn slot_index(tick: u64) -> usize {
    (tick % SLOTS as u64) as usize
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let t0 = Instant::now();
        let mut w = Wheel::new();
        w.insert(t0, 0u32);
        let mut out = Vec::new();
        w.expire(t0, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        w.insert(t0 + secs(300), 1);
        w.insert(t0 + secs(600), 2);
        assert_eq!(w.next_deadline(), Some(t0 + secs(300)));
        w.expire(t0 + secs(299), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + secs(300), &mut out);
        assert_eq!(out.iter().map(|e| e.1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(w.next_deadline(), Some(t0 + secs(600)));
        out.clear();
        w.expire(t0 + secs(10_000), &mut out);
        assert_eq!(out.iter().map(|e| e.1).collect::<Vec<_>>(), vec![2]);
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn deadlines_beyond_one_revolution_wait_their_round() {
        let t0 = Instant::now();
        let mut w = Wheel::new();
        w.insert(t0, 0u32);
        w.insert(t0 + secs(5000), 7);
        let mut out = Vec::new();
        w.expire(t0 + secs(5000 - SLOTS as u64), &mut out);
        assert_eq!(out.iter().map(|e| e.1).collect::<Vec<_>>(), vec![0]);
        out.clear();
        w.expire(t0 + secs(4999), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + secs(5000), &mut out);
        assert_eq!(out.iter().map(|e| e.1).collect::<Vec<_>>(), vec![7]);
    }

    #[test]
    fn an_earlier_deadline_inserted_later_fires_on_time() {
        let t0 = Instant::now();
        let mut w = Wheel::new();
        w.insert(t0 + secs(600), 1u32);
        w.insert(t0 + secs(30), 2);
        let mut out = Vec::new();
        w.expire(t0 + secs(29), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + secs(31), &mut out);
        assert_eq!(out.iter().map(|e| e.1).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn nothing_fires_before_the_origin() {
        let t0 = Instant::now();
        let mut w = Wheel::new();
        w.insert(t0 + secs(30), 1u32);
        let mut out = Vec::new();
        w.expire(t0 + secs(29), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + secs(30), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn rounds_up_to_the_next_tick() {
        let t0 = Instant::now();
        let mut w = Wheel::new();
        let first = w.insert(t0, 0u32);
        let tick = w.insert(t0 + Duration::from_millis(1500), 1);
        assert_eq!(tick - first, 2);
        let mut out = Vec::new();
        w.expire(t0 + Duration::from_millis(1999), &mut out);
        assert_eq!(out.len(), 1);
        w.expire(t0 + secs(2), &mut out);
        assert_eq!(out.len(), 2);
    }
}
