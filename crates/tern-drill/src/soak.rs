//! The soak: many allocations refreshing on a schedule and relaying about one packet a second
//! each through ChannelData to echo peers; RSS sampled every second from /proc. Passes when RSS
//! at the end is within the tolerance of RSS after warm-up and no allocation was lost.

use std::path::PathBuf;
use std::time::Duration;

use super::fleet::{loopback_sources, Fleet, FleetConfig, Plan, State};
use super::proc::{allocation_ceiling, Tern};
use super::Outcome;
use tern_testkit::EchoPeers;

pub struct SoakOpts {
    pub bin: PathBuf,
    pub allocations: usize,
    pub duration: Duration,
    /// RSS after this much relaying is the baseline.
    pub warmup: Duration,
    pub refresh_every: Duration,
    /// Packets per second per allocation.
    pub rate: f64,
    pub sources: u8,
    pub rss_tolerance_pct: f64,
    pub stall: Duration,
}

pub fn run(o: &SoakOpts) -> Outcome {
    let own = super::raise_nofile();
    let peers = EchoPeers::start(16).map_err(|e| format!("echo peers: {e}"))?;
    let mut tern = Tern::start(&o.bin, &[], &[])?;
    let mut n = o.allocations;
    if let Some(ceiling) = allocation_ceiling(&tern.log()) {
        if n as u64 > ceiling {
            println!(
                "NOTICE: tern's descriptor ceiling is {ceiling} allocations; running {ceiling} \
                 instead of {n} (raise the hard RLIMIT_NOFILE for more)"
            );
            n = ceiling as usize;
        }
    }
    if n as u64 + 128 > own {
        return Err(format!(
            "{n} client sockets do not fit this process's {own} descriptors"
        ));
    }
    let sources = loopback_sources(o.sources);
    let mut fleet = Fleet::new(&FleetConfig {
        server: tern.udp,
        count: n,
        sources,
        peers: peers.addrs.clone(),
        payload: 100,
    })?;
    let all: Vec<usize> = (0..n).collect();
    fleet.establish(&all, 256, Duration::from_secs(30 + n as u64 / 50));
    let ready = (0..n)
        .filter(|&i| fleet.state(i) == Some(State::Ready))
        .count();
    if ready != n {
        return Err(format!(
            "{ready} of {n} allocations established: {:?}",
            fleet.census()
        ));
    }
    let setup_rss = tern.rss_kib().unwrap_or(0);
    println!("soak: {n} allocations ready, tern RSS {setup_rss} KiB");
    let mut warm = None;
    let mut last = setup_rss;
    let mut series = Vec::new();
    let report_every = (o.duration.as_secs() / 20).max(1);
    let plan = Plan {
        duration: o.duration,
        rate: Some(o.rate * n as f64),
        window: None,
        refresh: Some((o.refresh_every, 600)),
        stall: Some(o.stall),
    };
    let pid = tern.pid();
    fleet.run(&plan, &mut |t| {
        let rss = super::proc::rss_kib(pid).unwrap_or(0);
        last = rss;
        if warm.is_none() && t >= o.warmup {
            warm = Some(rss);
        }
        if t.as_secs() % report_every == 0 {
            series.push((t.as_secs(), rss));
            println!("soak: t={:>4}s rss={rss} KiB", t.as_secs());
        }
    });
    if !tern.alive() {
        return Err(format!("tern exited during the soak; log:\n{}", tern.log()));
    }
    let c = &fleet.counters;
    let warm = warm.unwrap_or(setup_rss);
    let growth = growth_pct(warm, last);
    let loss = if c.sent == 0 {
        0.0
    } else {
        100.0 * (c.sent.saturating_sub(c.received)) as f64 / c.sent as f64
    };
    let lost = fleet.lost();
    let summary = format!(
        "{n} allocations for {}s: RSS after warm-up {warm} KiB, at the end {last} KiB \
         ({growth:+.2}%); sent {} received {} (loss {loss:.3}%), client send buffer full {}; \
         refreshes ok {} failed {}; allocations lost {lost} (stalled {}); RTT {}",
        o.duration.as_secs(),
        c.sent,
        c.received,
        c.send_blocked,
        c.refreshes_ok,
        c.refreshes_failed,
        c.stalls,
        fleet.latency.summary()
    );
    if lost > 0 {
        return Err(format!("{summary}; states {:?}", fleet.census()));
    }
    if growth.abs() > o.rss_tolerance_pct {
        return Err(format!(
            "{summary}; RSS moved more than {}%",
            o.rss_tolerance_pct
        ));
    }
    if c.refreshes_ok == 0 {
        return Err(format!("{summary}; no refresh was exercised"));
    }
    Ok(summary)
}

/// Percent change from `base` to `now`.
fn growth_pct(base: u64, now: u64) -> f64 {
    if base == 0 {
        return 0.0;
    }
    (now as f64 - base as f64) * 100.0 / base as f64
}

#[cfg(test)]
mod tests {
    use super::growth_pct;

    #[test]
    fn growth_is_relative_to_the_base() {
        assert_eq!(growth_pct(100, 105), 5.0);
        assert_eq!(growth_pct(100, 90), -10.0);
        assert_eq!(growth_pct(0, 90), 0.0);
    }
}
