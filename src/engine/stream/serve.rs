//! The shard's stream work: accepting clients (per-address and total limits, TLS detection), framing their
//! bytes into the core, handing ConnectionBind connections to the owning shard, splicing RFC 6062
//! data connections with peer connections, and closing connections past their deadlines.

use std::io::{self, Read};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::Interest;
use tracing::warn;

use super::super::clock;
use super::super::shard::EpollWorker;
use super::super::token::Source;
use super::conn::{certificate_refused, Conn, Mode, READS_PER_WAKEUP, WRITE_QUEUE_LIMIT};
use super::guard::Refused;
use super::tcp_relay::{Io, Peer, PeerState, TCP_RELAY};
use crate::turn::{self, Client, ConnectionId, Flow, Grant, RelayId, Via, HEADROOM};

/// Connections accepted per listener per wakeup.
const ACCEPTS_PER_WAKEUP: usize = 64;
/// How often deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Connections closed for a deadline per loop turn. Closing a TCP socket costs the kernel
/// 15-40 µs (the FIN and waking the peer; on loopback all of it in this thread), and a slowloris
/// opened in one burst expires in one sweep: 1,000-2,000 closes in one turn took 25-75 ms, while
/// the UDP requests of the same shard waited (issue 18). The rest close in the turns that
/// follow, which come without sleeping.
const CLOSES_PER_TURN: usize = 32;
/// The longest a Connect to a peer may take before the client gets 447 (RFC 6062 §5.2).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl EpollWorker {
    /// Accepts clients on TCP listener `i`. True when more may be waiting.
    pub(in crate::engine) fn accept(&mut self, i: usize) -> bool {
        for _ in 0..ACCEPTS_PER_WAKEUP {
            let Some(listener) = self.tcp.get(i) else {
                return false;
            };
            let local = listener.addr;
            match listener.socket.accept() {
                Ok((stream, remote)) => {
                    match self.streams.shared.admission.acquire(remote.ip()) {
                        Ok(()) => {}
                        Err(Refused::PerAddress) => {
                            self.stats.streams_refused += 1;
                            continue;
                        }
                        Err(Refused::Total) => {
                            self.stats.streams_over_capacity += 1;
                            continue;
                        }
                    }
                    // Small control messages must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let layer = self.streams.layer_for(i);
                    let conn = Conn::new(stream, local, remote, layer, clock::now().0);
                    self.add_stream(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection waits in the backlog; the next
                    // connection or a closing one wakes us again.
                    self.stats.accept_errors += 1;
                    if self.stats.accept_errors.is_power_of_two() {
                        warn!("shard {}: accept failed: {e}", self.index);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Registers a connection (its per-address count already taken); its id.
    fn add_stream(&mut self, conn: Conn) -> Option<usize> {
        let ip = conn.remote.ip();
        let id = self.streams.conns.insert_registered(
            conn,
            self.poll.registry(),
            |c| &mut c.stream,
            |i| Source::Stream(i).token(),
            Interest::READABLE | Interest::WRITABLE,
        );
        if id.is_none() {
            self.stats.streams_refused += 1;
            self.streams.shared.admission.release(ip);
        }
        id
    }

    /// Readiness of client connection `id`. True when it may have more to read.
    pub(in crate::engine) fn service_stream(&mut self, id: usize) -> bool {
        let mode = match self.streams.conns.get_mut(id) {
            None => return false,
            Some(conn) => conn.mode,
        };
        if let Mode::Data { peer, id: cid } = mode {
            return self.pump(id, peer, cid);
        }
        if self.streams.conns.get_mut(id).map(Conn::flush) != Some(Ok(())) {
            self.close_stream(id);
            return false;
        }
        for _ in 0..READS_PER_WAKEUP {
            let streams = &mut self.streams;
            let Some(conn) = streams.conns.get_mut(id) else {
                return false;
            };
            match conn.fill(&mut streams.chunk, streams.shared.tls.as_deref()) {
                Ok(0) => {
                    self.close_stream(id);
                    return false;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Some(why) = certificate_refused(&e) {
                        self.core.client_certificate_refused();
                        self.stats.certificates_refused += 1;
                        // Rate-limited: a client retrying in a loop must not flood the log.
                        if self.stats.certificates_refused.is_power_of_two() {
                            warn!(
                                "shard {}: TLS client {} refused (CA-file): {why} ({} refused)",
                                self.index, conn.remote, self.stats.certificates_refused
                            );
                        }
                    }
                    self.close_stream(id);
                    return false;
                }
            }
            if !self.process_frames(id) {
                return false;
            }
            match self.streams.conns.get(id) {
                // Spliced: `pump` carries the rest.
                Some(c) if c.mode != Mode::Stun => return true,
                Some(c) if c.drained() => return false,
                _ => {}
            }
        }
        true
    }

    /// Hands every complete frame to the core, then sends the datagrams they made for peers.
    /// False when the connection was closed or moved.
    fn process_frames(&mut self, id: usize) -> bool {
        let open = self.take_frames(id);
        self.flush_train();
        open
    }

    /// Hands every complete frame to the core; its datagrams for peers wait in the stream
    /// train. False when the connection was closed or moved.
    fn take_frames(&mut self, id: usize) -> bool {
        loop {
            let Some(conn) = self.streams.conns.get_mut(id) else {
                return false;
            };
            if conn.mode != Mode::Stun {
                return true;
            }
            let (local, remote, transport) = (conn.local, conn.remote, conn.transport());
            let len = match conn.next_frame() {
                Ok(Some(frame)) => match self.frame.buf.get_mut(HEADROOM..HEADROOM + frame.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(frame);
                        frame.len()
                    }
                    None => 0,
                },
                Ok(None) => return true,
                Err(_) => 0,
            };
            if len == 0 {
                // A frame tern cannot parse: only this connection is affected.
                self.stats.bad_frames += 1;
                self.close_stream(id);
                return false;
            }
            let frame = self.frame.buf.get(HEADROOM..HEADROOM + len);
            if let Some(cid) = frame.and_then(turn::connection_bind_target) {
                let owner = turn::connection_shard(cid);
                if owner != self.index && owner < self.streams.shared.handoff.shards() {
                    if let Some(conn) = self.streams.conns.get_mut(id) {
                        conn.unread(len);
                    }
                    self.hand_off(id, owner);
                    return false;
                }
            }
            let client = Client {
                via: Via::Stream(id as u32),
                transport,
                local,
                remote,
            };
            self.frame_to_core(&client, len);
        }
    }

    /// Runs the request at `self.frame.buf[HEADROOM..HEADROOM + len]` from `client` through
    /// the core and sends the answer at once; a datagram for a peer joins the stream train,
    /// which the caller flushes.
    pub(in crate::engine) fn frame_to_core(&mut self, client: &Client, len: usize) {
        let (now, unix) = clock::now();
        let mut io = Io {
            udp: &mut self.relays,
            tcp: &mut self.streams.tcp,
        };
        let before = self.core.allocation_count();
        let out = self.core.handle_client(
            now,
            unix,
            client,
            &mut self.frame.buf,
            len,
            &mut self.frame.scratch,
            &mut io,
        );
        self.after_request(now, before);
        self.send_frame(out);
        self.after_core();
    }

    /// Moves connection `id` to shard `owner`, whose allocation its ConnectionBind names.
    fn hand_off(&mut self, id: usize, owner: usize) {
        let Some(mut conn) = self.streams.conns.remove(id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Err(ip) = self.streams.shared.handoff.send(owner, conn) {
            self.streams.shared.admission.release(ip);
        }
    }

    /// Connections other shards handed to this one: registered, then their frames processed.
    pub(in crate::engine) fn take_handoffs(&mut self) {
        for conn in self.streams.shared.handoff.take(self.index) {
            if let Some(id) = self.add_stream(conn) {
                if self.process_frames(id) {
                    self.pending.push(Source::Stream(id));
                }
            }
        }
    }

    /// Carries out what the core asked during its last call (its commands), then the splices and
    /// closes those left for the streams.
    pub(in crate::engine) fn after_core(&mut self) {
        while let Some(command) = self.core.poll_command() {
            // A command may close or replace a relay socket the train holds datagrams for.
            self.flush_train();
            if self.control.fast_command(&mut self.core, &command) {
                continue;
            }
            let mut io = Io {
                udp: &mut self.relays,
                tcp: &mut self.streams.tcp,
            };
            if let Some(failed) = io.run(command) {
                let now = clock::now().0;
                let scratch = &mut self.frame.scratch;
                let out = self.core.handle_tcp_connected(now, failed, false, scratch);
                self.send_now(out);
            }
        }
        let tcp = &mut self.streams.tcp;
        if tcp.splices.is_empty() && tcp.orphans.is_empty() {
            return;
        }
        for (cid, via) in std::mem::take(&mut tcp.splices) {
            if let Via::Stream(sid) = via {
                self.start_splice(cid, sid as usize);
            }
        }
        for sid in std::mem::take(&mut self.streams.tcp.orphans) {
            if let Some(conn) = self.streams.conns.get_mut(sid) {
                conn.mode = Mode::Stun;
            }
            self.close_stream(sid);
        }
    }

    fn start_splice(&mut self, cid: ConnectionId, sid: usize) {
        let Some(pidx) = self.streams.tcp.peer_index(cid) else {
            return;
        };
        let (Some(peer), Some(conn)) = (
            self.streams.tcp.peers.get_mut(pidx),
            self.streams.conns.get_mut(sid),
        ) else {
            return;
        };
        peer.state = PeerState::Spliced(sid);
        conn.mode = Mode::Data {
            peer: pidx,
            id: cid,
        };
        // Bytes the peer sent before the bind, and any the client sent after its request.
        self.pending.push(Source::Stream(sid));
    }

    /// Moves bytes both ways between client data connection `sid` and peer connection `pidx`,
    /// each direction bounded by the receiver's queue and by the allocation's budget (a direction
    /// over it stops reading and resumes from a timer). An end of stream on one side is carried
    /// to the other once the bytes before it are written; the pair closes when both directions
    /// have ended. True when a direction ran out of reads for this wakeup.
    fn pump(&mut self, sid: usize, pidx: usize, cid: ConnectionId) -> bool {
        let now = clock::now().0;
        let (streams, core) = (&mut self.streams, &mut self.core);
        let (Some(client), Some(peer)) =
            (streams.conns.get_mut(sid), streams.tcp.peers.get_mut(pidx))
        else {
            self.close_spliced(sid, pidx, cid);
            return false;
        };
        if peer.id != cid {
            self.close_spliced(sid, pidx, cid);
            return false;
        }
        let chunk = &mut streams.chunk;
        let mut closed = client.flush().is_err() || peer.flush().is_err();
        let mut up = Pumped::default();
        if !closed {
            up = to_peer(core, now, cid, client, peer, chunk);
            closed = up.closed;
        }
        let ends = peer.ends;
        let sent = client.unconsumed().is_empty() && peer.queued() == 0;
        if !closed && ends.client_eof && !ends.peer_shut && sent {
            closed = peer.stream.shutdown(Shutdown::Write).is_err();
            peer.ends.peer_shut = true;
        }
        let mut down = Pumped::default();
        if !closed {
            down = to_client(core, now, cid, client, peer, chunk);
            closed = down.closed;
        }
        let more = up.more || down.more;
        let resume = match (up.resume, down.resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ends = &mut peer.ends;
        if !closed && ends.peer_eof && !ends.client_shut {
            if !ends.client_ending {
                // A TLS client hears close_notify before the TCP end.
                client.finish();
                ends.client_ending = true;
            }
            if client.written() {
                closed = client.stream.shutdown(Shutdown::Write).is_err();
                ends.client_shut = true;
            }
        }
        let done = peer.ends.peer_shut && peer.ends.client_shut;
        if let Some(at) = resume.filter(|_| !closed && !peer.paused) {
            peer.paused = true;
            streams.paused.push((at, sid));
        }
        if closed || done {
            self.close_spliced(sid, pidx, cid);
            return false;
        }
        more
    }

    /// Pairs whose pause ended are pumped again on this turn.
    pub(in crate::engine) fn resume_paused(&mut self, now: Instant) {
        let streams = &mut self.streams;
        if streams.next_resume().is_none_or(|at| at > now) {
            return;
        }
        let mut k = 0;
        while let Some(&(at, sid)) = streams.paused.get(k) {
            if at > now {
                k += 1;
                continue;
            }
            streams.paused.swap_remove(k);
            if let Some(Mode::Data { peer, .. }) = streams.conns.get(sid).map(|c| c.mode) {
                if let Some(p) = streams.tcp.peers.get_mut(peer) {
                    p.paused = false;
                }
                if !self.pending.contains(&Source::Stream(sid)) {
                    self.pending.push(Source::Stream(sid));
                }
            }
        }
    }

    /// Either end of a spliced pair ended: both close, the core forgets the connection.
    fn close_spliced(&mut self, sid: usize, pidx: usize, cid: ConnectionId) {
        let data = Mode::Data {
            peer: pidx,
            id: cid,
        };
        if self.streams.conns.get(sid).is_some_and(|c| c.mode == data) {
            self.close_stream(sid);
        } else {
            self.forget_peer(pidx, cid);
        }
    }

    /// Closes peer connection `pidx` if it still is `cid`, and tells the core it is gone.
    fn forget_peer(&mut self, pidx: usize, cid: ConnectionId) {
        if self
            .streams
            .tcp
            .peers
            .get(pidx)
            .is_some_and(|p| p.id == cid)
        {
            self.streams.tcp.remove_peer(pidx);
        }
        self.core.handle_tcp_connection_closed(cid);
    }

    /// Writes the connections that had frames queued (`Conn::send`) since their last write;
    /// one that fails is closed. Closing one may queue frames to others (the core's answers to
    /// its end): they are written in the next round, and each round closes a connection, so
    /// the rounds end.
    pub(in crate::engine) fn flush_streams(&mut self) {
        let mut ids = Vec::new();
        while !self.streams.unflushed.is_empty() {
            std::mem::swap(&mut ids, &mut self.streams.unflushed);
            for id in ids.drain(..) {
                let streams = &mut self.streams;
                let Some(conn) = streams.conns.get_mut(id) else {
                    continue;
                };
                if conn.flush().is_err() {
                    self.close_stream(id);
                } else {
                    conn.return_buffer(&mut streams.spare);
                }
            }
        }
        // The list keeps its capacity for the next turn.
        std::mem::swap(&mut ids, &mut self.streams.unflushed);
    }

    pub(in crate::engine) fn close_stream(&mut self, id: usize) {
        let Some(mut conn) = self.streams.conns.remove(id) else {
            return;
        };
        conn.finish();
        // Deregistering fails only for a socket poll does not know; it closes anyway.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.streams.shared.admission.release(conn.remote.ip());
        match conn.mode {
            Mode::Data { peer, id: cid } => self.forget_peer(peer, cid),
            Mode::Stun => {
                self.core.handle_stream_closed(Via::Stream(id as u32));
                self.after_core();
            }
        }
    }

    /// A peer connected to TCP relay `i` (RFC 6062 §5.3). True when more may be waiting.
    pub(in crate::engine) fn accept_peer(&mut self, i: usize) -> bool {
        for _ in 0..ACCEPTS_PER_WAKEUP {
            let Some(listener) = self.streams.tcp.listeners.get(i) else {
                return false;
            };
            match listener.socket.accept() {
                Ok((stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    let now = clock::now().0;
                    self.streams.tcp.now = now;
                    let relay = RelayId(i as u32 | TCP_RELAY);
                    let attempt =
                        self.core
                            .handle_peer_connection(now, relay, from, &mut self.frame.scratch);
                    // Without a permission for the peer the connection just closes.
                    if let Some((cid, out)) = attempt {
                        match self.streams.tcp.add_peer(cid, stream, PeerState::Waiting) {
                            Some(_) => self.send_now(out),
                            None => self.core.handle_tcp_connection_closed(cid),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.accept_errors += 1;
                    return false;
                }
            }
        }
        true
    }

    /// Readiness of peer connection `i`.
    pub(in crate::engine) fn service_peer(&mut self, i: usize) -> bool {
        let Some(peer) = self.streams.tcp.peers.get_mut(i) else {
            return false;
        };
        match peer.state {
            PeerState::Waiting => false,
            PeerState::Spliced(sid) => {
                let cid = peer.id;
                self.pump(sid, i, cid)
            }
            PeerState::Connecting => {
                let failed = !matches!(peer.stream.take_error(), Ok(None));
                let connected = !failed && peer.stream.peer_addr().is_ok();
                if failed || connected {
                    self.connected(i, connected);
                }
                false
            }
        }
    }

    /// Reports the outcome of a Connect to the core and sends its answer.
    fn connected(&mut self, i: usize, ok: bool) {
        let Some(peer) = self.streams.tcp.peers.get_mut(i) else {
            return;
        };
        let cid = peer.id;
        if ok {
            peer.state = PeerState::Waiting;
        } else {
            self.streams.tcp.remove_peer(i);
        }
        let now = clock::now().0;
        let out = self
            .core
            .handle_tcp_connected(now, cid, ok, &mut self.frame.scratch);
        self.send_now(out);
    }

    /// Closes connections past their deadlines, both counted from accept whatever the client
    /// sent since: no complete first message (TLS handshake included); no allocation. And
    /// fails a Connect still pending. Deadlines are checked once a second; the connections a
    /// check finds close `CLOSES_PER_TURN` a turn.
    pub(in crate::engine) fn sweep_streams(&mut self, now: Instant) {
        if now >= self.streams.next_sweep {
            self.streams.next_sweep = now + SWEEP_EVERY;
            self.find_expired(now);
        }
        self.close_expired(now);
    }

    /// Lists the connections past a deadline (those of the last check still open are listed
    /// again) and fails the Connects past theirs.
    fn find_expired(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.streams.expired);
        expired.clear();
        expired.extend(
            self.streams
                .conns
                .iter()
                .filter(|&(id, c)| self.past_deadline(id, c, now))
                .map(|(id, _)| id),
        );
        self.streams.expired = expired;
        let stalled: Vec<usize> = self
            .streams
            .tcp
            .peers
            .iter()
            .filter(|(_, p)| {
                p.state == PeerState::Connecting
                    && now.saturating_duration_since(p.since) > CONNECT_TIMEOUT
            })
            .map(|(i, _)| i)
            .collect();
        for i in stalled {
            self.connected(i, false);
        }
    }

    /// Closes up to `CLOSES_PER_TURN` of the listed connections. Each is checked again: since
    /// it was listed it may have closed and its id gone to a new connection, or it may hold an
    /// allocation now.
    fn close_expired(&mut self, now: Instant) {
        for _ in 0..CLOSES_PER_TURN {
            let Some(id) = self.streams.expired.pop() else {
                return;
            };
            let expired = self
                .streams
                .conns
                .get(id)
                .is_some_and(|c| self.past_deadline(id, c, now));
            if expired {
                self.stats.streams_timed_out += 1;
                self.close_stream(id);
            }
        }
    }

    /// Whether client connection `c`, id `id`, is past a deadline (a spliced data connection
    /// has none).
    fn past_deadline(&self, id: usize, c: &Conn, now: Instant) -> bool {
        if c.mode != Mode::Stun {
            return false;
        }
        let d = self.streams.shared.deadlines;
        let age = now.saturating_duration_since(c.opened);
        let silent = !c.framed && age > d.first_message;
        silent || (age > d.allocate && !self.core.stream_has_allocation(id as u32))
    }
}

/// What one direction of a splice did in one turn.
#[derive(Default)]
struct Pumped {
    closed: bool,
    /// The read budget ran out with more to read.
    more: bool,
    /// `max-bps` paused the direction until then.
    resume: Option<Instant>,
}

/// Client to peer: what the client sent, as far as the peer takes it and the allocation's
/// bandwidth allows.
fn to_peer(
    core: &mut turn::Shard,
    now: Instant,
    cid: ConnectionId,
    client: &mut Conn,
    peer: &mut Peer,
    chunk: &mut [u8],
) -> Pumped {
    let mut p = Pumped::default();
    let mut budget = READS_PER_WAKEUP;
    while !p.closed {
        let pending = client.unconsumed();
        if !pending.is_empty() {
            match core.tcp_grant(now, cid, Flow::ToPeer, pending.len()) {
                None => p.closed = true,
                Some(Grant::Wait(at)) => p.resume = Some(at),
                Some(Grant::Go(k)) => {
                    match peer.send_partial(pending.get(..k).unwrap_or(pending)) {
                        Ok(n) => {
                            client.consume(n);
                            core.tcp_relayed(now, cid, Flow::ToPeer, n);
                        }
                        Err(_) => p.closed = true,
                    }
                }
            }
            if p.closed || !client.unconsumed().is_empty() {
                break;
            }
        }
        if peer.ends.client_eof {
            break;
        }
        if budget == 0 {
            p.more = true;
            break;
        }
        budget -= 1;
        match client.fill(chunk, None) {
            Ok(0) => peer.ends.client_eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => p.closed = true,
        }
    }
    p
}

/// Peer to client: no more than the client's write queue can take, as the allocation's
/// bandwidth allows.
fn to_client(
    core: &mut turn::Shard,
    now: Instant,
    cid: ConnectionId,
    client: &mut Conn,
    peer: &mut Peer,
    chunk: &mut [u8],
) -> Pumped {
    let mut p = Pumped::default();
    let mut budget = READS_PER_WAKEUP;
    while !p.closed && !peer.ends.peer_eof {
        let room = WRITE_QUEUE_LIMIT
            .saturating_sub(client.queued())
            .min(chunk.len());
        if room == 0 {
            break;
        }
        if budget == 0 {
            p.more = true;
            break;
        }
        budget -= 1;
        let room = match core.tcp_grant(now, cid, Flow::ToClient, room) {
            None => {
                p.closed = true;
                break;
            }
            Some(Grant::Wait(at)) => {
                p.resume = Some(at);
                break;
            }
            Some(Grant::Go(k)) => k.min(room),
        };
        let Some(buf) = chunk.get_mut(..room) else {
            break;
        };
        match peer.stream.read(buf) {
            Ok(0) => peer.ends.peer_eof = true,
            Ok(n) => {
                core.tcp_relayed(now, cid, Flow::ToClient, n);
                let data = buf.get(..n).unwrap_or_default();
                p.closed = client.send_partial(data).is_err();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => p.closed = true,
        }
    }
    p
}
