//! aiortc (Python) running `tests/lab/aiortc_relay.py`: two RTCPeerConnections with a relay-only
//! ICE policy and an echoing data channel, a second WebRTC stack next to Chromium (aioice has its
//! own TURN client). The script prints one JSON line, which [`run`] returns.

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::output_within;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/aiortc_relay.py");
/// The script's own deadline (`--timeout`, seconds) ...
const SCRIPT_TIMEOUT_S: u32 = 30;
/// ... and the hard one, past which the process is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `python3` can import aiortc. When not: prints `SKIP: aiortc not installed (pip
/// install aiortc)` and returns false; with `TERN_REQUIRE_INTEROP=1` it panics instead.
pub fn available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import aiortc"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("aiortc is required (TERN_REQUIRE_INTEROP=1) but not installed");
        }
        // Straight to stderr, past the test harness's capture (as `interop_tool` does).
        let _ = writeln!(
            io::stderr(),
            "SKIP: aiortc not installed (pip install aiortc)"
        );
    }
    found
}

/// Runs the script through `prefix` (e.g. `["ip", "netns", "exec", "lab-client"]`; empty: run
/// directly) with the `turn:`/`turns:` `urls` and credentials, sending `messages` messages, and
/// returns its JSON (`echoes`, `sent`, `local_candidates`, `remote_candidates`, `selected`,
/// `error`). Panics with the whole output when there is no JSON line.
pub fn run(
    prefix: &[&str],
    urls: &[String],
    user: &str,
    password: &str,
    messages: u32,
) -> serde_json::Value {
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("python3");
            c
        }
        None => Command::new("python3"),
    };
    cmd.arg(SCRIPT);
    for url in urls {
        cmd.arg("--url").arg(url);
    }
    cmd.args(["--user", user, "--password", password])
        .arg(format!("--messages={messages}"))
        .arg(format!("--timeout={SCRIPT_TIMEOUT_S}"));
    let out = output_within(&mut cmd, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l.trim())
                .ok()
                .filter(serde_json::Value::is_object)
        })
        .unwrap_or_else(|| {
            panic!(
                "no JSON from {cmd:?} ({}); stdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
