//! Socket addresses as the kernel writes them into a receive buffer (`sockaddr_in`,
//! `sockaddr_in6`), read without trusting their length.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The address in `name`, or None when it is short or of another family.
pub(crate) fn parse(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*name.first()?, *name.get(1)?]));
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope: [u8; 4] = name.get(24..28)?.try_into().ok()?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                u32::from_be_bytes(flow),
                u32::from_ne_bytes(scope),
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::net::SocketAddr;

    fn raw(addr: SocketAddr) -> Vec<u8> {
        let s = socket2::SockAddr::from(addr);
        // SAFETY: `s` holds `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len() as usize) }.to_vec()
    }

    #[test]
    fn reads_what_the_kernel_writes() {
        for a in ["127.0.0.1:3478", "[::1]:9", "[fe80::1%2]:5"] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(parse(&raw(addr)), Some(addr));
        }
        let v4 = raw("10.0.0.1:1".parse().unwrap());
        assert_eq!(parse(&v4[..7]), None);
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0; 16]), None);
    }
}
