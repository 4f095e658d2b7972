//! One allocation (RFC 8656 §2.2, §7): its relay sockets, the credentials that created it, its
//! permissions (§9) and channel bindings (§11), each with an expiry checked against `now`.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::io::{Client, FastChannel, RelayId};
use super::traffic::Traffic;
use crate::auth::AnyKey;
use crate::limits::{QuotaTicket, TokenBucket};
use crate::stun::{ErrorCode, Family, TransactionId};

/// A per-allocation cap: lookups on the data path are linear scans, so keep them short. Beyond it
/// the request gets 508 (RFC 8656 §9.1 allows refusing for capacity).
pub(crate) const MAX_PERMISSIONS: usize = 64;
pub(crate) const MAX_CHANNELS: usize = 64;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Relay {
    pub id: RelayId,
    /// The socket's real address.
    pub addr: SocketAddr,
    /// What XOR-RELAYED-ADDRESS says (the `external-ip` public form when one applies).
    pub advertised: SocketAddr,
    /// When this relay ends. A Refresh with REQUESTED-ADDRESS-FAMILY refreshes or deletes only
    /// the relay of that family (RFC 8656 §7.3, as coturn does), so the two relays of a dual
    /// allocation may end apart.
    pub expires: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Permission {
    ip: IpAddr,
    expires: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    expires: Instant,
}

/// Which integrity attribute signs responses: the one the request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sign {
    None,
    Sha1(AnyKey),
    Sha256(AnyKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelConflict {
    /// The number is bound to another peer, or the peer to another number (400).
    Taken,
    /// MAX_CHANNELS reached (508).
    Full,
}

/// What the last successful Allocate answered, to answer a retransmission identically.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Granted {
    pub tid: TransactionId,
    pub lifetime: u32,
    pub token: Option<[u8; 8]>,
    /// ADDITIONAL-ADDRESS-FAMILY that could not be served: (family, code).
    pub address_error: Option<(Family, ErrorCode)>,
}

/// Who made an allocation.
pub(crate) struct Owner<'a> {
    /// Empty under `no-auth`.
    pub username: &'a str,
    pub quota_user: &'a str,
    pub key: Option<AnyKey>,
}

/// What an allocation counts against: its quota ticket and its `max-bps` buckets.
pub(crate) struct Budget {
    /// Given back (taken out) when the allocation ends.
    pub quota: Option<QuotaTicket>,
    /// The fleet's count of this allocation (`fleet-quotas`), given back when it ends.
    pub lease: Option<crate::fleet::Lease>,
    /// Client to peer.
    pub to_peer: TokenBucket,
    /// Peer to client.
    pub to_client: TokenBucket,
}

pub(crate) struct Allocation {
    pub client: Client,
    pub relays: [Option<Relay>; 2],
    /// Empty under `no-auth`.
    pub username: Box<str>,
    pub quota_user: Box<str>,
    pub key: Option<AnyKey>,
    /// When the last relay ends, and with it the allocation.
    pub expires: Instant,
    pub granted: Granted,
    pub budget: Budget,
    /// Tick of the wheel entry that is current for this allocation (older entries are stale).
    pub timer: Option<u64>,
    /// A TCP relay (RFC 6062): its relay is a listening socket, data flows on connections.
    pub tcp: bool,
    /// A Connect into an address of this host was refused and reported (reported once).
    pub own_address_reported: bool,
    /// DONT-FRAGMENT was in the Allocate: every datagram to a peer leaves with DF set.
    pub dont_fragment: bool,
    /// ICMP reports sent to the client in the current second (`icmp_second`, seconds since
    /// the shard's epoch): at most `relay::ICMP_PER_SECOND`.
    pub icmp_second: u32,
    pub icmp_sent: u8,
    /// Data relayed over the allocation's life, bumped on the data path.
    pub traffic: Traffic,
    /// `traffic` when it was last handed to the per-user metrics.
    pub reported: Traffic,
    /// The channels the engine's fast path holds now (`Command::FastOpen` sent, no FastClose).
    pub fast: Vec<FastChannel>,
    /// Whether the fast path ever held a channel of this allocation: its deletion then waits
    /// for the last counts (`Command::FastForget`).
    pub fast_used: bool,
    permissions: Vec<Permission>,
    channels: Vec<Channel>,
}

impl Allocation {
    pub(crate) fn new(
        client: Client,
        relays: [Option<Relay>; 2],
        owner: Owner<'_>,
        expires: Instant,
        granted: Granted,
        budget: Budget,
    ) -> Self {
        Allocation {
            client,
            relays,
            username: owner.username.into(),
            quota_user: owner.quota_user.into(),
            key: owner.key,
            expires,
            granted,
            budget,
            timer: None,
            tcp: false,
            own_address_reported: false,
            dont_fragment: false,
            icmp_second: 0,
            icmp_sent: 0,
            traffic: Traffic::default(),
            reported: Traffic::default(),
            fast: Vec::new(),
            fast_used: false,
            permissions: Vec::new(),
            channels: Vec::new(),
        }
    }

    pub(crate) fn relays(&self) -> impl Iterator<Item = &Relay> {
        self.relays.iter().flatten()
    }

    /// The relay socket that talks to peers of `family`.
    #[inline]
    pub(crate) fn relay_for(&self, family: Family) -> Option<&Relay> {
        self.relays().find(|r| family_of(r.addr.ip()) == family)
    }

    /// Whether relay `id` of this allocation still relays at `now`.
    #[inline]
    pub(crate) fn relay_live(&self, id: RelayId, now: Instant) -> bool {
        self.relays().any(|r| r.id == id && r.expires > now)
    }

    /// Makes the relay of `family`, or every relay, last until `until`.
    pub(crate) fn refresh(&mut self, family: Option<Family>, until: Instant) {
        for relay in self.relays.iter_mut().flatten() {
            if family.is_none_or(|f| family_of(relay.addr.ip()) == f) {
                relay.expires = until;
            }
        }
        self.settle_expiry();
    }

    /// Takes relay `id` out; the allocation then lasts as long as the relay left.
    pub(crate) fn take_relay(&mut self, id: RelayId) -> Option<Relay> {
        let relay = self
            .relays
            .iter_mut()
            .find(|r| r.is_some_and(|r| r.id == id))?
            .take();
        self.settle_expiry();
        relay
    }

    /// A relay whose lifetime ran out by `now`.
    pub(crate) fn expired_relay(&self, now: Instant) -> Option<RelayId> {
        self.relays().find(|r| r.expires <= now).map(|r| r.id)
    }

    fn settle_expiry(&mut self) {
        if let Some(last) = self.relays().map(|r| r.expires).max() {
            self.expires = last;
        }
    }

    #[inline]
    pub(crate) fn is_permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires > now)
    }

    #[inline]
    pub(crate) fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
    }

    #[inline]
    pub(crate) fn channel_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number)
    }

    /// Installs or refreshes a permission; false when the table is full.
    pub(crate) fn permit(&mut self, ip: IpAddr, until: Instant) -> bool {
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            p.expires = until;
            return true;
        }
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push(Permission { ip, expires: until });
        true
    }

    /// Whether `permit(ip)` would succeed (all-or-nothing CreatePermission).
    pub(crate) fn can_permit(&self, ips: impl Iterator<Item = IpAddr>) -> bool {
        let new = ips
            .filter(|ip| !self.permissions.iter().any(|p| p.ip == *ip))
            .count();
        self.permissions.len() + new <= MAX_PERMISSIONS
    }

    /// Checks a ChannelBind against the rules of RFC 8656 §11.2 without changing anything.
    pub(crate) fn check_bind(
        &self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), ChannelConflict> {
        let live = |c: &&Channel| c.expires > now;
        if let Some(c) = self
            .channels
            .iter()
            .filter(live)
            .find(|c| c.number == number)
        {
            return if c.peer == peer {
                Ok(())
            } else {
                Err(ChannelConflict::Taken)
            };
        }
        if self.channels.iter().filter(live).any(|c| c.peer == peer) {
            return Err(ChannelConflict::Taken);
        }
        let live_count = self.channels.iter().filter(live).count();
        if live_count >= MAX_CHANNELS {
            return Err(ChannelConflict::Full);
        }
        Ok(())
    }

    /// Binds or refreshes a channel; call `check_bind` first.
    pub(crate) fn bind_channel(&mut self, number: u16, peer: SocketAddr, until: Instant) {
        self.channels
            .retain(|c| c.number != number && c.peer != peer);
        self.channels.push(Channel {
            number,
            peer,
            expires: until,
        });
    }

    /// The live channels whose peer has a live permission: (number, peer, when the first of
    /// the two ends).
    pub(crate) fn live_channels(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (u16, SocketAddr, Instant)> + '_ {
        self.channels
            .iter()
            .filter(move |c| c.expires > now)
            .filter_map(move |c| {
                let permission = self
                    .permissions
                    .iter()
                    .filter(|p| p.ip == c.peer.ip() && p.expires > now)
                    .map(|p| p.expires)
                    .max()?;
                Some((c.number, c.peer, c.expires.min(permission)))
            })
    }

    /// Drops expired permissions and channels.
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|p| p.expires > now);
        self.channels.retain(|c| c.expires > now);
    }

    /// The earliest instant something of this allocation expires.
    pub(crate) fn next_deadline(&self) -> Instant {
        let perms = self.permissions.iter().map(|p| p.expires);
        let chans = self.channels.iter().map(|c| c.expires);
        let relays = self.relays().map(|r| r.expires);
        perms
            .chain(chans)
            .chain(relays)
            .fold(self.expires, Instant::min)
    }
}

pub(crate) fn family_of(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}
