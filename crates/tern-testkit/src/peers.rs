//! Echo peers: UDP sockets (on 127.0.0.1 unless told otherwise) that send every datagram back
//! to where it came from (the client's relayed address), on their own thread, so each packet
//! makes the round trip client → tern → peer → tern → client.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

pub struct EchoPeers {
    pub addrs: Vec<SocketAddr>,
    /// Datagrams the peers received.
    pub received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoPeers {
    pub fn start(count: usize) -> io::Result<EchoPeers> {
        EchoPeers::start_on(Ipv4Addr::LOCALHOST.into(), count)
    }

    /// `count` echo peers on `ip`, ephemeral ports.
    pub fn start_on(ip: IpAddr, count: usize) -> io::Result<EchoPeers> {
        let poll = Poll::new()?;
        let mut sockets = Vec::with_capacity(count);
        let mut addrs = Vec::with_capacity(count);
        for i in 0..count {
            let s = UdpSocket::bind((ip, 0))?;
            s.set_nonblocking(true)?;
            addrs.push(s.local_addr()?);
            let mut s = mio::net::UdpSocket::from_std(s);
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE)?;
            sockets.push(s);
        }
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("echo-peers".into())
            .spawn(move || echo(poll, sockets, &r, &st))?;
        Ok(EchoPeers {
            addrs,
            received,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EchoPeers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo(
    mut poll: Poll,
    sockets: Vec<mio::net::UdpSocket>,
    received: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Acquire) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        for e in events.iter() {
            let Some(s) = sockets.get(e.token().0) else {
                continue;
            };
            let mut n = 0u64;
            loop {
                match s.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        n += 1;
                        // A full socket buffer loses the echo: counted as loss on the way back.
                        let _ = s.send_to(&buf[..len], from);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
            received.fetch_add(n, Ordering::Relaxed);
        }
    }
}
