//! The effective settings, printed in turnserver.conf syntax, with passwords, keys and secrets
//! masked (logs and check-config output must never show them).

use super::{Config, DefaultFamily, FastPath, IoEngine, IpRange, LogTarget, UserSecret};
use std::fmt::{Display, Write};

const MASK: &str = "********";

struct Out(String);

impl Out {
    fn set(&mut self, name: &str, value: impl Display) {
        let _ = writeln!(self.0, "{name}={value}");
    }

    fn flag(&mut self, name: &str, on: bool) {
        self.set(name, if on { "on" } else { "off" });
    }

    fn opt(&mut self, name: &str, value: Option<impl Display>) {
        if let Some(v) = value {
            self.set(name, v);
        }
    }

    fn all<T>(&mut self, name: &str, items: &[T], show: impl Fn(&T) -> String) {
        for i in items {
            self.set(name, show(i));
        }
    }
}

fn range(r: &IpRange) -> String {
    if r.start == r.end {
        r.start.to_string()
    } else {
        format!("{}-{}", r.start, r.end)
    }
}

/// Hides `password=...` words and the password of a `scheme://user:password@host` URI.
fn mask_connection(s: &str) -> String {
    if let Some((scheme, rest)) = s.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            let user = cred.split_once(':').map_or(cred, |(u, _)| u);
            return format!("{scheme}://{user}:{MASK}@{host}");
        }
    }
    s.split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASK}"),
            _ => w.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Config {
    /// The effective settings, one `name=value` line each, secrets masked.
    pub fn effective(&self) -> String {
        let mut o = Out(String::new());
        self.listening(&mut o);
        self.tls(&mut o);
        self.auth(&mut o);
        self.limits(&mut o);
        self.process(&mut o);
        o.0
    }

    fn listening(&self, o: &mut Out) {
        o.set("listening-port", self.listening_port);
        o.set("tls-listening-port", self.tls_listening_port);
        o.opt("alt-listening-port", self.alt_listening_port);
        o.opt("alt-tls-listening-port", self.alt_tls_listening_port);
        o.all("listening-ip", &self.listening_ips, ToString::to_string);
        o.all("relay-ip", &self.relay_ips, ToString::to_string);
        o.all("external-ip", &self.external_ips, |x| match x.private {
            Some(p) => format!("{}/{p}", x.public),
            None => x.public.to_string(),
        });
        o.set("min-port", self.min_port);
        o.set("max-port", self.max_port);
        o.flag("no-udp", self.no_udp);
        o.flag("no-tcp", self.no_tcp);
        o.flag("no-tls", self.no_tls);
        o.flag("no-dtls", self.no_dtls);
        o.flag("no-udp-relay", self.no_udp_relay);
        o.flag("no-tcp-relay", self.no_tcp_relay);
        let family = match self.allocation_default_address_family {
            DefaultFamily::Ipv4 => "ipv4",
            DefaultFamily::Ipv6 => "ipv6",
            DefaultFamily::Keep => "keep",
        };
        o.set("allocation-default-address-family", family);
        o.opt("relay-threads", self.relay_threads);
        let engine = match self.io_engine {
            IoEngine::Auto => "auto",
            IoEngine::Uring => "uring",
            IoEngine::Epoll => "epoll",
        };
        o.set("io-engine", engine);
        let fast = match self.fast_path {
            FastPath::Auto => "auto",
            FastPath::On => "on",
            FastPath::Off => "off",
        };
        o.set("fast-path", fast);
        let xdp = match self.fast_path_xdp {
            crate::fastpath::XdpMode::Auto => "auto",
            crate::fastpath::XdpMode::On => "on",
            crate::fastpath::XdpMode::Off => "off",
        };
        o.set("fast-path-xdp", xdp);
        o.flag("stun-only", self.stun_only);
        o.flag("no-stun", self.no_stun);
        o.flag(
            "stun-backward-compatibility",
            self.stun_backward_compatibility,
        );
        o.set("channel-numbers", self.channel_numbers.name());
        o.flag("secure-stun", self.secure_stun);
        o.flag("fingerprint", self.fingerprint);
        o.flag("software-attribute", self.software_attribute);
    }

    fn tls(&self, o: &mut Out) {
        o.set("cert", self.cert.display());
        o.set("pkey", self.pkey.display());
        o.opt("pkey-pwd", self.pkey_pwd.as_ref().map(|_| MASK));
        o.opt("cipher-list", self.cipher_list.as_ref());
        o.opt("CA-file", self.ca_file.as_ref().map(|p| p.display()));
        o.flag("no-tlsv1_2", self.no_tlsv1_2);
    }

    fn auth(&self, o: &mut Out) {
        o.flag("no-auth", self.no_auth);
        o.flag("lt-cred-mech", self.lt_cred_mech);
        if self.realm.is_empty() {
            o.0.push_str("# realm is not set\n");
        } else {
            o.set("realm", &self.realm);
        }
        o.all("user", &self.users, |u| match u.secret {
            UserSecret::Password(_) => format!("{}:{MASK}", u.name),
            UserSecret::Key(_) | UserSecret::Sha256Key(_) => format!("{}:0x{MASK}", u.name),
        });
        o.flag("use-auth-secret", self.use_auth_secret);
        o.all("static-auth-secret", &self.static_auth_secrets, |_| {
            MASK.into()
        });
        o.set("rest-api-separator", self.rest_api_separator);
        o.opt("userdb", self.userdb.as_deref().map(mask_connection));
        o.opt(
            "psql-userdb",
            self.psql_userdb.as_deref().map(mask_connection),
        );
        o.opt(
            "redis-userdb",
            self.redis_userdb.as_deref().map(mask_connection),
        );
        o.set("userdb-lookup-rps", self.userdb_lookup_rps);
        o.set(
            "userdb-max-username-length",
            self.userdb_max_username_length,
        );
        let algorithms: Vec<&str> = self.password_algorithms.iter().map(|a| a.name()).collect();
        o.set("password-algorithms", algorithms.join(","));
        o.flag("userhash", self.userhash);
    }

    fn limits(&self, o: &mut Out) {
        o.set("user-quota", self.user_quota);
        o.set("total-quota", self.total_quota);
        o.opt(
            "redis-statsdb",
            self.redis_statsdb.as_deref().map(mask_connection),
        );
        o.flag("fleet-quotas", self.fleet.quotas);
        o.flag("fleet-relay", self.fleet.relay);
        o.set("fleet-lease-time", self.fleet.lease_s);
        let down = match self.fleet.when_down {
            super::FleetDown::Open => "open",
            super::FleetDown::Closed => "closed",
        };
        o.set("fleet-redis-down", down);
        o.set("max-bps", self.max_bps);
        o.set("bps-capacity", self.bps_capacity);
        if self.stale_nonce == 0 {
            o.0.push_str("# stale-nonce=0: nonces never expire (coturn's meaning)\n");
        }
        o.set("stale-nonce", self.stale_nonce);
        o.set("max-allocate-lifetime", self.max_allocate_lifetime);
        o.set("channel-lifetime", self.channel_lifetime);
        o.set("permission-lifetime", self.permission_lifetime);
        o.set("max-allocate-timeout", self.max_allocate_timeout);
        o.set(
            "stream-first-message-timeout",
            self.stream_first_message_timeout,
        );
        o.set("stream-connections-per-ip", self.stream_connections_per_ip);
        o.set("stream-ipv6-prefix", self.stream_ipv6_prefix);
        o.flag("unauthorized-ratelimit", self.unauthorized_ratelimit);
        o.set(
            "unauthorized-ratelimit-rps",
            self.unauthorized_ratelimit_rps,
        );
        o.all("allowed-peer-ip", &self.allowed_peer_ips, range);
        o.all("denied-peer-ip", &self.denied_peer_ips, range);
        o.flag("allow-loopback-peers", self.allow_loopback_peers);
        o.flag("no-multicast-peers", self.no_multicast_peers);
    }

    fn process(&self, o: &mut Out) {
        match &self.log_target {
            LogTarget::Stdout => o.set("log-file", "stdout"),
            LogTarget::Syslog => o.set("log-file", "syslog"),
            LogTarget::File(p) => o.set("log-file", p.display()),
        }
        o.flag("no-stdout-log", self.no_stdout_log);
        o.flag("simple-log", self.simple_log);
        o.flag("verbose", self.verbose >= 1);
        o.flag("Verbose", self.verbose >= 2);
        o.flag("log-binding", self.log_binding);
        o.opt("syslog-facility", self.syslog_facility.as_ref());
        o.flag("new-log-timestamp", self.new_log_timestamp);
        o.opt(
            "new-log-timestamp-format",
            self.new_log_timestamp_format.as_ref(),
        );
        o.set("drain-min-allocations", self.drain_min_allocations);
        o.opt("pidfile", self.pidfile.as_ref().map(|p| p.display()));
        o.opt("proc-user", self.proc_user.as_ref());
        o.opt("proc-group", self.proc_group.as_ref());
        for (name, list) in [
            ("alternate-server", &self.alternate_servers),
            ("udp-alternate-server", &self.udp_alternate_servers),
            ("tcp-alternate-server", &self.tcp_alternate_servers),
            ("tls-alternate-server", &self.tls_alternate_servers),
        ] {
            o.all(name, list, ToString::to_string);
        }
        o.set("alternate-server-mode", self.alternate_server_mode);
        o.flag("prometheus", self.prometheus);
        o.set("prometheus-port", self.prometheus_port);
        o.opt("prometheus-address", self.prometheus_address);
        o.set("prometheus-path", &self.prometheus_path);
        o.flag(
            "prometheus-username-labels",
            self.prometheus_username_labels,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_connection_passwords() {
        assert_eq!(
            mask_connection("host=h dbname=d user=u password=hunter2 port=5432"),
            format!("host=h dbname=d user=u password={MASK} port=5432")
        );
        assert_eq!(
            mask_connection("postgresql://u:hunter2@db/x"),
            format!("postgresql://u:{MASK}@db/x")
        );
        assert_eq!(
            mask_connection("/var/lib/turn/turndb"),
            "/var/lib/turn/turndb"
        );
    }
}
