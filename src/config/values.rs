//! Typed parsers for option values (ports, addresses, ranges, credentials, ...). Each returns
//! the reason for a bad value; the caller adds file, line and option name.

use super::{DefaultFamily, ExternalIp, FastPath, IoEngine, IpRange, LogTarget, User, UserSecret};
use crate::auth::PasswordAlgorithm;
use crate::stun::channel::ChannelRange;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

pub type Parsed<T> = Result<T, String>;

/// coturn's `get_bool_value`: empty, `1`-`9`.., `y`.., `t`.., `on` are true; `0`.., `n`..,
/// `f`.., `off` are false (any case).
pub fn boolean(v: &str) -> Parsed<bool> {
    let lower = v.to_ascii_lowercase();
    match lower.chars().next() {
        None => Ok(true),
        Some('0' | 'n' | 'f') => Ok(false),
        Some('1'..='9' | 'y' | 't') => Ok(true),
        _ if lower == "on" => Ok(true),
        _ if lower == "off" => Ok(false),
        _ => Err(format!(
            "`{v}` is not a boolean (use on/off, yes/no, true/false, 1/0)"
        )),
    }
}

fn number<T: FromStr>(v: &str, what: &str) -> Parsed<T> {
    v.parse().map_err(|_| format!("`{v}` is not {what}"))
}

pub fn port(v: &str) -> Parsed<u16> {
    number(v, "a port number (0-65535)")
}

/// A relay port bound: 1-65535.
pub fn relay_port(v: &str) -> Parsed<u16> {
    match port(v)? {
        0 => Err("a relay port must be 1-65535".into()),
        p => Ok(p),
    }
}

/// `0` means "the main port plus one" in coturn: no explicit alternative port.
pub fn alt_port(v: &str) -> Parsed<Option<u16>> {
    Ok(Some(port(v)?).filter(|&p| p != 0))
}

pub fn u32_value(v: &str) -> Parsed<u32> {
    number(v, "a non-negative integer")
}

pub fn u64_value(v: &str) -> Parsed<u64> {
    number(v, "a non-negative integer")
}

/// An IPv6 prefix length: 0-128.
pub fn ipv6_prefix(v: &str) -> Parsed<u8> {
    match number::<u8>(v, "an IPv6 prefix length (0-128)")? {
        n if n <= 128 => Ok(n),
        _ => Err(format!("`{v}` is not an IPv6 prefix length (0-128)")),
    }
}

/// A USERNAME length in bytes: 1-512 (RFC 8489 §14.3 keeps USERNAME under 513 bytes).
pub fn username_length(v: &str) -> Parsed<usize> {
    match number::<usize>(v, "a username length (1-512)")? {
        n if (1..=512).contains(&n) => Ok(n),
        _ => Err(format!("`{v}` is not a username length (1-512)")),
    }
}

/// `password-algorithms`: `md5` and/or `sha256`, comma-separated, each once, most preferred
/// first.
pub fn password_algorithms(v: &str) -> Parsed<Vec<PasswordAlgorithm>> {
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim) {
        let alg = match name.to_ascii_lowercase().as_str() {
            "md5" => PasswordAlgorithm::Md5,
            "sha256" | "sha-256" => PasswordAlgorithm::Sha256,
            _ => {
                return Err(format!(
                    "`{name}` is not a password algorithm (md5, sha256; e.g. sha256,md5)"
                ))
            }
        };
        if out.contains(&alg) {
            return Err(format!("`{name}` is listed twice"));
        }
        out.push(alg);
    }
    Ok(out)
}

/// An optional number: empty means `default` (coturn's `get_int_value`).
pub fn u32_or(v: &str, default: u32) -> Parsed<u32> {
    if v.is_empty() {
        Ok(default)
    } else {
        u32_value(v)
    }
}

/// Threads / CPUs: 0 is taken as 1 (coturn: "no separate relay threads").
pub fn threads(v: &str) -> Parsed<usize> {
    number::<usize>(v, "a non-negative integer").map(|n| n.max(1))
}

/// An IP literal, IPv6 optionally in brackets.
pub fn ip(v: &str) -> Parsed<IpAddr> {
    let inner = v
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v);
    inner
        .parse()
        .map_err(|_| format!("`{v}` is not an IP address"))
}

/// `IP`, `IP1-IP2` (coturn) or `IP/prefix` (tern), one family, start <= end.
pub fn ip_range(v: &str) -> Parsed<IpRange> {
    if let Some((a, b)) = v.split_once('-') {
        let (start, end) = (ip(a.trim())?, ip(b.trim())?);
        if start.is_ipv4() != end.is_ipv4() {
            return Err(format!("`{v}` mixes IPv4 and IPv6"));
        }
        if start > end {
            return Err(format!("`{v}`: the range starts after it ends"));
        }
        return Ok(IpRange { start, end });
    }
    if let Some((a, len)) = v.split_once('/') {
        return cidr(ip(a)?, len, v);
    }
    let one = ip(v)?;
    Ok(IpRange {
        start: one,
        end: one,
    })
}

fn cidr(base: IpAddr, len: &str, v: &str) -> Parsed<IpRange> {
    let bad = || format!("`{v}`: bad prefix length `{len}`");
    let len: u32 = len.parse().map_err(|_| bad())?;
    match base {
        IpAddr::V4(a) => {
            if len > 32 {
                return Err(bad());
            }
            let host = u32::MAX.checked_shr(len).unwrap_or(0);
            let start = u32::from(a) & !host;
            Ok(IpRange {
                start: IpAddr::V4(Ipv4Addr::from(start)),
                end: IpAddr::V4(Ipv4Addr::from(start | host)),
            })
        }
        IpAddr::V6(a) => {
            if len > 128 {
                return Err(bad());
            }
            let host = u128::MAX.checked_shr(len).unwrap_or(0);
            let start = u128::from(a) & !host;
            Ok(IpRange {
                start: IpAddr::V6(Ipv6Addr::from(start)),
                end: IpAddr::V6(Ipv6Addr::from(start | host)),
            })
        }
    }
}

/// `PUB` or `PUB/PRIV`.
pub fn external_ip(v: &str) -> Parsed<ExternalIp> {
    match v.split_once('/') {
        Some((public, private)) => Ok(ExternalIp {
            public: ip(public)?,
            private: Some(ip(private)?),
        }),
        None => Ok(ExternalIp {
            public: ip(v)?,
            private: None,
        }),
    }
}

/// `name:password`, `name:0x<32 hex digits>` (an MD5 long-term key from `turnadmin -k`) or
/// `name:0x<64 hex digits>` (a SHA-256 key from `tern key --sha256`).
pub fn user(v: &str) -> Parsed<User> {
    let (name, secret) = v
        .split_once(':')
        .ok_or("expected `name:password` or `name:0x<32 hex digits>`")?;
    if name.is_empty() {
        return Err("the user name is empty".into());
    }
    if secret.is_empty() {
        return Err(format!("user `{name}` has an empty password"));
    }
    let secret = match secret.strip_prefix("0x") {
        Some(hex) if hex.len() == 64 => {
            UserSecret::Sha256Key(key(hex).map_err(|e| format!("user `{name}`: {e}"))?)
        }
        Some(hex) => UserSecret::Key(key(hex).map_err(|e| format!("user `{name}`: {e}"))?),
        None => UserSecret::Password(secret.to_owned()),
    };
    Ok(User {
        name: name.to_owned(),
        secret,
    })
}

/// An MD5 key (32 hex digits) or a SHA-256 key (64).
fn key<const N: usize>(hex: &str) -> Parsed<[u8; N]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 2 * N {
        return Err(format!(
            "a 0x key has 32 hex digits (MD5) or 64 (SHA-256), not {}",
            bytes.len()
        ));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).map_err(|_| "the key is not hex")?;
        *o = u8::from_str_radix(s, 16).map_err(|_| format!("`{s}` is not hex"))?;
    }
    Ok(out)
}

/// `stdout` / `-`, `syslog`, or a path.
pub fn log_target(v: &str) -> Parsed<LogTarget> {
    match v {
        "" => Err("expected a path, `stdout`, `-` or `syslog`".into()),
        "stdout" | "-" => Ok(LogTarget::Stdout),
        "syslog" => Ok(LogTarget::Syslog),
        path => Ok(LogTarget::File(PathBuf::from(path))),
    }
}

/// `IP`, `IP:port`, `[IPv6]` or `[IPv6]:port`; `default_port` when none is given.
pub fn server_addr(v: &str, default_port: u16) -> Parsed<SocketAddr> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(a) = ip(v) {
        return Ok(SocketAddr::new(a, default_port));
    }
    let (host, p) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("`{v}` is not IP:port"))?;
    Ok(SocketAddr::new(ip(host)?, port(p)?))
}

pub fn family(v: &str) -> Parsed<DefaultFamily> {
    match v.to_ascii_lowercase().as_str() {
        "ipv4" => Ok(DefaultFamily::Ipv4),
        "ipv6" => Ok(DefaultFamily::Ipv6),
        "keep" => Ok(DefaultFamily::Keep),
        _ => Err(format!("`{v}` is not one of ipv4, ipv6, keep")),
    }
}

pub fn channel_range(v: &str) -> Parsed<ChannelRange> {
    match v.to_ascii_lowercase().as_str() {
        "rfc5766" => Ok(ChannelRange::Rfc5766),
        "rfc8656" => Ok(ChannelRange::Rfc8656),
        _ => Err(format!("`{v}` is not one of rfc5766, rfc8656")),
    }
}

pub fn io_engine(v: &str) -> Parsed<IoEngine> {
    match v {
        "auto" => Ok(IoEngine::Auto),
        "uring" => Ok(IoEngine::Uring),
        "epoll" => Ok(IoEngine::Epoll),
        _ => Err(format!("`{v}` is not one of auto, uring, epoll")),
    }
}

pub fn fast_path(v: &str) -> Parsed<FastPath> {
    match v {
        "auto" => Ok(FastPath::Auto),
        "on" => Ok(FastPath::On),
        "off" => Ok(FastPath::Off),
        _ => Err(format!("`{v}` is not one of auto, on, off")),
    }
}

pub fn fast_path_xdp(v: &str) -> Parsed<crate::fastpath::XdpMode> {
    use crate::fastpath::XdpMode;
    match v {
        "auto" => Ok(XdpMode::Auto),
        "on" => Ok(XdpMode::On),
        "off" => Ok(XdpMode::Off),
        _ => Err(format!("`{v}` is not one of auto, on, off")),
    }
}

/// One character (the TURN REST username separator).
pub fn separator(v: &str) -> Parsed<char> {
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("`{v}` is not a single character")),
    }
}

/// `fleet-lease-time`: long enough for a few refreshes to be missed, short enough that a dead
/// node's allocations come back soon.
pub fn fleet_lease(v: &str) -> Parsed<u32> {
    match number::<u32>(v, "a number of seconds (3-3600)")? {
        n @ 3..=3600 => Ok(n),
        _ => Err(format!("`{v}` is not a number of seconds from 3 to 3600")),
    }
}

pub fn fleet_down(v: &str) -> Parsed<super::FleetDown> {
    match v {
        "open" => Ok(super::FleetDown::Open),
        "closed" => Ok(super::FleetDown::Closed),
        _ => Err(format!("`{v}` is neither open nor closed")),
    }
}

/// A non-empty string.
pub fn text(v: &str) -> Parsed<String> {
    if v.is_empty() {
        Err("expects a value".into())
    } else {
        Ok(v.to_owned())
    }
}

pub fn path(v: &str) -> Parsed<PathBuf> {
    text(v).map(PathBuf::from)
}

/// An HTTP path such as `/metrics`.
pub fn url_path(v: &str) -> Parsed<String> {
    if v.starts_with('/') {
        Ok(v.to_owned())
    } else {
        Err(format!("`{v}` must start with `/`"))
    }
}

/// syslog(3) facility names `syslog-facility` takes (with or without coturn's `LOG_` prefix).
pub const SYSLOG_FACILITIES: [&str; 20] = [
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// A syslog facility name, normalised to lower case without `LOG_`.
pub fn syslog_facility(v: &str) -> Parsed<String> {
    let lower = v.to_ascii_lowercase();
    let name = lower.strip_prefix("log_").unwrap_or(&lower);
    if SYSLOG_FACILITIES.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{v}` is not a syslog facility (daemon, user, local0..local7, ...)"
        ))
    }
}

/// A strftime format for log timestamps, checked now so that logging cannot fail later.
pub fn strftime(v: &str) -> Parsed<String> {
    use chrono::format::{Item, StrftimeItems};
    if v.is_empty() {
        return Err("expects a strftime format such as %FT%T%z".into());
    }
    if StrftimeItems::new(v).any(|i| matches!(i, Item::Error)) {
        return Err(format!("`{v}` is not a valid strftime format"));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn booleans() {
        for t in ["", "1", "7", "yes", "Y", "true", "T", "on", "ON"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["0", "no", "N", "false", "F", "off", "Off"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        assert!(boolean("maybe").is_err());
        assert!(boolean("o").is_err());
    }

    #[test]
    fn ranges() {
        let r = ip_range("10.0.0.0/8").unwrap();
        assert_eq!((r.start, r.end), (v4("10.0.0.0"), v4("10.255.255.255")));
        let r = ip_range("192.168.1.7/32").unwrap();
        assert_eq!((r.start, r.end), (v4("192.168.1.7"), v4("192.168.1.7")));
        let r = ip_range("0.0.0.0/0").unwrap();
        assert_eq!((r.start, r.end), (v4("0.0.0.0"), v4("255.255.255.255")));
        let r = ip_range("fe80::1/10").unwrap();
        assert_eq!(
            (r.start, r.end),
            (v4("fe80::"), v4("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        );
        let r = ip_range("172.16.0.0-172.31.255.255").unwrap();
        assert_eq!((r.start, r.end), (v4("172.16.0.0"), v4("172.31.255.255")));
        assert!(ip_range("10.0.0.9-10.0.0.1").is_err());
        assert!(ip_range("10.0.0.1-::1").is_err());
        assert!(ip_range("10.0.0.0/33").is_err());
        assert!(ip_range("nope").is_err());
    }

    #[test]
    fn users() {
        let u = user("alice:secret:with:colons").unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.secret, UserSecret::Password("secret:with:colons".into()));
        let u = user("bob:0xbc807ee29df3c9ffa736523fb2c4e8ee").unwrap();
        let UserSecret::Key(k) = u.secret else {
            panic!("not a key")
        };
        assert_eq!(k[0], 0xbc);
        assert_eq!(k[15], 0xee);
        assert!(user("bob:0xbc80").is_err());
        assert!(user("bob:0xzz807ee29df3c9ffa736523fb2c4e8ee").is_err());
        assert!(user("nocolon").is_err());
        assert!(user(":pw").is_err());
        let hex64 = "07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b";
        let u = user(&format!("carol:0x{hex64}")).unwrap();
        let UserSecret::Sha256Key(k) = u.secret else {
            panic!("not a SHA-256 key")
        };
        assert_eq!((k[0], k[31]), (0x07, 0x1b));
        assert!(user(&format!("carol:0x{hex64}00")).is_err());
    }

    #[test]
    fn password_algorithm_lists() {
        use PasswordAlgorithm::{Md5, Sha256};
        assert_eq!(password_algorithms("md5"), Ok(vec![Md5]));
        assert_eq!(password_algorithms("sha256, MD5"), Ok(vec![Sha256, Md5]));
        assert_eq!(password_algorithms("SHA-256"), Ok(vec![Sha256]));
        for bad in ["", "sha1", "md5,md5", "sha256,,md5"] {
            assert!(password_algorithms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn servers() {
        assert_eq!(
            server_addr("1.2.3.4:5555", 3478).unwrap(),
            "1.2.3.4:5555".parse().unwrap()
        );
        assert_eq!(
            server_addr("1.2.3.4", 3478).unwrap(),
            "1.2.3.4:3478".parse().unwrap()
        );
        assert_eq!(
            server_addr("[::1]:99", 3478).unwrap(),
            "[::1]:99".parse().unwrap()
        );
        assert_eq!(
            server_addr("::1", 5349).unwrap(),
            "[::1]:5349".parse().unwrap()
        );
        assert!(server_addr("turn.example.com:3478", 3478).is_err());
    }
}
