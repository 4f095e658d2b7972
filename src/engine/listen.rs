//! Binds the listening sockets: for every shard and every listening address one UDP socket and
//! one TCP listener on the same port (SO_REUSEPORT). Port 0 picks one free port that works for
//! UDP and TCP on every address.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use super::error::EngineError;
use super::sockets;
use crate::turn::Transport;

/// Attempts at finding a port free for both UDP and TCP on every address.
const PORT_ZERO_ATTEMPTS: usize = 8;

/// One shard's listeners; index `i` of each list is the listening address `i`.
pub(crate) struct ShardSockets {
    pub(crate) udp: Vec<UdpSocket>,
    pub(crate) tcp: Vec<TcpListener>,
}

pub(crate) struct Listeners {
    /// One transport address per listening IP, with the port actually bound.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) shards: Vec<ShardSockets>,
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
    let Some(&first_ip) = ips.first() else {
        return Err(EngineError::NoListener);
    };
    if !want.udp && !want.tcp {
        return Err(EngineError::NoListener);
    }
    if port != 0 {
        return bind_at(ips, port, shards, want, Seed::default());
    }
    let mut last = None;
    for _ in 0..PORT_ZERO_ATTEMPTS {
        let probe = SocketAddr::new(first_ip, 0);
        let seed = if want.udp {
            Seed {
                udp: Some(sockets::udp_listener(probe).map_err(bind_error(Transport::Udp, probe))?),
                tcp: None,
            }
        } else {
            Seed {
                udp: None,
                tcp: Some(sockets::tcp_listener(probe).map_err(bind_error(Transport::Tcp, probe))?),
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
    for _ in 0..shards {
        let mut mine = ShardSockets {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for &addr in &addrs {
            if want.udp {
                mine.udp.push(match seed.udp.take() {
                    Some(s) => s,
                    None => {
                        sockets::udp_listener(addr).map_err(bind_error(Transport::Udp, addr))?
                    }
                });
            }
            if want.tcp {
                mine.tcp.push(match seed.tcp.take() {
                    Some(s) => s,
                    None => {
                        sockets::tcp_listener(addr).map_err(bind_error(Transport::Tcp, addr))?
                    }
                });
            }
        }
        all.push(mine);
    }
    Ok(Listeners { addrs, shards: all })
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
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let none = Transports {
            udp: false,
            tcp: false,
        };
        assert!(matches!(
            bind(&ips, 0, 1, none),
            Err(EngineError::NoListener)
        ));
        assert!(matches!(
            bind(&[], 0, 1, BOTH),
            Err(EngineError::NoListener)
        ));
    }
}
