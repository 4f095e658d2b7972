//! One io_uring shard's loop (docs/architecture.md, "Threads"; "One relayed packet"): multishot
//! `recvmsg` on every UDP listener and relay socket into the provided-buffer ring, each datagram
//! through the core, outputs queued as `sendmsg` submissions (GSO-batched) and submitted with the
//! next wait. A turn handles at most `MAX_COMPLETIONS` completions, so one busy socket cannot
//! hold the rest; nothing in the loop blocks except the wait itself.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use tracing::{debug, error, warn};

use super::bufring::{Pools, NAME_LEN, OUT_HEADER, PAD, STRIDE};
use super::pace::Pace;
use super::relays::{Change, Relays};
use super::send::{Held, Sends, Sock};
use super::sockaddr;
use super::token::Op;
use super::wake::Waker;
use crate::engine::batch::SCRATCH;
use crate::engine::clock;
use crate::engine::control::Control;
use crate::engine::icmp;
use crate::engine::shed::Shed;
use crate::engine::sockets;
use crate::turn::{self, Client, Output, RelayId, Span, Transport, Via, HEADROOM};

/// Completions handled per loop turn.
const MAX_COMPLETIONS: usize = 1024;
/// The longest wait, so a stop request is seen without a wake-up.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// Where the payload starts in a buffer, and where the core's slice of the buffer starts.
const PAYLOAD: usize = PAD + OUT_HEADER + NAME_LEN;
const CORE_START: usize = PAYLOAD - HEADROOM;
const _: () = assert!(PAYLOAD >= HEADROOM);

pub(crate) struct Listener {
    pub(crate) socket: UdpSocket,
    pub(crate) addr: SocketAddr,
}

/// What the engine dropped or could not do; logged when the shard stops.
#[derive(Default, Debug)]
struct Stats {
    recv_errors: u64,
    truncated: u64,
    send_errors: u64,
    send_dropped: u64,
    no_buffers: u64,
}

pub(crate) struct RingWorker {
    pub(crate) index: usize,
    pub(crate) ring: IoUring,
    pub(crate) core: turn::Shard,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) relays: Relays,
    pub(crate) bufs: Pools,
    pub(crate) sends: Sends,
    /// The receive template: only its name and control lengths matter to the kernel.
    pub(crate) msg: Box<libc::msghdr>,
    /// Fixed-file table size (0: plain descriptors).
    pub(crate) fixed: u32,
    pub(crate) scratch: Box<[u8]>,
    /// Reloaded settings, metrics and allocation events, once per loop turn.
    control: Control,
    pub(crate) stop: Arc<AtomicBool>,
    cqes: Vec<(u64, i32, u32)>,
    sealed: Vec<(u32, Sock, *const libc::msghdr)>,
    rearm: Vec<Op>,
    shed: Shed,
    /// A listener's receive ran out of buffers this turn (the shard is behind).
    starved: bool,
    /// Written by the user database resolver when an answer a parked request waits for is in.
    waker: Arc<Waker>,
    /// The waker fired this turn: the parked requests run again once the completions are handled.
    woken: bool,
    /// A parked request's bytes while it runs again (it has no receive buffer any more): as
    /// long as the core's part of a receive buffer, so whatever was received fits.
    frame: Box<[u8]>,
    stats: Stats,
    pace: Pace,
}

/// Where the packet a client input came in lives.
#[derive(Clone, Copy)]
enum Packet {
    /// A provided receive buffer, by id.
    Received(u16),
    /// `frame`: a parked request running again.
    Resumed,
    /// None: an answer the core wrote in the scratch only (an ICMP report).
    None,
}

/// A socket as a submission names it.
#[derive(Clone, Copy)]
enum Target {
    Fd(RawFd),
    Fixed(u32),
}

impl RingWorker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        ring: IoUring,
        core: turn::Shard,
        listeners: Vec<Listener>,
        relays: Relays,
        bufs: Pools,
        sends: Sends,
        fixed: u32,
        control: Control,
        stop: Arc<AtomicBool>,
        waker: Arc<Waker>,
    ) -> RingWorker {
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_namelen = NAME_LEN as libc::socklen_t;
        RingWorker {
            index,
            ring,
            core,
            listeners,
            relays,
            bufs,
            sends,
            msg,
            fixed,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            control,
            stop,
            cqes: Vec::with_capacity(MAX_COMPLETIONS),
            sealed: Vec::new(),
            rearm: Vec::new(),
            shed: Shed::default(),
            starved: false,
            waker,
            woken: false,
            frame: vec![0; STRIDE - CORE_START].into_boxed_slice(),
            stats: Stats::default(),
            pace: Pace::default(),
        }
    }

    pub(crate) fn run(mut self) {
        for i in 0..self.listeners.len() as u32 {
            self.rearm.push(Op::Listener(i));
        }
        self.rearm.push(Op::Wake);
        self.arm();
        let mut busy = false;
        let mut now = clock::now();
        while !self.stop.load(Ordering::Acquire) {
            let (want, wait) = if busy || self.shed.behind() {
                // The kernel receives for multishot requests in task work that a DEFER_TASKRUN
                // ring runs inside this call, at most max(20, want) items (32 datagrams each) a
                // pass. Behind, a small `want` read a few dozen datagrams from a listener per
                // turn while thousands arrived, and the kernel dropped the rest, requests
                // included: ask for a whole turn's worth, without waiting.
                self.pace.skipped();
                (MAX_COMPLETIONS, Duration::ZERO)
            } else {
                self.wait_for(now.0)
            };
            if !self.enter(want, wait) {
                break;
            }
            // One clock read per turn serves the datagrams, the timers and the metrics; the next
            // wait is computed from it too, late by at most one turn's work (far below the
            // second-scale TURN timers).
            now = clock::now();
            if self.control.before_turn(&mut self.core, now.0) {
                self.run_commands();
                self.apply_changes();
            }
            let listeners = self.listeners.iter().map(|l| l.socket.as_raw_fd());
            let waiting = busy || std::mem::take(&mut self.starved);
            let lost = self.shed.turn(waiting, now.0, listeners);
            self.core.kernel_dropped(lost);
            busy = self.drain(now);
            if std::mem::take(&mut self.woken) {
                self.resume_parked(now);
            }
            self.flush();
            self.bufs.publish();
            self.arm();
            self.expire(now.0);
            self.control.after_turn(&mut self.core, now.0);
        }
        // The allocations still open end as any other does: logged with their counts, their
        // quota and fleet places given back, their fast-path entries removed.
        self.core.shutdown();
        self.run_commands();
        self.apply_changes();
        self.control.finish(&mut self.core);
        self.teardown();
        debug!("uring shard {} stopped: {:?}", self.index, self.stats);
    }

    /// How many completions to wait for, and for how long (`Pace`).
    fn wait_for(&mut self, now: Instant) -> (usize, Duration) {
        let until_timer = match self.core.next_timeout() {
            Some(at) => at.saturating_duration_since(now).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        self.pace.wait(until_timer)
    }

    /// Submits what is queued and waits up to `wait` for `want` completions. False on a fatal
    /// error.
    fn enter(&mut self, want: usize, wait: Duration) -> bool {
        let ts = types::Timespec::from(wait);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => true,
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => true,
                _ => {
                    error!(
                        "uring shard {}: io_uring_enter failed, stopping: {e}",
                        self.index
                    );
                    false
                }
            },
        }
    }

    fn expire(&mut self, now: Instant) {
        if self.core.next_timeout().is_some_and(|at| at <= now) {
            self.core.handle_timeout(now);
            self.run_commands();
            self.apply_changes();
        }
    }

    /// Handles up to `MAX_COMPLETIONS` completions (datagrams stamped `now`, as the portable
    /// engine stamps a recvmmsg batch); whether more are waiting.
    fn drain(&mut self, now: (Instant, u64)) -> bool {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        let more = {
            let mut cq = self.ring.completion();
            cqes.extend(
                cq.by_ref()
                    .take(MAX_COMPLETIONS)
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            !cq.is_empty()
        };
        for &(data, result, flags) in &cqes {
            match Op::decode(data) {
                Some(op @ (Op::Listener(_) | Op::Relay(..))) => {
                    self.received(op, result, flags, now)
                }
                Some(Op::Send(slot)) => {
                    self.pace.send_done();
                    if result < 0 {
                        self.send_failed(slot, now.0);
                    }
                    self.sent(slot, result)
                }
                Some(Op::Wake) => self.wake_seen(flags),
                Some(Op::Cancel) | None => {}
            }
        }
        self.cqes = cqes;
        more
    }

    fn sent(&mut self, slot: u32, result: i32) {
        if result < 0 {
            self.stats.send_errors += 1;
            if result == -libc::EIO && self.sends.is_gso(slot) && self.sends.gso {
                // EIO: the device cannot segment (no checksum offload); send one by one.
                warn!(
                    "uring shard {}: UDP GSO refused by the kernel: turned off",
                    self.index
                );
                self.sends.gso = false;
            }
        }
        let bufs = &mut self.bufs;
        self.sends.complete(slot, |held| {
            if let Held::Buffer(bid) = held {
                bufs.recycle(bid);
            }
        });
    }

    fn live(&self, op: Op) -> bool {
        match op {
            Op::Listener(i) => (i as usize) < self.listeners.len(),
            Op::Relay(id, gen) => self.relays.get(id).is_some_and(|r| r.gen == gen),
            Op::Wake => true,
            _ => false,
        }
    }

    fn received(&mut self, op: Op, result: i32, flags: u32, now: (Instant, u64)) {
        let live = self.live(op);
        if live && !cqueue::more(flags) {
            // The multishot receive ended (ENOBUFS when the ring ran dry, or an error).
            self.rearm.push(op);
            if matches!(op, Op::Listener(_)) && result == -libc::ENOBUFS {
                self.starved = true;
            }
        }
        let Some(bid) = cqueue::buffer_select(flags) else {
            match -result {
                libc::ENOBUFS => self.stats.no_buffers += 1,
                libc::ECANCELED => {}
                _ if result < 0 => {
                    self.stats.recv_errors += 1;
                    // The socket's pending error (an ICMP error, ECONNREFUSED and the like)
                    // ended the receive: its error queue says about which peer.
                    if let (true, Op::Relay(id, _)) = (live, op) {
                        self.peer_errors(id, now.0);
                    }
                }
                _ => {}
            }
            return;
        };
        self.bufs.taken(bid);
        if !live || result < 0 {
            self.bufs.recycle(bid);
            return;
        }
        let out = self.input(op, bid, now);
        self.apply_changes();
        self.queue(Packet::Received(bid), out);
    }

    /// A send from a relay socket failed: an ICMP error took the socket's pending error, or a
    /// DONT-FRAGMENT datagram was larger than the first hop's MTU (EMSGSIZE); either way the
    /// error queue says about which peer.
    fn send_failed(&mut self, slot: u32, now: Instant) {
        if let Some(Sock::Relay(id)) = self.sends.sock(slot) {
            self.peer_errors(id, now);
        }
    }

    /// Reports the ICMP errors queued on relay socket `id` to the core (RFC 8656 §11.5), and
    /// queues its answers. A plain system call: errors are rare, and reading the queue is not
    /// worth a submission and a buffer of its own.
    fn peer_errors(&mut self, id: u32, now: Instant) {
        let Some(fd) = self.relays.get(id).map(|r| r.socket.as_raw_fd()) else {
            return;
        };
        icmp::read(fd, |peer, icmp| {
            let scratch = &mut self.scratch;
            let out = self
                .core
                .handle_peer_icmp(now, RelayId(id), peer, icmp, scratch);
            self.queue(Packet::None, out);
        });
    }

    /// The resolver wrote the eventfd. Parked requests run again after this turn's completions,
    /// so a request parked earlier in the same turn is among them.
    fn wake_seen(&mut self, flags: u32) {
        if !cqueue::more(flags) {
            // The multishot poll ended (a full completion queue, or cancelled): armed again.
            self.rearm.push(Op::Wake);
        }
        // Cleared before the requests run: an answer that comes in while they do writes the
        // eventfd again and completes the poll once more, so it is not missed.
        self.waker.clear();
        self.woken = true;
    }

    /// Runs again the requests the core parked while the user database was asked: each goes
    /// through the core as a datagram just received on its listener, and its answer leaves by
    /// that listener.
    fn resume_parked(&mut self, (now, unix): (Instant, u64)) {
        if !self.core.has_parked() {
            return;
        }
        for parked in self.core.take_parked(now) {
            let Some(len) = parked.load(&mut self.frame) else {
                continue;
            };
            let out = self.client_input(&parked.client, Packet::Resumed, len, (now, unix));
            self.apply_changes();
            self.queue(Packet::Resumed, out);
        }
    }

    /// Parses the datagram in buffer `bid` and hands it to the core.
    fn input(&mut self, op: Op, bid: u16, (now, unix): (Instant, u64)) -> Output {
        let Some(buf) = self.bufs.buffer(bid) else {
            return Output::Nothing;
        };
        let Some(header) = buf.get(PAD..PAD + OUT_HEADER) else {
            return Output::Nothing;
        };
        let field =
            |i: usize| u32::from_ne_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (name_len, len, msg_flags) = (field(0) as usize, field(8) as usize, field(12));
        let from = buf
            .get(PAD + OUT_HEADER..PAD + OUT_HEADER + name_len.min(NAME_LEN))
            .and_then(sockaddr::parse);
        let Some(from) = from.filter(|_| msg_flags & libc::MSG_TRUNC as u32 == 0) else {
            self.stats.truncated += 1;
            return Output::Nothing;
        };
        let Some(core_buf) = buf.get_mut(CORE_START..) else {
            return Output::Nothing;
        };
        match op {
            Op::Listener(i) => {
                let Some(local) = self.listeners.get(i as usize).map(|l| l.addr) else {
                    return Output::Nothing;
                };
                let payload = core_buf.get(HEADROOM..HEADROOM + len).unwrap_or_default();
                if self.shed.sheds(payload) {
                    self.core.shed();
                    return Output::Nothing;
                }
                let client = Client {
                    via: Via::Udp(i),
                    transport: Transport::Udp,
                    local,
                    remote: from,
                };
                self.client_input(&client, Packet::Received(bid), len, (now, unix))
            }
            Op::Relay(id, _) => self.core.handle_peer(now, RelayId(id), from, core_buf, len),
            _ => Output::Nothing,
        }
    }

    /// Hands a client's packet (`len` bytes at `HEADROOM` of the core's part of `packet`) to the
    /// core.
    fn client_input(
        &mut self,
        client: &Client,
        packet: Packet,
        len: usize,
        (now, unix): (Instant, u64),
    ) -> Output {
        let buf = match packet {
            Packet::Received(bid) => self.bufs.buffer(bid).and_then(|b| b.get_mut(CORE_START..)),
            Packet::Resumed => Some(&mut self.frame[..]),
            Packet::None => None,
        };
        let Some(buf) = buf else {
            return Output::Nothing;
        };
        let before = self.core.allocation_count();
        let out = self.core.handle_client(
            now,
            unix,
            client,
            buf,
            len,
            &mut self.scratch,
            &mut self.relays,
        );
        self.run_commands();
        if self.core.allocation_count() > before {
            // Setup latency: one clock read per new allocation, none per packet.
            let d = clock::now().0.saturating_duration_since(now);
            self.control.observe_setup(d);
        }
        out
    }

    /// Carries out the core's commands (closes, port releases, fast-path routes).
    fn run_commands(&mut self) {
        while let Some(command) = self.core.poll_command() {
            if !self.control.fast_command(&mut self.core, &command) {
                self.relays.run(command);
            }
        }
    }

    /// Queues the output of an input from `packet`; a receive buffer goes back to the ring
    /// unless a send holds it.
    fn queue(&mut self, packet: Packet, out: Output) {
        let (sock, to, data) = match out {
            Output::Client {
                via: Via::Udp(i),
                to,
                data,
            } => (Sock::Listener(i), to, data),
            Output::Peer {
                relay,
                to,
                data,
                dont_fragment,
            } => {
                if !self.relay_dont_fragment(relay.0, dont_fragment) {
                    self.stats.send_dropped += 1;
                    return self.release(packet);
                }
                (Sock::Relay(relay.0), to, data)
            }
            Output::Nothing => return self.release(packet),
            Output::Client {
                via: Via::Stream(_),
                ..
            } => {
                // Streams are served by the stream shards; this cannot name one.
                self.stats.send_dropped += 1;
                return self.release(packet);
            }
        };
        let bytes = match (data, packet) {
            (Span::Packet(range), Packet::Received(bid)) => {
                let fits = range.start < range.end && CORE_START + range.end <= STRIDE;
                let base = self.bufs.addr(bid, CORE_START + range.start);
                let held = Held::Buffer(bid);
                if !fits || self.sends.push(sock, to, base, range.len(), held).is_err() {
                    self.stats.send_dropped += 1;
                    self.bufs.recycle(bid);
                }
                return;
            }
            // The frame serves the next resumed request at once: its bytes go out as a copy.
            (Span::Packet(range), Packet::Resumed) => self.frame.get(range),
            (Span::Packet(_), Packet::None) => None,
            (Span::Scratch(n), _) => {
                self.release(packet);
                self.scratch.get(..n)
            }
        };
        let copied = bytes.and_then(|b| Some((self.sends.copy_response(b)?, b.len())));
        let Some(((held, base), n)) = copied else {
            self.stats.send_dropped += 1;
            return;
        };
        if self.sends.push(sock, to, base, n, held).is_err() {
            self.sends.release_response(held);
            self.stats.send_dropped += 1;
        }
    }

    /// Sets DF on relay socket `id` as a datagram asks (RFC 8656 §10.2; IPv4 has no per-datagram
    /// control). The sends queued before it are submitted first, so they leave as they were
    /// asked for (a send the kernel cannot complete at once and retries later would take the
    /// new setting). False when DF was asked for and cannot be set: the datagram is not sent.
    fn relay_dont_fragment(&mut self, id: u32, on: bool) -> bool {
        if self.relays.get(id).is_none_or(|r| r.dont_fragment == on) {
            return true;
        }
        self.flush();
        if let Err(e) = self.ring.submit() {
            debug!("uring shard {}: submit before a DF change: {e}", self.index);
        }
        let Some(r) = self.relays.get_mut(id) else {
            return true;
        };
        let v6 = r.socket.local_addr().ok().is_some_and(|a| a.is_ipv6());
        let set = sockets::set_dont_fragment(&r.socket, v6, on);
        if set.is_ok() {
            r.dont_fragment = on;
        }
        set.is_ok() || !on
    }

    /// Gives a receive buffer back to the ring (a resumed request has none).
    fn release(&mut self, packet: Packet) {
        if let Packet::Received(bid) = packet {
            self.bufs.recycle(bid);
        }
    }

    /// Turns this turn's queued datagrams into `sendmsg` submissions.
    fn flush(&mut self) {
        let mut sealed = std::mem::take(&mut self.sealed);
        self.sends.seal(&mut sealed);
        for &(slot, sock, hdr) in &sealed {
            let user_data = Op::Send(slot).encode();
            let entry = match self.target(sock) {
                Some(Target::Fd(fd)) => opcode::SendMsg::new(types::Fd(fd), hdr).build(),
                Some(Target::Fixed(i)) => opcode::SendMsg::new(types::Fixed(i), hdr).build(),
                None => {
                    self.stats.send_dropped += 1;
                    self.sent(slot, 0);
                    continue;
                }
            };
            self.push(entry.user_data(user_data));
            self.pace.sends(1);
        }
        sealed.clear();
        self.sealed = sealed;
    }

    /// Arms a multishot receive for every source whose receive ended, and the poll on the
    /// waker when it ended.
    fn arm(&mut self) {
        let mut rearm = std::mem::take(&mut self.rearm);
        for &op in &rearm {
            if !self.live(op) {
                continue;
            }
            let sock = match op {
                Op::Listener(i) => Sock::Listener(i),
                Op::Relay(id, _) => Sock::Relay(id),
                Op::Wake => {
                    let fd = types::Fd(self.waker.fd());
                    let poll = opcode::PollAdd::new(fd, libc::POLLIN as u32).multi(true);
                    self.push(poll.build().user_data(op.encode()));
                    continue;
                }
                _ => continue,
            };
            let msg: *const libc::msghdr = &*self.msg;
            let group = self.bufs.group(matches!(sock, Sock::Listener(_)));
            let entry = match self.target(sock) {
                Some(Target::Fd(fd)) => {
                    opcode::RecvMsgMulti::new(types::Fd(fd), msg, group).build()
                }
                Some(Target::Fixed(i)) => {
                    opcode::RecvMsgMulti::new(types::Fixed(i), msg, group).build()
                }
                None => continue,
            };
            self.push(entry.user_data(op.encode()));
        }
        rearm.clear();
        self.rearm = rearm;
    }

    /// Registers new relay sockets with the ring and cancels the receives of closed ones.
    fn apply_changes(&mut self) {
        if self.relays.changes.is_empty() {
            return;
        }
        let mut changes = std::mem::take(&mut self.relays.changes);
        for change in changes.drain(..) {
            match change {
                Change::Opened { id, gen, fd } => {
                    if let Some(slot) = self.fixed_slot(id) {
                        let ok = self.ring.submitter().register_files_update(slot, &[fd]);
                        if let Some(r) = self.relays.get_mut(id) {
                            r.fixed = ok.is_ok();
                        }
                    }
                    self.rearm.push(Op::Relay(id, gen));
                }
                Change::Closed {
                    id,
                    gen,
                    fixed,
                    socket,
                } => {
                    let cancel = opcode::AsyncCancel::new(Op::Relay(id, gen).encode()).build();
                    self.push(cancel.user_data(Op::Cancel.encode()));
                    if let (true, Some(slot)) = (fixed, self.fixed_slot(id)) {
                        // Clearing the slot drops the table's reference; the socket closes
                        // once the cancelled receive lets go of it too.
                        let _ = self.ring.submitter().register_files_update(slot, &[-1]);
                    }
                    drop(socket);
                }
            }
        }
        self.relays.changes = changes;
        // New relays receive from the next submission on.
        self.arm();
    }

    fn fixed_slot(&self, id: u32) -> Option<u32> {
        let slot = (self.listeners.len() as u32).checked_add(id)?;
        (slot < self.fixed).then_some(slot)
    }

    fn target(&self, sock: Sock) -> Option<Target> {
        match sock {
            Sock::Listener(i) => {
                let l = self.listeners.get(i as usize)?;
                Some(if i < self.fixed {
                    Target::Fixed(i)
                } else {
                    Target::Fd(l.socket.as_raw_fd())
                })
            }
            Sock::Relay(id) => {
                let r = self.relays.get(id)?;
                Some(match self.fixed_slot(id) {
                    Some(slot) if r.fixed => Target::Fixed(slot),
                    _ => Target::Fd(r.socket.as_raw_fd()),
                })
            }
        }
    }

    /// Queues one submission, submitting what is queued first when the queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every pointer in the entry (msghdr templates, send slots, buffers) stays
            // valid until its completion: they live in the shard, which outlives the ring's
            // requests (`teardown` cancels them all before anything is freed).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) {
                    error!("uring shard {}: submit failed: {e}", self.index);
                    return;
                }
            }
        }
    }

    /// Cancels every request and waits for it, so no request outlives the memory it points at.
    fn teardown(&mut self) {
        let _ = self.ring.submit();
        if let Err(e) = self.ring.submitter().register_sync_cancel(
            Some(types::Timespec::from(Duration::from_secs(1))),
            types::CancelBuilder::any(),
        ) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                debug!(
                    "uring shard {}: cancelling requests at stop: {e}",
                    self.index
                );
            }
        }
        for group in self.bufs.groups() {
            let _ = self.ring.submitter().unregister_buf_ring(group);
        }
    }
}
