//! The `tern` binary under test: spawned (through a wrapper such as `prlimit` or a CPU cap when
//! asked), its output collected line by line, its listeners read from its `listening on <udp|tcp|
//! tls> ADDR` lines, and stopped by its PID, never by name. The integration tests and the drills
//! both start the server through this.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The listeners a start waits for (a transport the arguments turned off is not awaited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub udp: bool,
    pub tcp: bool,
    pub tls: bool,
}

impl Wanted {
    /// What `args` leave on: UDP and TCP unless `--no-udp`/`--no-tcp`, TLS with `--cert` and
    /// without `--no-tls`.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Wanted {
        let has = |flag: &str| args.iter().any(|a| a.as_ref() == flag);
        Wanted {
            udp: !has("--no-udp"),
            tcp: !has("--no-tcp"),
            tls: !has("--no-tls") && args.iter().any(|a| a.as_ref().starts_with("--cert")),
        }
    }
}

/// The addresses the process reported, in the order it reported them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listeners {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
}

/// A running `tern`; killed by PID and reaped when dropped.
pub struct TernProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    pub listeners: Listeners,
    /// When the process was spawned (a restart's exec-to-answer time).
    pub spawned: Instant,
}

impl TernProcess {
    /// Runs `bin` with `args` (through `wrapper` when not empty: `wrapper[0] wrapper[1..] bin
    /// args`) and waits up to `timeout` for the listeners `want` names. Err, with the log, when
    /// they do not come; the process is gone then.
    pub fn spawn(
        bin: &Path,
        wrapper: &[&str],
        args: &[String],
        env: &[(&str, &OsStr)],
        want: Wanted,
        timeout: Duration,
    ) -> Result<TernProcess, String> {
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
            .args(args)
            .envs(env.iter().copied())
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
        let mut process = TernProcess {
            child,
            log,
            listeners: Listeners::default(),
            spawned,
        };
        let deadline = spawned + timeout;
        while !process.has(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((Proto::Udp, addr)) => process.listeners.udp.push(addr),
                Ok((Proto::Tcp, addr)) => process.listeners.tcp.push(addr),
                Ok((Proto::Tls, addr)) => process.listeners.tls.push(addr),
                Err(_) => {
                    process.kill9();
                    let status = process.child.try_wait().ok().flatten();
                    return Err(format!(
                        "tern did not report its listeners (exit status {status:?}); log:\n{}",
                        process.log()
                    ));
                }
            }
        }
        Ok(process)
    }

    fn has(&self, want: Wanted) -> bool {
        let l = &self.listeners;
        (!want.udp || !l.udp.is_empty())
            && (!want.tcp || !l.tcp.is_empty())
            && (!want.tls || !l.tls.is_empty())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The first log line containing `needle`, waiting up to `timeout` for it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process by PID.
    pub fn signal(&self, signal: i32) -> Result<(), String> {
        let pid = i32::try_from(self.pid()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) on the PID of a child this process started and has not reaped.
        match unsafe { libc::kill(pid, signal) } {
            0 => Ok(()),
            _ => Err(format!(
                "kill({pid}, {signal}): {}",
                std::io::Error::last_os_error()
            )),
        }
    }

    /// The exit status if the process ends within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Resident set size in KiB (VmRSS), None once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }
}

impl Drop for TernProcess {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
    Tls,
}

/// Copies a pipe into the shared log line by line; on stdout, reports listening lines.
fn collect<R: Read + Send + 'static>(
    pipe: R,
    log: &Arc<Mutex<String>>,
    listening: Option<mpsc::Sender<(Proto, SocketAddr)>>,
) {
    let log = Arc::clone(log);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &listening {
                if let Some(found) = listening_line(&line) {
                    let _ = tx.send(found);
                }
            }
            if let Ok(mut l) = log.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
}

fn listening_line(line: &str) -> Option<(Proto, SocketAddr)> {
    for (marker, proto) in [
        ("listening on udp ", Proto::Udp),
        ("listening on tcp ", Proto::Tcp),
        ("listening on tls ", Proto::Tls),
    ] {
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest.split_whitespace().next()?.parse().ok()?;
            return Some((proto, addr));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_name_the_transport_and_address() {
        let line = "2026-12-03T17:00:00Z INFO listening on tcp 127.0.0.1:41234";
        assert_eq!(
            listening_line(line),
            Some((Proto::Tcp, "127.0.0.1:41234".parse().unwrap()))
        );
        let v6 = "INFO listening on udp [::1]:3478 (shard 0)";
        assert_eq!(
            listening_line(v6),
            Some((Proto::Udp, "[::1]:3478".parse().unwrap()))
        );
        assert_eq!(listening_line("INFO I/O engine: io_uring"), None);
    }

    #[test]
    fn wanted_follows_the_arguments() {
        let all = Wanted::from_args(&["-n", "--cert=c.pem"]);
        assert_eq!((all.udp, all.tcp, all.tls), (true, true, true));
        let tls_off = Wanted::from_args(&["--cert=c.pem", "--no-tls", "--no-tcp"]);
        assert_eq!(
            (tls_off.udp, tls_off.tcp, tls_off.tls),
            (true, false, false)
        );
    }
}
