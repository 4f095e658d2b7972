//! 300 Try Alternate for Allocate (RFC 8489 §10, §14.15 ALTERNATE-SERVER, §14.16
//! ALTERNATE-DOMAIN), as coturn chooses: the client transport's own list when it has one, else
//! `alternate-server`; in turn over the list, skipping servers of another address family than
//! the one the client reached; never when the list names the address the client reached (a
//! redirect loop). `alternate-server-mode` says when (docs/fleet.md, "Redirects"). In a fleet
//! (`redis-statsdb`), a draining or full node sends the client to the least loaded live node
//! instead (`from_fleet`, docs/fleet.md "Load published for redirects").

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::io::Transport;
use crate::fleet::{self, Node};
use crate::options::{Alternate, Options, RedirectMode};

/// One list and its turn: shared by every shard (an Allocate is control plane; one atomic add).
#[derive(Debug, Default)]
struct Ring {
    servers: Vec<Alternate>,
    next: AtomicUsize,
}

impl Ring {
    fn new(servers: &[Alternate]) -> Arc<Ring> {
        Arc::new(Ring {
            servers: servers.to_vec(),
            next: AtomicUsize::new(0),
        })
    }

    /// The next server of `local`'s family, as coturn's `set_alternate_server`: the turn moves
    /// past every server looked at, so clients of the two families share one rotation.
    fn next_for(&self, local: SocketAddr) -> Option<&Alternate> {
        let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
        if self
            .servers
            .iter()
            .any(|a| canonical(a.addr) == canonical(local))
        {
            return None;
        }
        let n = self.servers.len();
        let v4 = is_v4(local);
        (0..n)
            .map(|_| &self.servers[self.next.fetch_add(1, Ordering::Relaxed) % n])
            .find(|a| is_v4(a.addr) == v4)
    }
}

/// IPv4, also in its IPv4-mapped IPv6 form (a client reaching a dual-stack socket).
fn is_v4(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_ipv4()
}

/// The redirect lists of one configuration (rebuilt, with fresh turns, on reload).
#[derive(Debug, Default)]
pub(crate) struct Redirects {
    pub(crate) mode: RedirectMode,
    udp: Arc<Ring>,
    tcp: Arc<Ring>,
    tls: Arc<Ring>,
}

impl Redirects {
    pub(crate) fn from_options(opts: &Options) -> Redirects {
        // Transports without a list of their own share `alternate-server` and its turn.
        let general = Ring::new(&opts.alternate_servers);
        let own = |list: &[Alternate]| {
            if list.is_empty() {
                Arc::clone(&general)
            } else {
                Ring::new(list)
            }
        };
        Redirects {
            mode: opts.alternate_server_mode,
            udp: own(&opts.udp_alternate_servers),
            tcp: own(&opts.tcp_alternate_servers),
            tls: own(&opts.tls_alternate_servers),
        }
    }

    /// Whether the mode redirects now.
    pub(crate) fn wanted(&self, draining: bool, full: impl FnOnce() -> bool) -> bool {
        match self.mode {
            RedirectMode::Always => true,
            RedirectMode::Draining => draining,
            RedirectMode::Full => draining || full(),
        }
    }

    /// Where to send a client of `transport` that reached `local`; None: serve it here.
    pub(crate) fn pick(&self, transport: Transport, local: SocketAddr) -> Option<&Alternate> {
        let ring = match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
            Transport::Tls => &self.tls,
        };
        ring.next_for(local)
    }
}

/// The least loaded of `nodes` (the other live nodes of the fleet) that has a listener for a
/// client of `transport` in the family of `local`, and that listener. No ALTERNATE-DOMAIN: the
/// nodes of one fleet serve the name the client asked for.
pub(crate) fn from_fleet(
    nodes: &[Node],
    transport: Transport,
    local: SocketAddr,
) -> Option<Alternate> {
    let listener = |n: &Node| {
        let addrs = match transport {
            Transport::Tls => &n.tls,
            Transport::Udp | Transport::Tcp => &n.listen,
        };
        addrs.iter().copied().find(|a| is_v4(*a) == is_v4(local))
    };
    let reachable: Vec<Node> = nodes
        .iter()
        .filter(|n| listener(n).is_some())
        .cloned()
        .collect();
    fleet::least_loaded(&reachable)
        .as_ref()
        .and_then(listener)
        .map(Alternate::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alt(s: &str) -> Alternate {
        Alternate::new(s.parse().expect("addr"))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn round_robin_within_the_clients_family() {
        let opts = Options {
            alternate_servers: vec![
                alt("192.0.2.1:3478"),
                alt("[2001:db8::1]:3478"),
                alt("192.0.2.2:3478"),
            ],
            ..Options::default()
        };
        let r = Redirects::from_options(&opts);
        let v4 = addr("198.51.100.1:3478");
        let picks: Vec<SocketAddr> = (0..4)
            .filter_map(|_| r.pick(Transport::Udp, v4).map(|a| a.addr))
            .collect();
        let one = addr("192.0.2.1:3478");
        let two = addr("192.0.2.2:3478");
        assert_eq!(picks, [one, two, one, two]);
        let v6 = addr("[2001:db8::9]:3478");
        assert_eq!(
            r.pick(Transport::Tcp, v6).map(|a| a.addr),
            Some(addr("[2001:db8::1]:3478"))
        );
        let mapped = addr("[::ffff:198.51.100.1]:3478");
        let picked = r.pick(Transport::Udp, mapped).map(|a| a.addr);
        assert!(picked.is_some_and(|a| a.is_ipv4()), "{picked:?}");
    }

    #[test]
    fn own_lists_first_and_no_redirect_to_itself() {
        let mut tls = alt("192.0.2.9:5349");
        tls.domain = Some("turn9.example.org".into());
        let opts = Options {
            alternate_servers: vec![alt("192.0.2.1:3478")],
            tls_alternate_servers: vec![tls.clone()],
            ..Options::default()
        };
        let r = Redirects::from_options(&opts);
        let local = addr("192.0.2.5:3478");
        assert_eq!(r.pick(Transport::Tls, local), Some(&tls));
        assert_eq!(r.pick(Transport::Udp, local), Some(&alt("192.0.2.1:3478")));
        assert_eq!(r.pick(Transport::Udp, addr("192.0.2.1:3478")), None);
        assert_eq!(r.pick(Transport::Udp, addr("[2001:db8::5]:3478")), None);
        let mapped_self = addr("[::ffff:192.0.2.1]:3478");
        assert_eq!(r.pick(Transport::Udp, mapped_self), None);
    }

    #[test]
    fn modes() {
        let mut r = Redirects::default();
        assert!(r.wanted(false, || false));
        r.mode = RedirectMode::Draining;
        assert!(!r.wanted(false, || true) && r.wanted(true, || false));
        r.mode = RedirectMode::Full;
        assert!(!r.wanted(false, || false) && r.wanted(false, || true) && r.wanted(true, || false));
    }

    fn fleet_node(id: &str, allocations: u64, listen: &[&str], tls: &[&str]) -> Node {
        Node {
            id: id.into(),
            load: fleet::Load {
                allocations,
                capacity: 100,
                ..fleet::Load::default()
            },
            listen: listen.iter().map(|a| addr(a)).collect(),
            tls: tls.iter().map(|a| addr(a)).collect(),
            ..Node::default()
        }
    }

    #[test]
    fn the_fleet_sends_a_client_to_the_least_loaded_node_it_can_reach() {
        let busy = fleet_node("busy", 50, &["192.0.2.1:3478"], &["192.0.2.1:5349"]);
        let idle = fleet_node("idle", 10, &["192.0.2.2:3478"], &[]);
        let mut draining = fleet_node("draining", 0, &["192.0.2.3:3478"], &["192.0.2.3:5349"]);
        draining.load.draining = true;
        let v6 = fleet_node("v6", 0, &["[2001:db8::4]:3478"], &[]);
        let nodes = [busy, idle, draining, v6];
        let v4 = addr("198.51.100.1:3478");
        let to = |t, local| from_fleet(&nodes, t, local).map(|a: Alternate| a.addr);
        assert_eq!(to(Transport::Udp, v4), Some(addr("192.0.2.2:3478")));
        assert_eq!(to(Transport::Tcp, v4), Some(addr("192.0.2.2:3478")));
        // Only the busy node has a TLS listener it can take clients on.
        assert_eq!(to(Transport::Tls, v4), Some(addr("192.0.2.1:5349")));
        let six = addr("[2001:db8::9]:3478");
        assert_eq!(to(Transport::Udp, six), Some(addr("[2001:db8::4]:3478")));
        assert_eq!(to(Transport::Tls, six), None);
        assert_eq!(from_fleet(&[], Transport::Udp, v4), None);
    }
}
