//! Echo peers: UDP sockets on loopback that send every datagram back to the relay address it came
//! from, on their own thread, so relayed packets make the round trip client → tern → peer → tern
//! → client.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

pub struct EchoPeers {
    pub addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoPeers {
    pub fn start(count: usize) -> Result<EchoPeers, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut sockets = Vec::with_capacity(count);
        let mut addrs = Vec::with_capacity(count);
        for i in 0..count {
            let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
            let mut s = UdpSocket::bind(bind).map_err(|e| format!("bind an echo peer: {e}"))?;
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE)
                .map_err(|e| format!("register an echo peer: {e}"))?;
            addrs.push(s.local_addr().map_err(|e| e.to_string())?);
            sockets.push(s);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || echo(poll, sockets, &stop))
        };
        Ok(EchoPeers {
            addrs,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EchoPeers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo(mut poll: Poll, sockets: Vec<UdpSocket>, stop: &AtomicBool) {
    let mut events = Events::with_capacity(256);
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        for ev in &events {
            let Some(s) = sockets.get(ev.token().0) else {
                continue;
            };
            loop {
                match s.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        // A full send buffer drops the echo: counted as loss by the client.
                        let _ = s.send_to(&buf[..len], from);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
    }
}
