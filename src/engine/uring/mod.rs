//! The io_uring engine (Linux): one ring per shard thread, with multishot
//! `recvmsg` into a provided-buffer ring and GSO-batched `sendmsg` submissions for UDP listeners
//! and relay sockets (docs/architecture.md, "Threads", "One relayed packet"). Stream clients
//! (TCP, TLS) are served by the portable engine's epoll stream shards that run beside the rings
//! (docs/architecture.md, "Threads": "the epoll shards beside them serve the TCP and TLS
//! clients"). Ring threads are not pinned to a CPU: a pinned ring woken while another thread
//! ran on its CPU waited for it although the other CPU was idle, and at 20k packets/s that
//! cost more than a third of the round trip's median (BENCHMARKS.md, "Latency-aware io_uring").

mod bufring;
mod pace;
mod relays;
mod send;
mod shard;
mod sockaddr;
mod token;
mod wake;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use io_uring::{cqueue, opcode, types, IoUring};

use super::control::Control;
use super::gso;
use super::relay::Ports;
use super::EngineError;
use crate::turn;
use bufring::{BufRing, Pools};
use send::Sends;
use shard::{Listener, RingWorker};
pub(crate) use wake::Waker;

/// Submission queue entries per ring (a full queue is submitted early, never dropped).
const SQ_ENTRIES: u32 = 2048;
/// Completion queue entries: room for a burst of multishot receives between two turns (the
/// kernel keeps overflowing completions aside, so a burst is never lost).
const CQ_ENTRIES: u32 = 16384;
/// The smallest queue tried when the kernel is short of memory.
const MIN_ENTRIES: u32 = 64;
/// The most receive buffers per shard for the listeners and for the relay sockets (12 MiB at
/// 4 KiB each); a ring starts with a few and grows as its load asks (`bufring`).
const CLIENT_BUFFERS: u16 = 1024;
const PEER_BUFFERS: u16 = 2048;
/// The most send submissions in flight per shard (their slots are made as sends need them).
const SEND_SLOTS: usize = 2048;
/// Responses (from the scratch buffer) in flight per shard.
const RESPONSES: u16 = 256;
/// The largest fixed-file table (listeners + relay sockets; beyond it plain descriptors).
const MAX_FIXED: u64 = 1 << 18;
const BUFFER_GROUP: u16 = 0;

/// Kernel features the engine found at start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Features {
    pub(crate) gso: bool,
}

/// Checks that io_uring works here with everything the engine needs (Linux 6.0: multishot
/// `recvmsg` with a provided-buffer ring), by receiving one datagram through it. Err says why not
/// (an old kernel, `kernel.io_uring_disabled`, a seccomp profile that forbids io_uring).
pub(crate) fn probe() -> Result<Features, String> {
    let mut ring = build_ring(8, 16).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut p = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(|e| format!("io_uring probe: {e}"))?;
    for (code, name) in [
        (opcode::RecvMsgMulti::CODE, "recvmsg"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::AsyncCancel::CODE, "async cancel"),
        (opcode::PollAdd::CODE, "poll"),
    ] {
        if !p.is_supported(code) {
            return Err(format!("io_uring has no {name}"));
        }
    }
    let bufs = BufRing::new(&ring, 2, 0, 0).map_err(|e| format!("provided-buffer ring: {e}"))?;
    let result = probe_receive(&mut ring, &bufs);
    let _ = ring.submitter().unregister_buf_ring(0);
    drop(ring);
    drop(bufs);
    result.map_err(|e| format!("multishot recvmsg: {e}"))?;
    Ok(Features {
        gso: gso::probe().is_ok(),
    })
}

fn probe_receive(ring: &mut IoUring, bufs: &BufRing) -> io::Result<()> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_namelen = bufring::NAME_LEN as libc::socklen_t;
    let entry = opcode::RecvMsgMulti::new(types::Fd(rx.as_raw_fd()), &msg, bufs.group())
        .build()
        .user_data(1);
    // SAFETY: `msg` and the buffer ring outlive the request: it is cancelled below before either
    // is dropped, and the ring is dropped by the caller before the buffers.
    unsafe { ring.submission().push(&entry) }.map_err(|_| io::Error::other("queue full"))?;
    ring.submit()?;
    tx.send_to(b"probe", rx.local_addr()?)?;
    let ts = types::Timespec::from(Duration::from_secs(1));
    let args = types::SubmitArgs::new().timespec(&ts);
    ring.submitter().submit_with_args(1, &args)?;
    let got = ring
        .completion()
        .next()
        .map(|c| (c.result(), c.flags()))
        .ok_or_else(|| io::Error::other("no completion"))?;
    let _ = ring
        .submitter()
        .register_sync_cancel(None, types::CancelBuilder::user_data(1));
    match got {
        (n, flags) if n > 0 && cqueue::buffer_select(flags).is_some() && cqueue::more(flags) => {
            Ok(())
        }
        (n, _) if n < 0 => Err(io::Error::from_raw_os_error(-n)),
        _ => Err(io::Error::other("not multishot")),
    }
}

/// A ring for one thread: single issuer with deferred task work where the kernel has it (6.1),
/// so completions are posted only when the loop asks for them. The queues are physically
/// contiguous kernel memory: when that is short (ENOMEM), smaller queues are tried.
fn build_ring(entries: u32, cq: u32) -> io::Result<IoUring> {
    let (mut entries, mut cq) = (entries, cq.max(entries * 2));
    loop {
        let result = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(cq)
            .build(entries)
            .or_else(|_| IoUring::builder().setup_cqsize(cq).build(entries));
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && entries > MIN_ENTRIES => {
                entries /= 2;
                cq /= 2;
            }
            other => return other,
        }
    }
}

/// What one ring shard needs; it builds its ring on its own thread (single issuer).
pub(crate) struct ShardSetup {
    pub(crate) index: usize,
    pub(crate) core: turn::Shard,
    pub(crate) listeners: Vec<(UdpSocket, SocketAddr)>,
    pub(crate) ports: Ports,
    pub(crate) features: Features,
    pub(crate) control: Control,
    pub(crate) stop: Arc<AtomicBool>,
    /// How the user database resolver wakes this shard (see `Server::start`).
    pub(crate) waker: Arc<Waker>,
}

/// Starts one ring shard; returns once its ring is set up, or why it could not be.
pub(crate) fn spawn(setup: ShardSetup) -> Result<JoinHandle<()>, EngineError> {
    let (tx, rx) = mpsc::channel();
    let index = setup.index;
    let thread = std::thread::Builder::new()
        .name(format!("tern-uring-{index}"))
        .spawn(move || match build_shard(setup) {
            Ok(shard) => {
                let _ = tx.send(Ok(()));
                shard.run();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|source| EngineError::Io {
            what: "starting a uring shard thread",
            source,
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err((what, source))) => {
            let _ = thread.join();
            Err(EngineError::Io { what, source })
        }
        Err(_) => Err(EngineError::Io {
            what: "starting a uring shard",
            source: io::Error::other("the shard thread ended"),
        }),
    }
}

fn build_shard(s: ShardSetup) -> Result<RingWorker, (&'static str, io::Error)> {
    let ring = build_ring(SQ_ENTRIES, CQ_ENTRIES).map_err(|e| ("creating an io_uring", e))?;
    let fixed = fixed_table(&ring, &s.listeners);
    let bufs = Pools::new(&ring, CLIENT_BUFFERS, PEER_BUFFERS, BUFFER_GROUP)
        .map_err(|e| ("registering buffers", e))?;
    let listeners = s
        .listeners
        .into_iter()
        .map(|(socket, addr)| Listener { socket, addr })
        .collect();
    Ok(RingWorker::new(
        s.index,
        ring,
        s.core,
        listeners,
        relays::Relays::new(s.ports),
        bufs,
        Sends::new(SEND_SLOTS, RESPONSES, s.features.gso),
        fixed,
        s.control,
        s.stop,
        s.waker,
    ))
}

/// Registers a sparse fixed-file table with the listeners in its first slots; its size, or 0
/// when the kernel refuses (then plain descriptors are used).
fn fixed_table(ring: &IoUring, listeners: &[(UdpSocket, SocketAddr)]) -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    let size = limit.rlim_cur.min(MAX_FIXED) as u32;
    if (size as usize) <= listeners.len() || ring.submitter().register_files_sparse(size).is_err() {
        return 0;
    }
    let fds: Vec<i32> = listeners.iter().map(|(s, _)| s.as_raw_fd()).collect();
    match ring.submitter().register_files_update(0, &fds) {
        Ok(_) => size,
        Err(_) => {
            let _ = ring.submitter().unregister_files();
            0
        }
    }
}
