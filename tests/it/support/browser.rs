//! Headless Chromium driving `tests/browser/relay.html`: two RTCPeerConnections with
//! `iceTransportPolicy: 'relay'` (RFC 8656 through a real WebRTC stack). A tiny HTTP server on
//! loopback serves the page and takes the JSON the page POSTs to `/result`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use super::interop_tool;

const PAGE: &str = include_str!("../../browser/relay.html");
/// How long Chromium may take to start, run the page and report.
const RESULT_TIMEOUT: Duration = Duration::from_secs(120);
/// A connection that sends nothing (Chromium preconnects) is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The query string of `relay.html` (values are percent-encoded here).
pub struct Page<'a> {
    /// `turn:`/`turns:` URLs, joined with commas for the page.
    pub urls: &'a [String],
    pub user: &'a str,
    pub pass: &'a str,
    /// Messages sent over the data channel.
    pub messages: u32,
    /// How long the page waits for the echoes before reporting `echoes: -1`.
    pub timeout_ms: u32,
}

/// Runs the page in headless Chromium and returns what it reported for the page's one group of
/// URLs, or None (with the skip notice) when Chromium is not installed.
pub fn run_page(page: &Page<'_>) -> Option<serde_json::Value> {
    let mut runs = run_groups(page, &[page.urls.to_vec()])?;
    Some(runs.swap_remove(0))
}

/// Runs one relay-only pair per group of URLs in the same page at the same time (one browser
/// start for several transports); `page.urls` is ignored. One result per group, in order.
pub fn run_groups(page: &Page<'_>, groups: &[Vec<String>]) -> Option<Vec<serde_json::Value>> {
    let chromium = interop_tool("chromium")?;
    let http = PageServer::start();
    let turn = groups
        .iter()
        .map(|g| g.join(","))
        .collect::<Vec<_>>()
        .join("|");
    let query = [
        ("turn", turn),
        ("user", page.user.to_string()),
        ("pass", page.pass.to_string()),
        ("n", page.messages.to_string()),
        ("timeout", page.timeout_ms.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let url = format!("http://127.0.0.1:{}/relay.html?{query}", http.port);
    let browser = Browser::start(&chromium, &url);
    let result = http.result.recv_timeout(RESULT_TIMEOUT);
    drop(browser);
    let body =
        result.unwrap_or_else(|_| panic!("no result from the page within {RESULT_TIMEOUT:?}"));
    let value: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("result {body:?}: {e}"));
    let runs = value["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs in the page's result: {body}"));
    assert_eq!(runs.len(), groups.len(), "{body}");
    Some(runs.clone())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Chromium in its own process group with a fresh profile; the group is killed on drop.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Browser {
    fn start(chromium: &PathBuf, url: &str) -> Browser {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "tern-chromium-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromium");
        Browser { child, profile }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this harness created for Chromium (its pid).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Serves the page and forwards each POST /result body; stops accepting on drop.
struct PageServer {
    port: u16,
    result: mpsc::Receiver<String>,
    stop: Arc<AtomicBool>,
}

impl PageServer {
    fn start() -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        let port = listener.local_addr().expect("local addr").port();
        let (tx, result) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let tx = tx.clone();
                thread::spawn(move || {
                    let _ = serve(conn, &tx);
                });
            }
        });
        PageServer { port, result, stop }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One HTTP/1.1 exchange: GET /relay.html, POST /result, 404 for anything else.
fn serve(conn: TcpStream, results: &mpsc::Sender<String>) -> io::Result<()> {
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, reply) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/relay.html") => ("200 OK", "text/html; charset=utf-8", PAGE),
        ("POST", "/result") => {
            let _ = results.send(String::from_utf8_lossy(&body).into_owned());
            ("200 OK", "text/plain", "ok")
        }
        _ => ("404 Not Found", "text/plain", "not found"),
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )
}
