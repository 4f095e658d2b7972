//! coturn's `turnutils_uclient` against the real binary, with a `turnutils_peer` echo peer: runs
//! a client and reads its totals (it exits 0 even when requests fail, so its output is judged).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{interop_tool, output_within};

/// How long one uclient run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the echo peer may take to answer its first probe.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// `turnutils_peer` echoing on a free loopback port, killed by PID on drop.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    /// Starts the peer and waits until it echoes a probe. None when the tool is absent.
    pub fn start() -> Option<Peer> {
        let tool = interop_tool("turnutils_peer")?;
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new(&tool)
                .args(["-L", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn turnutils_peer");
            let peer = Peer { child, port };
            if peer.echoes() {
                return Some(peer);
            }
        }
        panic!("turnutils_peer never echoed a probe");
    }

    /// Sends probes until one comes back (the peer is up and the port is ours).
    fn echoes(&self) -> bool {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let deadline = Instant::now() + PEER_TIMEOUT;
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            let _ = probe.send_to(b"tern-probe", ("127.0.0.1", self.port));
            if let Ok((n, _)) = probe.recv_from(&mut buf) {
                return buf.get(..n) == Some(&b"tern-probe"[..]);
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `turnutils_uclient` binary, or None (with the skip notice) when absent.
pub fn tool() -> Option<PathBuf> {
    interop_tool("turnutils_uclient")
}

/// Runs uclient against `127.0.0.1:server_port` with the echo peer `127.0.0.1:peer_port` and
/// `args`; returns stdout and stderr together.
pub fn run(tool: &Path, server_port: u16, peer_port: u16, args: &[&str]) -> String {
    let (server_port, peer_port) = (server_port.to_string(), peer_port.to_string());
    let mut all = vec!["-e", "127.0.0.1", "-r", &peer_port, "-p", &server_port];
    all.extend_from_slice(args);
    all.push("127.0.0.1");
    let out =
        output_within(Command::new(tool).args(&all), RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `(tot_send_msgs, tot_recv_msgs)` from the final totals line.
pub fn totals(text: &str) -> Option<(u64, u64)> {
    let line = text
        .lines()
        .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
    let count = |key: &str| -> Option<u64> {
        line.split(key)
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((count("tot_send_msgs=")?, count("tot_recv_msgs=")?))
}

/// Whether uclient reported a failed request or transport error (`error 403 (Forbidden)`, ...).
pub fn reported_error(text: &str) -> bool {
    text.to_ascii_lowercase().contains("error")
}
