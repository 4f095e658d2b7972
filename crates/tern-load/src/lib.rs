//! `tern-load`: tern's own TURN load generator, for operators as coturn's `turnutils_uclient` is,
//! and for the benchmark against coturn (BENCHMARKS.md). N clients allocate over UDP, or each
//! over its own TCP or TLS connection, with long-term or REST credentials (RFC 8656 §7, RFC 8489 §9.2), relay ChannelData or Send
//! indications to echo peers at a fixed rate or flat out, and the run reports setup rate,
//! throughput, loss, round-trip percentiles and, given the server's PID, its CPU per packet and
//! memory per allocation, and the machine's CPU less its own. Loopback only.
// A load generator times real packets: the clock ban is for the protocol core.
#![allow(clippy::disallowed_methods)]

mod conn;
mod data;
mod options;
mod procstat;
mod report;
mod setup;

pub use options::{Credentials, Mode, Options, Transport, USAGE};
pub use report::Report;

use std::io::Write;

use setup::Fleet;
use tern_testkit::EchoPeers;

/// Runs `tern-load` with `args` (without the program name); the exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match options::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("tern-load: {e} (--help for usage)");
            return 2;
        }
    };
    raise_fd_limit();
    match run(&opts) {
        Ok(report) => {
            eprint!("{}", report.human());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", report.json());
            if report.setup_ok == 0 {
                3
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("tern-load: {e}");
            1
        }
    }
}

/// One whole run: peers, setup, data phase, teardown, with /proc samples between the phases.
pub fn run(opts: &Options) -> std::io::Result<Report> {
    let peers = match opts.lab {
        Some(ip) => EchoPeers::start_on(ip.into(), opts.peers)?,
        None => EchoPeers::start(opts.peers)?,
    };
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut fleet = Fleet::new(opts, &peers.addrs, &setup::auth(&opts.credentials, unix))?;
    let mut r = Report::new(opts);
    let pid = opts.server_pid;
    r.rss_before = pid.and_then(procstat::process_rss);
    let cpu0 = pid.and_then(procstat::process_cpu);
    let setup = fleet.setup(opts.mode, opts.setup_concurrency);
    let cpu1 = pid.and_then(procstat::process_cpu);
    r.rss_after_setup = pid.and_then(procstat::process_rss);
    r.set_setup(&setup, delta(cpu0, cpu1));
    if let Some(dir) = &opts.barrier {
        meet(dir)?;
    }
    if opts.duration > 0.0 && setup.ok > 0 {
        let (busy0, gen0) = (procstat::machine_busy(), procstat::own_cpu());
        let stats = data::run(&mut fleet, opts);
        let cpu2 = pid.and_then(procstat::process_cpu);
        let (busy1, gen1) = (procstat::machine_busy(), procstat::own_cpu());
        r.rss_after_data = pid.and_then(procstat::process_rss);
        r.set_data(
            &stats,
            peers.received.load(std::sync::atomic::Ordering::Relaxed),
            delta(cpu1, cpu2),
            gen1 - gen0,
            delta(busy0, busy1),
        );
    }
    if opts.teardown {
        r.dealloc_ok = Some(fleet.teardown());
    }
    r.rss_end = pid.and_then(procstat::process_rss);
    Ok(r)
}

/// Says this generator's setup is done (`ready.PID.N`, N counting runs within the process) and
/// waits for the one who started them all to create `go`: the data phases of several processes
/// then overlap while every allocation of all of them is held.
fn meet(dir: &std::path::Path) -> std::io::Result<()> {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::fs::write(dir.join(format!("ready.{}.{n}", std::process::id())), b"")?;
    while !dir.join("go").exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// 100,000 clients need 100,000 sockets: the soft limit goes up to the hard one.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
