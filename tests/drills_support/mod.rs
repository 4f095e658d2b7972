//! Runs `tern-drill` (the drill program) against the `tern` binary cargo built for the tests.

use std::io::Write;
use std::process::Command;

/// `tern-drill --tern <tern> args...`; its stdout (also echoed past the test capture).
pub fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tern-drill"))
        .arg("--tern")
        .arg(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .expect("run tern-drill");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
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
