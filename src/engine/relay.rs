//! Relay sockets, the engine side of `turn::Binder` and `turn::Command` (RFC 8656 §7.2 relayed transport address,
//! §14.6 EVEN-PORT / RESERVATION-TOKEN, §14.8 DONT-FRAGMENT). Each shard draws ports from its own
//! slice of `min-port..=max-port`, so shards do not compete for the same ports.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Interest, Registry};
use socket2::{SockRef, Socket};
use tracing::warn;

use super::clock;
use super::slab::Slab;
use super::sockets;
use super::token::{Source, MAX_ID};
use crate::turn::{BindError, BindRequest, Binder, Bound, PortWish, RelayId};

/// Random ports tried before scanning the slice in order.
const RANDOM_PROBES: u32 = 8;
/// Ports tried in order after the random ones (bounded, so a full range costs bounded time).
const SCAN_PROBES: u32 = 512;
/// How long a port reserved by EVEN-PORT (R bit) is held for its RESERVATION-TOKEN (RFC 8656
/// §7.2 "about 30 seconds").
const RESERVATION: Duration = Duration::from_secs(30);

pub(crate) struct RelaySocket {
    pub(crate) socket: mio::net::UdpSocket,
    pub(crate) addr: SocketAddr,
    /// Whether DF is set on the socket now (`sockets::set_dont_fragment`).
    pub(crate) dont_fragment: bool,
}

/// Ports reserved by one allocation for a later one. Shared by every shard: the second
/// allocation may come from another 5-tuple and so land on another shard (control plane only).
#[derive(Default)]
pub(crate) struct ReservedPorts {
    held: Mutex<Vec<(SocketAddr, Socket, Instant)>>,
}

impl ReservedPorts {
    fn put(&self, addr: SocketAddr, socket: Socket, now: Instant) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(_, _, until)| *until > now);
        held.push((addr, socket, now + RESERVATION));
    }

    fn release(&self, addr: SocketAddr) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(a, _, _)| *a != addr);
    }

    fn take(&self, addr: SocketAddr, now: Instant) -> Option<Socket> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(_, _, until)| *until > now);
        let i = held.iter().position(|(a, _, _)| *a == addr)?;
        Some(held.swap_remove(i).1)
    }
}

/// This shard's slice `(lo, hi)` (inclusive) of `min..=max`. When the range is too small to
/// give each shard a few ports, every shard uses all of it (EADDRINUSE sorts out collisions).
pub(crate) fn share(min: u16, max: u16, shards: usize, index: usize) -> (u16, u16) {
    let (min, max) = (u32::from(min.min(max)), u32::from(min.max(max)));
    let span = max - min + 1;
    let shards = shards.max(1) as u32;
    let index = (index as u32).min(shards - 1);
    let chunk = span / shards;
    if chunk < 16 {
        return (min as u16, max as u16);
    }
    let lo = min + index * chunk;
    let hi = if index == shards - 1 {
        max
    } else {
        lo + chunk - 1
    };
    (lo as u16, hi as u16)
}

pub(crate) struct Relays {
    registry: Registry,
    sockets: Slab<RelaySocket>,
    ports: Ports,
}

/// Port choice and binding for one shard, shared by both engines (which differ only in how a
/// bound socket is polled).
pub(crate) struct Ports {
    share: (u16, u16),
    rng: u64,
    reservations: Arc<ReservedPorts>,
    /// Relays this shard could not bind (each an Allocate refused, mostly with 508).
    refused: Refusals,
}

impl Relays {
    pub(crate) fn new(registry: Registry, ports: Ports) -> Relays {
        Relays {
            registry,
            sockets: Slab::new(MAX_ID),
            ports,
        }
    }

    pub(crate) fn get(&self, id: usize) -> Option<&RelaySocket> {
        self.sockets.get(id)
    }

    /// Sets or clears DF on relay socket `id` for the datagrams sent from now on (DONT-FRAGMENT
    /// per datagram, RFC 8656 §10.2: IPv4 has no per-datagram control, so the socket's option
    /// changes between sends). False when it could not.
    pub(crate) fn set_dont_fragment(&mut self, id: usize, on: bool) -> bool {
        let Some(r) = self.sockets.get_mut(id) else {
            return false;
        };
        let set = sockets::set_dont_fragment(&SockRef::from(&r.socket), r.addr.is_ipv6(), on);
        if set.is_ok() {
            r.dont_fragment = on;
        }
        set.is_ok()
    }
}

/// The relays a shard could not bind, and why, said the first time and then at every power of
/// two, so that a full port range or a descriptor shortage cannot flood the log: the client only
/// sees 508.
#[derive(Debug, Default)]
pub(crate) struct Refusals(u64);

impl Refusals {
    /// A `kind` ("relay", "TCP relay") could not be bound as `req` asked, in the shard's `share`
    /// of min-port..max-port.
    pub(crate) fn note(&mut self, kind: &str, req: &BindRequest, share: (u16, u16), e: BindError) {
        self.0 += 1;
        if !self.0.is_power_of_two() {
            return;
        }
        let why = match (e, req.port) {
            (BindError::Exhausted, PortWish::Exact(port)) => {
                format!("port {port}, reserved by a RESERVATION-TOKEN, is taken")
            }
            (BindError::Exhausted, _) => format!(
                "no free port found in this shard's share {}-{} of min-port..max-port",
                share.0, share.1
            ),
            (BindError::Resources, _) => "out of file descriptors or socket memory".to_owned(),
            (BindError::Unavailable, _) => "the address cannot be bound on this host".to_owned(),
        };
        warn!(
            "cannot open a {kind} on {}: {why}; the Allocate is refused ({} refused by this shard)",
            req.ip, self.0
        );
    }
}

/// xorshift64*: port choice only needs to be unpredictable enough to spread load, and the seed
/// comes from the OS.
pub(crate) fn xorshift(state: &mut u64) -> u32 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
}

impl Ports {
    pub(crate) fn new(share: (u16, u16), reservations: Arc<ReservedPorts>, seed: u64) -> Ports {
        Ports {
            share,
            rng: seed | 1,
            reservations,
            refused: Refusals::default(),
        }
    }

    /// Binds a relay socket as `req` asks (a reserved successor port is handed to the shared
    /// reservations). A failure is logged (`refused`): the client only sees 508.
    pub(crate) fn bind(&mut self, req: &BindRequest) -> Result<Socket, BindError> {
        let bound = self.bind_as_asked(req);
        if let Err(e) = bound {
            self.refused.note("relay", req, self.share, e);
        }
        bound
    }

    fn bind_as_asked(&mut self, req: &BindRequest) -> Result<Socket, BindError> {
        Ok(match req.port {
            PortWish::Any => self.pick(req.ip, false, false, req.dont_fragment)?.0,
            PortWish::Even { reserve_next } => {
                let (socket, next) = self.pick(req.ip, true, reserve_next, req.dont_fragment)?;
                if let Some(next) = next {
                    if let Some(addr) = next.local_addr().ok().and_then(|a| a.as_socket()) {
                        self.reservations.put(addr, next, clock::now().0);
                    }
                }
                socket
            }
            PortWish::Exact(port) => self.exact(req.ip, port, req.dont_fragment)?,
        })
    }

    pub(crate) fn release(&self, addr: SocketAddr) {
        self.reservations.release(addr);
    }

    fn random(&mut self) -> u32 {
        xorshift(&mut self.rng)
    }

    /// Binds a port of this shard's slice; with `pair`, an even port whose successor is free too
    /// (the successor's socket is returned second).
    fn pick(
        &mut self,
        ip: IpAddr,
        even: bool,
        pair: bool,
        df: bool,
    ) -> Result<(Socket, Option<Socket>), BindError> {
        let (lo, hi) = (u32::from(self.share.0), u32::from(self.share.1));
        let span = hi - lo + 1;
        let step = if even { 2 } else { 1 };
        let start = self.random() % span;
        for probe in 0..RANDOM_PROBES + SCAN_PROBES.min(span) {
            let offset = if probe < RANDOM_PROBES {
                self.random() % span
            } else {
                (start + (probe - RANDOM_PROBES) * step) % span
            };
            let mut port = lo + offset;
            if even {
                port &= !1;
                if port < lo {
                    port += 2;
                }
            }
            if port > hi || (pair && port + 1 > hi) {
                continue;
            }
            let first = match sockets::relay(SocketAddr::new(ip, port as u16), df) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error(&e)),
            };
            if !pair {
                return Ok((first, None));
            }
            match sockets::relay(SocketAddr::new(ip, (port + 1) as u16), false) {
                Ok(next) => return Ok((first, Some(next))),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error(&e)),
            }
        }
        Err(BindError::Exhausted)
    }

    fn exact(&mut self, ip: IpAddr, port: u16, df: bool) -> Result<Socket, BindError> {
        let addr = SocketAddr::new(ip, port);
        if let Some(socket) = self.reservations.take(addr, clock::now().0) {
            if df {
                sockets::set_dont_fragment(&socket, addr.is_ipv6(), true)
                    .map_err(|e| bind_error(&e))?;
            }
            return Ok(socket);
        }
        sockets::relay(addr, df).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => BindError::Exhausted,
            _ => bind_error(&e),
        })
    }
}

impl Relays {
    fn install(&mut self, socket: Socket, dont_fragment: bool) -> Result<Bound, BindError> {
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or(BindError::Resources)?;
        let socket = mio::net::UdpSocket::from_std(socket.into());
        let id = self
            .sockets
            .insert(RelaySocket {
                socket,
                addr,
                dont_fragment,
            })
            .ok_or(BindError::Resources)?;
        let registered = match self.sockets.get_mut(id) {
            Some(r) => self
                .registry
                .register(&mut r.socket, Source::Relay(id).token(), Interest::READABLE)
                .is_ok(),
            None => false,
        };
        if !registered {
            self.sockets.remove(id);
            return Err(BindError::Resources);
        }
        Ok(Bound {
            id: RelayId(id as u32),
            addr,
        })
    }
}

pub(crate) fn bind_error(e: &io::Error) -> BindError {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => BindError::Resources,
        _ => BindError::Unavailable,
    }
}

impl Binder for Relays {
    fn bind_relay(&mut self, req: &BindRequest) -> Result<Bound, BindError> {
        let socket = self.ports.bind(req)?;
        self.install(socket, req.dont_fragment)
    }
}

impl Relays {
    pub(crate) fn close_relay(&mut self, id: RelayId) {
        if let Some(mut relay) = self.sockets.remove(id.0 as usize) {
            // Deregistering can only fail for a socket poll does not know; it is closed anyway.
            let _ = self.registry.deregister(&mut relay.socket);
        }
    }

    pub(crate) fn release_port(&mut self, addr: SocketAddr) {
        self.ports.release(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn shares_split_the_range_without_overlap() {
        let a = share(49152, 65535, 2, 0);
        let b = share(49152, 65535, 2, 1);
        assert_eq!(a.0, 49152);
        assert_eq!(b.1, 65535);
        assert_eq!(a.1 + 1, b.0);
        assert_eq!(share(50000, 50010, 4, 3), (50000, 50010));
        assert_eq!(share(50000, 50000, 1, 0), (50000, 50000));
    }

    fn relays(share: (u16, u16)) -> (mio::Poll, Relays) {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let seed = getrandom::u64().unwrap();
        (
            poll,
            Relays::new(
                registry,
                Ports::new(share, Arc::new(ReservedPorts::default()), seed),
            ),
        )
    }

    /// A free block of ports on loopback, found by binding port 0 and using its neighbours.
    fn free_range(len: u16) -> (u16, u16) {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = probe.local_addr().unwrap().port();
        let lo = p.saturating_sub(len).max(1024);
        (lo, lo + len - 1)
    }

    #[test]
    fn binds_in_range_until_exhausted() {
        let range = free_range(4);
        let (_poll, mut r) = relays(range);
        let req = BindRequest {
            ip: LOOPBACK,
            port: PortWish::Any,
            dont_fragment: true,
        };
        let mut bound = Vec::new();
        while let Ok(b) = r.bind_relay(&req) {
            assert!((range.0..=range.1).contains(&b.addr.port()), "{b:?}");
            assert_eq!(r.get(b.id.0 as usize).map(|s| s.addr), Some(b.addr));
            bound.push(b);
            assert!(bound.len() <= 4);
        }
        assert_eq!(r.bind_relay(&req), Err(BindError::Exhausted));
        let first = bound[0];
        r.close_relay(first.id);
        assert!(r.get(first.id.0 as usize).is_none());
        let again = r.bind_relay(&req).unwrap();
        assert_eq!(again.addr, first.addr);
    }

    fn reserve_even(r: &mut Relays) -> Bound {
        r.bind_relay(&BindRequest {
            ip: LOOPBACK,
            port: PortWish::Even { reserve_next: true },
            dont_fragment: false,
        })
        .unwrap()
    }

    #[test]
    fn even_port_with_reservation_holds_the_next_port() {
        let (_poll, mut r) = relays(free_range(64));
        let even = reserve_even(&mut r);
        let port = even.addr.port();
        assert_eq!(port % 2, 0);
        let next = SocketAddr::new(LOOPBACK, port + 1);
        assert_eq!(
            std::net::UdpSocket::bind(next).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        let claimed = r
            .bind_relay(&BindRequest {
                ip: LOOPBACK,
                port: PortWish::Exact(port + 1),
                dont_fragment: true,
            })
            .unwrap();
        assert_eq!(claimed.addr, next);
        assert_ne!(claimed.id, even.id);
    }

    #[test]
    fn an_unclaimed_reservation_is_released() {
        let (_poll, mut r) = relays(free_range(64));
        let even = reserve_even(&mut r);
        let next = SocketAddr::new(LOOPBACK, even.addr.port() + 1);
        r.release_port(next);
        assert!(std::net::UdpSocket::bind(next).is_ok(), "{next} still held");
    }

    #[test]
    fn unavailable_address() {
        let (_poll, mut r) = relays((50000, 50100));
        let req = BindRequest {
            ip: "192.0.2.1".parse().unwrap(),
            port: PortWish::Any,
            dont_fragment: false,
        };
        assert_eq!(r.bind_relay(&req), Err(BindError::Unavailable));
    }
}
