//! What a network driver can do with XDP frames, from the kernel's `netdev` generic netlink
//! family (Linux ≥ 6.3): the fast path attaches its XDP program only where the driver can
//! transmit XDP frames (`NETDEV_XDP_ACT_NDO_XMIT`), since a redirect drops the frame
//! elsewhere. A veth has that feature only while its other end can take XDP frames (an XDP
//! program or GRO there), which is exactly the condition for redirected frames to arrive.
//! [`driver`] names the driver (ethtool's), to tell a veth.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `NETDEV_XDP_ACT_NDO_XMIT` (include/uapi/linux/netdev.h): the driver transmits XDP frames.
pub const XDP_ACT_NDO_XMIT: u64 = 1 << 2;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NLMSG_ERROR: u16 = 2;
/// nlmsghdr (16 bytes) and genlmsghdr (4).
const HEADERS: usize = 20;

/// The XDP features of interface `ifindex`; `None` where the kernel has no `netdev` family
/// (before 6.3: then nothing says what the driver can do).
pub fn xdp_features(ifindex: u32) -> io::Result<Option<u64>> {
    let socket = Netlink::open()?;
    let Some(family) = socket.family_id("netdev")? else {
        return Ok(None);
    };
    let reply = socket.request(
        family,
        NETDEV_CMD_DEV_GET,
        &attribute(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes()),
    )?;
    Ok(
        find(&reply, NETDEV_A_DEV_XDP_FEATURES).and_then(|v| match v.len() {
            4 => Some(u64::from(u32::from_ne_bytes(v.try_into().ok()?))),
            8 => Some(u64::from_ne_bytes(v.try_into().ok()?)),
            _ => None,
        }),
    )
}

/// The name of the driver of interface `name` (`ETHTOOL_GDRVINFO`), e.g. `veth`, `virtio_net`.
pub fn driver(name: &str) -> io::Result<String> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GDRVINFO: u32 = 3;
    /// struct ethtool_drvinfo: cmd, driver[32], then fields this does not read.
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        rest: [u8; 160],
    }
    /// struct ifreq with the ifr_data member of its union.
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut DrvInfo,
        pad: [u8; 16],
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        rest: [0; 160],
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut info,
        pad: [0; 16],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor socket(2) just returned, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: SIOCETHTOOL reads the ifreq and writes into the drvinfo it points to, both ours
    // and alive for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor socket(2) just returned, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: setsockopt(2) with a timeval we own.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Netlink { fd })
    }

    /// The id of the generic netlink family `name`; None when the kernel has none.
    fn family_id(&self, name: &str) -> io::Result<Option<u16>> {
        let mut value = name.as_bytes().to_vec();
        value.push(0);
        let reply = match self.request(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            &attribute(CTRL_ATTR_FAMILY_NAME, &value),
        ) {
            Ok(reply) => reply,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(find(&reply, CTRL_ATTR_FAMILY_ID)
            .and_then(|v| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?))))
    }

    /// Sends one request and returns the attributes of its answer (an error answer as the
    /// error).
    fn request(&self, family: u16, cmd: u8, attributes: &[u8]) -> io::Result<Vec<u8>> {
        let len = HEADERS + attributes.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&family.to_ne_bytes());
        msg.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        msg.extend_from_slice(&[cmd, 1, 0, 0]); // command, version, reserved
        msg.extend_from_slice(attributes);
        // SAFETY: send(2) from a buffer we own, of its length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        // SAFETY: recv(2) into a buffer we own, of its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let reply = &buf[..n as usize];
        if reply.len() < HEADERS {
            return Err(io::Error::other("short netlink answer"));
        }
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        if kind == NLMSG_ERROR {
            let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
            return Err(io::Error::from_raw_os_error(-code));
        }
        let end = (u32::from_ne_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize)
            .min(reply.len());
        Ok(reply[HEADERS..end.max(HEADERS)].to_vec())
    }
}

/// One netlink attribute, padded to 4 bytes.
fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut a = Vec::with_capacity(len.next_multiple_of(4));
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    a.resize(len.next_multiple_of(4), 0);
    a
}

/// The value of the first attribute of type `kind` in `attributes`.
fn find(mut attributes: &[u8], kind: u16) -> Option<&[u8]> {
    while attributes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
        let this = u16::from_ne_bytes([attributes[2], attributes[3]]) & 0x3fff;
        if len < 4 || len > attributes.len() {
            return None;
        }
        if this == kind {
            return Some(&attributes[4..len]);
        }
        attributes = &attributes[len.next_multiple_of(4).min(attributes.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_found_again() {
        let mut all = attribute(7, b"abc");
        assert_eq!(all.len(), 8);
        all.extend(attribute(NETDEV_A_DEV_XDP_FEATURES, &0x27u64.to_ne_bytes()));
        assert_eq!(find(&all, 7), Some(&b"abc"[..]));
        assert_eq!(
            find(&all, NETDEV_A_DEV_XDP_FEATURES),
            Some(&0x27u64.to_ne_bytes()[..])
        );
        assert_eq!(find(&all, 9), None);
        assert_eq!(find(&[0xff, 0, 1, 0], 1), None, "a length past the end");
    }

    #[test]
    fn the_driver_of_an_interface_that_is_not_there_is_an_error() {
        assert!(driver("tern-no-such0").is_err());
        assert!(driver("a-name-longer-than-ifnamsiz").is_err());
    }

    #[test]
    fn loopback_has_an_answer() {
        // lo is ifindex 1 in every namespace; it has no native XDP.
        match xdp_features(1) {
            Ok(Some(features)) => assert_eq!(features & XDP_ACT_NDO_XMIT, 0),
            Ok(None) => eprintln!("NOTICE: this kernel has no netdev netlink family"),
            Err(e) => panic!("netlink: {e}"),
        }
    }
}
