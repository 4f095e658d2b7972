//! UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18): one `sendmsg` carries several
//! equal-sized datagrams to one destination. Probed once at start with a real send on loopback;
//! when the kernel refuses, every datagram goes out on its own. The io_uring engine builds its
//! GSO sends in its send slots (`uring/send.rs`); the epoll shards gather the datagrams of a
//! stream client's frames in a `Train`.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::SockAddr;

use super::batch::Flushed;

/// Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is at least 64).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// Bytes per GSO send (one IP datagram before segmentation).
pub(crate) const GSO_MAX_BYTES: usize = 60_000;
/// Larger segments go out one by one: a GSO segment above the path MTU fails as a whole.
pub(crate) const GSO_MAX_SEGMENT: usize = 1472;

/// Datagrams from one socket to one destination, copied back to back: equal sizes, the last
/// may be shorter. A stream client's read often holds several ChannelData frames for the same
/// peer; the train sends them with one `sendmsg` instead of one `sendto` each. The caller
/// flushes it before anything that could change or close the socket (its DF option, the
/// relay's end) and before it sleeps.
pub(crate) struct Train {
    /// GSO works here (`probe`); off, or once the kernel refused a GSO send, nothing joins.
    gso: bool,
    fd: RawFd,
    to: Option<SocketAddr>,
    seg: usize,
    count: usize,
    bytes: Vec<u8>,
}

impl Train {
    pub(crate) fn new(gso: bool) -> Train {
        Train {
            gso,
            fd: -1,
            to: None,
            seg: 0,
            count: 0,
            bytes: Vec::new(),
        }
    }

    /// Adds `data` for `to` from socket `fd`; false when it cannot join this train (then flush
    /// and join again, or send it on its own: an empty train takes any datagram GSO can carry).
    pub(crate) fn join(&mut self, fd: RawFd, to: SocketAddr, data: &[u8]) -> bool {
        let len = data.len();
        if !self.gso || len == 0 || len > GSO_MAX_SEGMENT {
            return false;
        }
        if self.count == 0 {
            self.fd = fd;
            self.to = Some(to);
            self.seg = len;
        } else {
            let short = self.bytes.len() < self.count * self.seg;
            let fits = self.fd == fd
                && self.to == Some(to)
                && !short
                && len <= self.seg
                && self.count < MAX_SEGMENTS
                && self.bytes.len() + len <= GSO_MAX_BYTES;
            if !fits {
                return false;
            }
        }
        self.bytes.extend_from_slice(data);
        self.count += 1;
        true
    }

    /// Sends what the train holds: one datagram with `sendto`, several with one GSO `sendmsg`.
    /// A GSO send the kernel refuses with EIO turns GSO off for good and goes out datagram by
    /// datagram.
    pub(crate) fn flush(&mut self) -> Flushed {
        let mut done = Flushed {
            sent: 0,
            dropped: 0,
        };
        let Some(to) = self.to.take() else {
            return done;
        };
        let to = SockAddr::from(to);
        let count = std::mem::take(&mut self.count) as u64;
        let seg = if count > 1 { self.seg } else { 0 };
        match send(self.fd, &to, &self.bytes, seg) {
            Ok(()) => done.sent = count,
            Err(e) if e.raw_os_error() == Some(libc::EIO) && count > 1 => {
                self.gso = false;
                for one in self.bytes.chunks(self.seg) {
                    match send(self.fd, &to, one, 0) {
                        Ok(()) => done.sent += 1,
                        Err(_) => done.dropped += 1,
                    }
                }
            }
            // EAGAIN, ENOBUFS, ECONNREFUSED and the like: dropped, as UDP allows.
            Err(_) => done.dropped = count,
        }
        self.bytes.clear();
        done
    }

    /// Whether GSO is still on (the kernel may have refused it at run time).
    pub(crate) fn gso(&self) -> bool {
        self.gso
    }
}

/// Sends `data` to `to` from `fd`: as segments of `seg` bytes with one `sendmsg`, or when `seg`
/// is 0 as one datagram with `sendto` (which spares the kernel the msghdr and iovec copies).
fn send(fd: RawFd, to: &SockAddr, data: &[u8], seg: usize) -> io::Result<()> {
    if seg == 0 {
        // SAFETY: `data` and `to` are live for the call and their lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT,
                to.as_ptr(),
                to.len(),
            )
        };
        return if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call, and the
    // kernel only reads through them.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = to.as_ptr() as *mut libc::c_void;
    hdr.msg_namelen = to.len();
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_controllen = write_segment_cmsg(&mut control, seg as u16);
    hdr.msg_control = control.as_mut_ptr().cast();
    // SAFETY: `hdr` points at live buffers of the lengths given.
    let sent = unsafe { libc::sendmsg(fd, &hdr, libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

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
    send(
        tx.as_raw_fd(),
        &SockAddr::from(rx.local_addr()?),
        &[7u8; 200],
        100,
    )?;
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
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::{Train, GSO_MAX_SEGMENT, MAX_SEGMENTS};

    #[test]
    fn probe_agrees_with_the_kernel() {
        // Linux 4.18+ has UDP GSO; the probe must not fail on the machines tern targets.
        if let Err(e) = super::probe() {
            panic!("UDP GSO probe failed: {e}");
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_train_takes_equal_datagrams_for_one_destination_and_a_shorter_last() {
        let mut t = Train::new(true);
        assert!(t.join(3, addr(1), &[1; 100]));
        assert!(t.join(3, addr(1), &[2; 100]));
        assert!(!t.join(3, addr(1), &[3; 101]), "longer than the segment");
        assert!(!t.join(4, addr(1), &[3; 100]), "another socket");
        assert!(!t.join(3, addr(2), &[3; 100]), "another destination");
        assert!(t.join(3, addr(1), &[3; 40]), "a shorter last segment");
        assert!(
            !t.join(3, addr(1), &[4; 40]),
            "nothing after the shorter one"
        );
        assert!(!Train::new(true).join(3, addr(1), &[0; GSO_MAX_SEGMENT + 1]));
        assert!(!Train::new(false).join(3, addr(1), &[0; 10]), "GSO off");
        let mut full = Train::new(true);
        for _ in 0..MAX_SEGMENTS {
            assert!(full.join(3, addr(1), &[0; 10]));
        }
        assert!(!full.join(3, addr(1), &[0; 10]), "more than MAX_SEGMENTS");
    }

    #[test]
    fn a_flushed_train_arrives_as_its_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("address");
        let gso = super::probe().is_ok();
        let mut t = Train::new(gso);
        let sizes = [300usize, 300, 300, 120];
        for (k, &n) in sizes.iter().enumerate() {
            assert_eq!(t.join(tx.as_raw_fd(), to, &vec![k as u8; n]), gso);
        }
        let done = t.flush();
        assert_eq!((done.sent, done.dropped), (if gso { 4 } else { 0 }, 0));
        // Empty now: flushing again sends nothing, and a lone datagram goes as it is.
        assert_eq!(t.flush().sent, 0);
        assert_eq!(t.join(tx.as_raw_fd(), to, &[9; 50]), gso);
        assert_eq!(t.flush().sent, u64::from(gso));
        if !gso {
            return;
        }
        let mut buf = [0u8; 2048];
        for (k, &n) in sizes.iter().chain(&[50]).enumerate() {
            let got = rx.recv(&mut buf).expect("a datagram");
            let fill = if k < sizes.len() { k as u8 } else { 9 };
            assert_eq!(&buf[..got], &vec![fill; n][..], "datagram {k}");
        }
    }
}
