//! Relay sockets of an io_uring shard, the engine side of `turn::Binder` and `turn::Command` (RFC 8656 §7.2). Binding
//! stays a synchronous system call (shared port choice in `engine::relay::Ports`); the shard
//! arms a multishot receive for each new socket and cancels it for each closed one, from the
//! changes recorded here after every call into the core.

use std::os::fd::{AsRawFd, RawFd};

use socket2::Socket;

use super::token::GEN_MASK;
use crate::engine::relay::Ports;
use crate::engine::slab::Slab;
use crate::engine::token::MAX_ID;
use crate::turn::{BindError, BindRequest, Binder, Bound, Command, RelayId};

pub(crate) struct RelaySocket {
    pub(crate) socket: Socket,
    pub(crate) gen: u32,
    /// Registered in the ring's fixed-file table (set by the shard).
    pub(crate) fixed: bool,
    /// Whether DF is set on the socket now (`sockets::set_dont_fragment`).
    pub(crate) dont_fragment: bool,
}

/// What the shard must tell the ring about.
pub(crate) enum Change {
    Opened {
        id: u32,
        gen: u32,
        fd: RawFd,
    },
    /// The socket is closed once the shard has queued the cancel of its receive.
    Closed {
        id: u32,
        gen: u32,
        fixed: bool,
        socket: Socket,
    },
}

pub(crate) struct Relays {
    ports: Ports,
    sockets: Slab<RelaySocket>,
    next_gen: u32,
    pub(crate) changes: Vec<Change>,
}

impl Relays {
    pub(crate) fn new(ports: Ports) -> Relays {
        Relays {
            ports,
            sockets: Slab::new(MAX_ID),
            next_gen: 0,
            changes: Vec::new(),
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&RelaySocket> {
        self.sockets.get(id as usize)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut RelaySocket> {
        self.sockets.get_mut(id as usize)
    }
}

impl Binder for Relays {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        let socket = self.ports.bind(req)?;
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or(BindError::Resources)?;
        self.next_gen = self.next_gen.wrapping_add(1) & GEN_MASK;
        let gen = self.next_gen;
        let fd = socket.as_raw_fd();
        let id = self
            .sockets
            .insert(RelaySocket {
                socket,
                gen,
                fixed: false,
                dont_fragment: req.dont_fragment,
            })
            .ok_or(BindError::Resources)?;
        let id = id as u32;
        self.changes.push(Change::Opened { id, gen, fd });
        Ok(Bound {
            id: RelayId(id),
            addr,
        })
    }
}

impl Relays {
    /// Carries out one of the core's commands: a ring shard has UDP clients only, so the RFC
    /// 6062 commands (which need a TCP relay) never come; they are ignored if they do.
    pub(crate) fn run(&mut self, command: Command) {
        match command {
            Command::CloseRelay(id) => self.close_relay(id),
            Command::ReleasePort(addr) => self.ports.release(addr),
            Command::Connect { .. } | Command::CloseConnection(_) | Command::Splice { .. } => {}
            // The shard's control plane carries these out (`Control::fast_command`).
            Command::FastOpen(_) | Command::FastClose(_) | Command::FastForget(_) => {}
        }
    }

    fn close_relay(&mut self, id: RelayId) {
        if let Some(r) = self.sockets.remove(id.0 as usize) {
            self.changes.push(Change::Closed {
                id: id.0,
                gen: r.gen,
                fixed: r.fixed,
                socket: r.socket,
            });
        }
    }
}
