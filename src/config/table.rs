//! The option table: every option name of coturn 4.6.1 and upstream coturn 4.17, plus tern's
//! `io-engine`, `fast-path` and `stream-connections-per-ip`. It drives the file parser, the flags, `--help` and "did you mean".

use super::options::{Arg, OptSpec as O};
use super::redirect;
use super::values as v;
use super::LogTarget;

/// Ignored options' help says why; not-implemented ones say what coturn does with them.
pub(crate) static OPTIONS: &[O] = &[
    // Listening and relaying.
    O::value("listening-port", |c, s| {
        v::port(s).map(|p| c.listening_port = p)
    })
    .short('p')
    .help("UDP and TCP listener port (3478; 0 picks a free port)"),
    O::value("tls-listening-port", |c, s| {
        v::port(s).map(|p| c.tls_listening_port = p)
    })
    .help("TLS listener port (5349)"),
    O::value("alt-listening-port", |c, s| {
        v::alt_port(s).map(|p| c.alt_listening_port = p)
    })
    .help("RFC 5780 alternative port (0: listening port + 1)"),
    O::value("alt-tls-listening-port", |c, s| {
        v::alt_port(s).map(|p| c.alt_tls_listening_port = p)
    })
    .help("RFC 5780 alternative TLS port (0: TLS port + 1)"),
    O::value("listening-ip", |c, s| {
        v::ip(s).map(|a| c.listening_ips.push(a))
    })
    .short('L')
    .repeats()
    .help("listener IP (default: every local address; 0.0.0.0 or ::, every one of that family)"),
    O::value("relay-ip", |c, s| v::ip(s).map(|a| c.relay_ips.push(a)))
        .short('E')
        .repeats()
        .help("relay IP (default: the listening IPs; 0.0.0.0 or ::, all local IPs of that family)"),
    O::value("external-ip", |c, s| {
        v::external_ip(s).map(|x| c.external_ips.push(x))
    })
    .short('X')
    .repeats()
    .help("1:1 NAT: PUB/PRIV (PRIV on this host), or PUB for the first non-loopback relay IP"),
    O::value("min-port", |c, s| v::relay_port(s).map(|p| c.min_port = p))
        .help("lowest relay port (49152)"),
    O::value("max-port", |c, s| v::relay_port(s).map(|p| c.max_port = p))
        .help("highest relay port (65535)"),
    O::flag("no-udp", |c, b| c.no_udp = b).help("no UDP client listeners"),
    O::flag("no-tcp", |c, b| c.no_tcp = b).help("no TCP client listeners"),
    O::flag("no-tls", |c, b| c.no_tls = b).help("no TLS client listeners"),
    O::flag("no-dtls", |c, b| c.no_dtls = b).help("no DTLS client listeners"),
    O::flag("no-udp-relay", |c, b| c.no_udp_relay = b).help("refuse UDP relay allocations"),
    O::flag("no-tcp-relay", |c, b| c.no_tcp_relay = b)
        .help("refuse TCP relay allocations (RFC 6062)"),
    O::value("allocation-default-address-family", |c, s| {
        v::family(s).map(|f| c.allocation_default_address_family = f)
    })
    .short('A')
    .help("relay family when the client asks for none: ipv4, ipv6 or keep"),
    O::flag("keep-address-family", |c, b| {
        if b {
            c.allocation_default_address_family = super::DefaultFamily::Keep;
        }
    })
    .short('K')
    .help("deprecated: allocation-default-address-family=keep"),
    O::value("relay-threads", |c, s| {
        v::threads(s).map(|n| c.relay_threads = Some(n))
    })
    .short('m')
    .help("number of relay shards (default: one per CPU)"),
    O::value("cpus", |c, s| v::threads(s).map(|n| c.cpus = Some(n)))
        .help("CPU count to size the shards by when relay-threads is not set"),
    O::value("io-engine", |c, s| v::io_engine(s).map(|e| c.io_engine = e))
        .help("tern: I/O driver: auto, uring or epoll"),
    O::value("fast-path", |c, s| v::fast_path(s).map(|f| c.fast_path = f))
        .help("tern: relay bound channels in the kernel (eBPF): auto, on or off (off)"),
    O::value("fast-path-xdp", |c, s| v::fast_path_xdp(s).map(|x| c.fast_path_xdp = x))
        .help("tern: the fast path at XDP too: auto (not on veths), on or off (auto)"),
    O::flag("stun-only", |c, b| c.stun_only = b)
        .short('S')
        .help("STUN only, no TURN"),
    O::flag("no-stun", |c, b| c.no_stun = b).help("TURN only, no STUN Binding"),
    O::flag("secure-stun", |c, b| c.secure_stun = b)
        .help("require authentication for STUN Binding"),
    O::flag("fingerprint", |c, b| c.fingerprint = b)
        .short('f')
        .help("add FINGERPRINT to responses"),
    O::flag("software-attribute", |c, b| c.software_attribute = b)
        .help("send the SOFTWARE attribute (on)"),
    O::flag("no-software-attribute", |c, b| c.software_attribute = !b)
        .help("do not send the SOFTWARE attribute"),
    O::flag("prod", |c, b| c.software_attribute = !b)
        .help("coturn 4.6.1's old name of no-software-attribute"),
    O::refused("listening-device", Arg::Required)
        .short('d')
        .help("bind listeners to a device (coturn then serves that device's clients only)"),
    O::refused("relay-device", Arg::Required)
        .short('i')
        .help("bind relay sockets to a network device (coturn then reaches peers through it only)"),
    O::todo("tcp-proxy-port", Arg::Required)
        .help("HAProxy PROXY-protocol listener port (tern opens no such listener)"),
    O::todo("aux-server", Arg::Required)
        .repeats()
        .help("auxiliary listener IP:port"),
    O::todo("udp-self-balance", Arg::Flag).help("balance UDP over aux servers"),
    O::todo("rfc5780", Arg::Flag).help("RFC 5780 NAT behaviour discovery"),
    O::ignored("no-rfc5780", Arg::Flag)
        .coturn_ignores_value()
        .help("tern does not do RFC 5780 discovery"),
    O::flag("stun-backward-compatibility", |c, b| {
        c.stun_backward_compatibility = b
    })
    .help(
        "answer RFC 3489 Binding requests (no magic cookie) with MAPPED-ADDRESS, and add \
         MAPPED-ADDRESS to RFC 5389 Binding answers (the default, as coturn 4.6)",
    ),
    O::flag("no-stun-backward-compatibility", |c, b| {
        c.stun_backward_compatibility = !b
    })
    .help("ignore RFC 3489 Binding requests and answer with XOR-MAPPED-ADDRESS only"),
    O::value("channel-numbers", |c, s| {
        v::channel_range(s).map(|r| c.channel_numbers = r)
    })
    .help(
        "tern: channel numbers a ChannelBind may take: rfc5766 (0x4000-0x7FFF, as coturn; the \
         default) or rfc8656 (0x4000-0x4FFF; the rest answered 400 and their ChannelData dropped)",
    ),
    O::ignored("response-origin-only-with-rfc5780", Arg::Flag)
        .help("tern sends RESPONSE-ORIGIN only with RFC 5780"),
    O::todo("mobility", Arg::Flag)
        .help("ICE mobility (MICE); tern lets no client take over an allocation"),
    O::todo("server-relay", Arg::Flag)
        .help("skip permission checks on relay endpoints (tern always checks them)"),
    O::todo("ne", Arg::Required).help("coturn's network engine type (see io-engine)"),
    O::todo("respond-http-unsupported", Arg::Flag).help("answer HTTP on TURN ports with 400"),
    O::ignored("drop-invalid-packets", Arg::Flag).help("tern always drops malformed packets"),
    O::todo("drop-invalid-packets-log", Arg::Flag).help("log dropped malformed packets"),
    O::todo("include-reason-string", Arg::Flag).help("reason phrases in error responses"),
    O::ignored("stateless-nonce", Arg::Flag).help("tern's nonces are always stateless"),
    O::flag("unauthorized-ratelimit", |c, b| {
        c.unauthorized_ratelimit = b
    })
    .help("rate-limit answers to unauthenticated senders per source IP (tern: on)"),
    O::value("unauthorized-ratelimit-rps", |c, s| {
        v::u32_value(s).map(|n| c.unauthorized_ratelimit_rps = n)
    })
    .help("answers to unauthenticated senders per source IP per second (100; 0: unlimited)"),
    O::ignored("udp-recvmmsg", Arg::Flag).help("tern batches datagrams itself (io-engine)"),
    O::ignored("udp-sendmmsg", Arg::Flag).help("tern batches datagrams itself (io-engine)"),
    O::ignored("udp-gso", Arg::Flag).help("tern batches datagrams itself (io-engine)"),
    O::todo("sock-buf-size", Arg::Required).help("socket buffer size"),
    O::todo("multiplex-peer", Arg::Flag).help("share relay sockets between peers"),
    // TLS.
    O::value("cert", |c, s| v::path(s).map(|p| c.cert = p))
        .help("TLS certificate chain, PEM (turn_server_cert.pem)"),
    O::value("pkey", |c, s| v::path(s).map(|p| c.pkey = p))
        .help("TLS private key, PEM (turn_server_pkey.pem)"),
    O::value("pkey-pwd", |c, s| v::text(s).map(|p| c.pkey_pwd = Some(p)))
        .help("password of an encrypted private key")
        .pending(),
    O::value("cipher-list", |c, s| {
        v::text(s).map(|p| c.cipher_list = Some(p))
    })
    .help("OpenSSL cipher list, mapped onto what tern's TLS offers"),
    O::value("CA-file", |c, s| v::path(s).map(|p| c.ca_file = Some(p)))
        .help("CA bundle, PEM: TLS clients must present a certificate issued by one of its CAs"),
    O::flag("no-tlsv1_2", |c, b| c.no_tlsv1_2 = b).help("TLS 1.3 only"),
    O::ignored("no-tlsv1", Arg::Flag).help("tern offers TLS 1.2 and 1.3 only"),
    O::ignored("no-tlsv1_1", Arg::Flag).help("tern offers TLS 1.2 and 1.3 only"),
    O::ignored("no-sslv2", Arg::Flag).help("tern offers TLS 1.2 and 1.3 only"),
    O::ignored("no-sslv3", Arg::Flag).help("tern offers TLS 1.2 and 1.3 only"),
    O::todo("tlsv1", Arg::Flag).help("allow TLS 1.0 (tern: never, which admits fewer clients)"),
    O::todo("tlsv1_1", Arg::Flag).help("allow TLS 1.1 (tern: never, which admits fewer clients)"),
    O::todo("ec-curve-name", Arg::Required).help("ECDH curve"),
    O::ignored("dh566", Arg::Flag).help("tern offers no finite-field DH"),
    O::ignored("dh1066", Arg::Flag).help("tern offers no finite-field DH"),
    O::ignored("dh2066", Arg::Flag).help("tern offers no finite-field DH"),
    O::ignored("dh-file", Arg::Required).help("tern offers no finite-field DH"),
    O::todo("raw-public-keys", Arg::Flag).help("RFC 7250 raw public keys"),
    // Authentication.
    O::flag("lt-cred-mech", |c, b| c.lt_cred_mech = b)
        .short('a')
        .help("long-term credentials (on when a user is given)"),
    O::flag("no-auth", |c, b| c.no_auth = b).short('z').help(
        "no authentication: an open relay (tern refuses to start without an auth mode otherwise)",
    ),
    O::value("user", |c, s| v::user(s).map(|u| c.users.push(u)))
        .short('u')
        .repeats()
        .last()
        .help("name:password or name:0x<32 hex key>"),
    O::value("realm", |c, s| v::text(s).map(|r| c.realm = r))
        .short('r')
        .help("realm of the long-term credentials"),
    O::flag("use-auth-secret", |c, b| c.use_auth_secret = b)
        .coturn_ignores_value()
        .help("TURN REST API credentials"),
    O::value("static-auth-secret", |c, s| {
        v::text(s).map(|x| {
            c.static_auth_secrets.push(x);
            c.use_auth_secret = true;
        })
    })
    .repeats()
    .help("TURN REST API shared secret; every one is tried (rotation)"),
    O::value("rest-api-separator", |c, s| {
        v::separator(s).map(|x| c.rest_api_separator = x)
    })
    .short('C')
    .help("separator of expiry and user in REST usernames (:)"),
    O::value("userdb", |c, s| v::text(s).map(|x| c.userdb = Some(x)))
        .short('b')
        .help("SQLite user database file (coturn's schema, as turnadmin -b writes it)"),
    O::value("db", |c, s| v::text(s).map(|x| c.userdb = Some(x))).help("same as userdb"),
    O::value("psql-userdb", |c, s| {
        v::text(s).map(|x| c.psql_userdb = Some(x))
    })
    .short('e')
    .help("PostgreSQL user database: a libpq connection string (coturn's schema)"),
    O::value("sql-userdb", |c, s| {
        v::text(s).map(|x| c.psql_userdb = Some(x))
    })
    .help("same as psql-userdb"),
    O::value("redis-userdb", |c, s| {
        v::text(s).map(|x| c.redis_userdb = Some(x))
    })
    .short('N')
    .help("Redis user database: \"ip=.. port=.. dbname=.. password=.. connect_timeout=..\""),
    O::value("userdb-lookup-rps", |c, s| {
        v::u32_value(s).map(|n| c.userdb_lookup_rps = n)
    })
    .help("tern: user database lookups of uncached names per source IP and second (10; 0: off)"),
    O::value("userdb-max-username-length", |c, s| {
        v::username_length(s).map(|n| c.userdb_max_username_length = n)
    })
    .help("tern: longer USERNAMEs are refused without a user database lookup (128; 1-512)"),
    O::value("password-algorithms", |c, s| {
        v::password_algorithms(s).map(|x| c.password_algorithms = x)
    })
    .help(
        "tern: RFC 8489 password algorithms offered, preferred first (md5; sha256,md5 offers \
         SHA-256 keys and keeps MD5 for clients that do not negotiate, every browser)",
    ),
    O::flag("userhash", |c, b| c.userhash = b)
        .help("tern: accept USERHASH instead of USERNAME (RFC 8489 username anonymity)"),
    O::refused("mysql-userdb", Arg::Required)
        .short('M')
        .help("MySQL user database (its users, secrets and peer lists decide who relays where)"),
    O::refused("mongo-userdb", Arg::Required)
        .short('J')
        .help("MongoDB user database (its users, secrets and peer lists decide who relays where)"),
    O::value("redis-statsdb", |c, s| {
        crate::auth::db::RedisParams::parse_value(s).map(|_| c.redis_statsdb = Some(s.to_owned()))
    })
    .short('O')
    .help("Redis for the fleet's shared state (docs/fleet.md); same form as redis-userdb"),
    O::flag("fleet-quotas", |c, b| c.fleet.quotas = b)
        .help("tern: user-quota and total-quota count the whole fleet's allocations (redis-statsdb)"),
    O::flag("fleet-relay", |c, b| c.fleet.relay = b)
        .help("tern: relay to other nodes' external-ip through their private addresses (redis-statsdb)"),
    O::value("fleet-lease-time", |c, s| {
        v::fleet_lease(s).map(|n| c.fleet.lease_s = n)
    })
    .help("tern: seconds a dead node's allocations and node record outlive it in Redis (30; 3-3600)"),
    O::value("fleet-redis-down", |c, s| {
        v::fleet_down(s).map(|d| c.fleet.when_down = d)
    })
    .help("tern: Allocate while redis-statsdb is unreachable: open (local quotas only) or closed (508)"),
    O::todo("secret-key-file", Arg::Required).help("AES key for encrypted MySQL passwords"),
    O::todo("secret-ts-exp-time", Arg::Required)
        .help("REST timestamp expiry (deprecated; coturn ignores it too)"),
    O::ignored("no-auth-pings", Arg::Flag)
        .coturn_ignores_value()
        .help("tern has no dynamic secret tables to ping"),
    O::ignored("no-dynamic-ip-list", Arg::Flag)
        .coturn_ignores_value()
        .help("coturn then skips the database's peer lists; tern applies them"),
    O::ignored("no-dynamic-realms", Arg::Flag)
        .coturn_ignores_value()
        .help("tern reads realms from the configuration only"),
    O::todo("oauth", Arg::Flag).help("OAuth (RFC 7635); tern admits no OAuth tokens"),
    O::todo("server-name", Arg::Required).help("OAuth server name; tern admits no OAuth tokens"),
    O::refused("check-origin-consistency", Arg::Flag)
        .help("refuse requests whose ORIGIN differs from the session's"),
    // Quotas, bandwidth, timers.
    O::value("user-quota", |c, s| {
        v::u32_value(s).map(|n| c.user_quota = n)
    })
    .short('q')
    .help("concurrent allocations per user (0: unlimited)"),
    O::value("total-quota", |c, s| {
        v::u32_value(s).map(|n| c.total_quota = n)
    })
    .short('Q')
    .help("concurrent allocations in total (0: unlimited)"),
    O::value("max-bps", |c, s| v::u64_value(s).map(|n| c.max_bps = n))
        .short('s')
        .help("bytes/s per allocation per direction (0: unlimited)"),
    O::value("bps-capacity", |c, s| {
        v::u64_value(s).map(|n| c.bps_capacity = n)
    })
    .short('B')
    .help("bytes/s for the whole server (needs max-bps)"),
    O::opt_value("stale-nonce", |c, s| {
        v::u32_or(s, 600).map(|n| c.stale_nonce = n)
    })
    .help("nonce lifetime in seconds (600); 0: nonces never expire"),
    O::opt_value("max-allocate-lifetime", |c, s| {
        v::u32_or(s, 3600).map(|n| c.max_allocate_lifetime = n)
    })
    .help("longest allocation lifetime in seconds (3600)"),
    O::opt_value("channel-lifetime", |c, s| {
        v::u32_or(s, 600).map(|n| c.channel_lifetime = n)
    })
    .help("channel binding lifetime in seconds (600)"),
    O::opt_value("permission-lifetime", |c, s| {
        v::u32_or(s, 300).map(|n| c.permission_lifetime = n)
    })
    .help("permission lifetime in seconds (300)"),
    O::value("max-allocate-timeout", |c, s| {
        v::u32_value(s).map(|n| c.max_allocate_timeout = n)
    })
    .help("seconds from accept a TCP/TLS connection may stay without an allocation (60)"),
    O::value("stream-first-message-timeout", |c, s| {
        v::u32_value(s).map(|n| c.stream_first_message_timeout = n)
    })
    .help("tern: seconds from accept to a TCP/TLS connection's first complete message (10)"),
    O::value("stream-connections-per-ip", |c, s| {
        v::u32_value(s).map(|n| c.stream_connections_per_ip = n)
    })
    .help("tern: open TCP/TLS client connections per source IP (512; 0: no limit)"),
    O::value("stream-ipv6-prefix", |c, s| {
        v::ipv6_prefix(s).map(|n| c.stream_ipv6_prefix = n)
    })
    .help("tern: IPv6 clients count per prefix of this length for stream-connections-per-ip (64)"),
    O::value("drain-min-allocations", |c, s| {
        v::u64_value(s).map(|n| c.drain_min_allocations = n)
    })
    .help("drain (SIGUSR1): exit once at most this many allocations remain (0)"),
    // Peer access control.
    O::value("allowed-peer-ip", |c, s| {
        v::ip_range(s).map(|r| c.allowed_peer_ips.push(r))
    })
    .repeats()
    .help("peer IP, IP1-IP2 or CIDR admitted (over denied, private ranges, this host over TCP)"),
    O::value("denied-peer-ip", |c, s| {
        v::ip_range(s).map(|r| c.denied_peer_ips.push(r))
    })
    .repeats()
    .help("peer IP, IP1-IP2 or CIDR refused"),
    O::flag("allow-loopback-peers", |c, b| c.allow_loopback_peers = b)
        .help("allow peers on 127.0.0.0/8 and ::1"),
    O::flag("no-multicast-peers", |c, b| c.no_multicast_peers = b)
        .help("refuse multicast peers (tern always does)"),
    O::ignored("no-loopback-peers", Arg::Flag).help("tern refuses loopback peers by default"),
    // Logging and process.
    O::value("log-file", |c, s| {
        v::log_target(s).map(|t| c.log_target = t)
    })
    .short('l')
    .help("log to PATH, stdout, - or syslog"),
    O::flag("no-stdout-log", |c, b| c.no_stdout_log = b).help("do not also log to stdout"),
    O::flag("syslog", |c, b| {
        if b {
            c.log_target = LogTarget::Syslog;
        } else if c.log_target == LogTarget::Syslog {
            c.log_target = LogTarget::Stdout;
        }
    })
    .help("log to syslog"),
    O::flag("simple-log", |c, b| c.simple_log = b).help("no log file rotation suffixes"),
    O::flag("verbose", |c, b| {
        c.verbose = if b { c.verbose.max(1) } else { 0 }
    })
    .short('v')
    .help("verbose logging"),
    O::flag("Verbose", |c, b| {
        c.verbose = if b { 2 } else { c.verbose.min(1) }
    })
    .short('V')
    .help("very verbose logging (per packet)"),
    O::flag("log-binding", |c, b| c.log_binding = b).help("log STUN Binding requests"),
    O::value("syslog-facility", |c, s| {
        v::syslog_facility(s).map(|f| c.syslog_facility = Some(f))
    })
    .help("syslog facility (daemon, user, local0..local7, ...)"),
    O::flag("new-log-timestamp", |c, b| c.new_log_timestamp = b)
        .help("local wall-clock log timestamps (%FT%T%z)"),
    O::value("new-log-timestamp-format", |c, s| {
        v::strftime(s).map(|f| {
            c.new_log_timestamp_format = Some(f);
            c.new_log_timestamp = true;
        })
    })
    .help("strftime format of log timestamps"),
    O::todo("log-min-level", Arg::Required).help("lowest level logged"),
    O::opt_value("pidfile", |c, s| {
        c.pidfile = Some(s).filter(|p| !p.is_empty()).map(Into::into);
        Ok(())
    })
    .help("write the process id here (empty: none)"),
    O::value("proc-user", |c, s| {
        v::text(s).map(|u| c.proc_user = Some(u))
    })
    .help("user to switch to after binding"),
    O::value("proc-group", |c, s| {
        v::text(s).map(|g| c.proc_group = Some(g))
    })
    .help("group to switch to after binding"),
    O::todo("daemon", Arg::Flag)
        .short('o')
        .help("detach into the background"),
    O::value("alternate-server", |c, s| {
        redirect::alternate(s, 3478).map(|a| c.alternate_servers.push(a))
    })
    .repeats()
    .help(
        "IP:port to redirect Allocate to (300 Try Alternate), in turn; see alternate-server-mode",
    ),
    O::value("udp-alternate-server", |c, s| {
        redirect::alternate(s, 3478).map(|a| c.udp_alternate_servers.push(a))
    })
    .repeats()
    .help("IP:port for UDP clients, instead of alternate-server"),
    O::value("tcp-alternate-server", |c, s| {
        redirect::alternate(s, 3478).map(|a| c.tcp_alternate_servers.push(a))
    })
    .repeats()
    .help("IP:port for TCP clients, instead of alternate-server"),
    O::value("tls-alternate-server", |c, s| {
        redirect::tls_alternate(s, 5349).map(|a| c.tls_alternate_servers.push(a))
    })
    .repeats()
    .help("[NAME@]IP:port for TLS clients; NAME is sent as ALTERNATE-DOMAIN"),
    O::value("alternate-server-mode", |c, s| {
        redirect::mode(s).map(|m| c.alternate_server_mode = m)
    })
    .help("when to redirect: always (coturn), draining, or full (draining or at capacity)"),
    O::todo("acme-redirect", Arg::Required)
        .help("redirect ACME HTTP challenges (no relaying involved)"),
    // Admin interfaces.
    O::ignored("no-cli", Arg::Flag).help("tern has no telnet CLI"),
    O::todo("cli-ip", Arg::Required).help("telnet CLI address (tern opens no CLI)"),
    O::todo("cli-port", Arg::Required).help("telnet CLI port (tern opens no CLI)"),
    O::todo("cli-password", Arg::Required).help("telnet CLI password (tern opens no CLI)"),
    O::todo("cli-max-output-sessions", Arg::Required)
        .help("telnet CLI session listing size (tern opens no CLI)"),
    O::todo("web-admin", Arg::Flag).help("web admin interface (tern opens none)"),
    O::todo("web-admin-ip", Arg::Required).help("web admin address (tern opens none)"),
    O::todo("web-admin-port", Arg::Required).help("web admin port (tern opens none)"),
    O::todo("web-admin-listen-on-workers", Arg::Flag)
        .help("web admin on the TURN ports (tern opens none)"),
    // Prometheus.
    O::flag("prometheus", |c, b| c.prometheus = b)
        .coturn_ignores_value()
        .help("serve Prometheus metrics"),
    O::opt_value("prometheus-port", |c, s| {
        if s.is_empty() {
            return Ok(());
        }
        v::port(s).map(|p| c.prometheus_port = p)
    })
    .help("Prometheus port (9641)"),
    O::opt_value("prometheus-address", |c, s| {
        c.prometheus_address = if s.is_empty() { None } else { Some(v::ip(s)?) };
        Ok(())
    })
    .help("Prometheus address (default: every address)"),
    O::value("prometheus-path", |c, s| {
        v::url_path(s).map(|p| c.prometheus_path = p)
    })
    .help("Prometheus URL path (/metrics)"),
    O::flag("prometheus-username-labels", |c, b| {
        c.prometheus_username_labels = b
    })
    .coturn_ignores_value()
    .help("label traffic metrics with the user name"),
];
