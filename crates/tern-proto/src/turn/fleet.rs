//! The fleet seen from a shard (docs/fleet.md, "Shared quotas and relaying between nodes"): an
//! Allocate counted across nodes through the fleet thread without blocking the shard (parked
//! like a user database lookup, RFC 8656 §7.2 step 10: 486, or 508 when Redis is unreachable
//! under `fleet-redis-down=closed`), and other nodes' relay addresses: a peer named by another
//! live node's public relay address is sent to its private one, which the peer policy admits
//! as a fleet member.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::io::Client;
use super::settings::Settings;
use super::shard::Shard;
use crate::fleet::{Admission, Ask, Lease, PeerNode};
use crate::limits::Refusal;
use crate::stun::ErrorCode;

/// What the fleet says about an Allocate.
pub(super) enum FleetCheck {
    /// Go on; the lease (if counted) belongs to the allocation.
    Go(Option<Lease>),
    /// Parked until the fleet thread answers.
    Parked,
    Refuse(ErrorCode),
}

/// A shard's copy of the other nodes' relay addresses; copied again only when the fleet's
/// generation moves, so the data path reads shard-local memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct FleetPeers {
    generation: u64,
    peers: Arc<Vec<PeerNode>>,
}

fn in_ports(p: &PeerNode, port: u16) -> bool {
    (p.ports.0..=p.ports.1).contains(&port)
}

impl FleetPeers {
    /// The address to send to for a peer a client names: this node's own `external-ip`, else
    /// another node's public relay address mapped to its private one.
    pub(crate) fn internal(&self, settings: &Settings, addr: SocketAddr) -> SocketAddr {
        let own = settings.internal(addr);
        if own != addr {
            return own;
        }
        self.swap(addr, |p| (p.public, p.private))
    }

    /// The address a client is told for a relay or peer at `addr`: the inverse of `internal`.
    pub(crate) fn advertised(&self, settings: &Settings, addr: SocketAddr) -> SocketAddr {
        let own = settings.advertised(addr);
        if own != addr {
            return own;
        }
        self.swap(addr, |p| (p.private, p.public))
    }

    /// `addr` with its IP replaced by the `(from, to)` pair of the node whose `from` it is.
    fn swap(&self, addr: SocketAddr, pair: impl Fn(&PeerNode) -> (IpAddr, IpAddr)) -> SocketAddr {
        let found = self.peers.iter().find_map(|p| {
            let (from, to) = pair(p);
            (from == addr.ip() && in_ports(p, addr.port())).then_some(to)
        });
        found.map_or(addr, |ip| SocketAddr::new(ip, addr.port()))
    }

    /// Whether the policy admits `peer` (ChannelBind, Send): as any peer, or as another live
    /// node's private relay address on its relay ports. A fleet member is never admitted past
    /// `denied-peer-ip` or the addresses nothing admits.
    pub(crate) fn admits(&self, settings: &Settings, peer: SocketAddr) -> bool {
        match settings.policy.check(peer) {
            Ok(()) => true,
            Err(why) => {
                overridable(why)
                    && self
                        .peers
                        .iter()
                        .any(|p| p.private == peer.ip() && in_ports(p, peer.port()))
            }
        }
    }

    /// As [`FleetPeers::admits`] for CreatePermission, which names no port.
    pub(crate) fn admits_ip(&self, settings: &Settings, ip: IpAddr) -> bool {
        match settings.policy.check_ip(ip) {
            Ok(()) => true,
            Err(why) => overridable(why) && self.peers.iter().any(|p| p.private == ip),
        }
    }
}

/// The refusals of internal ranges, which a fleet member's private address falls in.
fn overridable(why: Refusal) -> bool {
    matches!(
        why,
        Refusal::Loopback
            | Refusal::LinkLocal
            | Refusal::Private
            | Refusal::SharedAddress
            | Refusal::Reserved
    )
}

impl Shard {
    /// Asks the fleet (with `fleet-quotas` and a limit set) whether `user` may allocate once
    /// more; a question not yet answered parks the request.
    pub(super) fn fleet_admit(
        &mut self,
        now: Instant,
        client: &Client,
        tid: [u8; 12],
        request: &[u8],
        user: &str,
    ) -> FleetCheck {
        let shared = Arc::clone(&self.shared);
        let Some(fleet) = shared.fleet().filter(|f| f.counts_quotas()) else {
            return FleetCheck::Go(None);
        };
        let quotas = shared.quotas();
        let (user_quota, total_quota) = (quotas.user_quota(), quotas.total_quota());
        if user_quota == 0 && total_quota == 0 {
            return FleetCheck::Go(None);
        }
        let ask = Ask {
            client: client.remote,
            tid,
        };
        match fleet.admit(ask, user, user_quota, total_quota, self.index) {
            Admission::Granted(lease) => FleetCheck::Go(Some(lease)),
            Admission::Pending => {
                // A full queue loses the request, which the client retransmits.
                self.parked.park(client, request, now);
                FleetCheck::Parked
            }
            Admission::UserQuota | Admission::TotalQuota => {
                self.drops.quota_refused += 1;
                FleetCheck::Refuse(ErrorCode::ALLOCATION_QUOTA_REACHED)
            }
            Admission::Unavailable => {
                self.drops.quota_refused += 1;
                FleetCheck::Refuse(ErrorCode::INSUFFICIENT_CAPACITY)
            }
        }
    }

    /// Gives an allocation's lease back to the fleet.
    pub(super) fn fleet_release(&self, lease: Option<Lease>) {
        if let (Some(lease), Some(fleet)) = (lease, self.shared.fleet()) {
            fleet.release(lease);
        }
    }

    /// Copies the other nodes' relay addresses when they changed (control plane: requests and
    /// timer ticks).
    pub(super) fn sync_fleet(&mut self) {
        let Some(fleet) = self.shared.fleet() else {
            return;
        };
        if fleet.generation() != self.fleet_peers.generation {
            let (generation, peers) = fleet.peers();
            self.fleet_peers = FleetPeers { generation, peers };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{ExternalIp, IpRange, Options};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// This node: 10.0.0.10 behind 203.0.113.10; the other node: 10.0.1.11 behind 203.0.113.11.
    fn setup(denied: Option<IpRange>) -> (Settings, FleetPeers) {
        let mut opts = Options {
            no_auth: true,
            external_ips: vec![ExternalIp {
                public: ip("203.0.113.10"),
                private: Some(ip("10.0.0.10")),
            }],
            ..Options::default()
        };
        opts.denied_peer_ips.extend(denied);
        let settings =
            Settings::from_options(&opts, &[sa("10.0.0.10:3478")], &[ip("10.0.0.10")]).unwrap();
        let peers = FleetPeers {
            generation: 1,
            peers: Arc::new(vec![PeerNode {
                public: ip("203.0.113.11"),
                private: ip("10.0.1.11"),
                ports: (49152, 65535),
            }]),
        };
        (settings, peers)
    }

    #[test]
    fn another_nodes_public_relay_address_maps_to_its_private_one_and_back() {
        let (s, fleet) = setup(None);
        assert_eq!(
            fleet.internal(&s, sa("203.0.113.11:50000")),
            sa("10.0.1.11:50000")
        );
        assert_eq!(
            fleet.advertised(&s, sa("10.0.1.11:50000")),
            sa("203.0.113.11:50000")
        );
        // Off its relay ports, and this node's own external-ip, are not the fleet's business.
        assert_eq!(
            fleet.internal(&s, sa("203.0.113.11:3478")),
            sa("203.0.113.11:3478")
        );
        assert_eq!(
            fleet.internal(&s, sa("203.0.113.10:50000")),
            sa("10.0.0.10:50000")
        );
        let empty = FleetPeers::default();
        assert_eq!(
            empty.internal(&s, sa("203.0.113.11:50000")),
            sa("203.0.113.11:50000")
        );
    }

    #[test]
    fn a_fleet_member_is_admitted_on_its_relay_ports_and_nothing_else_of_the_range() {
        let (s, fleet) = setup(None);
        assert!(fleet.admits(&s, sa("10.0.1.11:50000")));
        assert!(fleet.admits_ip(&s, ip("10.0.1.11")));
        assert!(!fleet.admits(&s, sa("10.0.1.11:22")), "not a relay port");
        assert!(!fleet.admits(&s, sa("10.0.1.12:50000")));
        assert!(!fleet.admits_ip(&s, ip("10.0.1.12")));
        assert!(!FleetPeers::default().admits(&s, sa("10.0.1.11:50000")));
    }

    #[test]
    fn denied_peer_ip_wins_over_fleet_membership() {
        let (s, fleet) = setup(Some(IpRange {
            start: ip("10.0.1.0"),
            end: ip("10.0.1.255"),
        }));
        assert!(!fleet.admits(&s, sa("10.0.1.11:50000")));
        assert!(!fleet.admits_ip(&s, ip("10.0.1.11")));
    }
}
