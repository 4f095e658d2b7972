//! ICMP errors about peers, read from a relay socket's error queue (RFC 8656 §11.5). With
//! IP_RECVERR / IPV6_RECVERR (`sockets::relay`) the kernel queues each ICMP error that a
//! datagram to a peer drew, with that peer in the message's name; `recvmsg(MSG_ERRQUEUE)`
//! reads them. Both engines read the queue when the socket reports an error (EPOLLERR, or a
//! receive or send on it that failed), never per packet.

use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::ptr;

use socket2::SockAddr;

use crate::turn::Icmp;

/// Errors read per call: bounded work per wakeup. Each error queued later wakes the engine
/// again, and the core reports at most four per allocation per second anyway.
const MAX_PER_READ: usize = 64;

/// Reads the errors queued on relay socket `fd` (at most `MAX_PER_READ`) and hands each one
/// about a peer to `each`.
///
/// Besides ICMP and ICMPv6 errors, a datagram sent with DONT-FRAGMENT that is larger than the
/// first hop's MTU never leaves the host: Linux fails the send with EMSGSIZE and queues a local
/// error carrying that MTU. It is reported as the ICMP error a router would have sent for the
/// same datagram (fragmentation needed, ICMPv4 3/4, or packet too big, ICMPv6 2/0), so the
/// client learns the MTU either way; the kernel does not say the peer's port then (0, as §11.5
/// allows).
pub(crate) fn read(fd: RawFd, mut each: impl FnMut(SocketAddr, Icmp)) {
    for _ in 0..MAX_PER_READ {
        match next(fd) {
            Some(Some((peer, icmp))) => each(peer, icmp),
            Some(None) => {}
            None => return,
        }
    }
}

/// One queued error: None when the queue is empty, Some(None) for one that is not about a peer.
fn next(fd: RawFd) -> Option<Option<(SocketAddr, Icmp)>> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr (null pointers, lengths 0).
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // u64 elements: aligned for cmsghdr. Room for sock_extended_err and the offender's address.
    let mut control = [0u64; 16];
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    // SAFETY: `msg` points at `name` and `control` with their sizes and at no data buffer; the
    // kernel writes within those.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    // SAFETY: the kernel wrote a sockaddr of `msg_namelen` bytes into `name`.
    let Some(peer) = (unsafe { SockAddr::new(name, msg.msg_namelen) }).as_socket() else {
        return Some(None);
    };
    let Some(err) = extended_error(&msg) else {
        return Some(None);
    };
    let icmp = match err.ee_origin {
        libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6 => Icmp {
            icmp_type: err.ee_type,
            code: err.ee_code,
            info: err.ee_info,
        },
        libc::SO_EE_ORIGIN_LOCAL if err.ee_errno == libc::EMSGSIZE as u32 => {
            let (icmp_type, code) = if peer.is_ipv6() { (2, 0) } else { (3, 4) };
            Icmp {
                icmp_type,
                code,
                info: err.ee_info,
            }
        }
        _ => return Some(None),
    };
    Some(Some((peer, icmp)))
}

/// The `sock_extended_err` among the control messages of `msg`.
fn extended_error(msg: &libc::msghdr) -> Option<libc::sock_extended_err> {
    let want = mem::size_of::<libc::sock_extended_err>();
    // SAFETY: `msg` describes a control buffer the kernel filled and `msg_controllen` says how
    // much of it; the CMSG macros stay within that length.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies inside the control buffer.
        let hdr = unsafe { &*cmsg };
        let ours = matches!(
            (hdr.cmsg_level, hdr.cmsg_type),
            (libc::SOL_IP, libc::IP_RECVERR) | (libc::SOL_IPV6, libc::IPV6_RECVERR)
        );
        // SAFETY: CMSG_LEN is arithmetic on a length.
        if ours && hdr.cmsg_len >= unsafe { libc::CMSG_LEN(want as u32) } as usize {
            // SAFETY: the message holds `want` bytes of data after its header (checked above);
            // read unaligned, as the buffer gives no guarantee for the struct's alignment.
            return Some(unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) });
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use crate::engine::sockets;

    /// A port nobody listens on: bound, read, closed.
    fn closed_port(ip: &str) -> SocketAddr {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        s.local_addr().unwrap()
    }

    fn errors_after_send(ip: &str, to: SocketAddr, len: usize) -> Vec<(SocketAddr, Icmp)> {
        let relay = sockets::relay(SocketAddr::new(ip.parse().unwrap(), 0), false).unwrap();
        let _ = relay.send_to(&vec![0; len], &to.into());
        let mut got = Vec::new();
        // Up to 2 s for the kernel to loop the error back.
        for _ in 0..400 {
            read(relay.as_raw_fd(), |peer, icmp| got.push((peer, icmp)));
            if !got.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn a_closed_port_on_loopback_is_port_unreachable() {
        let to = closed_port("127.0.0.1");
        let got = errors_after_send("127.0.0.1", to, 10);
        let icmp = Icmp {
            icmp_type: 3,
            code: 3,
            info: 0,
        };
        assert_eq!(got, vec![(to, icmp)]);
    }

    #[test]
    fn a_closed_port_on_ipv6_loopback_is_port_unreachable() {
        if UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("SKIP: no IPv6 loopback");
            return;
        }
        let to = closed_port("::1");
        let got = errors_after_send("::1", to, 10);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, to);
        assert_eq!((got[0].1.icmp_type, got[0].1.code), (1, 4));
    }

    #[test]
    fn an_empty_queue_reads_nothing() {
        let relay = sockets::relay("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let mut n = 0;
        read(relay.as_raw_fd(), |_, _| n += 1);
        assert_eq!(n, 0);
    }
}
