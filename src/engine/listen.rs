//! Binds the listening sockets: for every shard and every listening address one UDP socket and
//! one TCP listener on the same port (SO_REUSEPORT). Port 0 picks one free port that works for
//! UDP and TCP on every address. Each address's UDP group and TCP group is then steered by source
//! IP (`steer`): shard `i`'s socket is the `i`-th bound, which is the index the program returns.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::error::EngineError;
use super::sockets::{self, Group};
use super::steer::{SourceHash, Steering, Steerings};
use crate::turn::Transport;

/// Attempts at finding a port free for both UDP and TCP on every address.
const PORT_ZERO_ATTEMPTS: usize = 8;
/// How long a configured port that is in use is tried again: the sockets of a server that has
/// just exited can outlive it briefly (an io_uring instance is torn down after the process, in
/// the kernel's own time, a few hundred milliseconds here), and a restart must not fail on them.
const BUSY_PORT_WAIT: Duration = Duration::from_secs(3);
const BUSY_PORT_RETRY: Duration = Duration::from_millis(50);

/// One shard's listeners; index `i` of each list is the listening address `i`.
pub(crate) struct ShardSockets {
    pub(crate) udp: Vec<UdpSocket>,
    pub(crate) tcp: Vec<TcpListener>,
}

pub(crate) struct Listeners {
    /// One transport address per listening IP, with the port actually bound.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) shards: Vec<ShardSockets>,
    /// How the kernel picks a shard for a client, for the start-up log.
    pub(crate) steering: Steerings,
}

/// Which transports to listen on.
#[derive(Clone, Copy)]
pub(crate) struct Transports {
    pub(crate) udp: bool,
    pub(crate) tcp: bool,
}

pub(crate) fn bind(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
    want: Transports,
) -> Result<Listeners, EngineError> {
    let key = getrandom::u32().map_err(|e| EngineError::Io {
        what: "reading random bytes",
        source: io::Error::other(e.to_string()),
    })?;
    bind_keyed(ips, port, shards, want, key)
}

/// `bind` with the steering program's hash key given.
fn bind_keyed(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
    want: Transports,
    key: u32,
) -> Result<Listeners, EngineError> {
    let mut listeners = bind_groups(ips, port, shards, want)?;
    let one_shard = |wanted: bool| {
        if wanted {
            Steering::OneShard
        } else {
            Steering::Off
        }
    };
    listeners.steering = match (SourceHash::new(key, shards), listeners.shards.first()) {
        (Some(hash), Some(first)) => Steerings {
            udp: steer(hash, &first.udp, &listeners.addrs),
            tcp: steer(hash, &first.tcp, &listeners.addrs),
        },
        _ => Steerings {
            udp: one_shard(want.udp),
            tcp: one_shard(want.tcp),
        },
    };
    Ok(listeners)
}

/// Attaches `hash` to each address's group through shard 0's socket in it (`heads[i]` is in
/// the group of `addrs[i]`; any member will do, the program is the group's).
fn steer<S: AsRawFd>(hash: SourceHash, heads: &[S], addrs: &[SocketAddr]) -> Steering {
    if heads.is_empty() {
        return Steering::Off;
    }
    for (socket, addr) in heads.iter().zip(addrs) {
        if let Err(error) = hash.attach(socket, addr.is_ipv6()) {
            return Steering::Failed { addr: *addr, error };
        }
    }
    Steering::BySource
}

fn bind_groups(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
    want: Transports,
) -> Result<Listeners, EngineError> {
    let Some(&first_ip) = ips.first() else {
        return Err(EngineError::NoListener);
    };
    if port != 0 || (!want.udp && !want.tcp) {
        // With neither transport (TLS only), nothing is bound: the addresses still name the
        // listening IPs, on which the TLS listeners are bound apart.
        return while_busy(|| bind_at(ips, port, shards, want, Seed::default()));
    }
    let mut last = None;
    for _ in 0..PORT_ZERO_ATTEMPTS {
        let probe = SocketAddr::new(first_ip, 0);
        let seed = if want.udp {
            Seed {
                udp: Some(
                    sockets::udp_listener(probe, Group::Open)
                        .map_err(bind_error(Transport::Udp, probe))?,
                ),
                tcp: None,
            }
        } else {
            Seed {
                udp: None,
                tcp: Some(
                    sockets::tcp_listener(probe, Group::Open)
                        .map_err(bind_error(Transport::Tcp, probe))?,
                ),
            }
        };
        let chosen = seed.port().map_err(|source| EngineError::Io {
            what: "reading the bound port",
            source,
        })?;
        match bind_at(ips, chosen, shards, want, seed) {
            Err(EngineError::Bind { source, .. }) if source.kind() == io::ErrorKind::AddrInUse => {
                last = Some(source);
            }
            other => return other,
        }
    }
    Err(EngineError::Bind {
        transport: Transport::Tcp,
        addr: SocketAddr::new(first_ip, 0),
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)),
    })
}

/// Runs `bind` until it does not fail with "address in use" or `BUSY_PORT_WAIT` has passed.
pub(crate) fn while_busy<T>(
    mut bind: impl FnMut() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let deadline = super::clock::now().0 + BUSY_PORT_WAIT;
    loop {
        match bind() {
            Err(EngineError::Bind { source, .. })
                if source.kind() == io::ErrorKind::AddrInUse
                    && super::clock::now().0 < deadline =>
            {
                std::thread::sleep(BUSY_PORT_RETRY);
            }
            other => return other,
        }
    }
}

/// The socket that picked the port when `listening-port=0`: it becomes shard 0's socket for the
/// first address.
#[derive(Default)]
struct Seed {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
}

impl Seed {
    fn port(&self) -> io::Result<u16> {
        match (&self.udp, &self.tcp) {
            (Some(s), _) => s.local_addr().map(|a| a.port()),
            (None, Some(s)) => s.local_addr().map(|a| a.port()),
            (None, None) => Ok(0),
        }
    }
}

fn bind_at(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
    want: Transports,
    mut seed: Seed,
) -> Result<Listeners, EngineError> {
    let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    let mut all = Vec::with_capacity(shards);
    for shard in 0..shards {
        let group = if shard == 0 { Group::Open } else { Group::Join };
        let mut mine = ShardSockets {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for &addr in &addrs {
            if want.udp {
                mine.udp.push(match seed.udp.take() {
                    Some(s) => s,
                    None => sockets::udp_listener(addr, group)
                        .map_err(bind_error(Transport::Udp, addr))?,
                });
            }
            if want.tcp {
                mine.tcp.push(match seed.tcp.take() {
                    Some(s) => s,
                    None => sockets::tcp_listener(addr, group)
                        .map_err(bind_error(Transport::Tcp, addr))?,
                });
            }
        }
        all.push(mine);
    }
    Ok(Listeners {
        addrs,
        shards: all,
        steering: Steerings::default(),
    })
}

fn bind_error(transport: Transport, addr: SocketAddr) -> impl FnOnce(io::Error) -> EngineError {
    move |source| EngineError::Bind {
        transport,
        addr,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const BOTH: Transports = Transports {
        udp: true,
        tcp: true,
    };

    #[test]
    fn port_zero_gives_one_port_for_every_shard_and_transport() {
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let l = bind(&ips, 0, 3, BOTH).unwrap();
        assert_eq!(l.addrs.len(), 1);
        let port = l.addrs[0].port();
        assert_ne!(port, 0);
        assert_eq!(l.shards.len(), 3);
        for s in &l.shards {
            assert_eq!(s.udp.len(), 1);
            assert_eq!(s.tcp.len(), 1);
            assert_eq!(s.udp[0].local_addr().unwrap(), l.addrs[0]);
            assert_eq!(s.tcp[0].local_addr().unwrap(), l.addrs[0]);
        }
    }

    /// Polls a non-blocking socket for up to a second.
    fn eventually<T>(mut f: impl FnMut() -> io::Result<T>) -> Option<T> {
        for _ in 0..100 {
            match f() {
                Ok(v) => return Some(v),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        }
        None
    }

    /// On this kernel, with the port-0 seed socket and without: every source port of each of
    /// 24 source IPs reaches shard `hash(ip)`'s socket, over UDP and TCP, so a group's index
    /// order is the shard order.
    #[test]
    fn every_port_of_a_source_ip_reaches_the_shard_its_hash_names() {
        const KEY: u32 = 0x7e2a_0001;
        const SHARDS: usize = 3;
        let hash = SourceHash::new(KEY, SHARDS).unwrap();
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let tcp_only = Transports {
            udp: false,
            tcp: true,
        };
        let mut port = 0;
        for (want, fixed) in [(BOTH, false), (BOTH, true), (tcp_only, false)] {
            let at = if fixed { port } else { 0 };
            let l = bind_keyed(&ips, at, SHARDS, want, KEY).unwrap();
            let addr = l.addrs[0];
            port = addr.port();
            assert!(matches!(l.steering.tcp, Steering::BySource));
            assert_eq!(
                matches!(l.steering.udp, Steering::BySource),
                want.udp,
                "{:?}",
                l.steering.udp
            );
            let mut hits = [0; SHARDS];
            for n in 1..=24 {
                let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
                let shard = hash.shard_of(src);
                hits[shard] += 1;
                for _ in 0..2 {
                    if want.udp {
                        let tx = UdpSocket::bind((src, 0)).unwrap();
                        tx.send_to(b"x", addr).unwrap();
                        let got = eventually(|| l.shards[shard].udp[0].recv(&mut [0; 8]));
                        assert!(got.is_some(), "{src} did not reach shard {shard} over UDP");
                    }
                    let tx =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                            .unwrap();
                    tx.bind(&SocketAddr::new(src, 0).into()).unwrap();
                    tx.connect(&addr.into()).unwrap();
                    let got = eventually(|| l.shards[shard].tcp[0].accept());
                    assert!(got.is_some(), "{src} did not reach shard {shard} over TCP");
                }
            }
            assert!(hits.iter().all(|h| *h > 0), "{hits:?}");
            for s in &l.shards {
                if let Some(udp) = s.udp.first() {
                    assert!(udp.recv(&mut [0; 8]).is_err(), "a datagram went astray");
                }
                assert!(s.tcp[0].accept().is_err(), "a connection went astray");
            }
        }
    }

    #[test]
    fn a_group_the_kernel_refuses_is_reported_with_its_address() {
        // Not a reuseport socket: the kernel refuses a reuseport program on it.
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        let hash = SourceHash::new(1, 2).unwrap();
        match steer(hash, &[plain], &[addr]) {
            Steering::Failed { addr: at, .. } => assert_eq!(at, addr),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_shard_is_not_steered() {
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let udp_only = Transports {
            udp: true,
            tcp: false,
        };
        let l = bind(&ips, 0, 1, udp_only).unwrap();
        assert!(matches!(l.steering.udp, Steering::OneShard));
        assert!(matches!(l.steering.tcp, Steering::Off));
    }

    #[test]
    fn a_taken_port_is_a_bind_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        match bind(&ips, port, 1, BOTH) {
            Err(EngineError::Bind {
                transport, source, ..
            }) => {
                assert_eq!(transport, Transport::Tcp);
                assert_eq!(source.kind(), io::ErrorKind::AddrInUse);
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("bound a port that is taken"),
        }
    }

    #[test]
    fn nothing_to_listen_on() {
        assert!(matches!(
            bind(&[], 0, 1, BOTH),
            Err(EngineError::NoListener)
        ));
    }

    #[test]
    fn tls_alone_binds_nothing_here_but_keeps_the_addresses() {
        // `no-udp` and `no-tcp`: the TLS listeners are bound apart on these addresses (and the
        // engine refuses to start when there is no TLS either).
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let none = Transports {
            udp: false,
            tcp: false,
        };
        let l = bind(&ips, 0, 2, none).expect("nothing to bind is no error");
        assert_eq!(l.addrs.iter().map(|a| a.ip()).collect::<Vec<_>>(), ips);
        assert_eq!(l.shards.len(), 2);
        assert!(l
            .shards
            .iter()
            .all(|s| s.udp.is_empty() && s.tcp.is_empty()));
    }
}
