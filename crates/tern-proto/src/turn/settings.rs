//! Shard settings derived from the [`Options`]: relay addresses (coturn `relay-ip`,
//! `external-ip`), lifetimes (RFC 8656 §7.2, §9, §11), credentials, the peer policy, and the
//! per-allocation and per-source limits (`max-bps`, `unauthorized-ratelimit`, `stun-only`).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::allocation::family_of;
use super::redirect::Redirects;
use crate::addrs;
use crate::auth::{Credentials, Offer, UserLookup};
use crate::limits::PeerPolicy;
use crate::options::{DefaultFamily, ExternalIp, Options};
use crate::stun::channel::ChannelRange;
use crate::stun::Family;

/// RFC 8656 §7.2: the default lifetime, and coturn's floor for a requested one.
const DEFAULT_LIFETIME: u32 = 600;

/// Everything a shard needs that comes from the configuration; rebuilt on reload.
pub struct Settings {
    pub(crate) credentials: Credentials,
    /// The password algorithms and security features offered (`password-algorithms`,
    /// `userhash`).
    pub(crate) offer: Offer,
    /// The user database behind the static credentials, if one is configured: one per process,
    /// shared by every reload's settings that name the same database (see
    /// [`Settings::with_resolver`]).
    pub(crate) resolver: Option<Arc<dyn UserLookup>>,
    pub(crate) policy: PeerPolicy,
    relay_ips: Vec<IpAddr>,
    /// A loopback address was written in `relay-ip`: it serves every client. One that came from
    /// the listeners or a wildcard only serves clients that came over loopback.
    explicit_loopback: bool,
    /// (real relay IP, advertised public IP): at most one pair per public IP.
    external: Vec<(IpAddr, IpAddr)>,
    /// Start-up warnings about `external-ip` (see [`Settings::warnings`]).
    warnings: Vec<String>,
    pub(crate) max_lifetime: u32,
    pub(crate) permission_lifetime: u32,
    pub(crate) channel_lifetime: u32,
    pub(crate) stale_nonce: u32,
    pub(crate) fingerprint: bool,
    pub(crate) software: bool,
    pub(crate) default_family: DefaultFamily,
    pub(crate) udp_relay: bool,
    /// RFC 6062 TCP relay allocations (`no-tcp-relay` turns them off).
    pub(crate) tcp_relay: bool,
    /// `max-bps`: bytes/s per allocation and direction; 0 unlimited.
    pub(crate) max_bps: u64,
    /// Answers to an unauthenticated UDP source per second; 0 unlimited.
    pub(crate) unauth_rps: u32,
    /// User database questions about unconfirmed names per source IP per second; 0 unlimited.
    pub(crate) lookup_rps: u32,
    /// `stun-only`: TURN requests are ignored.
    pub(crate) stun_only: bool,
    /// `no-stun`: Binding requests are ignored.
    pub(crate) no_stun: bool,
    /// Answer RFC 3489 Binding requests; MAPPED-ADDRESS in every Binding answer.
    pub(crate) stun_backward_compatibility: bool,
    /// `channel-numbers`: what a ChannelBind may take and ChannelData may use.
    pub(crate) channels: ChannelRange,
    /// `secure-stun`: Binding requests must authenticate.
    pub(crate) secure_stun: bool,
    /// Where and when new allocations are redirected (300 Try Alternate).
    pub(crate) redirects: Redirects,
    /// `log-binding`: report every Binding request to the engine's log.
    pub(crate) log_binding: bool,
}

impl Settings {
    /// `listeners`: every transport address the server listens on (UDP, TCP and TLS), used for
    /// the relay addresses when `relay-ip` is empty, and by the peer policy to refuse relaying
    /// into the server's own control ports. `interfaces`: every address of the host, as the
    /// engine listed them (the core never lists them itself): what a wildcard `relay-ip` stands
    /// for, and what the peer policy treats as the host itself.
    pub fn from_options(
        opts: &Options,
        listeners: &[SocketAddr],
        interfaces: &[IpAddr],
    ) -> Result<Settings, String> {
        let candidates = if opts.relay_ips.is_empty() {
            listeners.iter().map(|l| l.ip()).collect()
        } else {
            addrs::expand(&opts.relay_ips, interfaces)
        };
        let mut relay_ips: Vec<IpAddr> = Vec::new();
        for ip in candidates {
            if !ip.is_unspecified() && !relay_ips.contains(&ip) {
                relay_ips.push(ip);
            }
        }
        if relay_ips.is_empty() {
            return Err(String::from(
                "no relay address: set relay-ip (or listening-ip) to an address of this host",
            ));
        }
        let mut host = interfaces.to_vec();
        host.extend(listeners.iter().map(SocketAddr::ip));
        let (external, warnings) = external_pairs(&relay_ips, &opts.external_ips, &host);
        let mut own_ips = relay_ips.clone();
        own_ips.extend(external.iter().map(|(_, public)| *public));
        let mapped: Vec<IpAddr> = external.iter().map(|(real, _)| *real).collect();
        let policy = PeerPolicy::from_options(opts, listeners, &own_ips)
            .with_interfaces(interfaces)
            .with_mapped(&mapped);
        Ok(Settings {
            credentials: Credentials::from_options(opts),
            offer: Offer::new(&opts.password_algorithms, opts.userhash),
            resolver: None,
            policy,
            relay_ips,
            explicit_loopback: opts.relay_ips.iter().any(IpAddr::is_loopback),
            external,
            warnings,
            max_lifetime: opts.max_allocate_lifetime,
            permission_lifetime: opts.permission_lifetime,
            channel_lifetime: opts.channel_lifetime,
            stale_nonce: nonce_lifetime(opts.stale_nonce),
            fingerprint: opts.fingerprint,
            software: opts.software_attribute,
            default_family: opts.allocation_default_address_family,
            udp_relay: !opts.no_udp_relay,
            tcp_relay: !opts.no_tcp_relay,
            max_bps: opts.max_bps,
            unauth_rps: if opts.unauthorized_ratelimit {
                opts.unauthorized_ratelimit_rps
            } else {
                0
            },
            lookup_rps: opts.userdb_lookup_rps,
            stun_only: opts.stun_only,
            no_stun: opts.no_stun,
            stun_backward_compatibility: opts.stun_backward_compatibility,
            channels: opts.channel_numbers,
            secure_stun: opts.secure_stun,
            redirects: Redirects::from_options(opts),
            log_binding: opts.log_binding,
        })
    }

    /// What the engine should warn about at start-up: an `external-ip` that names no address of
    /// this host or of no relay, and which relay address it was attached to.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Puts the user database behind the static credentials. `from_config` leaves it out: the
    /// resolver is a thread and a cache that live once per process and outlast reloads (the
    /// server keeps it), while settings are rebuilt on every reload.
    pub fn with_resolver(mut self, resolver: Option<Arc<dyn UserLookup>>) -> Settings {
        self.resolver = resolver;
        self
    }

    /// The peer policy in force.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// (real relay IP, advertised public IP) of every `external-ip` mapping.
    pub fn external(&self) -> &[(IpAddr, IpAddr)] {
        &self.external
    }

    /// The addresses relay sockets are bound on.
    pub fn relay_ips(&self) -> &[IpAddr] {
        &self.relay_ips
    }

    pub fn has_family(&self, family: Family) -> bool {
        self.relay_ips.iter().any(|ip| family_of(*ip) == family)
    }

    /// The relay IP for a client that reached `local`: that address when it is a relay address
    /// of the family, else the first relay address of the family (coturn's choice).
    pub fn relay_ip(&self, local: IpAddr, family: Family) -> Option<IpAddr> {
        if family_of(local) == family && self.relay_ips.contains(&local) {
            return Some(local);
        }
        let loopback_ok = self.explicit_loopback || local.is_loopback();
        self.relay_ips
            .iter()
            .copied()
            .find(|ip| family_of(*ip) == family && (loopback_ok || !ip.is_loopback()))
    }

    /// The address a client is told for a relay or peer at `addr` (`external-ip`).
    pub fn advertised(&self, addr: SocketAddr) -> SocketAddr {
        match self.external.iter().find(|(real, _)| *real == addr.ip()) {
            Some((_, public)) => SocketAddr::new(*public, addr.port()),
            None => addr,
        }
    }

    /// The real socket address behind an address a client names (the inverse of `advertised`).
    pub fn internal(&self, addr: SocketAddr) -> SocketAddr {
        match self
            .external
            .iter()
            .find(|(_, public)| *public == addr.ip())
        {
            Some((real, _)) => SocketAddr::new(*real, addr.port()),
            None => addr,
        }
    }

    /// RFC 8656 §7.2 / §7.3: the default when absent, raised to the default (coturn), capped by
    /// `max-allocate-lifetime`.
    pub fn granted_lifetime(&self, requested: Option<u32>) -> u32 {
        requested
            .unwrap_or(DEFAULT_LIFETIME)
            .max(DEFAULT_LIFETIME)
            .min(self.max_lifetime.max(1))
    }

    /// The family of a relay when the request names none (`allocation-default-address-family`).
    pub(crate) fn default_family_for(&self, local: IpAddr) -> Family {
        match self.default_family {
            DefaultFamily::Ipv4 => Family::V4,
            DefaultFamily::Ipv6 => Family::V6,
            DefaultFamily::Keep => family_of(local),
        }
    }
}

/// `stale-nonce`: 0 means nonces never expire, as in coturn (deployment guides set it so);
/// they are still bound to the client's address and the process's key, and the nonce's
/// compact issue time is only resolved within its window (src/auth/nonce.rs), past which a
/// client is simply challenged again.
fn nonce_lifetime(configured: u32) -> u32 {
    if configured == 0 {
        u32::MAX
    } else {
        configured
    }
}

/// The (real, public) pairs of the `external-ip` lines over `relay_ips`, and what to warn about.
///
/// `PUBLIC/PRIVATE` advertises PRIVATE as PUBLIC. A bare PUBLIC (coturn allows one) is the
/// address of exactly one relay IP, so that a peer naming PUBLIC maps back to one socket: none
/// when PUBLIC is itself a relay IP (the host has it on an interface), else the first
/// non-loopback relay IP of its family, loopback only when there is no other. Every other relay
/// IP advertises itself. `host`: every address of this host.
fn external_pairs(
    relay_ips: &[IpAddr],
    external: &[ExternalIp],
    host: &[IpAddr],
) -> (Vec<(IpAddr, IpAddr)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    for ext in external {
        let public = ext.public;
        if let Some(private) = ext.private {
            if !relay_ips.contains(&private) {
                warnings.push(format!(
                    "external-ip {public}/{private}: {private} is not a relay address, so no \
                     relay is advertised as {public}"
                ));
            }
            pairs.push((private, public));
            continue;
        }
        if relay_ips.contains(&public) {
            continue;
        }
        let family = family_of(public);
        let of_family: Vec<IpAddr> = relay_ips
            .iter()
            .copied()
            .filter(|ip| family_of(*ip) == family)
            .collect();
        let routable: Vec<IpAddr> = of_family
            .iter()
            .copied()
            .filter(|ip| !ip.is_loopback())
            .collect();
        let Some(&real) = routable.first().or(of_family.first()) else {
            warnings.push(format!(
                "external-ip {public} is not used: no relay address is of its family"
            ));
            continue;
        };
        pairs.push((real, public));
        if addrs::is_local(public, host) {
            continue;
        }
        let mut warning = format!(
            "external-ip {public} is not an address of this host: advertised for relay \
             address {real}"
        );
        if routable.len() > 1 {
            let candidates: Vec<String> = routable.iter().map(ToString::to_string).collect();
            let _ = write!(
                warning,
                " (the first of the relay addresses {}; if the 1:1 NAT forwards {public} to \
                 another one, write external-ip={public}/PRIVATE)",
                candidates.join(", ")
            );
        }
        warnings.push(warning);
    }
    (pairs, warnings)
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("relay_ips", &self.relay_ips)
            .field("explicit_loopback", &self.explicit_loopback)
            .field("external", &self.external)
            .field("max_lifetime", &self.max_lifetime)
            .field("permission_lifetime", &self.permission_lifetime)
            .field("channel_lifetime", &self.channel_lifetime)
            .field("stale_nonce", &self.stale_nonce)
            .field("fingerprint", &self.fingerprint)
            .field("software", &self.software)
            .field("max_bps", &self.max_bps)
            .field("unauth_rps", &self.unauth_rps)
            .field("lookup_rps", &self.lookup_rps)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn bare(public: &str) -> ExternalIp {
        ExternalIp {
            public: ip(public),
            private: None,
        }
    }

    fn pair(public: &str, private: &str) -> ExternalIp {
        ExternalIp {
            public: ip(public),
            private: Some(ip(private)),
        }
    }

    /// A server listening on each of `addrs` (port 3478), which are also the host's addresses.
    fn settings(addrs: &[&str], external: Vec<ExternalIp>) -> Settings {
        let opts = Options {
            no_auth: true,
            external_ips: external,
            ..Options::default()
        };
        let listeners: Vec<SocketAddr> =
            addrs.iter().map(|a| SocketAddr::new(ip(a), 3478)).collect();
        let host: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        Settings::from_options(&opts, &listeners, &host).unwrap()
    }

    #[test]
    fn a_bare_public_address_on_an_interface_maps_nothing() {
        let s = settings(&["127.0.0.1", "203.0.113.10"], vec![bare("203.0.113.10")]);
        for addr in ["203.0.113.10:50000", "127.0.0.1:50000"] {
            assert_eq!(s.advertised(sa(addr)), sa(addr));
        }
        assert_eq!(
            s.internal(sa("203.0.113.10:50000")),
            sa("203.0.113.10:50000")
        );
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    }

    #[test]
    fn a_bare_public_address_behind_nat_is_the_first_non_loopback_relay() {
        // getifaddrs lists loopback first.
        let s = settings(&["127.0.0.1", "10.0.0.10"], vec![bare("203.0.113.10")]);
        assert_eq!(
            s.advertised(sa("10.0.0.10:50000")),
            sa("203.0.113.10:50000")
        );
        assert_eq!(
            s.advertised(sa("127.0.0.1:50000")),
            sa("127.0.0.1:50000"),
            "loopback advertises itself"
        );
        assert_eq!(s.internal(sa("203.0.113.10:10000")), sa("10.0.0.10:10000"));
        assert_eq!(
            s.warnings(),
            [
                "external-ip 203.0.113.10 is not an address of this host: advertised for relay \
              address 10.0.0.10"
            ]
        );
    }

    #[test]
    fn several_candidate_relays_are_named_in_the_warning() {
        let s = settings(
            &["127.0.0.1", "10.0.0.10", "172.17.0.1"],
            vec![bare("203.0.113.10")],
        );
        assert_eq!(
            s.advertised(sa("10.0.0.10:50000")),
            sa("203.0.113.10:50000")
        );
        assert_eq!(s.advertised(sa("172.17.0.1:50000")), sa("172.17.0.1:50000"));
        assert_eq!(s.internal(sa("203.0.113.10:1")), sa("10.0.0.10:1"));
        assert_eq!(
            s.warnings(),
            [
                "external-ip 203.0.113.10 is not an address of this host: advertised for relay \
              address 10.0.0.10 (the first of the relay addresses 10.0.0.10, 172.17.0.1; if the \
              1:1 NAT forwards 203.0.113.10 to another one, write \
              external-ip=203.0.113.10/PRIVATE)"
            ]
        );
    }

    #[test]
    fn loopback_carries_a_bare_public_address_only_when_it_is_the_only_relay() {
        let s = settings(&["127.0.0.1"], vec![bare("203.0.113.10")]);
        assert_eq!(
            s.advertised(sa("127.0.0.1:50000")),
            sa("203.0.113.10:50000")
        );
        assert_eq!(s.internal(sa("203.0.113.10:50000")), sa("127.0.0.1:50000"));
    }

    #[test]
    fn a_bare_public_address_of_the_host_that_is_no_relay_maps_without_a_warning() {
        let opts = Options {
            no_auth: true,
            external_ips: vec![bare("203.0.113.10")],
            ..Options::default()
        };
        let host = [ip("127.0.0.1"), ip("10.0.0.10"), ip("203.0.113.10")];
        let s = Settings::from_options(&opts, &[sa("10.0.0.10:3478")], &host).unwrap();
        assert_eq!(
            s.advertised(sa("10.0.0.10:50000")),
            sa("203.0.113.10:50000")
        );
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    }

    #[test]
    fn public_slash_private_maps_exactly_that_pair() {
        let s = settings(
            &["127.0.0.1", "10.0.0.10", "172.17.0.1"],
            vec![pair("203.0.113.10", "10.0.0.10")],
        );
        assert_eq!(
            s.advertised(sa("10.0.0.10:50000")),
            sa("203.0.113.10:50000")
        );
        assert_eq!(s.advertised(sa("172.17.0.1:50000")), sa("172.17.0.1:50000"));
        assert_eq!(s.internal(sa("203.0.113.10:9")), sa("10.0.0.10:9"));
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        let unused = settings(&["10.0.0.10"], vec![pair("203.0.113.10", "10.0.0.99")]);
        assert_eq!(
            unused.warnings(),
            ["external-ip 203.0.113.10/10.0.0.99: 10.0.0.99 is not a relay address, so no relay \
              is advertised as 203.0.113.10"]
        );
    }

    #[test]
    fn dual_stack_maps_each_family_apart() {
        let s = settings(
            &["127.0.0.1", "10.0.0.10", "::1", "2001:db8::10"],
            vec![bare("203.0.113.10")],
        );
        assert_eq!(s.advertised(sa("10.0.0.10:5")), sa("203.0.113.10:5"));
        assert_eq!(s.advertised(sa("[2001:db8::10]:5")), sa("[2001:db8::10]:5"));
        assert_eq!(s.internal(sa("[2001:db8::10]:5")), sa("[2001:db8::10]:5"));
        let v6 = settings(&["127.0.0.1", "10.0.0.10"], vec![bare("2001:db8::99")]);
        assert_eq!(v6.advertised(sa("10.0.0.10:5")), sa("10.0.0.10:5"));
        assert_eq!(
            v6.warnings(),
            ["external-ip 2001:db8::99 is not used: no relay address is of its family"]
        );
        let both = settings(
            &["::1", "fd00::10", "2001:db8::10"],
            vec![bare("2001:db8::99")],
        );
        assert_eq!(both.internal(sa("[2001:db8::99]:5")), sa("[fd00::10]:5"));
    }

    #[test]
    fn a_wildcard_relay_ip_stands_for_the_host_addresses_of_its_family() {
        let host = [ip("127.0.0.1"), ip("10.0.0.10"), ip("::1")];
        let mut opts = Options {
            no_auth: true,
            relay_ips: vec![ip("0.0.0.0")],
            ..Options::default()
        };
        let s = Settings::from_options(&opts, &[], &host).unwrap();
        assert_eq!(s.relay_ips(), [ip("127.0.0.1"), ip("10.0.0.10")]);
        assert_eq!(
            s.relay_ip(ip("192.0.2.1"), Family::V4),
            Some(ip("10.0.0.10")),
            "a loopback address from a wildcard serves loopback clients only"
        );
        assert_eq!(
            s.relay_ip(ip("127.0.0.1"), Family::V4),
            Some(ip("127.0.0.1"))
        );
        opts.relay_ips = vec![ip("::")];
        assert_eq!(
            Settings::from_options(&opts, &[], &[ip("127.0.0.1")]).unwrap_err(),
            "no relay address: set relay-ip (or listening-ip) to an address of this host"
        );
    }
}
