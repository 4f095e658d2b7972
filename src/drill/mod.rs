//! Robustness drills against the real `tern` binary (issue 10): the soak, the overload drill and
//! the fault drills. Driven by `tern-drill` (src/bin/tern-drill.rs); kept out of the library so
//! the core never sees load-generation code.

pub mod cpucap;
pub mod faults;
pub mod fleet;
pub mod overload;
pub mod peers;
pub mod probe;
pub mod proc;
pub mod soak;
pub mod stats;
pub mod wire;

/// The outcome of one drill: `Ok(summary)` prints `PASS`, `Err(reason)` prints `FAIL`.
pub type Outcome = Result<String, String>;

/// The static user every drill server is started with.
pub const USER: &str = "drill";
pub const PASSWORD: &str = "drill-password";
pub const REALM: &str = "drill.test";

/// Raises this process's soft RLIMIT_NOFILE to the hard limit (each allocation holds a client
/// socket); the soft limit in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; on failure the old limit stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// An `Ok` summary starting with this marks a drill that could not run here (printed as SKIP).
pub const SKIPPED: &str = "skipped: ";
