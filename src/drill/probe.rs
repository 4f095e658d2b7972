//! The control-plane probe: on its own thread, a Binding every few milliseconds and a complete
//! Allocate (401 challenge, signed Allocate, then a deallocating Refresh) every few hundred,
//! each timed from the first send to the answer, retransmissions included (what a client waits).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::stats::Histogram;
use super::wire::{self, Ask, Auth, Reply};
use super::{PASSWORD, USER};

/// Retransmission timer and attempts for probe requests.
const RTO: Duration = Duration::from_millis(250);
const TRIES: u32 = 16;

#[derive(Default, Clone)]
pub struct ProbeResult {
    pub binding: Histogram,
    pub allocate: Histogram,
    /// Probes that got no answer after every retransmission, or a refusal.
    pub binding_failed: u64,
    pub allocate_failed: u64,
}

pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ProbeResult>,
}

impl Probe {
    /// Probes `server` from 127.0.0.1 until [`Probe::finish`].
    pub fn start(server: SocketAddr, binding_every: Duration, allocate_every: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || probe(server, binding_every, allocate_every, &flag));
        Probe { stop, thread }
    }

    pub fn finish(self) -> ProbeResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn probe(
    server: SocketAddr,
    binding_every: Duration,
    allocate_every: Duration,
    stop: &AtomicBool,
) -> ProbeResult {
    let mut r = ProbeResult::default();
    let Ok(binder) = UdpSocket::bind("127.0.0.1:0") else {
        return r;
    };
    let mut next_alloc = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        match exchange(&binder, server, Ask::Binding, &Auth::default()) {
            Some(Reply::Success { .. }) => r.binding.record(t0.elapsed()),
            _ => r.binding_failed += 1,
        }
        if Instant::now() >= next_alloc {
            next_alloc = Instant::now() + allocate_every;
            let t0 = Instant::now();
            match allocate(server) {
                Some(sock) => {
                    r.allocate.record(t0.elapsed());
                    let _ = deallocate(&sock, server);
                }
                None => r.allocate_failed += 1,
            }
        }
        thread::sleep(binding_every.saturating_sub(t0.elapsed()));
    }
    r
}

/// A complete Allocate from a fresh socket; the socket (holding the allocation) on success.
fn allocate(server: SocketAddr) -> Option<(UdpSocket, Auth)> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    let mut auth = Auth::default();
    for _ in 0..3 {
        match exchange(&sock, server, Ask::Allocate, &auth)? {
            Reply::Success { .. } => return Some((sock, auth)),
            Reply::Challenge { realm, nonce, .. } => {
                if !auth.challenge(&realm, &nonce, USER, PASSWORD) {
                    return None;
                }
            }
            Reply::Error(_) => return None,
        }
    }
    None
}

fn deallocate((sock, auth): &(UdpSocket, Auth), server: SocketAddr) -> Option<Reply> {
    exchange(sock, server, Ask::Refresh(0), auth)
}

/// One request with retransmissions; the answer to it, if one came.
pub fn exchange(sock: &UdpSocket, server: SocketAddr, ask: Ask, auth: &Auth) -> Option<Reply> {
    let tid = wire::tid();
    let mut out = [0u8; 512];
    let n = wire::request(&mut out, ask, &tid, USER, auth);
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(RTO)).ok()?;
    for _ in 0..TRIES {
        sock.send_to(&out[..n], server).ok()?;
        let deadline = Instant::now() + RTO;
        while Instant::now() < deadline {
            let Ok(len) = sock.recv(&mut buf) else { break };
            if let Some((got, reply)) = wire::reply(&buf[..len]) {
                if got == tid {
                    return Some(reply);
                }
            }
        }
    }
    None
}
