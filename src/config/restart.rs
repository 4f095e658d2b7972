//! Which options a running server keeps until it restarts: those that shape sockets, threads,
//! TLS listeners or the process. Every other option is applied by SIGHUP (the reload log and
//! the manual page name these).

/// Options a SIGHUP does not change, by their `turnserver.conf` name.
pub const NEEDS_RESTART: &[&str] = &[
    "listening-port",
    "tls-listening-port",
    "alt-listening-port",
    "alt-tls-listening-port",
    "listening-ip",
    "min-port",
    "max-port",
    "no-udp",
    "no-tcp",
    "no-tls",
    "no-dtls",
    "relay-threads",
    "io-engine",
    "cert",
    "pkey",
    "pkey-pwd",
    "cipher-list",
    "CA-file",
    "no-tlsv1_2",
    "max-allocate-timeout",
    "stream-first-message-timeout",
    "stream-connections-per-ip",
    "stream-ipv6-prefix",
    "log-file",
    "no-stdout-log",
    "simple-log",
    "verbose",
    "Verbose",
    "syslog-facility",
    "new-log-timestamp",
    "new-log-timestamp-format",
    "pidfile",
    "proc-user",
    "proc-group",
    "prometheus",
    "prometheus-port",
    "prometheus-address",
    "prometheus-path",
    "prometheus-username-labels",
    "userdb",
    "psql-userdb",
    "redis-userdb",
    "redis-statsdb",
    "fleet-quotas",
    "fleet-relay",
    "fleet-lease-time",
    "fleet-redis-down",
];

/// Whether changing `option` takes a restart (see [`NEEDS_RESTART`]).
pub fn needs_restart(option: &str) -> bool {
    NEEDS_RESTART.contains(&option)
}
