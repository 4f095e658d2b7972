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

/// Retransmission timer and attempts for probe requests. Each wait is jittered by up to ±20%:
/// the drill's CPU cap throttles tern on a fixed period, and a fixed timer would land every
/// retransmission in the same phase of it (all dropped, or all through), which real clients,
/// whose clocks owe nothing to the server's scheduler, do not do.
const RTO: Duration = Duration::from_millis(250);
const TRIES: u32 = 16;

#[derive(Default, Clone)]
pub struct ProbeResult {
    pub binding: Histogram,
    pub allocate: Histogram,
    /// Probes that got no answer after every retransmission, or a refusal.
    pub binding_failed: u64,
    pub allocate_failed: u64,
    /// Why each failed Allocate probe failed (which transaction, and what came back).
    pub allocate_failures: Vec<String>,
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
                Ok(sock) => {
                    r.allocate.record(t0.elapsed());
                    let _ = deallocate(&sock, server);
                }
                Err(why) => {
                    r.allocate_failed += 1;
                    r.allocate_failures.push(why);
                }
            }
        }
        thread::sleep(binding_every.saturating_sub(t0.elapsed()));
    }
    r
}

/// A complete Allocate from a fresh socket; the socket (holding the allocation) on success, else
/// which transaction failed and how.
fn allocate(server: SocketAddr) -> Result<(UdpSocket, Auth), String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let mut auth = Auth::default();
    let mut answers = Vec::new();
    for attempt in 1..=3 {
        let Some(reply) = exchange(&sock, server, Ask::Allocate, &auth) else {
            return Err(format!(
                "Allocate #{attempt} from {:?} unanswered after {TRIES} tries (before: {answers:?})",
                sock.local_addr().ok()
            ));
        };
        match &reply {
            Reply::Success { .. } => return Ok((sock, auth)),
            Reply::Challenge { realm, nonce, .. } => {
                if !auth.challenge(realm, nonce, USER, PASSWORD) {
                    return Err(format!(
                        "Allocate #{attempt}: credentials refused: {reply:?}"
                    ));
                }
            }
            Reply::Error(_) => return Err(format!("Allocate #{attempt}: {reply:?}")),
        }
        answers.push(reply);
    }
    Err(format!("no success after 3 Allocates: {answers:?}"))
}

fn deallocate((sock, auth): &(UdpSocket, Auth), server: SocketAddr) -> Option<Reply> {
    exchange(sock, server, Ask::Refresh(0), auth)
}

/// `d` times a random factor in [0.8, 1.2).
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 1];
    // A failed read leaves 0: the shortest wait, still a valid one.
    let _ = getrandom::fill(&mut b);
    d.mul_f64(0.8 + 0.4 * f64::from(b[0]) / 256.0)
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
        let deadline = Instant::now() + jittered(RTO);
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
