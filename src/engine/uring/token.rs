//! `user_data` of the ring's submissions: what completed, packed in one `u64` (kind, a
//! generation that tells a closed relay socket from the one that reused its id, and an index).

const KIND_SHIFT: u32 = 56;
const GEN_SHIFT: u32 = 32;
/// Generations wrap at 24 bits; a stale completion would need 16M reuses of one id in flight.
pub(crate) const GEN_MASK: u32 = (1 << 24) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Multishot receive on a UDP listener, by listener index.
    Listener(u32),
    /// Multishot receive on a relay socket: (relay id, generation).
    Relay(u32, u32),
    /// A sendmsg, by send slot.
    Send(u32),
    /// A cancel request; its completion carries nothing to act on.
    Cancel,
    /// The multishot poll on the shard's eventfd: another thread woke the shard.
    Wake,
}

impl Op {
    pub(crate) fn encode(self) -> u64 {
        let (kind, gen, index) = match self {
            Op::Listener(i) => (1u64, 0, i),
            Op::Relay(id, gen) => (2, gen & GEN_MASK, id),
            Op::Send(slot) => (3, 0, slot),
            Op::Cancel => (4, 0, 0),
            Op::Wake => (5, 0, 0),
        };
        (kind << KIND_SHIFT) | (u64::from(gen) << GEN_SHIFT) | u64::from(index)
    }

    pub(crate) fn decode(data: u64) -> Option<Op> {
        let index = data as u32;
        let gen = ((data >> GEN_SHIFT) as u32) & GEN_MASK;
        match data >> KIND_SHIFT {
            1 => Some(Op::Listener(index)),
            2 => Some(Op::Relay(index, gen)),
            3 => Some(Op::Send(index)),
            4 => Some(Op::Cancel),
            5 => Some(Op::Wake),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Op, GEN_MASK};

    #[test]
    fn round_trips() {
        for op in [
            Op::Listener(3),
            Op::Relay(u32::MAX, GEN_MASK),
            Op::Relay(7, 1),
            Op::Send(1023),
            Op::Cancel,
            Op::Wake,
        ] {
            assert_eq!(Op::decode(op.encode()), Some(op));
        }
        assert_eq!(Op::decode(0), None);
    }
}
