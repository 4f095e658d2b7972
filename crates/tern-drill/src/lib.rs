//! Robustness drills against the real `tern` binary (issue 10): the soak, the overload drill,
//! the fault drills, and the slowloris and lookup-flood drills (issue 18). Driven by `tern-drill` (this crate's
//! binary) and, in process, by tern's drill tests (`run`); a crate of its own so the server
//! never links load-generation code.
// Drills time real packets and processes: the clock ban is for the protocol core.
#![allow(clippy::disallowed_methods)]

pub mod cli;
pub mod cpucap;
pub mod faults;
pub mod fleet;
pub mod lookup_flood;
pub mod overload;
pub mod probe;
pub mod proc;
pub mod slowloris;
pub mod soak;

/// The outcome of one drill: `Ok(summary)` prints `PASS`, `Err(reason)` prints `FAIL`.
pub type Outcome = Result<String, String>;

/// The static user every drill server is started with.
pub const USER: &str = "drill";
pub const PASSWORD: &str = "drill-password";
pub const REALM: &str = "drill.test";

/// Raises this process's soft RLIMIT_NOFILE to the hard limit (each allocation holds a client
/// socket); the soft limit in force (1024, the usual default, if it cannot be read).
pub fn raise_nofile() -> u64 {
    tern::engine::raise_nofile().unwrap_or(1024)
}

/// An `Ok` summary starting with this marks a drill that could not run here (printed as SKIP).
pub const SKIPPED: &str = "skipped: ";
