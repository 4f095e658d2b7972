//! One shard's event loop: its own poll, its own `turn::Shard`, its listener sockets, relay
//! sockets and TCP connections (docs/architecture.md, "Threads"). Every input goes through the
//! core; every output is sent from the socket the core names. Work per wakeup is bounded; a
//! source not drained is revisited on the next turn without sleeping.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Poll};
use tracing::{debug, error, warn};

use super::batch::{Bytes, RecvBatch, SendQueue, Slot};
use super::clock;
use super::control::Control;
use super::gso::Train;
use super::icmp;
use super::relay::Relays;
use super::shed::Shed;
use super::stream::{SendError, Streams, MAX_FRAME};
use super::token::Source;
use crate::turn::{self, Client, Output, RelayId, Span, Transport, Via, HEADROOM};

/// Receive batches per source per wakeup.
const BATCHES_PER_WAKEUP: usize = 4;
/// Batches read from a listener per wakeup while the shard is behind: more than it relays, so
/// that requests queued behind shed data are reached (see `shed`).
const BATCHES_BEHIND: usize = 16;
/// The longest sleep, so a stop request is noticed even if a wake-up is lost.
const MAX_SLEEP: Duration = Duration::from_millis(100);
const EVENTS: usize = 256;

pub(crate) struct Listener<S> {
    pub(crate) socket: S,
    pub(crate) addr: SocketAddr,
}

/// Things the engine drops or refuses without failing; logged when the shard stops.
#[derive(Default, Debug)]
pub(super) struct Stats {
    send_dropped: u64,
    recv_errors: u64,
    truncated: u64,
    stream_queue_full: u64,
    pub(super) bad_frames: u64,
    pub(super) accept_errors: u64,
    pub(super) streams_refused: u64,
    /// Connections refused at accept: the descriptor plan's stream cap was reached.
    pub(super) streams_over_capacity: u64,
    pub(super) streams_timed_out: u64,
    /// TLS handshakes refused over the client's certificate (`CA-file`).
    pub(super) certificates_refused: u64,
}

pub(crate) struct EpollWorker {
    pub(super) index: usize,
    pub(super) core: turn::Shard,
    pub(super) poll: Poll,
    udp: Vec<Listener<UdpSocket>>,
    pub(super) tcp: Vec<Listener<TcpListener>>,
    pub(super) relays: Relays,
    /// Client stream connections, TCP relays and peer connections (`stream/`).
    pub(super) streams: Streams,
    batch: RecvBatch,
    queue: SendQueue,
    /// The packet buffer for stream frames (a frame may be longer than a UDP datagram).
    pub(super) frame: Slot,
    pub(super) pending: Vec<Source>,
    work: Vec<Source>,
    pub(super) stats: Stats,
    shed: Shed,
    stop: Arc<AtomicBool>,
    pub(super) control: Control,
}

impl EpollWorker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        core: turn::Shard,
        poll: Poll,
        udp: Vec<Listener<UdpSocket>>,
        tcp: Vec<Listener<TcpListener>>,
        relays: Relays,
        streams: Streams,
        stop: Arc<AtomicBool>,
        control: Control,
    ) -> EpollWorker {
        EpollWorker {
            index,
            core,
            poll,
            udp,
            tcp,
            relays,
            streams,
            batch: RecvBatch::new(),
            queue: SendQueue::new(),
            frame: Slot::new(MAX_FRAME),
            pending: Vec::new(),
            work: Vec::new(),
            stats: Stats::default(),
            shed: Shed::default(),
            stop,
            control,
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS);
        while !self.stop.load(Ordering::Acquire) {
            let timeout = self.sleep_time();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!("shard {}: poll failed, stopping: {e}", self.index);
                break;
            }
            if self.control.before_turn(&mut self.core, clock::now().0) {
                self.after_core();
            }
            let listeners = self.udp.iter().map(|l| l.socket.as_raw_fd());
            let waiting = !self.pending.is_empty();
            let lost = self.shed.turn(waiting, clock::now().0, listeners);
            self.core.kernel_dropped(lost);
            std::mem::swap(&mut self.work, &mut self.pending);
            // First, so a pending socket error does not fail the next receive or send, and a
            // stream whose end came reads until it sees it.
            for event in events.iter().filter(|e| e.is_error() || e.is_read_closed()) {
                match Source::from_token(event.token()) {
                    Some(Source::Relay(id)) if event.is_error() => self.peer_errors(id),
                    Some(Source::Stream(id)) => {
                        if let Some(conn) = self.streams.conns.get_mut(id) {
                            conn.read_closed = true;
                        }
                    }
                    _ => {}
                }
            }
            self.work
                .extend(events.iter().filter_map(|e| Source::from_token(e.token())));
            let work = std::mem::take(&mut self.work);
            for &source in &work {
                if self.service(source) && !self.pending.contains(&source) {
                    self.pending.push(source);
                }
                self.flush_streams();
            }
            self.work = work;
            self.work.clear();
            self.expire();
            self.flush_streams();
            self.control.after_turn(&mut self.core, clock::now().0);
        }
        self.core.shutdown();
        self.after_core();
        self.flush_streams();
        self.control.finish(&mut self.core);
        debug!("shard {} stopped: {:?}", self.index, self.stats);
    }

    fn sleep_time(&self) -> Duration {
        if !self.pending.is_empty() || self.streams.closing() {
            return Duration::ZERO;
        }
        let next = match (self.core.next_timeout(), self.streams.next_resume()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match next {
            Some(at) => at.saturating_duration_since(clock::now().0).min(MAX_SLEEP),
            None => MAX_SLEEP,
        }
    }

    fn expire(&mut self) {
        let now = clock::now().0;
        if self.core.next_timeout().is_some_and(|at| at <= now) {
            self.core.handle_timeout(now);
            self.after_core();
        }
        self.sweep_streams(now);
        self.resume_paused(now);
    }

    /// Returns true when the source may have more to read.
    fn service(&mut self, source: Source) -> bool {
        match source {
            Source::Waker => {
                self.take_handoffs();
                self.resume_parked();
                false
            }
            Source::Udp(i) => self.recv_datagrams(Some(i), None),
            Source::Relay(id) => self.recv_datagrams(None, Some(id)),
            Source::TcpListener(i) => self.accept(i),
            Source::Stream(id) => self.service_stream(id),
            Source::TcpRelay(i) => self.accept_peer(i),
            Source::Peer(i) => self.service_peer(i),
        }
    }

    /// Receives from listener `udp` or relay socket `relay` in batches and answers each datagram.
    fn recv_datagrams(&mut self, udp: Option<usize>, relay: Option<usize>) -> bool {
        let batches = if udp.is_some() && self.shed.behind() {
            BATCHES_BEHIND
        } else {
            BATCHES_PER_WAKEUP
        };
        for _ in 0..batches {
            let (fd, local) = match (udp, relay) {
                (Some(i), _) => match self.udp.get(i) {
                    Some(l) => (l.socket.as_raw_fd(), l.addr),
                    None => return false,
                },
                (None, Some(id)) => match self.relays.get(id) {
                    Some(r) => (r.socket.as_raw_fd(), r.addr),
                    None => return false,
                },
                (None, None) => return false,
            };
            let got = match self.batch.recv(fd) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // ICMP errors (ECONNREFUSED) and the like: counted, the socket stays.
                    self.stats.recv_errors += 1;
                    continue;
                }
            };
            let (now, unix) = clock::now();
            for k in 0..got.count {
                let slot = &mut self.batch.slots[k];
                let Some(from) = slot.from else {
                    self.stats.truncated += 1;
                    continue;
                };
                let out = match (udp, relay) {
                    (Some(i), _) => {
                        let payload = slot.buf.get(HEADROOM..HEADROOM + slot.len);
                        if self.shed.sheds(payload.unwrap_or_default()) {
                            self.core.shed();
                            continue;
                        }
                        let client = Client {
                            via: Via::Udp(i as u32),
                            transport: Transport::Udp,
                            local,
                            remote: from,
                        };
                        let before = self.core.allocation_count();
                        let out = self.core.handle_client(
                            now,
                            unix,
                            &client,
                            &mut slot.buf,
                            slot.len,
                            &mut slot.scratch,
                            &mut self.relays,
                        );
                        self.after_request(now, before);
                        self.after_core();
                        out
                    }
                    (None, Some(id)) => self.core.handle_peer(
                        now,
                        RelayId(id as u32),
                        from,
                        &mut slot.buf,
                        slot.len,
                    ),
                    (None, None) => Output::Nothing,
                };
                self.queue_output(k, out);
            }
            self.flush_queue();
            if got.drained {
                return false;
            }
        }
        true
    }

    /// Reports the ICMP errors queued on relay socket `id` to the core (RFC 8656 §11.5); its
    /// answers are written in the frame's scratch and sent at once.
    fn peer_errors(&mut self, id: usize) {
        let Some(fd) = self.relays.get(id).map(|r| r.socket.as_raw_fd()) else {
            return;
        };
        let now = clock::now().0;
        icmp::read(fd, |peer, icmp| {
            let relay = RelayId(id as u32);
            let scratch = &mut self.frame.scratch;
            let out = self.core.handle_peer_icmp(now, relay, peer, icmp, scratch);
            self.send_now(out);
        });
    }

    /// Allocation setup latency: from the batch's receive time to the answer, for the input
    /// that created an allocation (one clock read per allocation, none per relayed packet).
    pub(super) fn after_request(&mut self, received: Instant, before: usize) {
        if self.core.allocation_count() > before {
            let d = clock::now().0.saturating_duration_since(received);
            self.control.observe_setup(d);
        }
    }

    /// Queues the output of batch slot `k` (streams are written at once).
    fn queue_output(&mut self, k: usize, out: Output) {
        let (fd, to, data) = match out {
            Output::Nothing => return,
            Output::Client {
                via: Via::Stream(id),
                data,
                ..
            } => {
                let bytes = self.batch.slots.get(k).and_then(|s| span_bytes(s, &data));
                let n = bytes.map_or(0, <[u8]>::len);
                let result = send_stream(&mut self.streams, id as usize, bytes);
                self.after_stream_send(id as usize, result, n);
                return;
            }
            Output::Client {
                via: Via::Udp(i),
                to,
                data,
            } => match self.udp.get(i as usize) {
                Some(l) => (l.socket.as_raw_fd(), to, data),
                None => return self.stats.send_dropped += 1,
            },
            Output::Peer {
                relay,
                to,
                data,
                dont_fragment,
            } => match self.relay_for_send(relay.0 as usize, dont_fragment) {
                Some(id) => match self.relays.get(id) {
                    Some(r) => (r.socket.as_raw_fd(), to, data),
                    None => return self.stats.send_dropped += 1,
                },
                None => return self.stats.send_dropped += 1,
            },
        };
        if self.queue.is_full() {
            self.flush_queue();
        }
        let bytes = match data {
            Span::Packet(range) => Bytes {
                slot: k,
                scratch: false,
                range,
            },
            Span::Scratch(n) => Bytes {
                slot: k,
                scratch: true,
                range: 0..n,
            },
        };
        self.queue.push(fd, to, bytes);
    }

    /// Sets DF on relay socket `id` as a datagram asks (RFC 8656 §10.2); the datagrams queued
    /// before it leave first, as they were asked for. Returns `id`, or None when the socket is
    /// gone, or when DF was asked for and cannot be set: the datagram is not sent (§10.2).
    fn relay_for_send(&mut self, id: usize, dont_fragment: bool) -> Option<usize> {
        if self.relays.get(id)?.dont_fragment != dont_fragment {
            self.flush_queue();
            self.flush_train();
            if !self.relays.set_dont_fragment(id, dont_fragment) && dont_fragment {
                return None;
            }
        }
        Some(id)
    }

    fn flush_queue(&mut self) {
        let done = self.queue.flush(&mut self.batch.slots);
        self.stats.send_dropped += done.dropped;
    }

    /// Sends the output of a stream frame: a datagram to a peer joins the stream train (sent by
    /// `flush_train`), anything else goes at once (the frame buffer is reused for the next one).
    pub(super) fn send_frame(&mut self, out: Output) {
        if let Output::Peer {
            relay,
            to,
            data: ref span,
            dont_fragment,
        } = out
        {
            let fd = self
                .relay_for_send(relay.0 as usize, dont_fragment)
                .and_then(|id| self.relays.get(id))
                .map(|r| r.socket.as_raw_fd());
            if let (Some(fd), Some(bytes)) = (fd, span_bytes(&self.frame, span)) {
                let train = &mut self.streams.train;
                if train.join(fd, to, bytes) {
                    return;
                }
                send_train(train, &mut self.stats, self.index);
                if train.join(fd, to, bytes) {
                    return;
                }
            }
        }
        self.send_now(out);
    }

    /// Sends the stream train (`send_frame`).
    pub(super) fn flush_train(&mut self) {
        send_train(&mut self.streams.train, &mut self.stats, self.index);
    }

    /// Sends the output of a stream frame at once (the frame buffer is reused for the next one).
    pub(super) fn send_now(&mut self, out: Output) {
        let (socket, to, data) = match out {
            Output::Nothing => return,
            Output::Client {
                via: Via::Stream(id),
                data,
                ..
            } => {
                let bytes = span_bytes(&self.frame, &data);
                let n = bytes.map_or(0, <[u8]>::len);
                let result = send_stream(&mut self.streams, id as usize, bytes);
                return self.after_stream_send(id as usize, result, n);
            }
            Output::Client {
                via: Via::Udp(i),
                to,
                data,
            } => match self.udp.get(i as usize) {
                Some(l) => (&l.socket, to, data),
                None => return self.stats.send_dropped += 1,
            },
            Output::Peer {
                relay,
                to,
                data,
                dont_fragment,
            } => match self
                .relay_for_send(relay.0 as usize, dont_fragment)
                .and_then(|id| self.relays.get(id))
            {
                Some(r) => (&r.socket, to, data),
                None => return self.stats.send_dropped += 1,
            },
        };
        let sent = span_bytes(&self.frame, &data).map(|b| socket.send_to(b, to));
        if !matches!(sent, Some(Ok(_))) {
            self.stats.send_dropped += 1;
        }
    }

    /// A frame for a stream client that did not fit its bounded queue is dropped whole and
    /// counted as dropped, not as sent (a slow client never makes the server buffer without bound).
    fn after_stream_send(&mut self, id: usize, result: Result<(), SendError>, bytes: usize) {
        match result {
            Ok(()) => {}
            Err(SendError::Full) => {
                self.stats.stream_queue_full += 1;
                self.core.frame_dropped(bytes);
            }
            Err(SendError::Broken) => self.close_stream(id),
        }
    }

    /// Runs again the requests the core parked while the user database was asked: woken by
    /// the resolver, each goes through the core as if it had just arrived.
    fn resume_parked(&mut self) {
        if !self.core.has_parked() {
            return;
        }
        for parked in self.core.take_parked(clock::now().0) {
            let client = parked.client;
            if let Via::Stream(id) = client.via {
                // The connection closed (or its id was reused) meanwhile: nobody to answer.
                if self.streams.conns.get(id as usize).map(|c| c.remote) != Some(client.remote) {
                    continue;
                }
            }
            if let Some(len) = parked.load(&mut self.frame.buf) {
                self.frame_to_core(&client, len);
            }
        }
        self.flush_train();
    }
}

fn send_train(train: &mut Train, stats: &mut Stats, shard: usize) {
    let gso = train.gso();
    stats.send_dropped += train.flush().dropped;
    if gso && !train.gso() {
        warn!("shard {shard}: UDP GSO refused by the kernel: turned off");
    }
}

/// The bytes an output names, if the range is inside the slot.
fn span_bytes<'a>(slot: &'a Slot, span: &Span) -> Option<&'a [u8]> {
    match span {
        Span::Packet(range) => slot.buf.get(range.clone()),
        Span::Scratch(n) => slot.scratch.get(..*n),
    }
}

fn send_stream(streams: &mut Streams, id: usize, bytes: Option<&[u8]>) -> Result<(), SendError> {
    match (streams.conns.get_mut(id), bytes) {
        (Some(conn), Some(bytes)) => {
            conn.borrow_buffer(&mut streams.spare);
            if conn.send(bytes)? {
                streams.unflushed.push(id);
            }
            Ok(())
        }
        // The connection is gone, or the core named bytes it does not have: nothing to send.
        _ => Ok(()),
    }
}
