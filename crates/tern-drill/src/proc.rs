//! The `tern` process a drill runs against (`tern_testkit::process`): started with a static
//! user on loopback, UDP only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use tern_testkit::process::rss_kib;
use tern_testkit::process::{TernProcess, Wanted};

use super::{PASSWORD, REALM, USER};

/// How long a start may take before the drill gives up (a loaded CI machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `tern` binary: `$TERN_BIN`, else the `tern` next to this program.
pub fn default_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TERN_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("tern")))
        .unwrap_or_else(|| PathBuf::from("tern"))
}

/// The server a drill runs against, with its UDP listener.
pub struct Tern {
    process: TernProcess,
    pub udp: SocketAddr,
    /// When the process was spawned (for the restart drill's exec-to-answer time).
    pub spawned: Instant,
}

impl Tern {
    /// `tern -n --listening-ip=127.0.0.1 --allow-loopback-peers` with the drill user, then
    /// `extra` (which may set `--listening-port`; port 0 otherwise), run through `wrapper`.
    pub fn start(bin: &Path, wrapper: &[&str], extra: &[String]) -> Result<Tern, String> {
        let mut args: Vec<String> = [
            "-n",
            "--listening-ip=127.0.0.1",
            "--allow-loopback-peers",
            "--no-tcp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user={USER}:{PASSWORD}"));
        args.push(format!("--realm={REALM}"));
        if !extra.iter().any(|a| a.starts_with("--listening-port")) {
            args.push("--listening-port=0".into());
        }
        args.extend(extra.iter().cloned());
        let want = Wanted {
            udp: true,
            tcp: false,
            tls: false,
        };
        let process = TernProcess::spawn(bin, wrapper, &args, &[], want, START_TIMEOUT)?;
        let udp = process.listeners.udp[0];
        let spawned = process.spawned;
        Ok(Tern {
            process,
            udp,
            spawned,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        self.process.alive()
    }

    /// Resident set size in KiB (VmRSS), None once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        self.process.rss_kib()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }
}

/// The allocation ceiling tern announced from its descriptor limit, if it did.
pub fn allocation_ceiling(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("allocations ("))?;
    let after = line.split("at most ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for a server that must restart on it).
pub fn free_udp_port() -> Result<u16, String> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("probe a free port: {e}"))
}
