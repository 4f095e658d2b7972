//! Address ranges for peer policy (`allowed-peer-ip`, `denied-peer-ip`), the normalisation of
//! IPv6 forms that are an IPv4 address (RFC 4291 §2.5.5, RFC 6052 §2.1), and the IPv4 addresses
//! inside forms that reach one through a gateway (6to4, RFC 3056 §2; local-use NAT64, RFC 8215).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::options::IpRange;

/// The IPv4 address an IPv6 address stands for, else the address itself.
///
/// Covers IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d` (not `::` or `::1`) and the NAT64 well-known prefix `64:ff9b::/96`: a dual-stack
/// relay socket reaches the embedded IPv4 address through each of them, so every check must see
/// that address (coturn CVE-2020-26262 and CVE-2026-27624 were bypasses through these forms).
pub fn normalize(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    let bits = u128::from(v6);
    let high = bits >> 32;
    let low = bits as u32;
    let embeds_v4 = match high {
        0xffff | 0xffff_0000 => true,
        0 => low > 1,
        0x0064_ff9b_0000_0000_0000_0000 => true,
        _ => false,
    };
    if embeds_v4 {
        IpAddr::V4(Ipv4Addr::from(low))
    } else {
        ip
    }
}

/// The IPv4 address a gateway on the path would reach for `ip`, which must be normalised: the 6to4
/// relay router's for 2002::/16 (RFC 3056 §2, bits 16..48), and a local-use NAT64's for
/// 64:ff9b:1::/48 (RFC 8215). None for any other address, Teredo included.
///
/// A NAT64 prefix inside 64:ff9b:1::/48 may be a /48, /56, /64 or /96 (RFC 6052 §2.2), and the
/// address alone does not say which. The IPv4 address is read at the /96 position, the last 32
/// bits: the layout of the well-known prefix and the one NAT64 gateways are usually given. Read
/// at every position, most addresses of one layout would look internal in another (an
/// address's last octet lands in the first octet of the /96 reading), refusing good peers.
pub fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let bits = u128::from(v6);
    match v6.segments() {
        [0x2002, ..] => Some(Ipv4Addr::from((bits >> 80) as u32)),
        [0x64, 0xff9b, 1, ..] => Some(Ipv4Addr::from(bits as u32)),
        _ => None,
    }
}

/// An inclusive range of one family, compared as integers. Built from the config's
/// [`IpRange`] after normalising both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    V4(u32, u32),
    V6(u128, u128),
    /// Both ends written in the IPv4-mapped form `::ffff:a.b.c.d` (the IPv4 span): it stands for
    /// peers written in that form, never for the IPv4 addresses themselves. Configurations copied
    /// from the Matrix guide deny `::ffff:0.0.0.0-::ffff:255.255.255.255` against the mapped
    /// bypass; read as IPv4 that would deny every IPv4 peer.
    Mapped(u32, u32),
}

/// The IPv4 address of an IPv4-mapped `::ffff:a.b.c.d`, else None.
fn mapped_v4(ip: IpAddr) -> Option<u32> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let bits = u128::from(v6);
    (bits >> 32 == 0xffff).then_some(bits as u32)
}

impl Range {
    /// Ends of different families (even after normalisation) give a range that contains
    /// nothing; so does `start > end`.
    pub fn new(range: IpRange) -> Range {
        if let (Some(s), Some(e)) = (mapped_v4(range.start), mapped_v4(range.end)) {
            return Range::Mapped(s, e);
        }
        match (normalize(range.start), normalize(range.end)) {
            (IpAddr::V4(s), IpAddr::V4(e)) => Range::V4(s.into(), e.into()),
            (IpAddr::V6(s), IpAddr::V6(e)) => Range::V6(s.into(), e.into()),
            _ => match (range.start, range.end) {
                (IpAddr::V6(s), IpAddr::V6(e)) => Range::V6(s.into(), e.into()),
                _ => Range::V6(1, 0),
            },
        }
    }

    /// `ip` must already be normalised.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Range::V4(s, e), IpAddr::V4(ip)) => (s..=e).contains(&u32::from(ip)),
            (Range::V6(s, e), IpAddr::V6(ip)) => (s..=e).contains(&u128::from(ip)),
            _ => false,
        }
    }

    /// Whether a range written in the IPv4-mapped form holds `ip` as the client wrote it (not
    /// normalised). False for every other range: those see the normalised address.
    pub fn holds_written(&self, ip: IpAddr) -> bool {
        match (*self, mapped_v4(ip)) {
            (Range::Mapped(s, e), Some(v4)) => (s..=e).contains(&v4),
            _ => false,
        }
    }
}

/// Prefix length when `start..=end` is exactly one CIDR block of a `bits`-bit family.
fn cidr_len(start: u128, end: u128, bits: u32) -> Option<u32> {
    let span = end.checked_sub(start)?;
    if span.checked_add(1).is_some_and(|n| !n.is_power_of_two()) {
        return None;
    }
    let host_bits = 128 - span.leading_zeros();
    let aligned = host_bits == 128 || start.trailing_zeros() >= host_bits;
    (aligned && host_bits <= bits).then(|| bits - host_bits)
}

impl fmt::Display for Range {
    /// `IP`, `IP/prefix` when the range is one CIDR block, else `IP1-IP2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end, bits, s, e): (u128, u128, u32, IpAddr, IpAddr) = match *self {
            Range::V4(s, e) => (
                s.into(),
                e.into(),
                32,
                Ipv4Addr::from(s).into(),
                Ipv4Addr::from(e).into(),
            ),
            Range::V6(s, e) => (
                s,
                e,
                128,
                Ipv6Addr::from(s).into(),
                Ipv6Addr::from(e).into(),
            ),
            Range::Mapped(s, e) => (
                u128::from(s) | 0xffff << 32,
                u128::from(e) | 0xffff << 32,
                128,
                Ipv4Addr::from(s).to_ipv6_mapped().into(),
                Ipv4Addr::from(e).to_ipv6_mapped().into(),
            ),
        };
        if start > end {
            return f.write_str("(empty)");
        }
        match cidr_len(start, end, bits) {
            Some(len) if len == bits => write!(f, "{s}"),
            Some(len) => write!(f, "{s}/{len}"),
            None => write!(f, "{s}-{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> Range {
        Range::new(IpRange {
            start: ip(a),
            end: ip(b),
        })
    }

    #[test]
    fn normalizes_embedded_ipv4() {
        assert_eq!(normalize(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(normalize(ip("::ffff:0:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(normalize(ip("::127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(normalize(ip("::2")), ip("0.0.0.2"));
        assert_eq!(normalize(ip("64:ff9b::a9fe:a9fe")), ip("169.254.169.254"));
        assert_eq!(normalize(ip("::")), ip("::"));
        assert_eq!(normalize(ip("::1")), ip("::1"));
        assert_eq!(normalize(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(normalize(ip("64:ff9b:1::1")), ip("64:ff9b:1::1"));
        assert_eq!(normalize(ip("1::ffff:127.0.0.1")), ip("1::ffff:127.0.0.1"));
        assert_eq!(normalize(ip("8.8.8.8")), ip("8.8.8.8"));
    }

    #[test]
    fn embedded_v4_of_gateway_forms() {
        let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(embedded_v4(ip("2002:7f00:1::")), v4("127.0.0.1"));
        assert_eq!(embedded_v4(ip("2002:808:808:1:2:3:4:5")), v4("8.8.8.8"));
        assert_eq!(embedded_v4(ip("64:ff9b:1::a00:1")), v4("10.0.0.1"));
        assert_eq!(
            embedded_v4(ip("64:ff9b:1:ffff:ffff:ffff:7f00:1")),
            v4("127.0.0.1")
        );
        for other in [
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2003:7f00:1::",
            "2001:db8::1",
            "64:ff9b:2::a00:1",
            "64:ff9b:0:1::a00:1",
            "100::1",
            "::1",
            "10.0.0.1",
        ] {
            assert_eq!(embedded_v4(normalize(ip(other))), None, "{other}");
        }
        // The well-known NAT64 prefix is normalised to its IPv4 address before this is asked.
        assert_eq!(embedded_v4(normalize(ip("64:ff9b::7f00:1"))), None);
    }

    #[test]
    fn membership_is_inclusive() {
        let r = range("10.0.0.0", "10.255.255.255");
        assert!(r.contains(ip("10.0.0.0")));
        assert!(r.contains(ip("10.255.255.255")));
        assert!(!r.contains(ip("9.255.255.255")));
        assert!(!r.contains(ip("11.0.0.0")));
        assert!(
            !r.contains(ip("::ffff:10.0.0.1")),
            "callers normalise first"
        );
    }

    #[test]
    fn a_mapped_range_holds_only_peers_written_in_the_mapped_form() {
        let all = range("::ffff:0.0.0.0", "::ffff:255.255.255.255");
        assert_eq!(all, Range::Mapped(0, u32::MAX));
        for peer in ["8.8.8.8", "10.0.0.1", "127.0.0.1"] {
            assert!(!all.contains(normalize(ip(peer))), "{peer}");
            assert!(!all.holds_written(ip(peer)), "{peer}");
        }
        assert!(all.holds_written(ip("::ffff:8.8.8.8")));
        let some = range("::ffff:192.168.0.0", "::ffff:192.168.255.255");
        assert!(some.holds_written(ip("::ffff:192.168.1.1")));
        assert!(!some.holds_written(ip("::ffff:192.169.0.1")));
        assert!(!some.contains(ip("192.168.1.1")));
        assert_eq!(some.to_string(), "::ffff:192.168.0.0/112");
        assert_eq!(all.to_string(), "::ffff:0.0.0.0/96");
        // Other embedded forms are still read as the IPv4 address they carry.
        let nat64 = range("64:ff9b::a00:0", "64:ff9b::aff:ffff");
        assert_eq!(nat64, Range::V4(0x0a00_0000, 0x0aff_ffff));
    }

    #[test]
    fn mixed_or_reversed_ranges_contain_nothing() {
        let mixed = range("10.0.0.0", "2001:db8::1");
        assert!(!mixed.contains(ip("10.0.0.1")));
        assert!(!mixed.contains(ip("2001:db8::")));
        let reversed = range("10.0.0.9", "10.0.0.1");
        assert!(!reversed.contains(ip("10.0.0.5")));
        assert_eq!(reversed.to_string(), "(empty)");
    }

    #[test]
    fn display_prefers_cidr() {
        assert_eq!(
            range("10.0.0.0", "10.255.255.255").to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(range("10.0.0.1", "10.0.0.1").to_string(), "10.0.0.1");
        assert_eq!(
            range("10.0.0.1", "10.0.0.2").to_string(),
            "10.0.0.1-10.0.0.2"
        );
        assert_eq!(
            range("10.0.0.0", "10.0.0.2").to_string(),
            "10.0.0.0-10.0.0.2"
        );
        assert_eq!(range("0.0.0.0", "255.255.255.255").to_string(), "0.0.0.0/0");
        assert_eq!(
            range("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").to_string(),
            "fc00::/7"
        );
        assert_eq!(
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").to_string(),
            "::/0"
        );
    }
}
