//! The overload drill: a closed-loop run measures how many echo round trips a second tern
//! carries here, then an open-loop run offers `factor` times that. Passes when tern survives,
//! its RSS stays within a bound, relayed packets are lost rather than queued (their p99 RTT stays
//! under a bound) and Binding and Allocate keep answering within the stated p99.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::cpucap::CpuCap;
use super::fleet::{loopback_sources, Counters, Fleet, FleetConfig, Plan, State};
use super::probe::Probe;
use super::proc::Tern;
use super::{Outcome, SKIPPED};
use tern_testkit::histogram::ms;
use tern_testkit::{EchoPeers, Histogram};

#[derive(Clone)]
pub struct OverloadOpts {
    pub bin: PathBuf,
    pub allocations: usize,
    pub capacity_run: Duration,
    pub duration: Duration,
    pub factor: f64,
    /// Closed-loop packets in flight per allocation while measuring capacity.
    pub window: u32,
    /// p99 bound for Binding and Allocate (retransmissions included) under overload.
    pub control_p99: Duration,
    /// p99 bound for relayed round trips under overload.
    pub data_p99: Duration,
    /// tern's CPU quota, in percent of one core.
    pub cpu_percent: u32,
    /// RSS may grow at most this much over the idle RSS.
    pub rss_growth_kib: u64,
    /// More arguments for tern (e.g. `--io-engine=epoll`).
    pub tern_args: Vec<String>,
}

pub fn run(o: &OverloadOpts) -> Outcome {
    super::raise_nofile();
    let peers = EchoPeers::start(8).map_err(|e| format!("echo peers: {e}"))?;
    let mut tern = Tern::start(&o.bin, &[], &o.tern_args)?;
    let cap = match CpuCap::apply(tern.pid(), o.cpu_percent) {
        Ok(cap) => cap,
        Err(e) => {
            return Ok(format!(
                "{SKIPPED}cannot cap tern's CPU ({e}): the generator could not overload it"
            ))
        }
    };
    let n = o.allocations;
    let sources = loopback_sources(4);
    let mut fleet = Fleet::new(&FleetConfig {
        server: tern.udp,
        count: n,
        sources,
        peers: peers.addrs.clone(),
        payload: 200,
    })?;
    let all: Vec<usize> = (0..n).collect();
    fleet.establish(&all, 64, Duration::from_secs(30));
    if (0..n).any(|i| fleet.state(i) != Some(State::Ready)) {
        return Err(format!("allocations not established: {:?}", fleet.census()));
    }
    let idle = Probe::start(
        tern.udp,
        Duration::from_millis(10),
        Duration::from_millis(100),
    );
    std::thread::sleep(Duration::from_secs(1));
    let idle = idle.finish();
    let base_rss = tern.rss_kib().unwrap_or(0);

    let closed = Plan {
        duration: o.capacity_run,
        rate: None,
        window: Some(o.window),
        refresh: None,
        stall: None,
    };
    fleet.run(&closed, &mut |_| {});
    let capacity = fleet.counters.received as f64 / o.capacity_run.as_secs_f64();
    let closed_rtt = fleet.latency.summary();
    println!("overload: capacity {capacity:.0} echoes/s (closed loop, RTT {closed_rtt})");
    if capacity < 1.0 {
        return Err("no echo came back while measuring capacity".into());
    }

    fleet.counters = Counters::default();
    fleet.latency = Histogram::default();
    let offered = capacity * o.factor;
    let probe = Probe::start(
        tern.udp,
        Duration::from_millis(10),
        Duration::from_millis(100),
    );
    let pid = tern.pid();
    let mut peak = base_rss;
    let mut died = false;
    let open = Plan {
        duration: o.duration,
        rate: Some(offered),
        window: None,
        refresh: None,
        stall: None,
    };
    fleet.run(&open, &mut |t| match super::proc::rss_kib(pid) {
        Some(rss) => {
            peak = peak.max(rss);
            if t.as_secs() % 10 == 0 {
                println!("overload: t={:>3}s rss={rss} KiB", t.as_secs());
            }
        }
        None => died = true,
    });
    let control = probe.finish();
    if died || !tern.alive() {
        return Err(format!("tern died under overload; log:\n{}", tern.log()));
    }
    let c = &fleet.counters;
    let secs = o.duration.as_secs_f64();
    let loss = 100.0 * c.sent.saturating_sub(c.received) as f64 / (c.sent.max(1)) as f64;
    let after = recovered(&tern)?;
    let summary = format!(
        "tern capped at {}% of a core: capacity {capacity:.0} echoes/s; offered {:.0}/s ({:.0}/s sent, {} behind schedule, {} \
         refused by the client's buffer), carried {:.0}/s, loss {loss:.1}%; relayed RTT {}; \
         Binding {} failed {} (idle p99 {}); Allocate {} failed {} (idle p99 {}); RSS idle \
         {base_rss} KiB, peak {peak} KiB; Binding after the load {}",
        o.cpu_percent,
        offered,
        c.sent as f64 / secs,
        c.not_offered,
        c.send_blocked,
        c.received as f64 / secs,
        fleet.latency.summary(),
        control.binding.summary(),
        control.binding_failed,
        ms(idle.binding.quantile_duration(0.99)),
        control.allocate.summary(),
        control.allocate_failed,
        ms(idle.allocate.quantile_duration(0.99)),
        ms(after)
    );
    drop(cap);
    let mut problems = Vec::new();
    if (c.sent as f64) < capacity * secs * 1.2 {
        problems.push("the client could not offer more than 1.2x capacity".to_string());
    }
    if peak > base_rss + o.rss_growth_kib {
        problems.push(format!("RSS grew more than {} KiB", o.rss_growth_kib));
    }
    let data_p99 = fleet.latency.quantile_duration(0.99);
    if data_p99 > o.data_p99 {
        problems.push(format!(
            "relayed p99 {} over {}",
            ms(data_p99),
            ms(o.data_p99)
        ));
    }
    for (name, h, failed) in [
        ("Binding", &control.binding, control.binding_failed),
        ("Allocate", &control.allocate, control.allocate_failed),
    ] {
        // A failed probe is slower than any bound: it counts against the p99.
        let slow = h.count() as f64 * (1.0 - 0.99) < failed as f64;
        let p99 = h.quantile_duration(0.99);
        if slow || p99 > o.control_p99 || h.count() == 0 {
            problems.push(format!(
                "{name} p99 {} (failed {failed}) over {}",
                ms(p99),
                ms(o.control_p99)
            ));
        }
    }
    for why in &control.allocate_failures {
        problems.push(format!("Allocate probe failed: {why}"));
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{}: {summary}", problems.join("; ")))
    }
}

/// After the load: the Binding round trip (the server must still answer).
fn recovered(tern: &Tern) -> Result<Duration, String> {
    let mut binder = super::probe::client(tern.udp, None)?;
    let t0 = Instant::now();
    match binder.request(tern::client::Request::Binding) {
        Some(a) if a.response.outcome.is_ok() => Ok(t0.elapsed()),
        other => Err(format!("no Binding answer after the overload: {other:?}")),
    }
}
