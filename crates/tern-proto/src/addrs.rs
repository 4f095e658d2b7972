//! The host's own addresses as the core sees them: what the wildcards `0.0.0.0` and `::` stand
//! for in `listening-ip` and `relay-ip` (coturn binds each address separately, so a reply leaves
//! from the address the client reached), over a list of the host's addresses that the engine
//! made. Listing them is I/O and happens in the server.

use std::net::IpAddr;

/// `ips` with each wildcard replaced by every address of its family in `host` (`0.0.0.0`: every
/// IPv4 address, `::`: every IPv6 address), in order, without duplicates. An empty `ips` stands
/// for every address of `host`, as an absent `listening-ip` does.
pub fn expand(ips: &[IpAddr], host: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut add = |ip: IpAddr| {
        if !ip.is_unspecified() && !out.contains(&ip) {
            out.push(ip);
        }
    };
    if ips.is_empty() {
        host.iter().copied().for_each(&mut add);
    }
    for ip in ips {
        if ip.is_unspecified() {
            host.iter()
                .filter(|h| h.is_ipv4() == ip.is_ipv4())
                .copied()
                .for_each(&mut add);
        } else {
            add(*ip);
        }
    }
    out
}

/// Whether `ip` is an address of the host whose interface addresses are `host`. Every
/// 127.0.0.0/8 address counts once the host has an IPv4 loopback address: Linux delivers the
/// whole block locally and binds any address of it.
pub fn is_local(ip: IpAddr, host: &[IpAddr]) -> bool {
    let v4_loopback = |ip: &IpAddr| ip.is_ipv4() && ip.is_loopback();
    host.contains(&ip) || (v4_loopback(&ip) && host.iter().any(v4_loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    const HOST: &[&str] = &[
        "127.0.0.1",
        "10.0.0.10",
        "172.17.0.1",
        "::1",
        "2001:db8::10",
    ];

    #[test]
    fn nothing_given_means_every_host_address() {
        assert_eq!(expand(&[], &ips(HOST)), ips(HOST));
        assert!(expand(&[], &[]).is_empty());
    }

    #[test]
    fn each_wildcard_stands_for_its_family_only() {
        let host = ips(HOST);
        assert_eq!(
            expand(&ips(&["0.0.0.0"]), &host),
            ips(&["127.0.0.1", "10.0.0.10", "172.17.0.1"])
        );
        assert_eq!(expand(&ips(&["::"]), &host), ips(&["::1", "2001:db8::10"]));
        assert_eq!(expand(&ips(&["0.0.0.0", "::"]), &host), host);
    }

    #[test]
    fn explicit_addresses_stay_in_place_and_duplicates_go() {
        let host = ips(HOST);
        assert_eq!(
            expand(&ips(&["2001:db8::99", "0.0.0.0", "10.0.0.10"]), &host),
            ips(&["2001:db8::99", "127.0.0.1", "10.0.0.10", "172.17.0.1"])
        );
        assert_eq!(
            expand(&ips(&["203.0.113.10"]), &host),
            ips(&["203.0.113.10"]),
            "an address not on the host is kept: binding it is what fails"
        );
    }

    #[test]
    fn a_wildcard_of_a_missing_family_gives_nothing() {
        let v4_only = ips(&["127.0.0.1", "10.0.0.10"]);
        assert!(expand(&ips(&["::"]), &v4_only).is_empty());
        assert_eq!(
            expand(&ips(&["::", "0.0.0.0"]), &v4_only),
            v4_only,
            "the other wildcard still counts"
        );
    }

    #[test]
    fn local_addresses_are_the_listed_ones_and_the_loopback_block() {
        let host = ips(HOST);
        for ip in ["10.0.0.10", "127.0.0.1", "127.0.0.2", "::1", "2001:db8::10"] {
            assert!(is_local(ip.parse().unwrap(), &host), "{ip}");
        }
        for ip in ["10.0.0.11", "203.0.113.10", "2001:db8::11", "::2"] {
            assert!(!is_local(ip.parse().unwrap(), &host), "{ip}");
        }
        assert!(
            !is_local("127.0.0.2".parse().unwrap(), &ips(&["10.0.0.10"])),
            "no loopback interface, no loopback block"
        );
    }
}
