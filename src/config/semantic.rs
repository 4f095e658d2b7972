//! Checks across options, after every source is applied: the authentication mode (tern never
//! starts an open relay by accident), coturn's own refusals, derived settings, and the address
//! options against the host's addresses (what would stop the engine from starting).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::diag::Diagnostic;
use super::Config;
use crate::net;

/// What to set when no authentication mode is configured.
pub(crate) const NO_AUTH_MODE: &str =
    "no authentication is configured, and tern does not run an open relay by default: \
set `lt-cred-mech` with `realm=...` and `user=NAME:PASSWORD`, or `use-auth-secret` with \
`static-auth-secret=SECRET` (TURN REST API), or `no-auth` to allow anyone";

/// A problem of the whole configuration, about `option` wherever it was set.
fn about(option: &str, message: &str, error: bool) -> Diagnostic {
    let message = format!("{option}: {message}");
    if error {
        Diagnostic::error(None, None, message)
    } else {
        Diagnostic::warning(None, None, message)
    }
}

pub(crate) fn finalize(cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    if cfg.relay_threads.is_none() {
        cfg.relay_threads = cfg.cpus;
    }
    auth(cfg, diags);
    let mut refuse = |cond: bool, option: &str, message: &str| {
        if cond {
            diags.push(about(option, message, true));
        }
    };
    refuse(
        cfg.bps_capacity > 0 && cfg.max_bps == 0,
        "bps-capacity",
        "needs max-bps too (the per-allocation share of the capacity); coturn refuses this as well",
    );
    refuse(
        cfg.no_udp_relay && cfg.no_tcp_relay,
        "no-tcp-relay",
        "together with no-udp-relay no allocation could ever be made",
    );
    refuse(
        cfg.min_port > cfg.max_port,
        "min-port",
        &format!("{} is above max-port {}", cfg.min_port, cfg.max_port),
    );
    refuse(
        cfg.stun_only && cfg.no_stun,
        "no-stun",
        "together with stun-only nothing is left to serve",
    );
    refuse(
        cfg.no_udp && cfg.no_tcp && cfg.no_tls,
        "no-udp",
        "with no-tcp and no-tls nothing is left to listen on (DTLS is not implemented)",
    );
    refuse(
        cfg.external_ips.len() > 1 && cfg.external_ips.iter().any(|x| x.private.is_none()),
        "external-ip",
        "several external-ip lines must each be PUBLIC/PRIVATE; a bare PUBLIC can only be given once",
    );
    ca_file(cfg, diags);
    fleet(cfg, diags);
}

/// The fleet options need the Redis they share state through.
fn fleet(cfg: &Config, diags: &mut Vec<Diagnostic>) {
    if cfg.redis_statsdb.is_some() {
        return;
    }
    for (on, option) in [
        (cfg.fleet.quotas, "fleet-quotas"),
        (cfg.fleet.relay, "fleet-relay"),
    ] {
        if on {
            let at = cfg.origins.last(option).cloned();
            let msg = "needs redis-statsdb: the fleet's leases and node records live there";
            diags.push(Diagnostic::error(at, Some(option), msg.into()));
        }
    }
}

/// `CA-file` decides who may use the TLS listeners, so a file that cannot serve stops start-up
/// at its line rather than leaving TLS open to clients without a certificate.
fn ca_file(cfg: &Config, diags: &mut Vec<Diagnostic>) {
    let Some(path) = cfg.ca_file.as_deref().filter(|_| !cfg.no_tls) else {
        return;
    };
    let at = cfg.origins.last("CA-file").cloned();
    if let Err(e) = crate::engine::client_roots(path) {
        let msg = format!("{e}; client certificates could not be verified");
        diags.push(Diagnostic::error(at, Some("CA-file"), msg));
    } else if cfg.no_auth {
        let msg = "applies to TLS clients only (as in coturn): with no-auth, UDP and plain TCP \
                   clients allocate without a certificate"
            .into();
        diags.push(Diagnostic::warning(at, Some("CA-file"), msg));
    }
}

/// The address options against this host's interface addresses, listed only when one of them
/// is given (without any, tern uses every address the host has).
pub(crate) fn host_addresses(cfg: &Config, diags: &mut Vec<Diagnostic>) {
    let metrics_address = cfg.prometheus && cfg.prometheus_address.is_some();
    if cfg.listening_ips.is_empty()
        && cfg.relay_ips.is_empty()
        && cfg.external_ips.is_empty()
        && !metrics_address
    {
        return;
    }
    match net::local_addresses() {
        Ok(host) => addresses(cfg, &host, diags),
        Err(e) => diags.push(Diagnostic::warning(
            None,
            None,
            format!(
                "cannot list this host's addresses ({e}): listening-ip, relay-ip and \
                 external-ip are not checked against them"
            ),
        )),
    }
}

/// What the engine would refuse, at the line that asks for it: a listening, relay or metrics
/// address the host does not have, wildcards that leave nothing to listen on or relay from, and
/// an `external-ip` PRIVATE part that is no address of this host (coturn would advertise a relay
/// nobody can reach). `host`: every interface address.
pub(crate) fn addresses(cfg: &Config, host: &[IpAddr], diags: &mut Vec<Diagnostic>) {
    let at = |option: &str, index: usize| cfg.origins.of(option, index).cloned();
    for (option, ips) in [
        ("listening-ip", &cfg.listening_ips),
        ("relay-ip", &cfg.relay_ips),
    ] {
        let nothing_left = net::expand(ips, host).is_empty();
        for (index, ip) in ips.iter().enumerate() {
            let message = if ip.is_unspecified() {
                if !net::expand(&[*ip], host).is_empty() {
                    continue;
                }
                let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                let mut m =
                    format!("{ip} stands for every {family} address of this host, and it has none");
                if !nothing_left {
                    let warning = Diagnostic::warning(at(option, index), Some(option), m);
                    diags.push(warning);
                    continue;
                }
                m.push_str(if option == "relay-ip" {
                    ": no relay address is left"
                } else {
                    ": nothing is left to listen on"
                });
                m
            } else if !net::is_local(*ip, host) {
                format!("{ip} is not an address of this host ({})", list(host))
            } else {
                continue;
            };
            diags.push(Diagnostic::error(at(option, index), Some(option), message));
        }
    }
    if let Some(ip) = cfg.prometheus_address.filter(|_| cfg.prometheus) {
        if !ip.is_unspecified() && !net::is_local(ip, host) {
            diags.push(Diagnostic::error(
                cfg.origins.last("prometheus-address").cloned(),
                Some("prometheus-address"),
                format!("{ip} is not an address of this host ({})", list(host)),
            ));
        }
    }
    for (index, ext) in cfg.external_ips.iter().enumerate() {
        let Some(private) = ext.private else {
            continue;
        };
        if net::is_local(private, host) {
            continue;
        }
        let public = ext.public;
        let message = format!(
            "the PRIVATE part {private} of {public}/{private} is not an address of this host: \
             it must be the address on this host that the 1:1 NAT forwards {public} to ({})",
            list(host)
        );
        diags.push(Diagnostic::error(
            at("external-ip", index),
            Some("external-ip"),
            message,
        ));
    }
}

/// "this host has A, B, C" for a message.
fn list(host: &[IpAddr]) -> String {
    if host.is_empty() {
        return String::from("this host has no address");
    }
    let mut out = String::from("this host has");
    for (i, ip) in host.iter().enumerate() {
        let _ = write!(out, "{}{ip}", if i == 0 { " " } else { ", " });
    }
    out
}

fn auth(cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    let has_db = cfg.userdb.is_some() || cfg.psql_userdb.is_some() || cfg.redis_userdb.is_some();
    let has_users = !cfg.users.is_empty();
    if let Err(e) = crate::auth::db::DbSpec::from_config(cfg) {
        diags.push(Diagnostic::error(None, None, e.0));
    }
    let dbs = [&cfg.psql_userdb, &cfg.redis_userdb, &cfg.userdb];
    if dbs.iter().filter(|d| d.is_some()).count() > 1 {
        let msg = "one user database is used: psql-userdb, else redis-userdb, else userdb";
        diags.push(Diagnostic::warning(None, None, msg.into()));
    }
    if cfg.no_auth {
        if cfg.lt_cred_mech || cfg.use_auth_secret {
            let with = if cfg.lt_cred_mech {
                "lt-cred-mech"
            } else {
                "use-auth-secret"
            };
            let msg = format!("cannot be combined with {with} (coturn refuses this too)");
            diags.push(about("no-auth", &msg, true));
        } else if has_users {
            let msg = "user accounts are ignored: anyone may allocate";
            diags.push(about("no-auth", msg, false));
        }
        return;
    }
    if (has_users || has_db) && !cfg.use_auth_secret {
        cfg.lt_cred_mech = true;
    }
    if cfg.use_auth_secret && cfg.static_auth_secrets.is_empty() && !has_db {
        let msg = "needs at least one static-auth-secret=SECRET (or a user database holding them)";
        diags.push(about("use-auth-secret", msg, true));
    }
    if !cfg.lt_cred_mech && !cfg.use_auth_secret {
        diags.push(Diagnostic::error(None, None, NO_AUTH_MODE.into()));
        return;
    }
    if cfg.lt_cred_mech && !has_users && !has_db && !cfg.use_auth_secret {
        let msg = "no user=NAME:PASSWORD and no user database: nobody can authenticate";
        diags.push(about("lt-cred-mech", msg, false));
    }
    if cfg.realm.is_empty() {
        let msg = "is not set; set realm=YOUR.DOMAIN (it is part of every user's key)";
        diags.push(about("realm", msg, false));
    }
    password_algorithms(cfg, diags);
}

/// Warns about offers that lock clients out: without MD5, clients that do not negotiate (every
/// browser, coturn's clients) are refused; `0x` MD5 keys cannot answer SHA-256 clients.
fn password_algorithms(cfg: &Config, diags: &mut Vec<Diagnostic>) {
    use crate::auth::PasswordAlgorithm::{Md5, Sha256};
    if !cfg.password_algorithms.contains(&Md5) {
        let msg = "without md5, clients that do not negotiate an algorithm (every browser, \
                   coturn's turnutils_uclient) are refused (400); sha256,md5 offers both";
        diags.push(about("password-algorithms", msg, false));
    }
    let md5_only = cfg
        .users
        .iter()
        .filter(|u| matches!(u.secret, crate::config::UserSecret::Key(_)))
        .count();
    if cfg.password_algorithms.contains(&Sha256) && md5_only > 0 {
        let msg = format!(
            "{md5_only} user(s) given as a 0x MD5 key cannot authenticate with SHA-256 \
             (give the password, or a 0x SHA-256 key from `tern key --sha256`)"
        );
        diags.push(about("password-algorithms", &msg, false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, ExternalIp};
    use std::path::Path;

    const FILE: &str = "/etc/tern/t.conf";

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// The address diagnostics for `text` on a host with `host`, as check-config prints them.
    fn check_on(host: &[&str], text: &str) -> Vec<String> {
        let mut cfg = Config::default();
        let mut diags = Vec::new();
        parse_str(text, Path::new(FILE), &mut cfg, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        addresses(&cfg, &ips(host), &mut diags);
        diags
            .iter()
            .map(|d| format!("{}{d}", if d.is_error() { "error: " } else { "" }))
            .collect()
    }

    /// Offers that lock clients out are warned about; `sha256,md5` with passwords is not.
    #[test]
    fn password_algorithm_offers_that_lock_clients_out_are_warned_about() {
        let warnings = |text: &str| {
            let mut cfg = Config::default();
            let mut diags = Vec::new();
            parse_str(text, Path::new(FILE), &mut cfg, &mut diags);
            assert!(diags.is_empty(), "{diags:?}");
            password_algorithms(&cfg, &mut diags);
            diags.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert!(warnings("password-algorithms=sha256,md5\nuser=a:pw\n").is_empty());
        let w = warnings("password-algorithms=sha256\nuser=a:pw\n");
        assert!(w.len() == 1 && w[0].contains("every browser"), "{w:?}");
        let w =
            warnings("password-algorithms=sha256,md5\nuser=a:0xbc807ee29df3c9ffa736523fb2c4e8ee\n");
        assert!(w.len() == 1 && w[0].contains("1 user(s)"), "{w:?}");
    }

    /// A cloud VM: a private address on the interface, loopback first, IPv6 loopback.
    fn check(text: &str) -> Vec<String> {
        check_on(&["127.0.0.1", "10.0.0.10", "::1"], text)
    }

    #[test]
    fn the_deployment_forms_pass() {
        for text in [
            "external-ip=203.0.113.10/10.0.0.10\n",
            "external-ip=203.0.113.10\n",
            "external-ip=203.0.113.10\nlistening-ip=0.0.0.0\n",
            "listening-ip=0.0.0.0\nlistening-ip=::\n",
            "listening-ip=10.0.0.10\nrelay-ip=10.0.0.10\n",
            "listening-ip=127.0.0.2\nrelay-ip=0.0.0.0\n",
        ] {
            assert_eq!(check(text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn a_private_part_that_is_no_address_of_this_host_is_an_error_at_its_line() {
        assert_eq!(
            check("realm=x\nexternal-ip=203.0.113.10/10.99.0.5\n"),
            [format!(
                "error: {FILE}:2: external-ip: the PRIVATE part 10.99.0.5 of \
                 203.0.113.10/10.99.0.5 is not an address of this host: it must be the address \
                 on this host that the 1:1 NAT forwards 203.0.113.10 to (this host has \
                 127.0.0.1, 10.0.0.10, ::1)"
            )]
        );
        let two = check("external-ip=203.0.113.10/10.0.0.10\nexternal-ip=2001:db8::1/fd00::9\n");
        assert_eq!(two.len(), 1, "{two:?}");
        assert!(
            two[0].starts_with(&format!("error: {FILE}:2: external-ip: ")),
            "{two:?}"
        );
    }

    #[test]
    fn a_flag_is_named_as_a_flag() {
        let cfg = Config {
            external_ips: vec![ExternalIp {
                public: "203.0.113.10".parse().unwrap(),
                private: Some("10.99.0.5".parse().unwrap()),
            }],
            ..Config::default()
        };
        let mut diags = Vec::new();
        addresses(&cfg, &ips(&["127.0.0.1"]), &mut diags);
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0]
                .to_string()
                .starts_with("--external-ip: the PRIVATE part 10.99.0.5"),
            "{diags:?}"
        );
    }

    #[test]
    fn listening_and_relay_addresses_must_be_on_this_host() {
        assert_eq!(
            check("listening-ip=10.0.0.10\nlistening-ip=198.51.100.99\n"),
            [format!(
                "error: {FILE}:2: listening-ip: 198.51.100.99 is not an address of this host \
                 (this host has 127.0.0.1, 10.0.0.10, ::1)"
            )]
        );
        let relay = check("relay-ip=198.51.100.99\n");
        assert_eq!(relay.len(), 1);
        assert!(
            relay[0].starts_with(&format!(
                "error: {FILE}:1: relay-ip: 198.51.100.99 is not an address of this host"
            )),
            "{relay:?}"
        );
    }

    #[test]
    fn the_metrics_address_must_be_on_this_host_when_metrics_are_on() {
        assert_eq!(
            check("prometheus\nprometheus-address=10.0.0.99\n"),
            [format!(
                "error: {FILE}:2: prometheus-address: 10.0.0.99 is not an address of this host \
                 (this host has 127.0.0.1, 10.0.0.10, ::1)"
            )]
        );
        for text in [
            "prometheus-address=10.0.0.99\n",
            "prometheus\nprometheus-address=10.0.0.10\n",
            "prometheus\nprometheus-address=::\n",
        ] {
            assert_eq!(check(text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn a_wildcard_of_a_family_the_host_lacks_is_an_error_only_when_nothing_is_left() {
        let v4_only = ["127.0.0.1", "10.0.0.10"];
        assert_eq!(
            check_on(&v4_only, "listening-ip=::\n"),
            [format!(
                "error: {FILE}:1: listening-ip: :: stands for every IPv6 address of this host, \
                 and it has none: nothing is left to listen on"
            )]
        );
        assert_eq!(
            check_on(&v4_only, "relay-ip=::\n"),
            [format!(
                "error: {FILE}:1: relay-ip: :: stands for every IPv6 address of this host, and \
                 it has none: no relay address is left"
            )]
        );
        assert_eq!(
            check_on(&v4_only, "listening-ip=0.0.0.0\nlistening-ip=::\n"),
            [format!(
                "warning: {FILE}:2: listening-ip: :: stands for every IPv6 address of this \
                 host, and it has none"
            )]
        );
    }
}
