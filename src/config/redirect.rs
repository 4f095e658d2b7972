//! Where and when Allocate requests are redirected (RFC 8489 §10, 300 Try Alternate):
//! coturn's `alternate-server`, `udp-alternate-server`, `tcp-alternate-server` and
//! `tls-alternate-server` lists, the ALTERNATE-DOMAIN (§14.16) a TLS redirect carries, and
//! tern's `alternate-server-mode` (docs/fleet.md, "Redirects").

use std::net::SocketAddr;

use super::values::{server_addr, Parsed};
use super::{Alternate, Config, RedirectMode};

pub fn mode(v: &str) -> Parsed<RedirectMode> {
    match v.to_ascii_lowercase().as_str() {
        "always" => Ok(RedirectMode::Always),
        "draining" => Ok(RedirectMode::Draining),
        "full" => Ok(RedirectMode::Full),
        _ => Err(format!("`{v}` is not one of always, draining, full")),
    }
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT` (coturn's forms) for a plain alternate.
pub fn alternate(v: &str, default_port: u16) -> Parsed<Alternate> {
    if v.contains('@') {
        return Err(format!(
            "`{v}`: a NAME@ in front of the address is for tls-alternate-server only \
             (ALTERNATE-DOMAIN names the certificate a TLS client checks)"
        ));
    }
    address(v, default_port).map(Alternate::new)
}

/// As [`alternate`], or `NAME@IP[:PORT]`: NAME is sent as ALTERNATE-DOMAIN.
pub fn tls_alternate(v: &str, default_port: u16) -> Parsed<Alternate> {
    let Some((name, addr)) = v.split_once('@') else {
        return address(v, default_port).map(Alternate::new);
    };
    let domain = dns_name(name).map_err(|why| format!("`{name}` before @: {why}"))?;
    Ok(Alternate {
        addr: address(addr, default_port)?,
        domain: Some(domain),
    })
}

fn address(v: &str, default_port: u16) -> Parsed<SocketAddr> {
    server_addr(v, default_port).map_err(|why| {
        format!(
            "{why}: an alternate server is IP, IP:PORT or [IPv6]:PORT (a 300 carries an address, \
             not a name; for TLS write NAME@IP:PORT to send the name too)"
        )
    })
}

/// A host name as a certificate names it: letters, digits, hyphens and dots, labels of 1-63
/// characters, at most 253 in all (RFC 1035 §2.3.4), a `*.` wildcard not allowed.
fn dns_name(v: &str) -> Parsed<String> {
    let name = v.strip_suffix('.').unwrap_or(v).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("a domain name has 1 to 253 characters".into());
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "`{label}` is not a domain name label (letters, digits and inner hyphens, \
                 1-63 characters)"
            ));
        }
    }
    Ok(name)
}

impl Config {
    /// What the alternate-server lists do under the configured mode, in words, one line per
    /// client transport (for `check-config`).
    pub fn redirect_summary(&self) -> Vec<String> {
        let none = [
            &self.alternate_servers,
            &self.udp_alternate_servers,
            &self.tcp_alternate_servers,
            &self.tls_alternate_servers,
        ]
        .iter()
        .all(|l| l.is_empty());
        let fleet = match self.alternate_server_mode {
            RedirectMode::Always => None,
            RedirectMode::Draining | RedirectMode::Full => self.redis_statsdb.as_ref(),
        }
        .map(|_| {
            String::from(
                "fleet (redis-statsdb): the least loaded live node comes before the lists below",
            )
        });
        if none {
            let mut lines = Vec::from_iter(fleet);
            lines.push(String::from(
                "none: no alternate-server list; while draining, new allocations get 403",
            ));
            return lines;
        }
        let lists = [
            (
                "UDP",
                pick(&self.udp_alternate_servers, &self.alternate_servers),
            ),
            (
                "TCP",
                pick(&self.tcp_alternate_servers, &self.alternate_servers),
            ),
            (
                "TLS",
                pick(&self.tls_alternate_servers, &self.alternate_servers),
            ),
        ];
        let when = match self.alternate_server_mode {
            RedirectMode::Always => "every new Allocate",
            RedirectMode::Draining => "a new Allocate while draining (SIGUSR1)",
            RedirectMode::Full => {
                "a new Allocate while draining or full (total-quota, descriptors, bps-capacity)"
            }
        };
        let lines = lists.iter().map(|(transport, list)| {
            if list.is_empty() {
                let refused = "refused with 403 while draining";
                return format!("{transport} clients: not redirected; new allocations {refused}");
            }
            let names: Vec<String> = list.iter().map(ToString::to_string).collect();
            format!(
                "{transport} clients: {when} gets 300 Try Alternate, in turn to {} \
                     (each client is sent one of its own address family)",
                names.join(", ")
            )
        });
        fleet.into_iter().chain(lines).collect()
    }
}

/// coturn's choice: the transport's own list when it has one, else `alternate-server`.
fn pick<'a>(own: &'a [Alternate], general: &'a [Alternate]) -> &'a [Alternate] {
    if own.is_empty() {
        general
    } else {
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_alternates_take_a_name_in_front() {
        let a = tls_alternate("Turn2.Example.org@203.0.113.7:5350", 5349).expect("parses");
        assert_eq!(a.addr, "203.0.113.7:5350".parse().expect("addr"));
        assert_eq!(a.domain.as_deref(), Some("turn2.example.org"));
        assert_eq!(a.to_string(), "turn2.example.org@203.0.113.7:5350");
        let plain = tls_alternate("[2001:db8::7]", 5349).expect("parses");
        assert_eq!(
            plain,
            Alternate::new("[2001:db8::7]:5349".parse().expect("addr"))
        );
    }

    #[test]
    fn malformed_alternates_say_why() {
        let e = alternate("turn2.example.org:3478", 3478).expect_err("a name");
        assert!(e.contains("IP, IP:PORT or [IPv6]:PORT"), "{e}");
        let e = alternate("a@192.0.2.1", 3478).expect_err("a domain");
        assert!(e.contains("tls-alternate-server only"), "{e}");
        let e = tls_alternate("bad_name@192.0.2.1", 5349).expect_err("underscore");
        assert!(e.contains("bad_name"), "{e}");
        let e = tls_alternate("x@192.0.2.1:70000", 5349).expect_err("port");
        assert!(e.contains("70000"), "{e}");
        assert!(mode("sometimes").is_err());
    }

    #[test]
    fn a_fleet_comes_first_only_where_the_mode_uses_it() {
        let mut cfg = Config {
            redis_statsdb: Some(String::from("ip=127.0.0.1")),
            alternate_server_mode: RedirectMode::Full,
            ..Config::default()
        };
        let lines = cfg.redirect_summary();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("fleet (redis-statsdb)"), "{lines:?}");
        assert!(lines[1].starts_with("none:"), "{lines:?}");
        cfg.alternate_server_mode = RedirectMode::Always;
        assert_eq!(cfg.redirect_summary().len(), 1);
        cfg.alternate_server_mode = RedirectMode::Draining;
        cfg.alternate_servers = vec![Alternate::new("192.0.2.1:3478".parse().expect("addr"))];
        let lines = cfg.redirect_summary();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("fleet (redis-statsdb)"), "{lines:?}");
    }
}
