//! Poll tokens: which kind of source woke the shard, and its index, packed in one `usize`.

use mio::Token;

const SHIFT: u32 = 28;
/// Ids of relay sockets and stream connections stay below this, so they fit next to the kind.
pub(crate) const MAX_ID: usize = (1 << SHIFT) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Waker,
    /// A UDP listener socket, by listener index.
    Udp(usize),
    /// A TCP listening socket, by listener index.
    TcpListener(usize),
    /// An accepted stream connection, by stream id.
    Stream(usize),
    /// A relay socket, by relay id.
    Relay(usize),
    /// A listening TCP relay socket (RFC 6062), by its index.
    TcpRelay(usize),
    /// A TCP connection to or from a peer (RFC 6062), by its index.
    Peer(usize),
}

impl Source {
    pub(crate) fn token(self) -> Token {
        let (kind, index) = match self {
            Source::Waker => (0, 0),
            Source::Udp(i) => (1, i),
            Source::TcpListener(i) => (2, i),
            Source::Stream(i) => (3, i),
            Source::Relay(i) => (4, i),
            Source::TcpRelay(i) => (5, i),
            Source::Peer(i) => (6, i),
        };
        Token((kind << SHIFT) | (index & MAX_ID))
    }

    pub(crate) fn from_token(token: Token) -> Option<Source> {
        let index = token.0 & MAX_ID;
        match token.0 >> SHIFT {
            0 => Some(Source::Waker),
            1 => Some(Source::Udp(index)),
            2 => Some(Source::TcpListener(index)),
            3 => Some(Source::Stream(index)),
            4 => Some(Source::Relay(index)),
            5 => Some(Source::TcpRelay(index)),
            6 => Some(Source::Peer(index)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Source, MAX_ID};

    #[test]
    fn round_trips() {
        for s in [
            Source::Waker,
            Source::Udp(3),
            Source::TcpListener(0),
            Source::Stream(MAX_ID),
            Source::Relay(12345),
            Source::TcpRelay(7),
            Source::Peer(MAX_ID),
        ] {
            assert_eq!(Source::from_token(s.token()), Some(s));
        }
    }
}
