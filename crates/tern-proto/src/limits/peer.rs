//! Which peers a client may reach through the relay (RFC 8656 §21.2 and §21.3.5, RFC 6062
//! §5.2 for TCP): never the server's own listeners or unroutable addresses, by default nothing
//! internal, and over TCP nothing on this host.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use super::range::{embedded_v4, normalize, Range};
use crate::options::Options;

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
    /// 6to4 2002::/16 (RFC 3056): a relay router on the path sends it to the IPv4 address in
    /// bits 16..48. When an `allowed-peer-ip` range admits it, that IPv4 address is checked too.
    SixToFour,
    /// Teredo 2001::/32 (RFC 4380): a Teredo relay sends it to the IPv4 client address inside it,
    /// obfuscated. That address is the client's NAT mapping and is not checked: an
    /// `allowed-peer-ip` range that admits Teredo admits its addresses as they are.
    Teredo,
    /// The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215): a NAT64 gateway on the path sends it
    /// to the IPv4 address inside it. When an `allowed-peer-ip` range admits it, the IPv4 address
    /// in its last 32 bits (the RFC 6052 /96 layout) is checked too.
    Nat64,
    /// The discard-only prefix 100::/64 (RFC 6666), routed into a sink where it is used.
    Discard,
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
            Refusal::SixToFour => {
                "6to4 address 2002::/16, which a relay router sends to the IPv4 address inside \
                 it (an allowed-peer-ip range admits it; that IPv4 address is checked as well)"
            }
            Refusal::Teredo => "Teredo address 2001::/32 (an allowed-peer-ip range admits it)",
            Refusal::Nat64 => {
                "local-use NAT64 address 64:ff9b:1::/48, which a NAT64 gateway sends to the IPv4 \
                 address inside it (an allowed-peer-ip range admits it; that IPv4 address is \
                 checked as well)"
            }
            Refusal::Discard => {
                "discard-only address 100::/64 (an allowed-peer-ip range admits it)"
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
    pub fn from_options(
        opts: &Options,
        listeners: &[SocketAddr],
        relay_ips: &[IpAddr],
    ) -> PeerPolicy {
        let configured_ports: Vec<u16> = [
            Some(opts.listening_port),
            Some(opts.tls_listening_port),
            opts.alt_listening_port,
            opts.alt_tls_listening_port,
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
        let configured = opts
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
        let external_public = opts.external_ips.iter().map(|e| e.public);
        let external_private: Vec<IpAddr> =
            opts.external_ips.iter().filter_map(|e| e.private).collect();
        let mut own_relays = Vec::new();
        for ip in relay_ips
            .iter()
            .chain(&opts.relay_ips)
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
            .chain(opts.listening_ips.iter().copied())
            .chain(opts.prometheus_address)
            .collect();
        PeerPolicy {
            allowed: opts
                .allowed_peer_ips
                .iter()
                .map(|r| Range::new(*r))
                .collect(),
            denied: opts
                .denied_peer_ips
                .iter()
                .map(|r| Range::new(*r))
                .collect(),
            allow_loopback: opts.allow_loopback_peers,
            listeners: own_listeners,
            ports,
            metrics_port: opts.prometheus.then_some(opts.prometheus_port),
            relay_ips: own_relays,
            mapped: Vec::new(),
            own: Vec::new(),
            min_port: opts.min_port,
            max_port: opts.max_port,
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
        let port = peer.port();
        self.as_written(peer.ip())?;
        with_embedded(peer.ip(), |ip| {
            never(ip)?;
            if self.own_port(ip, port) {
                return Err(Refusal::OwnListener);
            }
            self.admit(ip, Some(port))
        })
    }

    /// For CreatePermission, which names only an IP (RFC 8656 §9): the listener rule needs a
    /// port, so it is left to [`check`](Self::check).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.as_written(ip)?;
        with_embedded(ip, |ip| {
            never(ip)?;
            self.admit(ip, None)
        })
    }

    /// For an RFC 6062 Connect: like [`check`](Self::check), but an address of this host is
    /// refused unless an `allowed-peer-ip` range admits it (loopback follows
    /// `allow-loopback-peers`), and the relay and `external-ip` exemptions do not apply.
    pub fn check_tcp(&self, peer: SocketAddr) -> Result<(), Refusal> {
        let port = peer.port();
        self.as_written(peer.ip())?;
        with_embedded(peer.ip(), |ip| {
            never(ip)?;
            if self.own_port(ip, port) {
                return Err(Refusal::OwnListener);
            }
            if self.own.contains(&ip) && !ip.is_loopback() && !self.is_allowed(ip) {
                return Err(Refusal::OwnAddress);
            }
            self.screen(ip)
        })
    }

    /// The lists' ranges written in the IPv4-mapped form, against the peer as the client wrote
    /// it: a denied one refuses a peer written in that form unless an allowed one (which wins)
    /// holds it. An allowed one only lifts that denial: the address the peer stands for is still
    /// checked like any other, so a mapped form never opens loopback or private ranges.
    fn as_written(&self, ip: IpAddr) -> Result<(), Refusal> {
        let denied = self.denied.iter().any(|r| r.holds_written(ip));
        if denied && !self.allowed.iter().any(|r| r.holds_written(ip)) {
            return Err(Refusal::Denied);
        }
        Ok(())
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
             198.18.0.0/15, 240.0.0.0/4, 6to4 2002::/16, Teredo 2001::/32, local-use NAT64 \
             64:ff9b:1::/48 and discard-only 100::/64 refused unless an allowed-peer-ip admits \
             them; the IPv4 address inside an admitted 6to4 or NAT64 address is checked as well",
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

/// `rule` on the normalised `ip` and then, when it is a 6to4 or local-use NAT64 address that
/// passed, on the IPv4 address a gateway would reach for it: admitting 2002::/16 must not admit
/// `2002:7f00:1::` (127.0.0.1).
fn with_embedded(ip: IpAddr, rule: impl Fn(IpAddr) -> Result<(), Refusal>) -> Result<(), Refusal> {
    let ip = normalize(ip);
    rule(ip)?;
    match embedded_v4(ip) {
        Some(v4) => rule(IpAddr::V4(v4)),
        None => Ok(()),
    }
}

/// The internal range `ip` (normalised first) falls in, None for a public address: how
/// `tern probe` classifies a relayed address.
pub fn internal_range(ip: IpAddr) -> Option<Refusal> {
    internal(normalize(ip))
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
            let s = v6.segments();
            let first = s[0];
            if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if first & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
                Some(Refusal::Private)
            } else {
                match s {
                    [0x2002, ..] => Some(Refusal::SixToFour),
                    [0x2001, 0, ..] => Some(Refusal::Teredo),
                    [0x64, 0xff9b, 1, ..] => Some(Refusal::Nat64),
                    [0x100, 0, 0, 0, ..] => Some(Refusal::Discard),
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal_of(s: &str) -> Option<Refusal> {
        internal(normalize(s.parse().unwrap()))
    }

    #[test]
    fn gateway_prefixes_end_where_their_rfcs_say() {
        let cases = [
            ("2002::", Some(Refusal::SixToFour)),
            (
                "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(Refusal::SixToFour),
            ),
            ("2001:1::", None),
            ("2003::1", None),
            ("2001::", Some(Refusal::Teredo)),
            (
                "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(Refusal::Teredo),
            ),
            ("2001:1::1", None),
            ("2001:db8::1", None),
            ("64:ff9b:1::", Some(Refusal::Nat64)),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some(Refusal::Nat64)),
            ("64:ff9b:2::1", None),
            ("64:ff9b:0:1::1", None),
            ("100::", Some(Refusal::Discard)),
            ("100::ffff:ffff:ffff:ffff", Some(Refusal::Discard)),
            ("100:0:0:1::", None),
            ("101::1", None),
        ];
        for (addr, want) in cases {
            assert_eq!(internal_of(addr), want, "{addr}");
        }
    }

    #[test]
    fn each_gateway_refusal_names_its_prefix() {
        for (refusal, prefix) in [
            (Refusal::SixToFour, "2002::/16"),
            (Refusal::Teredo, "2001::/32"),
            (Refusal::Nat64, "64:ff9b:1::/48"),
            (Refusal::Discard, "100::/64"),
        ] {
            let text = refusal.to_string();
            assert!(text.contains(prefix), "{text}");
            assert!(text.contains("allowed-peer-ip"), "{text}");
        }
    }
}
