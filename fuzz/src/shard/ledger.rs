//! A fake engine for the `shard` target: hands out relay sockets and records, for each, who owns
//! it and whether it is open, so the harness can check that the core closes every relay socket
//! exactly once and releases only ports it reserved (RFC 8656 §7.2 EVEN-PORT).

use std::collections::HashMap;
use std::net::SocketAddr;

use tern::turn::{BindError, BindRequest, Binder, Bound, Command, PortWish, RelayId, Via};

/// A client 5-tuple as the core keys allocations.
pub type Owner = (Via, SocketAddr);

pub struct RelayState {
    pub addr: SocketAddr,
    pub owner: Option<Owner>,
    pub open: bool,
}

#[derive(Default)]
pub struct Ledger {
    pub fail: Option<BindError>,
    pub relays: HashMap<RelayId, RelayState>,
    /// In bind order, for choosing one by index.
    pub order: Vec<RelayId>,
    /// Relays bound during the current step (the core may bind only for a verified Allocate).
    pub fresh: Vec<RelayId>,
    /// Ports kept by `PortWish::Even { reserve_next: true }`: true once claimed or released.
    pub reserved: HashMap<SocketAddr, bool>,
    next_port: u16,
    next_id: u32,
}

impl Ledger {
    pub fn open_relays(&self) -> impl Iterator<Item = (&RelayId, &RelayState)> {
        self.relays.iter().filter(|(_, r)| r.open)
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.order
            .iter()
            .filter_map(|id| self.relays.get(id))
            .map(|r| r.addr)
            .collect()
    }

    /// Reserved ports neither claimed by an Allocate nor released yet.
    pub fn pending_reservations(&self) -> usize {
        self.reserved.values().filter(|done| !**done).count()
    }

    fn port(&mut self, wish: PortWish) -> u16 {
        if self.next_port < 50000 {
            self.next_port = 50000;
        }
        let take = |from: u16, step: u16| (from, from.wrapping_add(step).max(50000));
        let (port, next) = match wish {
            PortWish::Exact(p) => (p, self.next_port),
            PortWish::Even { reserve_next } => {
                let even = self.next_port.wrapping_add(self.next_port & 1);
                take(even, if reserve_next { 2 } else { 1 })
            }
            PortWish::Any => take(self.next_port, 1),
        };
        self.next_port = next;
        port
    }
}

impl Binder for Ledger {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        let port = self.port(req.port);
        let addr = SocketAddr::new(req.ip, port);
        match req.port {
            PortWish::Exact(_) => match self.reserved.get_mut(&addr) {
                Some(done @ false) => *done = true,
                _ => panic!("bind of {addr} as an exact port that was not reserved"),
            },
            PortWish::Even { reserve_next: true } => {
                let next = SocketAddr::new(req.ip, port.wrapping_add(1));
                self.reserved.insert(next, false);
            }
            _ => {}
        }
        self.next_id += 1;
        let id = RelayId(self.next_id);
        self.relays.insert(
            id,
            RelayState {
                addr,
                owner: None,
                open: true,
            },
        );
        self.order.push(id);
        self.fresh.push(id);
        Ok(Bound { id, addr })
    }
}

impl Ledger {
    /// Carries out one of the shard's commands, checking it as the engine's bookkeeping would.
    /// The ledger binds no TCP relay, so the RFC 6062 commands cannot come.
    pub fn run(&mut self, command: Command) {
        match command {
            Command::CloseRelay(id) => self.close_relay(id),
            Command::ReleasePort(addr) => self.release_port(addr),
            other => panic!("{other:?} without a TCP relay"),
        }
    }

    fn close_relay(&mut self, id: RelayId) {
        match self.relays.get_mut(&id) {
            Some(r) if r.open => r.open = false,
            Some(_) => panic!("relay {id:?} closed twice"),
            None => panic!("close of relay {id:?} that was never bound"),
        }
    }

    fn release_port(&mut self, addr: SocketAddr) {
        match self.reserved.get_mut(&addr) {
            Some(done @ false) => *done = true,
            Some(true) => panic!("release of {addr}, already claimed or released"),
            None => panic!("release of {addr}, never reserved"),
        }
    }
}
