//! Binds the TLS listeners (coturn `tls-listening-port`): one TCP listener per shard and
//! listening address on the same port (SO_REUSEPORT). Port 0 picks one free port for all.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use super::super::error::EngineError;
use super::super::sockets::{self, Group};
use crate::turn::Transport;

const PORT_ZERO_ATTEMPTS: usize = 8;

/// The bound TLS addresses and, per shard, its listeners (index `i` is address `i`).
pub(crate) struct TlsListeners {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) shards: Vec<Vec<TcpListener>>,
}

pub(crate) fn bind_tls(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
) -> Result<TlsListeners, EngineError> {
    let Some(&first) = ips.first() else {
        return Err(EngineError::NoListener);
    };
    if port != 0 {
        return super::super::listen::while_busy(|| bind_at(ips, port, shards, None));
    }
    let mut last = None;
    for _ in 0..PORT_ZERO_ATTEMPTS {
        let probe = SocketAddr::new(first, 0);
        let seed = sockets::tcp_listener(probe, Group::Open).map_err(bind_error(probe))?;
        let chosen = seed.local_addr().map_err(|source| EngineError::Io {
            what: "reading the bound TLS port",
            source,
        })?;
        match bind_at(ips, chosen.port(), shards, Some(seed)) {
            Err(EngineError::Bind { source, .. }) if source.kind() == io::ErrorKind::AddrInUse => {
                last = Some(source);
            }
            other => return other,
        }
    }
    Err(EngineError::Bind {
        transport: Transport::Tls,
        addr: SocketAddr::new(first, 0),
        source: last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()),
    })
}

fn bind_at(
    ips: &[IpAddr],
    port: u16,
    shards: usize,
    mut seed: Option<TcpListener>,
) -> Result<TlsListeners, EngineError> {
    let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    let mut all = Vec::with_capacity(shards);
    for shard in 0..shards {
        let group = if shard == 0 { Group::Open } else { Group::Join };
        let mut mine = Vec::with_capacity(addrs.len());
        for &addr in &addrs {
            mine.push(match seed.take() {
                Some(s) => s,
                None => sockets::tcp_listener(addr, group).map_err(bind_error(addr))?,
            });
        }
        all.push(mine);
    }
    Ok(TlsListeners { addrs, shards: all })
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(io::Error) -> EngineError {
    move |source| EngineError::Bind {
        transport: Transport::Tls,
        addr,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn port_zero_gives_every_shard_the_same_port() {
        let l = bind_tls(&[IpAddr::V4(Ipv4Addr::LOCALHOST)], 0, 2).unwrap();
        let port = l.addrs[0].port();
        assert_ne!(port, 0);
        for shard in &l.shards {
            assert_eq!(shard[0].local_addr().unwrap().port(), port);
        }
    }
}
