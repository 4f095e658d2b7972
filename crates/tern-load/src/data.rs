//! The data phase: every ready client sends packets through its allocation to its echo peer and
//! back, as ChannelData (RFC 8656 §12.4; padded to 4 bytes on TCP and TLS, §12.5) or Send/Data
//! indications (§11), either closed loop (`window` packets in flight per client) or at a fixed
//! total rate; round trips are timed.

use std::io;
use std::time::{Duration, Instant};

use mio::Events;

use super::options::{Mode, Options};
use super::setup::{Fleet, Stage, CHANNEL};
use tern::client as turn;
use tern_testkit::Histogram;

/// Marks a payload as this generator's ("tLD1").
const MAGIC: u32 = 0x744c_4431;
/// A closed-loop client whose packets have not come back for this long sends a new window.
const STALL: Duration = Duration::from_millis(500);
/// Fixed rate: how often the pacer wakes up.
const TICK: Duration = Duration::from_micros(200);
/// How long to wait for packets in flight when the sending stops.
const DRAIN: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct DataStats {
    pub sent: u64,
    pub received: u64,
    pub bad: u64,
    pub stalls: u64,
    pub send_errors: u64,
    pub send_seconds: f64,
    pub rtt_us: Histogram,
}

/// Where packets are written before they are sent.
struct Buffers {
    packet: Vec<u8>,
    /// A Send indication's DATA before it is copied into the message.
    data: Vec<u8>,
}

struct Flow {
    client: usize,
    seq: u32,
    in_flight: u32,
    last: Instant,
}

pub fn run(fleet: &mut Fleet, opts: &Options) -> DataStats {
    let mut flows: Vec<Flow> = (0..fleet.clients.len())
        .filter(|&i| fleet.clients[i].stage == Stage::Ready)
        .map(|client| Flow {
            client,
            seq: 0,
            in_flight: 0,
            last: Instant::now(),
        })
        .collect();
    let mut stats = DataStats::default();
    let mut tx = Buffers {
        packet: vec![0u8; opts.size + 128],
        data: vec![0u8; opts.size],
    };
    let mut rx = vec![0u8; 65_536];
    let mut events = Events::with_capacity(1024);
    // Client index -> flow index, for receives.
    let mut flow_of = vec![usize::MAX; fleet.clients.len()];
    for (f, flow) in flows.iter().enumerate() {
        flow_of[flow.client] = f;
    }
    let epoch = Instant::now();
    let send_until = epoch + Duration::from_secs_f64(opts.duration);
    if opts.rate == 0 {
        for flow in flows.iter_mut() {
            for _ in 0..opts.window {
                send(fleet, opts, flow, &mut tx, epoch, &mut stats);
            }
        }
    }
    let mut next_flow = 0;
    let mut last_stall_check = epoch;
    loop {
        let now = Instant::now();
        let sending = now < send_until;
        if !sending && (now >= send_until + DRAIN || stats.received + stats.bad >= stats.sent) {
            break;
        }
        if sending && opts.rate > 0 && !flows.is_empty() {
            let due = (now.duration_since(epoch).as_secs_f64() * opts.rate as f64) as u64;
            while stats.sent < due {
                let f = next_flow % flows.len();
                next_flow += 1;
                send(fleet, opts, &mut flows[f], &mut tx, epoch, &mut stats);
            }
        }
        let timeout = if opts.rate > 0 {
            Some(Duration::ZERO)
        } else {
            Some(Duration::from_millis(5))
        };
        if fleet.poll.poll(&mut events, timeout).is_ok() {
            for e in events.iter() {
                let f = flow_of.get(e.token().0).copied().unwrap_or(usize::MAX);
                if f == usize::MAX {
                    continue;
                }
                if let Some(c) = fleet.clients.get_mut(flows[f].client) {
                    // A stream's unsent bytes; a failure shows as the read's error below.
                    let _ = c.io.flush();
                }
                let echoed = receive(fleet, opts, &mut flows[f], &mut rx, epoch, &mut stats);
                if opts.rate == 0 && sending {
                    for _ in 0..echoed {
                        send(fleet, opts, &mut flows[f], &mut tx, epoch, &mut stats);
                    }
                }
            }
        }
        if opts.rate == 0 && sending && now.duration_since(last_stall_check) > STALL / 4 {
            last_stall_check = now;
            for flow in flows.iter_mut() {
                if flow.in_flight > 0 && now.duration_since(flow.last) > STALL {
                    stats.stalls += 1;
                    flow.in_flight = 0;
                    for _ in 0..opts.window {
                        send(fleet, opts, flow, &mut tx, epoch, &mut stats);
                    }
                }
            }
        }
        if opts.rate > 0 {
            std::thread::sleep(TICK);
        }
        if sending {
            stats.send_seconds = now.duration_since(epoch).as_secs_f64();
        }
    }
    stats
}

fn send(
    fleet: &mut Fleet,
    opts: &Options,
    flow: &mut Flow,
    tx: &mut Buffers,
    epoch: Instant,
    stats: &mut DataStats,
) {
    let buf = &mut tx.packet;
    let Some(client) = fleet.clients.get_mut(flow.client) else {
        return;
    };
    let mut payload = [0u8; 24];
    payload[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    payload[4..8].copy_from_slice(&(flow.client as u32).to_be_bytes());
    payload[8..12].copy_from_slice(&flow.seq.to_be_bytes());
    let t = epoch.elapsed().as_nanos() as u64;
    payload[16..24].copy_from_slice(&t.to_be_bytes());
    let n = match opts.mode {
        Mode::Channel => {
            let body = &mut buf[4..4 + opts.size];
            body.fill(0);
            body[..24].copy_from_slice(&payload);
            if opts.transport.is_stream() {
                turn::channel_data_padded(buf, CHANNEL, opts.size)
            } else {
                turn::channel_data(buf, CHANNEL, opts.size)
            }
        }
        Mode::Send => {
            let data = &mut tx.data;
            data[..24].copy_from_slice(&payload);
            let mut tid = [0u8; 12];
            tid[..4].copy_from_slice(&flow.seq.to_be_bytes());
            tid[4..8].copy_from_slice(&(flow.client as u32).to_be_bytes());
            turn::send_indication(buf, &tid, client.peer, data).unwrap_or(0)
        }
    };
    flow.seq = flow.seq.wrapping_add(1);
    stats.sent += 1;
    match client.io.send(&buf[..n]) {
        Ok(_) => {
            flow.in_flight += 1;
            flow.last = Instant::now();
        }
        Err(_) => stats.send_errors += 1,
    }
}

/// Reads everything waiting on the flow's socket; how many valid echoes came back.
fn receive(
    fleet: &mut Fleet,
    opts: &Options,
    flow: &mut Flow,
    buf: &mut [u8],
    epoch: Instant,
    stats: &mut DataStats,
) -> u32 {
    let Some(client) = fleet.clients.get_mut(flow.client) else {
        return 0;
    };
    let mut echoed = 0;
    loop {
        let n = match client.io.recv(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                stats.bad += 1;
                continue;
            }
        };
        let now = epoch.elapsed().as_nanos() as u64;
        let ok = turn::incoming(&buf[..n]).and_then(|i| {
            let p = match i {
                turn::Incoming::Channel { channel, payload } => {
                    (channel == CHANNEL).then_some(payload)?
                }
                turn::Incoming::Data { payload, .. } => payload,
            };
            let head = p.get(..24)?;
            let magic = u32::from_be_bytes(head[0..4].try_into().ok()?);
            let id = u32::from_be_bytes(head[4..8].try_into().ok()?);
            let t = u64::from_be_bytes(head[16..24].try_into().ok()?);
            (magic == MAGIC && id as usize == flow.client && p.len() == opts.size).then_some(t)
        });
        match ok {
            Some(t) => {
                stats.received += 1;
                stats.rtt_us.record(now.saturating_sub(t) / 1000);
                flow.in_flight = flow.in_flight.saturating_sub(1);
                flow.last = Instant::now();
                echoed += 1;
            }
            None => stats.bad += 1,
        }
    }
    echoed
}
