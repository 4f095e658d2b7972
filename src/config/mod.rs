//! Configuration: coturn's `turnserver.conf` syntax and command-line flags, into one typed,
//! validated [`Config`].
//!
//! The field set below is the contract between the parser and the rest of tern; the parser fills
//! it, every other module only reads it.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::stun::channel::ChannelRange;

mod apply;
mod check;
mod cli;
mod diag;
mod effective;
mod file;
mod help;
mod lexer;
mod load;
mod options;
mod proto;
mod redirect;
mod restart;
mod semantic;
mod table;
mod values;

pub use check::check_config;
pub use cli::{action, Action};
pub use diag::{Diagnostic, Location, Origins, Severity};
pub use file::{find_config_file, parse_str, SEARCH_DIRS};
pub use help::usage;
pub use load::{load, Loaded};
pub use options::{option, options, Arg, OptSpec, Status};
pub use restart::{needs_restart, NEEDS_RESTART};
pub use tern_proto::options::{
    Alternate, DefaultFamily, ExternalIp, IpRange, RedirectMode, User, UserSecret,
};
pub(crate) use values::ip_range;
pub use values::SYSLOG_FACILITIES;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IoEngine {
    #[default]
    Auto,
    Uring,
    Epoll,
}

/// Whether bound channels are relayed in the kernel (`fast-path`, docs/fast-path.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FastPath {
    /// On where the program loads; where it does not, one log line says why.
    Auto,
    /// Start-up fails when the program does not load.
    On,
    #[default]
    Off,
}

/// Where log lines go (`log-file`, `syslog`, `no-stdout-log`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LogTarget {
    #[default]
    Stdout,
    File(PathBuf),
    Syslog,
}

/// What an Allocate gets while `redis-statsdb` cannot be reached (`fleet-redis-down`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FleetDown {
    /// Allowed within this node's own quotas; logged once and counted.
    #[default]
    Open,
    /// Refused with 508 Insufficient Capacity.
    Closed,
}

/// tern's fleet options beside `redis-statsdb` (docs/fleet.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetOptions {
    /// `fleet-quotas`: `user-quota` and `total-quota` count every node's allocations.
    pub quotas: bool,
    /// `fleet-relay`: another node's public relay address is reached at its private one.
    pub relay: bool,
    /// `fleet-lease-time`: seconds a lease or node record lives without being refreshed.
    pub lease_s: u32,
    /// `fleet-redis-down`.
    pub when_down: FleetDown,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            quotas: false,
            relay: false,
            lease_s: 30,
            when_down: FleetDown::Open,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file this came from, if any.
    pub source: Option<PathBuf>,

    // Listening and relaying.
    pub listening_port: u16,
    pub tls_listening_port: u16,
    pub alt_listening_port: Option<u16>,
    pub alt_tls_listening_port: Option<u16>,
    /// Empty: every local address.
    pub listening_ips: Vec<IpAddr>,
    /// Empty: the listening addresses.
    pub relay_ips: Vec<IpAddr>,
    pub external_ips: Vec<ExternalIp>,
    pub min_port: u16,
    pub max_port: u16,
    pub no_udp: bool,
    pub no_tcp: bool,
    pub no_tls: bool,
    pub no_dtls: bool,
    pub no_udp_relay: bool,
    pub no_tcp_relay: bool,
    pub allocation_default_address_family: DefaultFamily,
    /// `relay-threads` / `cpus`; `None`: one shard per CPU. `relay-threads=0` (coturn: relay in
    /// the listener thread) is stored as one shard.
    pub relay_threads: Option<usize>,
    /// `cpus`: coturn's override of the CPU count; folded into `relay_threads` when
    /// `relay-threads` is not given.
    pub cpus: Option<usize>,
    pub io_engine: IoEngine,
    pub fast_path: FastPath,
    /// Where the fast path's XDP program runs besides TC (`fast-path-xdp`).
    pub fast_path_xdp: crate::fastpath::XdpMode,
    pub stun_only: bool,
    pub no_stun: bool,
    /// RFC 3489 clients (Binding without the magic cookie) are answered, and MAPPED-ADDRESS goes
    /// beside XOR-MAPPED-ADDRESS for the others, as coturn 4.6 does; off with
    /// `no-stun-backward-compatibility`.
    pub stun_backward_compatibility: bool,
    /// `channel-numbers`: the channel numbers a ChannelBind may take (tern; coturn's range by
    /// default).
    pub channel_numbers: ChannelRange,
    pub secure_stun: bool,
    pub fingerprint: bool,
    pub software_attribute: bool,

    // TLS.
    pub cert: PathBuf,
    pub pkey: PathBuf,
    pub pkey_pwd: Option<String>,
    pub cipher_list: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// `no-tlsv1_2`: TLS 1.3 only.
    pub no_tlsv1_2: bool,

    // Authentication.
    pub lt_cred_mech: bool,
    pub no_auth: bool,
    pub users: Vec<User>,
    pub realm: String,
    pub use_auth_secret: bool,
    pub static_auth_secrets: Vec<String>,
    pub rest_api_separator: char,
    pub userdb: Option<String>,
    pub redis_userdb: Option<String>,
    pub psql_userdb: Option<String>,
    /// tern: user database questions per source IP per second about names the database has not
    /// confirmed; 0 means no limit.
    pub userdb_lookup_rps: u32,
    /// tern: longer USERNAMEs are refused without asking the user database.
    pub userdb_max_username_length: usize,
    /// tern: the password algorithms offered (RFC 8489 §9.2), in order of preference. Only MD5
    /// (the default) offers nothing: 401s stay as RFC 5389 had them.
    pub password_algorithms: Vec<crate::auth::PasswordAlgorithm>,
    /// tern: USERHASH is accepted instead of USERNAME (RFC 8489 §9.2, username anonymity).
    pub userhash: bool,

    /// `redis-statsdb`: the Redis holding the fleet's leases and node records.
    pub redis_statsdb: Option<String>,
    pub fleet: FleetOptions,

    // Quotas, bandwidth, timers (seconds).
    pub user_quota: u32,
    pub total_quota: u32,
    pub max_bps: u64,
    pub bps_capacity: u64,
    pub stale_nonce: u32,
    pub max_allocate_lifetime: u32,
    pub channel_lifetime: u32,
    pub permission_lifetime: u32,
    pub max_allocate_timeout: u32,
    /// tern: open TCP/TLS client connections per source IP; 0 means no limit.
    pub stream_connections_per_ip: u32,
    /// tern: seconds from accept to a TCP/TLS connection's first complete message.
    pub stream_first_message_timeout: u32,
    /// tern: IPv6 clients are counted per prefix of this length for `stream-connections-per-ip`.
    pub stream_ipv6_prefix: u8,
    /// `unauthorized-ratelimit`: limit answers to unauthenticated senders per source IP (tern:
    /// on by default; coturn 4.7+ has it off).
    pub unauthorized_ratelimit: bool,
    /// `unauthorized-ratelimit-rps`: answers per source IP per second (10).
    pub unauthorized_ratelimit_rps: u32,

    // Peer access control.
    pub allowed_peer_ips: Vec<IpRange>,
    pub denied_peer_ips: Vec<IpRange>,
    pub allow_loopback_peers: bool,
    pub no_multicast_peers: bool,

    // Logging and process.
    pub log_target: LogTarget,
    pub no_stdout_log: bool,
    pub simple_log: bool,
    /// 0 normal, 1 `verbose`, 2 `Verbose`.
    pub verbose: u8,
    pub log_binding: bool,
    /// `syslog-facility`, normalised (`daemon`, `local0`..`local7`, ...); `None`: daemon.
    pub syslog_facility: Option<String>,
    /// `new-log-timestamp`: local wall-clock timestamps in `new_log_timestamp_format`.
    pub new_log_timestamp: bool,
    /// `new-log-timestamp-format` (strftime); `None`: coturn's `%FT%T%z`.
    pub new_log_timestamp_format: Option<String>,
    /// `drain-min-allocations`: a draining server exits once at most this many allocations live.
    pub drain_min_allocations: u64,
    pub pidfile: Option<PathBuf>,
    pub proc_user: Option<String>,
    pub proc_group: Option<String>,
    /// `alternate-server`: 300 redirect targets for clients whose transport has no list of its
    /// own.
    pub alternate_servers: Vec<Alternate>,
    /// `udp-alternate-server`, `tcp-alternate-server`: the lists for UDP and TCP clients.
    pub udp_alternate_servers: Vec<Alternate>,
    pub tcp_alternate_servers: Vec<Alternate>,
    /// `tls-alternate-server`: the list for TLS clients, with the ALTERNATE-DOMAIN of each.
    pub tls_alternate_servers: Vec<Alternate>,
    /// `alternate-server-mode`: when the lists are used.
    pub alternate_server_mode: RedirectMode,
    /// Options given that tern accepts and ignores by design (e.g. `no-cli`), for check-config.
    pub ignored_options: Vec<String>,
    /// Where each value was given, for checks across options to name the line.
    pub origins: Origins,

    // Prometheus.
    pub prometheus: bool,
    pub prometheus_port: u16,
    pub prometheus_address: Option<IpAddr>,
    pub prometheus_path: String,
    pub prometheus_username_labels: bool,
}

impl Default for Config {
    /// coturn's defaults, except where tern is deliberately safer (docs/migrating-from-coturn.md).
    fn default() -> Self {
        Config {
            source: None,
            listening_port: 3478,
            tls_listening_port: 5349,
            alt_listening_port: None,
            alt_tls_listening_port: None,
            listening_ips: Vec::new(),
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            no_dtls: false,
            no_udp_relay: false,
            no_tcp_relay: false,
            allocation_default_address_family: DefaultFamily::Ipv4,
            relay_threads: None,
            cpus: None,
            io_engine: IoEngine::Auto,
            fast_path: FastPath::Off,
            fast_path_xdp: crate::fastpath::XdpMode::Auto,
            stun_only: false,
            no_stun: false,
            stun_backward_compatibility: true,
            channel_numbers: ChannelRange::Rfc5766,
            secure_stun: false,
            fingerprint: false,
            software_attribute: true,
            cert: PathBuf::from("turn_server_cert.pem"),
            pkey: PathBuf::from("turn_server_pkey.pem"),
            pkey_pwd: None,
            cipher_list: None,
            ca_file: None,
            no_tlsv1_2: false,
            lt_cred_mech: false,
            no_auth: false,
            users: Vec::new(),
            realm: String::new(),
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            rest_api_separator: ':',
            userdb: None,
            redis_userdb: None,
            psql_userdb: None,
            userdb_lookup_rps: 10,
            userdb_max_username_length: crate::auth::DEFAULT_MAX_NAME,
            password_algorithms: vec![crate::auth::PasswordAlgorithm::Md5],
            userhash: false,
            redis_statsdb: None,
            fleet: FleetOptions::default(),
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            stale_nonce: 600,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            max_allocate_timeout: 60,
            stream_connections_per_ip: 512,
            stream_first_message_timeout: 10,
            stream_ipv6_prefix: 64,
            unauthorized_ratelimit: true,
            unauthorized_ratelimit_rps: crate::limits::DEFAULT_PER_SECOND,
            allowed_peer_ips: Vec::new(),
            denied_peer_ips: Vec::new(),
            allow_loopback_peers: false,
            no_multicast_peers: false,
            log_target: LogTarget::Stdout,
            no_stdout_log: false,
            simple_log: false,
            verbose: 0,
            log_binding: false,
            syslog_facility: None,
            new_log_timestamp: false,
            new_log_timestamp_format: None,
            drain_min_allocations: 0,
            pidfile: None,
            proc_user: None,
            proc_group: None,
            alternate_servers: Vec::new(),
            udp_alternate_servers: Vec::new(),
            tcp_alternate_servers: Vec::new(),
            tls_alternate_servers: Vec::new(),
            alternate_server_mode: RedirectMode::Always,
            ignored_options: Vec::new(),
            origins: Origins::default(),
            prometheus: false,
            prometheus_port: 9641,
            prometheus_address: None,
            prometheus_path: String::from("/metrics"),
            prometheus_username_labels: false,
        }
    }
}
