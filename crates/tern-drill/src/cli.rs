//! The `tern-drill` command line: which drills to run, with what options, and a line per drill,
//! `PASS name: summary`, `SKIP name: why` or `FAIL name: reason`. See docs/robustness.md.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tern::tools::args::{self, Spec};

use super::{faults, lookup_flood, overload, slowloris, soak, Outcome, SKIPPED};

const USAGE: &str = "usage: tern-drill [--tern PATH] [--ci] [options] DRILL...
drills: soak overload overload-epoll port-range descriptors restart disk-full
        slowloris lookup-flood faults (the four fault drills) all (both overloads and the fault
        drills)
        overload runs tern's default engine (io_uring where the kernel allows it), overload-epoll
        the portable one
soak:     --allocations N (10000) --duration S (600) --warmup S (60) --refresh S (240, re-binds the channel too)
          --rate PPS per allocation (1) --sources N client IPs 127.0.0.2.. (8) --rss-pct P (5)
overload: --overload-allocations N (64) --capacity S (5) --overload-duration S (60)
          --factor F (2) --cpu-percent P tern's CPU cap (25)
          --control-p99-ms MS (3000) --data-p99-ms MS (250) --rss-growth-mib M (64)
          --overload-tern-arg ARG (repeatable: e.g. --io-engine=epoll)
slowloris: --slowloris-connections N (5000) --slowloris-deadline S (10: max-allocate-timeout and
          stream-first-message-timeout) --slowloris-idle S (10, the idle probe)
lookup-flood: --flood-rate N random usernames/s (20000) --flood-sources N (1000)
          --flood-duration S (60) --flood-users N real users (200) --flood-p99-ms MS (100)
--ci: short variants (soak 1000 allocations for 20 s, refresh every 6 s; overload 8 s;
      slowloris 300 connections, 2 s deadline, Allocate p99 bound at least 50 ms;
      lookup-flood 5000 names/s from 250 sources for 8 s, 50 real users)";

struct Args {
    bin: PathBuf,
    drills: Vec<String>,
    soak: soak::SoakOpts,
    overload: overload::OverloadOpts,
    slowloris: slowloris::SlowlorisOpts,
    lookup_flood: lookup_flood::LookupFloodOpts,
}

/// Every flag `tern-drill` takes (read with the tools' flag reader, so `--flag=value` works too).
const SPECS: &[Spec] = &[
    Spec::switch(None, "ci"),
    Spec::switch(Some('h'), "help"),
    Spec::value(None, "tern"),
    Spec::value(None, "allocations"),
    Spec::value(None, "duration"),
    Spec::value(None, "warmup"),
    Spec::value(None, "refresh"),
    Spec::value(None, "rate"),
    Spec::value(None, "sources"),
    Spec::value(None, "rss-pct"),
    Spec::value(None, "overload-allocations"),
    Spec::value(None, "capacity"),
    Spec::value(None, "overload-duration"),
    Spec::value(None, "factor"),
    Spec::value(None, "control-p99-ms"),
    Spec::value(None, "data-p99-ms"),
    Spec::value(None, "cpu-percent"),
    Spec::value(None, "rss-growth-mib"),
    Spec::value(None, "overload-tern-arg"),
    Spec::value(None, "slowloris-connections"),
    Spec::value(None, "slowloris-deadline"),
    Spec::value(None, "slowloris-idle"),
    Spec::value(None, "flood-rate"),
    Spec::value(None, "flood-sources"),
    Spec::value(None, "flood-duration"),
    Spec::value(None, "flood-users"),
    Spec::value(None, "flood-p99-ms"),
];

fn parse(raw: &[String]) -> Result<Args, String> {
    let (parsed, drills) =
        args::parse_with_operands(raw, SPECS).map_err(|e| format!("{e}\n{USAGE}"))?;
    let mut a = defaults();
    if parsed.has("ci") {
        ci(&mut a);
    }
    for (flag, value) in parsed.iter() {
        apply(&mut a, flag, value)?;
    }
    a.drills = drills;
    if a.drills.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// The long drills' settings (scripts/drills.sh).
fn defaults() -> Args {
    let bin = super::proc::default_binary();
    Args {
        soak: soak::SoakOpts {
            bin: bin.clone(),
            allocations: 10_000,
            duration: Duration::from_secs(600),
            warmup: Duration::from_secs(60),
            refresh_every: Duration::from_secs(240),
            rate: 1.0,
            sources: 8,
            rss_tolerance_pct: 5.0,
            stall: Duration::from_secs(10),
        },
        overload: overload::OverloadOpts {
            bin: bin.clone(),
            allocations: 64,
            capacity_run: Duration::from_secs(5),
            duration: Duration::from_secs(60),
            factor: 2.0,
            window: 8,
            control_p99: Duration::from_millis(3000),
            data_p99: Duration::from_millis(250),
            cpu_percent: 25,
            rss_growth_kib: 64 * 1024,
            tern_args: Vec::new(),
        },
        slowloris: slowloris::SlowlorisOpts {
            bin: bin.clone(),
            connections: 5000,
            deadline: 10,
            idle: Duration::from_secs(10),
            rss_per_connection: 4 * 1024,
            p99_floor: Duration::from_millis(10),
        },
        lookup_flood: lookup_flood::LookupFloodOpts {
            bin: bin.clone(),
            rate: 20_000,
            sources: 1000,
            duration: Duration::from_secs(60),
            users: 200,
            p99: Duration::from_millis(100),
        },
        bin,
        drills: Vec::new(),
    }
}

/// `--ci`: the short variants the tests run; flags after it still apply.
fn ci(a: &mut Args) {
    let s = &mut a.soak;
    (s.allocations, s.duration, s.warmup, s.refresh_every) = (1000, secs(20), secs(5), secs(6));
    let o = &mut a.overload;
    (o.capacity_run, o.duration) = (secs(3), secs(8));
    (o.control_p99, o.data_p99) = (Duration::from_millis(1000), Duration::from_millis(1000));
    let l = &mut a.slowloris;
    (l.connections, l.deadline, l.idle) = (300, 2, secs(3));
    l.p99_floor = Duration::from_millis(50);
    let f = &mut a.lookup_flood;
    (f.rate, f.sources, f.duration, f.users) = (5000, 250, secs(8), 50);
}

/// One flag's value into `a`.
fn apply(a: &mut Args, flag: &str, value: &str) -> Result<(), String> {
    match flag {
        "ci" => {}
        "help" => return Err(USAGE.into()),
        "tern" => {
            let p = PathBuf::from(value);
            (a.bin, a.soak.bin, a.overload.bin) = (p.clone(), p.clone(), p.clone());
            a.slowloris.bin = p.clone();
            a.lookup_flood.bin = p;
        }
        "allocations" => a.soak.allocations = num(value)?,
        "duration" => a.soak.duration = secs(num(value)?),
        "warmup" => a.soak.warmup = secs(num(value)?),
        "refresh" => a.soak.refresh_every = secs(num(value)?),
        "rate" => a.soak.rate = num(value)?,
        "sources" => a.soak.sources = num(value)?,
        "rss-pct" => a.soak.rss_tolerance_pct = num(value)?,
        "overload-allocations" => a.overload.allocations = num(value)?,
        "capacity" => a.overload.capacity_run = secs(num(value)?),
        "overload-duration" => a.overload.duration = secs(num(value)?),
        "factor" => a.overload.factor = num(value)?,
        "control-p99-ms" => a.overload.control_p99 = millis(num(value)?),
        "data-p99-ms" => a.overload.data_p99 = millis(num(value)?),
        "cpu-percent" => a.overload.cpu_percent = num(value)?,
        "rss-growth-mib" => a.overload.rss_growth_kib = num::<u64>(value)? * 1024,
        "overload-tern-arg" => a.overload.tern_args.push(value.to_owned()),
        "slowloris-connections" => a.slowloris.connections = num(value)?,
        "slowloris-deadline" => a.slowloris.deadline = num(value)?,
        "slowloris-idle" => a.slowloris.idle = secs(num(value)?),
        "flood-rate" => a.lookup_flood.rate = num(value)?,
        "flood-sources" => a.lookup_flood.sources = num(value)?,
        "flood-duration" => a.lookup_flood.duration = secs(num(value)?),
        "flood-users" => a.lookup_flood.users = num(value)?,
        "flood-p99-ms" => a.lookup_flood.p99 = millis(num(value)?),
        other => return Err(format!("--{other} is not handled\n{USAGE}")),
    }
    Ok(())
}

fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("not a number: {v}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Runs the drills `raw` names (the arguments without the program name), writing a line per
/// drill to `out` as each ends; whether all passed, or Err(usage) for arguments it cannot run.
pub fn run(raw: &[String], out: &mut dyn Write) -> Result<bool, String> {
    let args = parse(raw)?;
    let mut names = Vec::new();
    for d in &args.drills {
        match d.as_str() {
            "faults" => names.extend(["port-range", "descriptors", "restart", "disk-full"]),
            "all" => names.extend([
                "overload",
                "overload-epoll",
                "port-range",
                "descriptors",
                "restart",
                "disk-full",
            ]),
            other => names.push(other),
        }
    }
    let mut failed = false;
    for name in names {
        let outcome: Outcome = match name {
            "soak" => soak::run(&args.soak),
            "overload" => overload::run(&args.overload),
            "overload-epoll" => overload::run(&overload::OverloadOpts {
                tern_args: [&args.overload.tern_args[..], &["--io-engine=epoll".into()]].concat(),
                ..args.overload.clone()
            }),
            "port-range" => faults::port_range(&args.bin),
            "descriptors" => faults::descriptors(&args.bin),
            "restart" => faults::restart(&args.bin),
            "disk-full" => faults::disk_full(&args.bin),
            "slowloris" => slowloris::run(&args.slowloris),
            "lookup-flood" => lookup_flood::run(&args.lookup_flood),
            other => Err(format!("no such drill\n{USAGE}")).map_err(|e| format!("{other}: {e}")),
        };
        match outcome {
            Ok(s) => match s.strip_prefix(SKIPPED) {
                Some(why) => writeln!(out, "SKIP {name}: {why}"),
                None => writeln!(out, "PASS {name}: {s}"),
            },
            Err(reason) => {
                failed = true;
                writeln!(out, "FAIL {name}: {reason}")
            }
        }
        .map_err(|e| format!("cannot write the result: {e}"))?;
    }
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ci_variants_then_flags_in_either_form_then_the_drills() {
        let a = parse(&strings(&[
            "--ci",
            "--allocations=50",
            "--overload-tern-arg",
            "--io-engine=epoll",
            "--tern",
            "/bin/t",
            "soak",
            "overload",
        ]))
        .expect("parses");
        assert_eq!(a.drills, ["soak", "overload"]);
        assert_eq!(a.soak.allocations, 50, "a flag after --ci wins");
        assert_eq!(a.soak.duration, secs(20), "--ci's soak");
        assert_eq!(a.overload.tern_args, ["--io-engine=epoll"]);
        assert_eq!(a.lookup_flood.bin, PathBuf::from("/bin/t"));
    }

    #[test]
    fn no_drill_an_unknown_flag_or_a_bad_number_is_a_usage_error() {
        assert_eq!(parse(&strings(&["--ci"])).err().as_deref(), Some(USAGE));
        let unknown = parse(&strings(&["--bogus", "soak"]))
            .err()
            .unwrap_or_default();
        assert!(unknown.starts_with("unknown option --bogus\n"), "{unknown}");
        let bad = parse(&strings(&["--rate", "fast", "soak"])).err();
        assert_eq!(bad.as_deref(), Some("not a number: fast"));
    }
}
