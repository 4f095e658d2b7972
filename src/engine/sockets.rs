//! Socket creation with the options tern needs: SO_REUSEPORT listeners (one per shard, steered by
//! source IP in `steer`), IPv6-only IPv6 sockets (so IPv4 and IPv6 binds never collide),
//! non-blocking mode, IP_MTU_DISCOVER for DONT-FRAGMENT (RFC 8656 §14.8) and IP_RECVERR for ICMP
//! errors about peers (§11.5).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel buffer size asked for on listener sockets (the kernel doubles it, capped by
/// net.core.rmem_max): a few milliseconds of traffic at full speed. A deeper queue only turns
/// overload into seconds of latency for every client, Binding and Allocate included, where
/// dropping the excess keeps the control plane answering.
const LISTENER_BUFFER: usize = 512 << 10;
/// Receive buffer asked for on each relay socket (coturn's 64 KiB; the kernel doubles it): a
/// peer's burst fits, but under overload one allocation's queue stays short. The default
/// (net.core.rmem_default, 208 KiB here) times every relay socket of a busy shard queued half
/// a second of media at twice the shard's capacity, and late media is worse than lost media.
const RELAY_BUFFER: usize = 64 << 10;
const TCP_BACKLOG: i32 = 1024;

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// How a listener takes its SO_REUSEPORT group's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    /// The group's first socket: bound without SO_REUSEPORT, which fails while any socket of
    /// any process holds the address, and the option set once the port is its own. Set before
    /// the bind, the kernel lets a reuseport socket share the port with every reuseport socket
    /// of the same user, and a port-0 bind may even pick such a port: two servers would then
    /// split each other's clients without a word.
    Open,
    /// A later shard's socket joining the group `Open` made.
    Join,
}

/// A UDP listener shared by every shard through SO_REUSEPORT.
pub(crate) fn udp_listener(addr: SocketAddr, group: Group) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a larger buffer absorbs bursts between two wakeups; the kernel may cap it.
    let _ = socket.set_recv_buffer_size(LISTENER_BUFFER);
    let _ = socket.set_send_buffer_size(LISTENER_BUFFER);
    bind_in(&socket, addr, group)?;
    Ok(socket.into())
}

/// A TCP listener shared by every shard through SO_REUSEPORT.
pub(crate) fn tcp_listener(addr: SocketAddr, group: Group) -> io::Result<std::net::TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    bind_in(&socket, addr, group)?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

fn bind_in(socket: &Socket, addr: SocketAddr, group: Group) -> io::Result<()> {
    match group {
        Group::Open => {
            socket.bind(&addr.into())?;
            socket.set_reuse_port(true)
        }
        Group::Join => {
            socket.set_reuse_port(true)?;
            socket.bind(&addr.into())
        }
    }
}

/// A relay socket: exclusive (no SO_REUSEPORT), so a bound port is really this allocation's.
pub(crate) fn relay(addr: SocketAddr, dont_fragment: bool) -> io::Result<Socket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    socket.bind(&addr.into())?;
    // Best effort, like the listeners' buffers.
    let _ = socket.set_recv_buffer_size(RELAY_BUFFER);
    if dont_fragment {
        set_dont_fragment(&socket, addr.is_ipv6(), true)?;
    }
    report_errors(&socket, addr.is_ipv6())?;
    Ok(socket)
}

/// IP_RECVERR / IPV6_RECVERR: ICMP errors about the peers this socket sends to, and local
/// "message too long" errors of DONT-FRAGMENT sends, are queued for `icmp::read` (RFC 8656
/// §11.5). Without it an unconnected UDP socket never hears of them.
fn report_errors(socket: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)
    } else {
        set_int(socket, libc::IPPROTO_IP, libc::IP_RECVERR, 1)
    }
}

/// On, IP_PMTUDISC_DO: the kernel sets DF and never fragments locally (a datagram larger than
/// the first hop's MTU fails with EMSGSIZE). Off, IP_PMTUDISC_WANT, a socket's default: a
/// datagram larger than the path MTU the kernel knows is fragmented.
pub(crate) fn set_dont_fragment(socket: &Socket, v6: bool, on: bool) -> io::Result<()> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    let value = match (v6, on) {
        (true, true) => libc::IPV6_PMTUDISC_DO,
        (true, false) => libc::IPV6_PMTUDISC_WANT,
        (false, true) => libc::IP_PMTUDISC_DO,
        (false, false) => libc::IP_PMTUDISC_WANT,
    };
    set_int(socket, level, name, value)
}

fn set_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd, and a pointer/length pair describing one c_int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `SO_MEMINFO` and its `SK_MEMINFO_DROPS` field (linux/sock_diag.h; the libc crate names
/// neither).
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;

/// Datagrams the kernel has dropped on this socket since it was opened (its receive queue was
/// full), or None where the kernel does not say (before Linux 4.7).
pub(crate) fn kernel_drops(fd: RawFd) -> Option<u32> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` has room for `len` bytes; the kernel writes at most that many and says how
    // many in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let whole = len as usize >= std::mem::size_of_val(&info);
    (rc == 0 && whole).then_some(info[SK_MEMINFO_DROPS])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn udp_listeners_share_a_port_and_relays_do_not() {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let a = udp_listener(any, Group::Open).unwrap();
        let port_addr = a.local_addr().unwrap();
        let b = udp_listener(port_addr, Group::Join).unwrap();
        assert_eq!(b.local_addr().unwrap(), port_addr);

        let r = relay(any, true).unwrap();
        let r_addr = r.local_addr().unwrap().as_socket().unwrap();
        let err = relay(r_addr, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn the_kernel_counts_what_a_full_listener_drops() {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let rx = udp_listener(any, Group::Open).unwrap();
        let fd = rx.as_raw_fd();
        assert_eq!(kernel_drops(fd), Some(0));
        let tx = std::net::UdpSocket::bind(any).unwrap();
        let to = rx.local_addr().unwrap();
        // Far more than the receive buffer holds (1 MiB at most with the default rmem_max).
        for _ in 0..20_000 {
            let _ = tx.send_to(&[0; 1000], to);
        }
        assert!(kernel_drops(fd).is_some_and(|n| n > 0));
    }

    #[test]
    fn tcp_listeners_share_a_port() {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let a = tcp_listener(any, Group::Open).unwrap();
        let addr = a.local_addr().unwrap();
        let b = tcp_listener(addr, Group::Join).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }

    /// A group is opened only on an address no socket holds: not beside another group of the
    /// same user (which SO_REUSEPORT set before the bind would join), nor beside an exclusive
    /// socket.
    #[test]
    fn a_group_opens_only_where_no_socket_holds_the_address() {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let udp = udp_listener(any, Group::Open).unwrap();
        let err = udp_listener(udp.local_addr().unwrap(), Group::Open).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let tcp = tcp_listener(any, Group::Open).unwrap();
        let tcp = tcp.local_addr().unwrap();
        let err = tcp_listener(tcp, Group::Open).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let r = relay(any, false).unwrap();
        let r = r.local_addr().unwrap().as_socket().unwrap();
        let err = udp_listener(r, Group::Open).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
