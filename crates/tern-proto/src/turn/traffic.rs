//! The per-allocation counters the core keeps and the server's metrics read: coturn's
//! `turn_traffic_*` in coturn's directions.

/// Packets and bytes of one allocation or user, in coturn's directions: `rcv`/`sent` are from and
/// to the client, `peer_rcv`/`peer_sent` from and to peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub rcvp: u64,
    pub rcvb: u64,
    pub sentp: u64,
    pub sentb: u64,
    pub peer_rcvp: u64,
    pub peer_rcvb: u64,
    pub peer_sentp: u64,
    pub peer_sentb: u64,
}

impl Traffic {
    pub fn add(&mut self, o: &Traffic) {
        for (s, v) in self.fields_mut().into_iter().zip(o.fields()) {
            *s = s.wrapping_add(v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.fields().iter().all(|&v| v == 0)
    }

    /// In the order of [`Traffic::NAMES`].
    pub fn fields(&self) -> [u64; 8] {
        [
            self.rcvp,
            self.rcvb,
            self.sentp,
            self.sentb,
            self.peer_rcvp,
            self.peer_rcvb,
            self.peer_sentp,
            self.peer_sentb,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 8] {
        [
            &mut self.rcvp,
            &mut self.rcvb,
            &mut self.sentp,
            &mut self.sentb,
            &mut self.peer_rcvp,
            &mut self.peer_rcvb,
            &mut self.peer_sentp,
            &mut self.peer_sentb,
        ]
    }

    /// Suffixes of the metric names, matching [`Traffic::fields`].
    pub const NAMES: [&'static str; 8] = [
        "rcvp",
        "rcvb",
        "sentp",
        "sentb",
        "peer_rcvp",
        "peer_rcvb",
        "peer_sentp",
        "peer_sentb",
    ];
}
