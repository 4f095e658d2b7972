//! Test harness: runs the real `tern` binary on loopback with `listening-port=0`, reads the bound
//! addresses from its log, and stops it by PID; plus STUN helpers and the interop-tool lookup.
// Not every test uses every helper; deadlines for real processes need the real clock (the clock
// ban is for the protocol core).
#![allow(dead_code, clippy::disallowed_methods)]

pub mod turn_client;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use tern_testkit::process::{Listeners, TernProcess, Wanted};

pub mod aiortc;
pub mod browser;
pub mod lab;
pub mod metrics;
pub mod netns;
pub mod stream_client;
pub mod tls;
pub mod uclient;

/// How long the server may take to bind and print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub const USER: &str = "tern-test";
pub const PASSWORD: &str = "tern-test-password";
pub const REALM: &str = "tern.test";

pub fn tern_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tern")
}

/// A running `tern` process (`tern_testkit::process`): its listeners, killed by PID when
/// dropped. A server that does not report its listeners fails the test with its log.
pub struct Server {
    process: TernProcess,
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (reported when `--cert` is among the arguments and TLS is not off).
    pub tls: Vec<SocketAddr>,
}

impl Server {
    /// `tern -n --listening-ip=127.0.0.1 --listening-port=0` with a static user, plus `extra`.
    pub fn start(extra: &[&str]) -> Server {
        let user = format!("--user={USER}:{PASSWORD}");
        let realm = format!("--realm={REALM}");
        let mut args = vec!["-n", "--listening-ip=127.0.0.1", "--listening-port=0"];
        args.push(&user);
        args.push(&realm);
        args.extend_from_slice(extra);
        Server::start_args(&args)
    }

    /// Runs the binary with exactly `args` and waits for both listening lines (or for the one
    /// transport left when `--no-udp`/`--no-tcp` is among them).
    pub fn start_args(args: &[&str]) -> Server {
        Server::spawn(&[], args, &[])
    }

    /// As [`Server::start_args`], with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Server {
        Server::spawn(&[], args, env)
    }

    /// Like `start_args`, run through `wrapper` (e.g. `["prlimit", "--nofile=100:100", "--"]`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Server {
        Server::spawn(wrapper, args, &[])
    }

    fn spawn(wrapper: &[&str], args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Server {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(engine_from_env(args));
        all.extend(fast_path_from_env(args));
        let bin = std::path::Path::new(tern_bin());
        let want = Wanted::from_args(args);
        let process = TernProcess::spawn(bin, wrapper, &all, env, want, START_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        let Listeners { udp, tcp, tls } = process.listeners.clone();
        Server {
            process,
            udp,
            tcp,
            tls,
        }
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp[0]
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp[0]
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.tls[0]
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the process wrote so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The first log line containing `needle`, waiting up to `timeout` for it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.process.wait_for_log(needle, timeout)
    }

    /// Sends `signal` to the server by PID.
    pub fn signal(&self, signal: i32) {
        if let Err(e) = self.process.signal(signal) {
            panic!("{e}");
        }
    }

    /// The exit status if the process ends within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout)
    }
}

/// `--io-engine=$TERN_TEST_ENGINE` (`epoll`, `uring` or `auto`), so the whole suite can run
/// against each engine; nothing when unset or when the test chose an engine itself.
fn engine_from_env(args: &[&str]) -> Option<String> {
    let engine = std::env::var("TERN_TEST_ENGINE").ok()?;
    let chosen = args.iter().any(|a| a.starts_with("--io-engine"));
    (!chosen && !engine.is_empty()).then(|| format!("--io-engine={engine}"))
}

/// `--fast-path=$TERN_TEST_FAST_PATH` (`on`, `auto` or `off`), so the relay and interop tests
/// can run with the kernel fast path (.ci/run runs them so inside a network namespace whose lo
/// forwards, docs/fast-path.md); nothing when unset or when the test chose itself.
fn fast_path_from_env(args: &[&str]) -> Option<String> {
    let mode = std::env::var("TERN_TEST_FAST_PATH").ok()?;
    let chosen = args.iter().any(|a| a.starts_with("--fast-path"));
    (!chosen && !mode.is_empty()).then(|| format!("--fast-path={mode}"))
}

/// An interop tool from `PATH`. Absent: prints `SKIP: <tool> not installed` (straight to the
/// terminal, past the test harness's capture) and returns None; with `TERN_REQUIRE_INTEROP=1`
/// it panics instead.
pub fn interop_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{name} is required (TERN_REQUIRE_INTEROP=1) but not installed");
        }
        let _ = writeln!(io::stderr(), "SKIP: {name} not installed");
    }
    found
}

/// Runs `cmd` to completion, or kills it after `timeout` (some clients retry forever).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            return Err(format!(
                "{cmd:?} did not finish within {timeout:?}; output:\n{}",
                String::from_utf8_lossy(&stdout)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `tern ARGS` to completion (start-up when ARGS is `-c FILE`, or a tool such as
/// `check-config`): whether it succeeded, and its stderr then stdout.
pub fn run_tern(args: &[&str]) -> (bool, String) {
    let out = output_within(Command::new(tern_bin()).args(args), Duration::from_secs(10))
        .expect("tern exits");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

fn read_all<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).expect("random");
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("tern-{tag}-{hex}"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh transaction id (distinct per call within a test run).
pub fn transaction_id() -> TransactionId {
    let mut tid = [0u8; 12];
    getrandom::fill(&mut tid).expect("random transaction id");
    tid
}

/// A Binding request, optionally with FINGERPRINT.
pub fn binding_request(tid: &TransactionId, fingerprint: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        tid,
    )
    .expect("header fits");
    if fingerprint {
        b.add_fingerprint().expect("fingerprint fits");
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// The XOR-MAPPED-ADDRESS of a Binding success response to `tid`; panics on anything else.
pub fn mapped_address(response: &[u8], tid: &TransactionId) -> SocketAddr {
    let msg = Message::parse(response).expect("a valid STUN response");
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.transaction_id(), tid);
    msg.xor_address(attr::XOR_MAPPED_ADDRESS)
        .expect("XOR-MAPPED-ADDRESS present")
        .expect("XOR-MAPPED-ADDRESS well formed")
}

/// Reads one whole STUN message from a stream (header, then the length it announces).
pub fn read_stun(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut msg = vec![0u8; 20];
    stream.read_exact(&mut msg)?;
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    msg.resize(20 + len, 0);
    stream.read_exact(&mut msg[20..])?;
    Ok(msg)
}
