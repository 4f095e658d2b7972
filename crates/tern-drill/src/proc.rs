//! The `tern` process under test: started with a static user on loopback, its UDP listener read
//! from the `listening on udp ...` line, its RSS read from /proc/PID/status, stopped by PID.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

pub struct Tern {
    child: Child,
    pub udp: SocketAddr,
    log: Arc<Mutex<String>>,
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
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let spawned = Instant::now();
        let mut child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            collect(out, &log, Some(tx));
        }
        if let Some(err) = child.stderr.take() {
            collect(err, &log, None);
        }
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(udp) => Ok(Tern {
                child,
                udp,
                log,
                spawned,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let text = log.lock().map(|l| l.clone()).unwrap_or_default();
                Err(format!(
                    "tern did not listen (exit {status:?}); log:\n{text}"
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size in KiB (VmRSS), None once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The allocation ceiling tern announced from its descriptor limit, if it did.
pub fn allocation_ceiling(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("allocations ("))?;
    let after = line.split("at most ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

fn collect<R: Read + Send + 'static>(
    pipe: R,
    log: &Arc<Mutex<String>>,
    listening: Option<mpsc::Sender<SocketAddr>>,
) {
    let log = Arc::clone(log);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let (Some(tx), Some(rest)) = (&listening, line.split("listening on udp ").nth(1)) {
                if let Some(addr) = rest.split_whitespace().next().and_then(|a| a.parse().ok()) {
                    let _ = tx.send(addr);
                }
            }
            if let Ok(mut l) = log.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for a server that must restart on it).
pub fn free_udp_port() -> Result<u16, String> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("probe a free port: {e}"))
}
