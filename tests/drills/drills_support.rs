//! Runs the drills (the `tern-drill` crate, in this process) against the `tern` binary cargo
//! built for the tests: the drill program is another crate's binary, which a test of this crate
//! cannot name, while the drills' library and this crate's `tern` binary are both at hand.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

/// One drill at a time: each measures latency and CPU, which a second drill beside it (the test
/// harness runs one test per core) would disturb.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `tern-drill --tern <tern> args...`; what it prints (also echoed past the test capture).
pub fn run(args: &[&str]) -> String {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut raw = vec!["--tern".to_owned(), env!("CARGO_BIN_EXE_tern").to_owned()];
    raw.extend(args.iter().map(|a| (*a).to_owned()));
    let mut out = Vec::new();
    if let Err(usage) = tern_drill::cli::run(&raw, &mut out) {
        let _ = writeln!(out, "{usage}");
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let _ = writeln!(std::io::stderr(), "{text}");
    text
}

/// The drill printed `PASS name` (or `SKIP name`, which is reported, not failed).
pub fn assert_pass(out: &str, name: &str) {
    if let Some(line) = out
        .lines()
        .find(|l| l.starts_with(&format!("SKIP {name}:")))
    {
        let _ = writeln!(std::io::stderr(), "{line}");
        return;
    }
    assert!(
        out.lines().any(|l| l.starts_with(&format!("PASS {name}:"))),
        "drill {name} did not pass:\n{out}"
    );
}
