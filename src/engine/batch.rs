//! Batched datagram I/O: `recvmmsg` into buffers allocated once per shard, each with
//! `turn::HEADROOM` bytes in front of the payload and tailroom behind it, and `sendmmsg` of the
//! resulting outputs grouped by socket.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::RawFd;
use std::ptr;

use socket2::SockAddr;

use crate::turn::HEADROOM;

/// Datagrams per system call.
pub(crate) const BATCH: usize = 32;
/// The largest UDP payload (IPv4: 65507; IPv6 jumbograms are not supported).
pub(crate) const MAX_DATAGRAM: usize = 65_535;
/// Room after a payload for padding and FINGERPRINT (the core's contract asks for 64).
pub(crate) const TAILROOM: usize = 64;
/// Where the core writes responses (the contract asks for at least 1500 bytes).
pub(crate) const SCRATCH: usize = 2048;

/// One receive buffer and the response scratch that goes with it.
pub(crate) struct Slot {
    pub(crate) buf: Box<[u8]>,
    pub(crate) scratch: Box<[u8]>,
    pub(crate) len: usize,
    pub(crate) from: Option<SocketAddr>,
}

impl Slot {
    /// Room for a payload of up to `max` bytes.
    pub(crate) fn new(max: usize) -> Slot {
        Slot {
            buf: vec![0; HEADROOM + max + TAILROOM].into_boxed_slice(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            len: 0,
            from: None,
        }
    }
}

/// What a receive returned.
pub(crate) struct Received {
    /// Slots `0..count` hold datagrams (with `from == None` for a truncated or unreadable one).
    pub(crate) count: usize,
    /// Fewer than a full batch: the socket is drained (the next arrival wakes the poll again).
    pub(crate) drained: bool,
}

pub(crate) struct RecvBatch {
    pub(crate) slots: Vec<Slot>,
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            slots: (0..BATCH).map(|_| Slot::new(MAX_DATAGRAM)).collect(),
            hdrs: zeroed_batch(),
            iovs: (0..BATCH).map(|_| empty_iovec()).collect(),
            names: zeroed_batch(),
        }
    }

    /// One `recvmmsg` on a non-blocking socket. `Ok` with `count == 0` means nothing was waiting.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<Received> {
        for i in 0..BATCH {
            let (slot, iov, name, hdr) = (
                &mut self.slots[i],
                &mut self.iovs[i],
                &mut self.names[i],
                &mut self.hdrs[i],
            );
            iov.iov_base = slot.buf[HEADROOM..].as_mut_ptr().cast();
            iov.iov_len = MAX_DATAGRAM;
            let namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            point(
                hdr,
                (name as *mut libc::sockaddr_storage).cast(),
                namelen,
                iov,
            );
        }
        // SAFETY: every header points at a live iovec and name buffer of the sizes given, and
        // every iovec at `MAX_DATAGRAM` writable bytes of its slot (the slot has HEADROOM +
        // MAX_DATAGRAM + TAILROOM bytes).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT as _,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::WouldBlock {
                Ok(Received {
                    count: 0,
                    drained: true,
                })
            } else {
                Err(err)
            };
        }
        let count = (n as usize).min(BATCH);
        for i in 0..count {
            let hdr = &self.hdrs[i];
            let slot = &mut self.slots[i];
            slot.len = (hdr.msg_len as usize).min(MAX_DATAGRAM);
            slot.from = if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                None
            } else {
                // SAFETY: the kernel wrote a sockaddr of `msg_namelen` bytes into `names[i]`.
                unsafe { SockAddr::new(self.names[i], hdr.msg_hdr.msg_namelen) }.as_socket()
            };
        }
        Ok(Received {
            count,
            drained: count < BATCH,
        })
    }
}

/// Where the bytes of a queued datagram are: a range of a slot's buffer or of its scratch.
#[derive(Clone, Debug)]
pub(crate) struct Bytes {
    pub(crate) slot: usize,
    pub(crate) scratch: bool,
    pub(crate) range: Range<usize>,
}

struct Queued {
    fd: RawFd,
    to: SockAddr,
    bytes: Bytes,
}

/// Outputs of one receive batch, sent with `sendmmsg` (one call per run of the same socket).
pub(crate) struct SendQueue {
    items: Vec<Queued>,
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
}

/// What a flush did, for the shard's counters.
pub(crate) struct Flushed {
    pub(crate) sent: u64,
    /// EAGAIN, ENOBUFS, ECONNREFUSED and the like: dropped, as UDP allows.
    pub(crate) dropped: u64,
}

impl SendQueue {
    pub(crate) fn new() -> SendQueue {
        SendQueue {
            items: Vec::with_capacity(BATCH),
            hdrs: zeroed_batch(),
            iovs: (0..BATCH).map(|_| empty_iovec()).collect(),
        }
    }

    /// Queue one datagram. The caller checked that `bytes` lies inside its slot.
    pub(crate) fn push(&mut self, fd: RawFd, to: SocketAddr, bytes: Bytes) {
        self.items.push(Queued {
            fd,
            to: to.into(),
            bytes,
        });
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= BATCH
    }

    /// Send everything queued; slices are taken from `slots` (the batch the outputs came from).
    pub(crate) fn flush(&mut self, slots: &mut [Slot]) -> Flushed {
        let n = self.items.len().min(BATCH);
        let mut done = Flushed {
            sent: 0,
            dropped: (self.items.len() - n) as u64,
        };
        let entries = self.items.iter().zip(&mut self.iovs).zip(&mut self.hdrs);
        for ((item, iov), hdr) in entries {
            let data = slots.get_mut(item.bytes.slot).and_then(|s| {
                let whole = if item.bytes.scratch {
                    &mut s.scratch
                } else {
                    &mut s.buf
                };
                whole.get_mut(item.bytes.range.clone())
            });
            // A null base marks bytes outside the slot: dropped below, never sent.
            *iov = match data {
                Some(d) => libc::iovec {
                    iov_base: d.as_mut_ptr().cast(),
                    iov_len: d.len(),
                },
                None => empty_iovec(),
            };
            point(
                hdr,
                item.to.as_ptr() as *mut libc::c_void,
                item.to.len(),
                iov,
            );
        }
        let valid = |iovs: &[libc::iovec], j: usize| !iovs[j].iov_base.is_null();
        let mut start = 0;
        while start < n {
            if !valid(&self.iovs, start) {
                done.dropped += 1;
                start += 1;
                continue;
            }
            let fd = self.items[start].fd;
            let end = (start..n)
                .find(|&j| self.items[j].fd != fd || !valid(&self.iovs, j))
                .unwrap_or(n);
            // SAFETY: headers start..end point at names owned by `self.items` and iovecs over
            // live slices of `slots`, all unchanged until this call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs[start..end].as_mut_ptr(),
                    (end - start) as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if r <= 0 {
                // The first datagram of the run failed (EAGAIN, ENOBUFS, ECONNREFUSED, ...).
                done.dropped += 1;
                start += 1;
            } else {
                done.sent += r as u64;
                start += r as usize;
            }
        }
        self.items.clear();
        done
    }
}

/// `BATCH` all-zero C structs (a valid value for `mmsghdr` and `sockaddr_storage`).
fn zeroed_batch<T: Copy>() -> Vec<T> {
    // SAFETY: only used with plain C structs for which all-zero bytes are a valid value
    // (null pointers, zero lengths).
    (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect()
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

/// Points a header at one address buffer and one iovec, without control data.
fn point(
    hdr: &mut libc::mmsghdr,
    name: *mut libc::c_void,
    namelen: libc::socklen_t,
    iov: &mut libc::iovec,
) {
    hdr.msg_hdr.msg_name = name;
    hdr.msg_hdr.msg_namelen = namelen;
    hdr.msg_hdr.msg_iov = iov;
    hdr.msg_hdr.msg_iovlen = 1;
    hdr.msg_hdr.msg_control = ptr::null_mut();
    hdr.msg_hdr.msg_controllen = 0;
    hdr.msg_hdr.msg_flags = 0;
    hdr.msg_len = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_a_batch_and_sends_it_back() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let client_addr = client.local_addr().unwrap();
        for i in 0..3u8 {
            client.send_to(&[i; 5], server_addr).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut got = 0;
        for _ in 0..100 {
            let r = batch.recv(server.as_raw_fd()).unwrap();
            got += r.count;
            if got == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 3);
        let slot = &batch.slots[0];
        assert_eq!(slot.len, 5);
        assert_eq!(slot.from, Some(client_addr));

        let mut q = SendQueue::new();
        // The second range lies outside the slot: dropped, never sent.
        for range in [HEADROOM..HEADROOM + 5, 0..usize::MAX] {
            let bytes = Bytes {
                slot: 0,
                scratch: false,
                range,
            };
            q.push(server.as_raw_fd(), client_addr, bytes);
        }
        let done = q.flush(&mut batch.slots);
        assert_eq!((done.sent, done.dropped), (1, 1));
        let mut buf = [0u8; 16];
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((n, from), (5, server_addr));
        assert!(buf[..5].iter().all(|&b| b <= 2));
    }
}
