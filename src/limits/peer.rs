//! Which peers a client may reach through the relay (RFC 8656 §21.2 and §21.3.5, RFC 6062
//! §5.2 for TCP): never the server's own listeners or unroutable addresses, by default nothing
//! internal, and over TCP nothing on this host.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use super::range::{normalize, Range};
use crate::config::Config;

/// Why a peer address is refused (answered with 403).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 0.0.0.0/8 or `::`.
    Unspecified,
    /// 224.0.0.0/4 or ff00::/8; no option admits it.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 127.0.0.0/8 or `::1`, without `allow-loopback-peers`.
    Loopback,
    /// 169.254.0.0/16 (cloud metadata lives there) or fe80::/10.
    LinkLocal,
    /// RFC 1918, ULA fc00::/7, or the deprecated site-local fec0::/10.
    Private,
    /// 100.64.0.0/10 (carrier-grade NAT, RFC 6598).
    SharedAddress,
    /// Another IANA special-purpose IPv4 range (RFC 6890) that no public peer uses and some
    /// networks route internally: 192.0.0.0/24 (protocol assignments), 192.88.99.0/24 (6to4
    /// relays), 198.18.0.0/15 (benchmarking labs), 240.0.0.0/4 (reserved, used inside some
    /// clouds). The documentation nets are not routed anywhere and stay admitted.
    Reserved,
    /// One of the server's own listening transport addresses, or a listener or metrics port on
    /// any address of this host.
    OwnListener,
    /// TCP relaying (RFC 6062 Connect) into an address of this host, which reaches every
    /// service bound to a wildcard address past the host's firewall.
    OwnAddress,
    /// Inside a `denied-peer-ip` range.
    Denied,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Unspecified => "unspecified address",
            Refusal::Multicast => "multicast address",
            Refusal::Broadcast => "broadcast address",
            Refusal::Loopback => "loopback address (allow-loopback-peers admits it)",
            Refusal::LinkLocal => "link-local address (an allowed-peer-ip range admits it)",
            Refusal::Private => "private address (an allowed-peer-ip range admits it)",
            Refusal::SharedAddress => {
                "shared address space 100.64/10 (an allowed-peer-ip range admits it)"
            }
            Refusal::Reserved => {
                "special-purpose address range (an allowed-peer-ip range admits it)"
            }
            Refusal::OwnListener => "one of the server's own listening addresses",
            Refusal::OwnAddress => {
                "an address of this host, refused for TCP relaying (an allowed-peer-ip range \
                 admits it)"
            }
            Refusal::Denied => "denied by denied-peer-ip",
        })
    }
}

/// The effective peer policy, built once at start-up (and on reload).
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    allowed: Vec<Range>,
    denied: Vec<Range>,
    allow_loopback: bool,
    listeners: Vec<SocketAddr>,
    /// Every port the server listens on (TURN and metrics), refused on every address in `own`.
    ports: Vec<u16>,
    /// `prometheus-port` when `prometheus` is on: also refused on every loopback address, where
    /// the metrics endpoint's wildcard socket answers too.
    metrics_port: Option<u16>,
    /// Relay addresses, exempt on relay ports: relaying between two allocations always works.
    relay_ips: Vec<IpAddr>,
    /// Real addresses behind an `external-ip` mapping: the host under its public name, an
    /// ordinary peer over UDP on any port (an SFU beside the relay).
    mapped: Vec<IpAddr>,
    /// Every address of this host: interfaces, listeners, relays, both sides of `external-ip`.
    own: Vec<IpAddr>,
    min_port: u16,
    max_port: u16,
}

impl PeerPolicy {
    /// `listeners` and `relay_ips` come from the engine; the configured listening addresses
    /// and ports, relay IPs and external IPs are added too, so a policy built before binding is
    /// no weaker. The host's interface addresses come with [`with_interfaces`], the relay
    /// addresses a bare `external-ip` stands for with [`with_mapped`].
    ///
    /// [`with_interfaces`]: Self::with_interfaces
    /// [`with_mapped`]: Self::with_mapped
    pub fn from_config(cfg: &Config, listeners: &[SocketAddr], relay_ips: &[IpAddr]) -> PeerPolicy {
        let configured_ports: Vec<u16> = [
            Some(cfg.listening_port),
            Some(cfg.tls_listening_port),
            cfg.alt_listening_port,
            cfg.alt_tls_listening_port,
        ]
        .into_iter()
        .flatten()
        .filter(|p| *p != 0)
        .collect();
        let mut ports = Vec::new();
        for port in configured_ports.iter().copied() {
            push_new(&mut ports, port);
        }
        for port in listeners.iter().map(SocketAddr::port).filter(|p| *p != 0) {
            push_new(&mut ports, port);
        }
        let configured = cfg
            .listening_ips
            .iter()
            .flat_map(|ip| configured_ports.iter().map(|p| SocketAddr::new(*ip, *p)));
        let mut own_listeners = Vec::new();
        for addr in listeners.iter().copied().chain(configured) {
            let addr = SocketAddr::new(normalize(addr.ip()), addr.port());
            if !addr.ip().is_unspecified() {
                push_new(&mut own_listeners, addr);
            }
        }
        let external_public = cfg.external_ips.iter().map(|e| e.public);
        let external_private: Vec<IpAddr> =
            cfg.external_ips.iter().filter_map(|e| e.private).collect();
        let mut own_relays = Vec::new();
        for ip in relay_ips
            .iter()
            .chain(&cfg.relay_ips)
            .copied()
            .chain(external_public)
            .chain(external_private.iter().copied())
        {
            let ip = normalize(ip);
            // A loopback relay address is never exempt: on a server listening on every
            // interface it would open 127.0.0.1's high ports to any client. Relaying between
            // two loopback allocations needs `allow-loopback-peers`, as in coturn.
            if !ip.is_unspecified() && !ip.is_loopback() {
                push_new(&mut own_relays, ip);
            }
        }
        let own_ips: Vec<IpAddr> = own_listeners
            .iter()
            .map(SocketAddr::ip)
            .chain(own_relays.iter().copied())
            .chain(relay_ips.iter().copied())
            .chain(cfg.listening_ips.iter().copied())
            .chain(cfg.prometheus_address)
            .collect();
        PeerPolicy {
            allowed: cfg
                .allowed_peer_ips
                .iter()
                .map(|r| Range::new(*r))
                .collect(),
            denied: cfg.denied_peer_ips.iter().map(|r| Range::new(*r)).collect(),
            allow_loopback: cfg.allow_loopback_peers,
            listeners: own_listeners,
            ports,
            metrics_port: cfg.prometheus.then_some(cfg.prometheus_port),
            relay_ips: own_relays,
            mapped: Vec::new(),
            own: Vec::new(),
            min_port: cfg.min_port,
            max_port: cfg.max_port,
        }
        .with_interfaces(&own_ips)
        .with_mapped(&external_private)
    }

    /// Adds the host's interface addresses (the engine lists them; the core never does) to the
    /// addresses treated as this host.
    pub fn with_interfaces(mut self, interfaces: &[IpAddr]) -> PeerPolicy {
        for ip in interfaces {
            let ip = normalize(*ip);
            if !ip.is_unspecified() {
                push_new(&mut self.own, ip);
            }
        }
        self
    }

    /// Adds the real addresses behind `external-ip` mappings: this host under its public name,
    /// admitted over UDP on any port but its own listeners'. A loopback one stays loopback.
    pub fn with_mapped(mut self, mapped: &[IpAddr]) -> PeerPolicy {
        self = self.with_interfaces(mapped);
        for ip in mapped {
            let ip = normalize(*ip);
            if !ip.is_unspecified() && !ip.is_loopback() {
                push_new(&mut self.mapped, ip);
            }
        }
        self
    }

    /// For ChannelBind and Send, which name a transport address to relay UDP to.
    pub fn check(&self, peer: SocketAddr) -> Result<(), Refusal> {
        let ip = normalize(peer.ip());
        never(ip)?;
        if self.own_port(ip, peer.port()) {
            return Err(Refusal::OwnListener);
        }
        self.admit(ip, Some(peer.port()))
    }

    /// For CreatePermission, which names only an IP (RFC 8656 §9): the listener rule needs a
    /// port, so it is left to [`check`](Self::check).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = normalize(ip);
        never(ip)?;
        self.admit(ip, None)
    }

    /// For an RFC 6062 Connect: like [`check`](Self::check), but an address of this host is
    /// refused unless an `allowed-peer-ip` range admits it (loopback follows
    /// `allow-loopback-peers`), and the relay and `external-ip` exemptions do not apply.
    pub fn check_tcp(&self, peer: SocketAddr) -> Result<(), Refusal> {
        let ip = normalize(peer.ip());
        never(ip)?;
        if self.own_port(ip, peer.port()) {
            return Err(Refusal::OwnListener);
        }
        if self.own.contains(&ip) && !ip.is_loopback() && !self.is_allowed(ip) {
            return Err(Refusal::OwnAddress);
        }
        self.screen(ip)
    }

    /// A listener or metrics port on an address of this host (every listener is one: its IP is
    /// in `own`, its port in `ports`). The port is looked at first: on the data path it rarely
    /// matches, and then the address list is not scanned.
    fn own_port(&self, ip: IpAddr, port: u16) -> bool {
        let listener = self.ports.contains(&port);
        let metrics = self.metrics_port == Some(port);
        if !listener && !metrics {
            return false;
        }
        let own = self.own.contains(&ip);
        (listener && own) || (metrics && (own || ip.is_loopback()))
    }

    fn admit(&self, ip: IpAddr, port: Option<u16>) -> Result<(), Refusal> {
        let relay_port = port.is_none_or(|p| (self.min_port..=self.max_port).contains(&p));
        if relay_port && self.relay_ips.contains(&ip) {
            return Ok(());
        }
        if self.mapped.contains(&ip) {
            return Ok(());
        }
        self.screen(ip)
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|r| r.contains(ip))
    }

    /// The lists and the internal ranges. `ip` is normalised.
    fn screen(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        if self.denied.iter().any(|r| r.contains(ip)) {
            return Err(Refusal::Denied);
        }
        match internal(ip) {
            Some(Refusal::Loopback) if self.allow_loopback => Ok(()),
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// The effective policy in a few lines, for the start-up log.
    pub fn describe(&self) -> String {
        let mut out = String::from(
            "peers always refused: 0.0.0.0/8, ::, multicast, 255.255.255.255, the listeners",
        );
        list(&mut out, &self.listeners);
        out.push_str(", and on every address of this host the ports");
        list(&mut out, &self.ports);
        if let Some(port) = self.metrics_port {
            let _ = write!(out, " and the metrics port {port} (also on loopback)");
        }
        out.push_str(if self.allow_loopback {
            "\npeers: loopback admitted (allow-loopback-peers)"
        } else {
            "\npeers: loopback refused"
        });
        out.push_str(
            "; link-local, ULA, RFC 1918, 100.64.0.0/10, 192.0.0.0/24, 192.88.99.0/24, \
             198.18.0.0/15 and 240.0.0.0/4 refused unless an allowed-peer-ip admits them",
        );
        out.push_str("\nallowed-peer-ip (wins over denied):");
        list(&mut out, &self.allowed);
        out.push_str("; denied-peer-ip:");
        list(&mut out, &self.denied);
        let _ = write!(
            out,
            "\nown relay IPs admitted on ports {}-{}:",
            self.min_port, self.max_port
        );
        list(&mut out, &self.relay_ips);
        out.push_str("; this host behind external-ip admitted over UDP on any other port:");
        list(&mut out, &self.mapped);
        out.push_str(
            "; TCP relaying (RFC 6062) into an address of this host refused unless an \
             allowed-peer-ip admits it:",
        );
        list(&mut out, &self.own);
        out
    }
}

fn push_new<T: PartialEq>(items: &mut Vec<T>, item: T) {
    if !items.contains(&item) {
        items.push(item);
    }
}

fn list<T: fmt::Display>(out: &mut String, items: &[T]) {
    if items.is_empty() {
        out.push_str(" none");
    }
    for (i, item) in items.iter().enumerate() {
        let _ = write!(out, "{}{item}", if i == 0 { " " } else { ", " });
    }
}

/// Addresses nothing admits. `ip` is normalised.
fn never(ip: IpAddr) -> Result<(), Refusal> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Err(Refusal::Unspecified),
        IpAddr::V4(v4) if v4.is_broadcast() => Err(Refusal::Broadcast),
        IpAddr::V6(v6) if v6.is_unspecified() => Err(Refusal::Unspecified),
        _ if ip.is_multicast() => Err(Refusal::Multicast),
        _ => Ok(()),
    }
}

/// The IPv4 special-purpose ranges of [`Refusal::Reserved`] (coturn's example configuration
/// lists them for `denied-peer-ip`; tern refuses them by default).
fn special_v4([a, b, c, _]: [u8; 4]) -> bool {
    matches!((a, b, c), (192, 0, 0) | (192, 88, 99) | (198, 18 | 19, _)) || a >= 240
}

/// The internal ranges refused unless admitted. `ip` is normalised.
fn internal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some(Refusal::Loopback)
            } else if v4.is_link_local() {
                Some(Refusal::LinkLocal)
            } else if v4.is_private() {
                Some(Refusal::Private)
            } else if a == 100 && (64..128).contains(&b) {
                Some(Refusal::SharedAddress)
            } else if special_v4(v4.octets()) {
                Some(Refusal::Reserved)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if first & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
                Some(Refusal::Private)
            } else {
                None
            }
        }
    }
}
