//! Load shedding on a shard that falls behind (design.md: loss rather than latency; RFC 8656
//! §7 and §12 put requests and relayed data on the same 5-tuple). Binding, Allocate and Refresh
//! share the listener sockets with clients' ChannelData and Send indications, so under overload
//! the kernel drops them at the same rate as data, and a client retrying its Allocate waits for
//! seconds. While input is waiting, a shard relays at most a budget of client data per turn and
//! drops the rest unprocessed (counted as `overload`); requests are always served. Reading and
//! dropping a datagram costs a fraction of relaying it, so a shard at twice its capacity keeps
//! its listeners empty and the kernel stops dropping requests.

/// Client data datagrams relayed per turn while the shard is behind; the rest are shed.
pub(crate) const BEHIND_BUDGET: usize = 256;

/// One shard's shedding state, reset every loop turn.
#[derive(Default)]
pub(crate) struct Shed {
    behind: bool,
    relayed: usize,
}

impl Shed {
    /// Starts a turn; `behind`: the previous turn left input waiting.
    pub(crate) fn turn(&mut self, behind: bool) {
        self.behind = behind;
        self.relayed = 0;
    }

    pub(crate) fn behind(&self) -> bool {
        self.behind
    }

    /// Whether to drop the client datagram `payload` unprocessed.
    pub(crate) fn sheds(&mut self, payload: &[u8]) -> bool {
        if !is_relayed_data(payload) {
            return false;
        }
        if self.behind && self.relayed >= BEHIND_BUDGET {
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

    #[test]
    fn nothing_is_shed_while_the_shard_keeps_up() {
        let mut s = Shed::default();
        s.turn(false);
        for _ in 0..10 * BEHIND_BUDGET {
            assert!(!s.sheds(CHANNEL_DATA));
            assert!(!s.sheds(SEND));
        }
    }

    #[test]
    fn behind_data_over_the_budget_is_shed_and_requests_never() {
        let mut s = Shed::default();
        s.turn(true);
        for _ in 0..BEHIND_BUDGET {
            assert!(!s.sheds(CHANNEL_DATA));
        }
        assert!(s.sheds(CHANNEL_DATA));
        assert!(s.sheds(SEND));
        assert!(!s.sheds(ALLOCATE));
        assert!(!s.sheds(BINDING));
        assert!(!s.sheds(b""));
        // A new turn that is not behind relays again.
        s.turn(false);
        assert!(!s.sheds(CHANNEL_DATA));
    }
}
