//! What the protocol core is told by whoever runs it: the settings of the shards, the peer
//! policy, the credentials, the quotas and the redirects, as plain values with documented
//! defaults. The server fills [`Options`] from `turnserver.conf` and coturn's flags; this crate
//! never parses a configuration file and never sees the server's `Options`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::auth::PasswordAlgorithm;
use crate::limits::DEFAULT_PER_SECOND;
use crate::stun::channel::ChannelRange;

/// An inclusive range of addresses of one family, from `IP`, `IP1-IP2` or `IP/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// `external-ip=PUB` or `external-ip=PUB/PRIV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalIp {
    pub public: IpAddr,
    pub private: Option<IpAddr>,
}

/// What a `user=` line gives: the plain password, the MD5 long-term key `0x<32 hex>` or the
/// SHA-256 long-term key `0x<64 hex>` (RFC 8489 §9.2.2).
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    Password(String),
    Key([u8; 16]),
    Sha256Key([u8; 32]),
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserSecret::Password(_) => "Password(..)",
            UserSecret::Key(_) => "Key(..)",
            UserSecret::Sha256Key(_) => "Sha256Key(..)",
        })
    }
}

/// A static user (`user=NAME:SECRET`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub secret: UserSecret,
}

/// The family of a relay when an Allocate names none (`allocation-default-address-family`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DefaultFamily {
    #[default]
    Ipv4,
    Ipv6,
    /// The family of the address the client reached.
    Keep,
}

/// When the alternate servers are used (`alternate-server-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RedirectMode {
    /// coturn's meaning: every new allocation is redirected (a redirector in front of a pool).
    #[default]
    Always,
    /// Only while draining (SIGUSR1): the list is where clients go during maintenance.
    Draining,
    /// While draining, and while this node is full: `total-quota` or the file-descriptor
    /// ceiling reached, or `bps-capacity` spent.
    Full,
}

impl RedirectMode {
    pub fn name(self) -> &'static str {
        match self {
            RedirectMode::Always => "always",
            RedirectMode::Draining => "draining",
            RedirectMode::Full => "full",
        }
    }
}

impl fmt::Display for RedirectMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One alternate server: its address, and for a TLS alternate the name its certificate is
/// checked against (`tls-alternate-server=NAME@IP:PORT`), sent as ALTERNATE-DOMAIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alternate {
    pub addr: SocketAddr,
    pub domain: Option<String>,
}

impl Alternate {
    pub fn new(addr: SocketAddr) -> Alternate {
        Alternate { addr, domain: None }
    }
}

impl fmt::Display for Alternate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{d}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Everything the core takes from the operator. Field names are coturn's option names with `_`
/// for `-`; the defaults are coturn's, except where tern is deliberately safer (the server's
/// docs/migrating-from-coturn.md lists where).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `listening-port`, `tls-listening-port` and the alternates: never relayed to on this host.
    pub listening_port: u16,
    pub tls_listening_port: u16,
    pub alt_listening_port: Option<u16>,
    pub alt_tls_listening_port: Option<u16>,
    /// `listening-ip`; empty: every address of the host.
    pub listening_ips: Vec<IpAddr>,
    /// `relay-ip`; empty: the listening addresses. A wildcard stands for the host's addresses.
    pub relay_ips: Vec<IpAddr>,
    /// `external-ip`: the 1:1 NAT in front of the relay addresses.
    pub external_ips: Vec<ExternalIp>,
    /// `min-port`..=`max-port`: the relay port range.
    pub min_port: u16,
    pub max_port: u16,
    pub no_udp_relay: bool,
    /// RFC 6062 TCP relay allocations are refused.
    pub no_tcp_relay: bool,
    pub allocation_default_address_family: DefaultFamily,
    /// `stun-only`: TURN requests are ignored.
    pub stun_only: bool,
    /// `no-stun`: Binding requests are ignored.
    pub no_stun: bool,
    /// Answer RFC 3489 Binding requests; MAPPED-ADDRESS in every Binding answer.
    pub stun_backward_compatibility: bool,
    /// `channel-numbers`: what a ChannelBind may take.
    pub channel_numbers: ChannelRange,
    /// `secure-stun`: Binding requests must authenticate.
    pub secure_stun: bool,
    pub fingerprint: bool,
    /// SOFTWARE in answers (`no-software-attribute` turns it off).
    pub software_attribute: bool,
    /// `no-auth`: no credentials are asked for.
    pub no_auth: bool,
    pub users: Vec<User>,
    pub realm: String,
    /// TURN REST credentials (`use-auth-secret`) under `static-auth-secret` (every one tried).
    pub use_auth_secret: bool,
    pub static_auth_secrets: Vec<String>,
    pub rest_api_separator: char,
    /// Questions to the user database about unconfirmed names per source IP per second.
    pub userdb_lookup_rps: u32,
    /// The password algorithms offered (RFC 8489 §9.2.4), in order.
    pub password_algorithms: Vec<PasswordAlgorithm>,
    /// USERHASH accepted (RFC 8489 §14.4).
    pub userhash: bool,
    /// Allocations per user and in all; 0 unlimited.
    pub user_quota: u32,
    pub total_quota: u32,
    /// Bytes/s per allocation and direction; 0 unlimited.
    pub max_bps: u64,
    /// Bytes/s of the whole server; 0 unlimited.
    pub bps_capacity: u64,
    /// Seconds a nonce lives; 0: for ever (coturn).
    pub stale_nonce: u32,
    pub max_allocate_lifetime: u32,
    pub channel_lifetime: u32,
    pub permission_lifetime: u32,
    /// Answers to an unauthenticated UDP source are rate limited to this many per second.
    pub unauthorized_ratelimit: bool,
    pub unauthorized_ratelimit_rps: u32,
    /// `allowed-peer-ip` and `denied-peer-ip`.
    pub allowed_peer_ips: Vec<IpRange>,
    pub denied_peer_ips: Vec<IpRange>,
    pub allow_loopback_peers: bool,
    pub no_multicast_peers: bool,
    /// `log-binding`: every Binding request is reported.
    pub log_binding: bool,
    /// The Prometheus listener, never relayed to on this host.
    pub prometheus: bool,
    pub prometheus_port: u16,
    pub prometheus_address: Option<IpAddr>,
    /// `alternate-server` and the lists of one transport (300 Try Alternate).
    pub alternate_servers: Vec<Alternate>,
    pub udp_alternate_servers: Vec<Alternate>,
    pub tcp_alternate_servers: Vec<Alternate>,
    pub tls_alternate_servers: Vec<Alternate>,
    pub alternate_server_mode: RedirectMode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listening_port: 3478,
            tls_listening_port: 5349,
            alt_listening_port: None,
            alt_tls_listening_port: None,
            listening_ips: Vec::new(),
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            no_udp_relay: false,
            no_tcp_relay: false,
            allocation_default_address_family: DefaultFamily::Ipv4,
            stun_only: false,
            no_stun: false,
            stun_backward_compatibility: true,
            channel_numbers: ChannelRange::Rfc5766,
            secure_stun: false,
            fingerprint: false,
            software_attribute: true,
            no_auth: false,
            users: Vec::new(),
            realm: String::new(),
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            rest_api_separator: ':',
            userdb_lookup_rps: 10,
            password_algorithms: vec![PasswordAlgorithm::Md5],
            userhash: false,
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            stale_nonce: 600,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            unauthorized_ratelimit: true,
            unauthorized_ratelimit_rps: DEFAULT_PER_SECOND,
            allowed_peer_ips: Vec::new(),
            denied_peer_ips: Vec::new(),
            allow_loopback_peers: false,
            no_multicast_peers: false,
            log_binding: false,
            prometheus: false,
            prometheus_port: 9641,
            prometheus_address: None,
            alternate_servers: Vec::new(),
            udp_alternate_servers: Vec::new(),
            tcp_alternate_servers: Vec::new(),
            tls_alternate_servers: Vec::new(),
            alternate_server_mode: RedirectMode::Always,
        }
    }
}
