//! The engine side of TCP relay allocations (RFC 6062): listening relay sockets, connections to
//! and from peers bound to the relayed transport address, and the `Io` that binds for the core
//! and carries out its commands on UDP or TCP relays.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::{Interest, Registry};
use socket2::{Domain, Protocol, Socket, Type};

use super::super::relay::{bind_error, xorshift, Refusals, Relays};
use super::super::slab::Slab;
use super::super::token::Source;
use crate::turn::{BindError, BindRequest, Binder, Bound, Command, ConnectionId, RelayId, Via};

/// TCP relay ids carry this bit, so that one `RelayId` space names UDP and TCP relays.
pub(crate) const TCP_RELAY: u32 = 1 << 27;
/// Peer connections and TCP relays per shard (ids stay below the tag bit).
const MAX_TCP: usize = (1 << 27) - 1;
/// Ports tried for a TCP relay before giving up.
const PROBES: u32 = 64;
/// Bytes a peer connection may have waiting to be written.
pub(crate) const PEER_QUEUE_LIMIT: usize = 256 * 1024;

pub(crate) struct TcpRelay {
    pub(crate) socket: mio::net::TcpListener,
    pub(crate) addr: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerState {
    Connecting,
    /// Waiting for the client's ConnectionBind; nothing is read from the peer meanwhile.
    Waiting,
    /// Spliced with client stream `.0`.
    Spliced(usize),
}

pub(crate) struct Peer {
    pub(crate) stream: mio::net::TcpStream,
    pub(crate) id: ConnectionId,
    pub(crate) state: PeerState,
    pub(crate) since: Instant,
    /// How far each direction of the spliced pair has ended (RFC 6062 §5.5: a half-close is
    /// carried to the other side).
    pub(crate) ends: Ends,
    /// A resume of the pair is scheduled (a direction is over its budget).
    pub(crate) paused: bool,
    wq: Vec<u8>,
    wstart: usize,
}

/// The ends of a spliced pair's two directions: a side's end of stream is carried to the other
/// side as shutdown(Write) once the bytes before it are written, and the pair closes when both
/// directions have ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ends {
    /// The client's data connection reached end of stream.
    pub(crate) client_eof: bool,
    /// The peer connection reached end of stream.
    pub(crate) peer_eof: bool,
    /// The peer's write side is shut.
    pub(crate) peer_shut: bool,
    /// The client was sent its end (TLS close_notify queued).
    pub(crate) client_ending: bool,
    /// The client's write side is shut.
    pub(crate) client_shut: bool,
}

impl Peer {
    pub(crate) fn queued(&self) -> usize {
        self.wq.len() - self.wstart
    }

    /// Queues as much of `bytes` as fits and writes what the socket takes; returns how much
    /// was taken. Err: the connection failed.
    pub(crate) fn send_partial(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = PEER_QUEUE_LIMIT.saturating_sub(self.queued());
        let take = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        self.wq.extend_from_slice(take);
        self.flush()?;
        Ok(take.len())
    }

    /// Writes queued bytes until the socket would block.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.wstart < self.wq.len() {
            match self
                .stream
                .write(self.wq.get(self.wstart..).unwrap_or_default())
            {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wstart += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.wstart == self.wq.len() {
            self.wq = Vec::new();
            self.wstart = 0;
        }
        Ok(())
    }
}

/// One shard's TCP relays and peer connections.
pub(crate) struct TcpRelays {
    registry: Registry,
    pub(crate) listeners: Slab<TcpRelay>,
    pub(crate) peers: Slab<Peer>,
    by_id: HashMap<u32, usize>,
    share: (u16, u16),
    rng: u64,
    /// TCP relays this shard could not bind.
    refused: Refusals,
    /// ConnectionBinds accepted during the last core call: (connection, client stream).
    pub(crate) splices: Vec<(ConnectionId, Via)>,
    /// Client data streams whose peer connection the core closed: the shard closes them.
    pub(crate) orphans: Vec<usize>,
    /// The time of the current wakeup: when a peer connection started.
    pub(crate) now: Instant,
}

impl TcpRelays {
    pub(crate) fn new(registry: Registry, share: (u16, u16), seed: u64, now: Instant) -> Self {
        TcpRelays {
            registry,
            listeners: Slab::new(MAX_TCP),
            peers: Slab::new(MAX_TCP),
            by_id: HashMap::new(),
            share,
            rng: seed | 1,
            refused: Refusals::default(),
            splices: Vec::new(),
            orphans: Vec::new(),
            now,
        }
    }

    pub(crate) fn peer_index(&self, id: ConnectionId) -> Option<usize> {
        self.by_id.get(&id.0).copied()
    }

    fn random(&mut self) -> u32 {
        xorshift(&mut self.rng)
    }

    /// A listening socket on a free port of this shard's share. The port is first bound without
    /// SO_REUSEPORT, which fails while any socket holds it; the listener itself needs the option
    /// so that outgoing connections can leave from the same address (RFC 6062 §5.2).
    fn listen(&mut self, ip: std::net::IpAddr) -> Result<Socket, BindError> {
        let (lo, hi) = (u32::from(self.share.0), u32::from(self.share.1));
        let span = hi - lo + 1;
        for _ in 0..PROBES {
            let addr = SocketAddr::new(ip, (lo + self.random() % span) as u16);
            match probe(addr) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error(&e)),
            }
            match reusable(addr).and_then(|s| s.listen(64).map(|()| s)) {
                Ok(socket) => return Ok(socket),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error(&e)),
            }
        }
        Err(BindError::Exhausted)
    }

    /// Binds a listening TCP relay; a failure is logged (`refused`): the client only sees 508.
    fn bind(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        let bound = self.bind_listener(req);
        if let Err(e) = bound {
            self.refused.note("TCP relay", req, self.share, e);
        }
        bound
    }

    fn bind_listener(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        let socket = self.listen(req.ip)?;
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or(BindError::Resources)?;
        let socket = mio::net::TcpListener::from_std(socket.into());
        let id = self
            .listeners
            .insert_registered(
                TcpRelay { socket, addr },
                &self.registry,
                |l| &mut l.socket,
                |i| Source::TcpRelay(i).token(),
                Interest::READABLE,
            )
            .ok_or(BindError::Resources)?;
        Ok(Bound {
            id: RelayId(id as u32 | TCP_RELAY),
            addr,
        })
    }

    fn close_listener(&mut self, index: usize) {
        if let Some(mut l) = self.listeners.remove(index) {
            let _ = self.registry.deregister(&mut l.socket);
        }
    }

    fn connect(&mut self, id: ConnectionId, relay: RelayId, peer: SocketAddr) -> io::Result<()> {
        let from = self
            .listeners
            .get((relay.0 & !TCP_RELAY) as usize)
            .map(|l| l.addr)
            .ok_or(io::ErrorKind::NotFound)?;
        let socket = reusable(from)?;
        match socket.connect(&peer.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = mio::net::TcpStream::from_std(socket.into());
        self.add_peer(id, stream, PeerState::Connecting)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::OutOfMemory.into())
    }

    /// Registers a peer connection; its index, or None when it could not be registered.
    pub(crate) fn add_peer(
        &mut self,
        id: ConnectionId,
        stream: mio::net::TcpStream,
        state: PeerState,
    ) -> Option<usize> {
        let peer = Peer {
            stream,
            id,
            state,
            since: self.now,
            ends: Ends::default(),
            paused: false,
            wq: Vec::new(),
            wstart: 0,
        };
        let index = self.peers.insert_registered(
            peer,
            &self.registry,
            |p| &mut p.stream,
            |i| Source::Peer(i).token(),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.by_id.insert(id.0, index);
        Some(index)
    }

    /// Removes peer connection `index`; its state tells whether a client stream was spliced.
    pub(crate) fn remove_peer(&mut self, index: usize) -> Option<Peer> {
        let mut peer = self.peers.remove(index)?;
        let _ = self.registry.deregister(&mut peer.stream);
        self.by_id.remove(&peer.id.0);
        Some(peer)
    }
}

/// Binds `addr` without SO_REUSEPORT and closes it again: fails with AddrInUse while any other
/// socket (of this or another process) holds the port.
fn probe(addr: SocketAddr) -> io::Result<()> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&addr.into())
}

/// A non-blocking TCP socket bound to `addr` with SO_REUSEADDR and SO_REUSEPORT.
fn reusable(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s)
}

/// The relays of a shard with stream clients, UDP and TCP: what the core binds through, and
/// what carries out its commands.
pub(crate) struct Io<'a> {
    pub(crate) udp: &'a mut Relays,
    pub(crate) tcp: &'a mut TcpRelays,
}

impl Binder for Io<'_> {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        self.udp.bind_relay(req)
    }

    fn bind_tcp_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        self.tcp.bind(req)
    }
}

impl Io<'_> {
    /// Carries out one of the core's commands; a Connect that cannot even start comes back as
    /// its connection id, for the core to answer 447 (`Shard::handle_tcp_connected`).
    pub(crate) fn run(&mut self, command: Command) -> Option<ConnectionId> {
        match command {
            Command::CloseRelay(id) if id.0 & TCP_RELAY != 0 => {
                self.tcp.close_listener((id.0 & !TCP_RELAY) as usize);
            }
            Command::CloseRelay(id) => self.udp.close_relay(id),
            Command::ReleasePort(addr) => self.udp.release_port(addr),
            Command::Connect { id, relay, peer } => {
                return self.tcp.connect(id, relay, peer).is_err().then_some(id);
            }
            Command::CloseConnection(id) => self.close_connection(id),
            Command::Splice { id, via } => self.tcp.splices.push((id, via)),
            // The shard's control plane carries these out (`Control::fast_command`).
            Command::FastOpen(_) | Command::FastClose(_) | Command::FastForget(_) => {}
        }
        None
    }

    fn close_connection(&mut self, id: ConnectionId) {
        let Some(index) = self.tcp.peer_index(id) else {
            return;
        };
        if let Some(peer) = self.tcp.remove_peer(index) {
            if let PeerState::Spliced(client) = peer.state {
                self.tcp.orphans.push(client);
            }
        }
    }
}
