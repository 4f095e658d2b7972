//! Shard settings derived from the configuration: relay addresses (coturn `relay-ip`,
//! `external-ip`), lifetimes (RFC 8656 §7.2, §9, §11), credentials, the peer policy, and the
//! per-allocation and per-source limits (`max-bps`, `unauthorized-ratelimit`, `stun-only`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::allocation::family_of;
use crate::auth::{Credentials, Resolver};
use crate::config::{Config, DefaultFamily};
use crate::limits::PeerPolicy;
use crate::stun::Family;

/// RFC 8656 §7.2: the default lifetime, and coturn's floor for a requested one.
const DEFAULT_LIFETIME: u32 = 600;

/// Everything a shard needs that comes from the configuration; rebuilt on reload.
pub struct Settings {
    pub(crate) credentials: Credentials,
    /// The user database behind the static credentials, if one is configured.
    pub(crate) resolver: Option<Resolver>,
    pub(crate) policy: PeerPolicy,
    relay_ips: Vec<IpAddr>,
    /// Relay IPs came from the listeners: a loopback one only serves clients that came over
    /// loopback.
    derived: bool,
    /// (real relay IP, advertised public IP).
    external: Vec<(IpAddr, IpAddr)>,
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
    /// `stun-only`: TURN requests are ignored.
    pub(crate) stun_only: bool,
    /// `no-stun`: Binding requests are ignored.
    pub(crate) no_stun: bool,
    /// `secure-stun`: Binding requests must authenticate.
    pub(crate) secure_stun: bool,
    /// Where a draining server sends new allocations (300 ALTERNATE-SERVER): for UDP/TCP clients,
    /// and for TLS clients (`tls-alternate-server`).
    pub(crate) alternate: Option<SocketAddr>,
    pub(crate) tls_alternate: Option<SocketAddr>,
    /// `log-binding`: report every Binding request to the engine's log.
    pub(crate) log_binding: bool,
}

impl Settings {
    /// `listeners`: every transport address the server listens on (UDP, TCP and TLS), used for
    /// the relay addresses when `relay-ip` is empty, and by the peer policy to refuse relaying
    /// into the server's own control ports.
    pub fn from_config(cfg: &Config, listeners: &[SocketAddr]) -> Result<Settings, String> {
        let derived = cfg.relay_ips.is_empty();
        let mut relay_ips: Vec<IpAddr> = Vec::new();
        let candidates = if derived {
            listeners.iter().map(|l| l.ip()).collect()
        } else {
            cfg.relay_ips.clone()
        };
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
        let mut external = Vec::new();
        for ext in &cfg.external_ips {
            match ext.private {
                Some(private) => external.push((private, ext.public)),
                None => {
                    let same_family = |ip: &&IpAddr| family_of(**ip) == family_of(ext.public);
                    for ip in relay_ips.iter().filter(same_family) {
                        external.push((*ip, ext.public));
                    }
                }
            }
        }
        let mut own_ips = relay_ips.clone();
        own_ips.extend(external.iter().map(|(_, public)| *public));
        Ok(Settings {
            credentials: Credentials::from_config(cfg),
            resolver: Resolver::from_config(cfg)?,
            policy: PeerPolicy::from_config(cfg, listeners, &own_ips),
            relay_ips,
            derived,
            external,
            max_lifetime: cfg.max_allocate_lifetime,
            permission_lifetime: cfg.permission_lifetime,
            channel_lifetime: cfg.channel_lifetime,
            stale_nonce: cfg.stale_nonce,
            fingerprint: cfg.fingerprint,
            software: cfg.software_attribute,
            default_family: cfg.allocation_default_address_family,
            udp_relay: !cfg.no_udp_relay,
            tcp_relay: !cfg.no_tcp_relay,
            max_bps: cfg.max_bps,
            unauth_rps: if cfg.unauthorized_ratelimit {
                cfg.unauthorized_ratelimit_rps
            } else {
                0
            },
            stun_only: cfg.stun_only,
            no_stun: cfg.no_stun,
            secure_stun: cfg.secure_stun,
            alternate: cfg.alternate_servers.first().copied(),
            tls_alternate: cfg.tls_alternate_servers.first().copied(),
            log_binding: cfg.log_binding,
        })
    }

    /// The user database resolver, for the engine to register its shard wakers.
    pub fn resolver(&self) -> Option<&Resolver> {
        self.resolver.as_ref()
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
        let loopback_ok = !self.derived || local.is_loopback();
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

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("relay_ips", &self.relay_ips)
            .field("derived", &self.derived)
            .field("external", &self.external)
            .field("max_lifetime", &self.max_lifetime)
            .field("permission_lifetime", &self.permission_lifetime)
            .field("channel_lifetime", &self.channel_lifetime)
            .field("stale_nonce", &self.stale_nonce)
            .field("fingerprint", &self.fingerprint)
            .field("software", &self.software)
            .field("max_bps", &self.max_bps)
            .field("unauth_rps", &self.unauth_rps)
            .finish_non_exhaustive()
    }
}
