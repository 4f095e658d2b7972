//! Why the core dropped (or refused) input, counted per reason: malformed STUN and ChannelData
//! (RFC 8489 §6.3: silently discard), data without an allocation, channel or permission
//! (RFC 8656 §10-§12), bandwidth limits (§21.3.3), and answers withheld from unauthenticated
//! senders. Plain per-shard integers, like `Counters`, summed when scraped.

/// One reason input was dropped. Every drop but `ListenerQueue` (datagrams tern never
/// received), `ClientCertificate` (a connection, not a packet) and the `Userdb*` refusals
/// (answered 401, counted in `unauthenticated_401`) also counts in `Counters::malformed` (the
/// `Malformed` group) or `Counters::dropped` (the rest), so those totals stay as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than a STUN header (20) or a ChannelData header (4), or empty.
    Truncated,
    /// The first byte is neither STUN (00) nor ChannelData (01).
    NotStun,
    BadCookie,
    /// The length field disagrees with the datagram, is not a multiple of 4, or an attribute
    /// runs past the end.
    BadLength,
    BadFingerprint,
    /// MESSAGE-INTEGRITY did not verify (answered 401).
    BadIntegrity,
    /// An unknown comprehension-required attribute (answered 420 for a request).
    UnknownAttribute,
    /// A ChannelData number outside 0x4000..=0x7FFF.
    BadChannelNumber,
    /// A ChannelData whose length field runs past the datagram.
    BadChannelLength,
    /// A STUN response or an indication the server does not take.
    UnexpectedMessage,
    /// Data from a client without an allocation on its 5-tuple.
    NoAllocation,
    /// ChannelData on a channel that is not bound.
    NoChannel,
    /// Data to or from a peer without a permission (or refused by the peer policy).
    NoPermission,
    /// Over `max-bps` (per allocation and direction) or `bps-capacity` (server).
    Bandwidth,
    /// A request ignored by configuration (`stun-only`, `no-stun`).
    Disabled,
    /// An answer to an unauthenticated sender withheld by the per-source rate limit.
    RateLimited,
    /// Relayed data from a client shed unprocessed while the shard was behind, so that
    /// requests waiting behind it are served (the engine decides; see `engine::shed`).
    Overload,
    /// Datagrams the kernel dropped because a UDP listener's receive queue was full: the shard
    /// did not read fast enough (the engine reads the kernel's count; see `engine::shed`).
    ListenerQueue,
    /// A USERNAME longer than `userdb-max-username-length`: answered 401 like an unknown user,
    /// the user database not asked.
    UserdbNameTooLong,
    /// A source over its budget of user database questions (`userdb-lookup-rps`): answered 401
    /// like an unknown user, the database not asked.
    UserdbBudget,
    /// The user database's queue of questions was full: answered 401, the database not asked.
    UserdbOverloaded,
    /// A TLS handshake refused because the client presented no certificate, or one not issued
    /// by a CA of `CA-file` (the engine decides; counted by reason only, like `ListenerQueue`).
    ClientCertificate,
}

impl DropReason {
    pub const COUNT: usize = 22;

    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::NotStun,
        DropReason::BadCookie,
        DropReason::BadLength,
        DropReason::BadFingerprint,
        DropReason::BadIntegrity,
        DropReason::UnknownAttribute,
        DropReason::BadChannelNumber,
        DropReason::BadChannelLength,
        DropReason::UnexpectedMessage,
        DropReason::NoAllocation,
        DropReason::NoChannel,
        DropReason::NoPermission,
        DropReason::Bandwidth,
        DropReason::Disabled,
        DropReason::RateLimited,
        DropReason::Overload,
        DropReason::ListenerQueue,
        DropReason::UserdbNameTooLong,
        DropReason::UserdbBudget,
        DropReason::UserdbOverloaded,
        DropReason::ClientCertificate,
    ];

    /// The metric label.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotStun => "not_stun",
            DropReason::BadCookie => "bad_cookie",
            DropReason::BadLength => "bad_length",
            DropReason::BadFingerprint => "bad_fingerprint",
            DropReason::BadIntegrity => "bad_integrity",
            DropReason::UnknownAttribute => "unknown_attribute",
            DropReason::BadChannelNumber => "bad_channel_number",
            DropReason::BadChannelLength => "bad_channel_length",
            DropReason::UnexpectedMessage => "unexpected_message",
            DropReason::NoAllocation => "no_allocation",
            DropReason::NoChannel => "no_channel",
            DropReason::NoPermission => "no_permission",
            DropReason::Bandwidth => "bandwidth",
            DropReason::Disabled => "disabled",
            DropReason::RateLimited => "rate_limited",
            DropReason::Overload => "overload",
            DropReason::ListenerQueue => "listener_queue",
            DropReason::UserdbNameTooLong => "userdb_name_too_long",
            DropReason::UserdbBudget => "userdb_budget",
            DropReason::UserdbOverloaded => "userdb_overloaded",
            DropReason::ClientCertificate => "client_certificate",
        }
    }

    /// Malformed wire data (as opposed to well-formed input that is not allowed).
    pub const fn is_malformed(self) -> bool {
        matches!(
            self,
            DropReason::Truncated
                | DropReason::NotStun
                | DropReason::BadCookie
                | DropReason::BadLength
                | DropReason::BadFingerprint
                | DropReason::BadIntegrity
                | DropReason::UnknownAttribute
                | DropReason::BadChannelNumber
                | DropReason::BadChannelLength
        )
    }
}

/// Per-shard counts by [`DropReason`], plus the control-plane refusals of this issue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    by_reason: [u64; DropReason::COUNT],
    /// Allocates refused with 486 (user-quota, total-quota) or 508 (file-descriptor ceiling).
    pub quota_refused: u64,
}

impl Drops {
    pub const ZERO: Drops = Drops {
        by_reason: [0; DropReason::COUNT],
        quota_refused: 0,
    };

    pub fn get(&self, reason: DropReason) -> u64 {
        self.by_reason[reason as usize]
    }

    /// Every reason's count, in [`DropReason::ALL`] order.
    pub fn counts(&self) -> [u64; DropReason::COUNT] {
        self.by_reason
    }

    /// (label, count) for every reason, in [`DropReason::ALL`] order.
    pub fn by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.by_reason.iter())
            .map(|(r, n)| (r.name(), *n))
    }

    /// Answers withheld from unauthenticated senders (the metrics' `unauthenticated_401_dropped`).
    pub fn unauthenticated_401_dropped(&self) -> u64 {
        self.get(DropReason::RateLimited)
    }

    #[inline]
    pub(crate) fn count(&mut self, reason: DropReason) {
        self.add(reason, 1);
    }

    #[inline]
    pub(crate) fn add(&mut self, reason: DropReason, n: u64) {
        self.by_reason[reason as usize] += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
