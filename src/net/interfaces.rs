//! The host's interface addresses (getifaddrs): what an absent `listening-ip` and the wildcards
//! stand for, and the addresses the peer policy treats as the host itself.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

/// Every IPv4 and IPv6 address of every interface, IPv4 first, without duplicates. IPv6
/// link-local addresses are skipped: binding them needs a scope id the config cannot express.
pub fn local_addresses() -> io::Result<Vec<IpAddr>> {
    let mut found = Vec::new();
    for (_, ip) in named_addresses()? {
        if usable(ip) && !found.contains(&ip) {
            found.push(ip);
        }
    }
    found.sort_by_key(|ip| ip.is_ipv6());
    Ok(found)
}

/// Every IPv4 and IPv6 address with the name of its interface, in getifaddrs order.
pub fn named_addresses() -> io::Result<Vec<(String, IpAddr)>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list returned by getifaddrs, not freed yet.
        let ifa = unsafe { &*cur };
        // SAFETY: `ifa_addr` is null or points to a sockaddr of the family it declares.
        if let Some(ip) = unsafe { ip_of(ifa.ifa_addr) } {
            // SAFETY: `ifa_name` is a NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            found.push((name.to_string_lossy().into_owned(), ip));
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// # Safety
/// `sa` is null or points to a valid sockaddr whose `sa_family` tells its real type.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_link_local_v6_is_not() {
        let all = local_addresses().expect("getifaddrs");
        assert!(all.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{all:?}");
        assert!(all.iter().all(|ip| usable(*ip)));
        let first_v6 = all.iter().position(|ip| ip.is_ipv6());
        let last_v4 = all.iter().rposition(|ip| ip.is_ipv4());
        if let (Some(v6), Some(v4)) = (first_v6, last_v4) {
            assert!(v4 < v6, "IPv4 addresses come first: {all:?}");
        }
    }

    #[test]
    fn link_local_v6_is_not_usable() {
        assert!(!usable("fe80::1".parse().unwrap()));
        assert!(!usable("febf::1".parse().unwrap()));
        assert!(usable("fec0::1".parse().unwrap()));
        assert!(usable("::1".parse().unwrap()));
        assert!(!usable("0.0.0.0".parse().unwrap()));
    }
}
