//! UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18): one `sendmsg` carries several
//! equal-sized datagrams to one destination. Probed once at start with a real send on loopback;
//! when the kernel refuses, every datagram goes out on its own.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Writes one `UDP_SEGMENT` control message with segment size `seg` into `buf`; returns the
/// control length to put in the msghdr.
pub(crate) fn write_segment_cmsg(buf: &mut [u64; 4], seg: u16) -> usize {
    // SAFETY: CMSG_SPACE(2) is 24 bytes on 64-bit Linux, within the 32 bytes of `buf`, which is
    // 8-aligned as cmsghdr requires; the header and data are written inside that space.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_control = buf.as_mut_ptr().cast();
        hdr.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&hdr);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
        libc::CMSG_DATA(cmsg).cast::<u16>().write_unaligned(seg);
        space
    }
}

/// Sends two 100-byte segments in one GSO `sendmsg` over loopback and checks that two datagrams
/// arrive. Err says why GSO is off.
pub(crate) fn probe() -> io::Result<()> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    rx.set_read_timeout(Some(Duration::from_millis(500)))?;
    let to = socket2::SockAddr::from(rx.local_addr()?);
    let mut payload = [7u8; 200];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = to.as_ptr() as *mut libc::c_void;
    hdr.msg_namelen = to.len();
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_controllen = write_segment_cmsg(&mut control, 100);
    hdr.msg_control = control.as_mut_ptr().cast();
    // SAFETY: `hdr` points at live buffers of the lengths given.
    let sent = unsafe { libc::sendmsg(tx.as_raw_fd(), &hdr, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 256];
    for _ in 0..2 {
        let n = rx.recv(&mut buf)?;
        if n != 100 {
            return Err(io::Error::other(format!(
                "a {n}-byte segment instead of 100"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_agrees_with_the_kernel() {
        // Linux 4.18+ has UDP GSO; the probe must not fail on the machines tern targets.
        if let Err(e) = super::probe() {
            panic!("UDP GSO probe failed: {e}");
        }
    }
}
