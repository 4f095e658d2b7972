//! The control-plane probe: on its own thread, a Binding every few milliseconds and a complete
//! Allocate (401 challenge, signed Allocate, then a deallocating Refresh) every few hundred,
//! each timed from the first send to the answer, retransmissions included (what a client waits).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tern::client::{Algorithm, Credentials, Request};
use tern_testkit::udp::{Answer, UdpClient};
use tern_testkit::Histogram;

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
    let Ok(mut binder) = client(server, None) else {
        return r;
    };
    let mut next_alloc = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        if succeeded(binder.request(Request::Binding).as_ref()) {
            r.binding.record_duration(t0.elapsed());
        } else {
            r.binding_failed += 1;
        }
        if Instant::now() >= next_alloc {
            next_alloc = Instant::now() + allocate_every;
            let t0 = Instant::now();
            match allocate(server) {
                Ok(mut c) => {
                    r.allocate.record_duration(t0.elapsed());
                    let _ = c.request(Request::Refresh(0));
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

/// A complete Allocate (challenge, signed Allocate) from a fresh socket; the client (holding the
/// allocation) on success, else how it failed.
fn allocate(server: SocketAddr) -> Result<UdpClient, String> {
    let mut c = client(server, Some(Credentials::long_term(USER, PASSWORD)))?;
    match c.request(Request::ALLOCATE) {
        Some(Answer { response, .. }) => match response.outcome {
            Ok(_) => Ok(c),
            Err(refusal) => Err(format!("Allocate refused: {refusal:?}")),
        },
        None => Err(format!(
            "Allocate from {:?} unanswered after {TRIES} tries",
            c.local_addr().ok()
        )),
    }
}

/// A client on a fresh 127.0.0.1 socket with the probe's jittered timer.
pub fn client(server: SocketAddr, creds: Option<Credentials>) -> Result<UdpClient, String> {
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    UdpClient::bind(local, server, creds, Algorithm::Md5)
        .map(|c| c.timing(RTO, TRIES, true))
        .map_err(|e| format!("bind: {e}"))
}

/// Whether a request ended in a success.
pub fn succeeded(answer: Option<&Answer>) -> bool {
    answer.is_some_and(|a| a.response.outcome.is_ok())
}
