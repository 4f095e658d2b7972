//! `tern probe URL... [--user U --password P | --secret S] [--json]`: checks a STUN/TURN
//! deployment, tern or any other server, from a shell: Binding, Allocate, a relay round trip,
//! TLS, and the security checks an open relay fails (RFC 8489, RFC 8656 §21, RFC 7065 URLs).
// A network probe times real packets and reads the wall clock for certificate expiry and REST
// usernames: the clock ban is for the protocol core.
#![allow(clippy::disallowed_methods)]

mod checks;
mod conn;
mod session;
mod tls;
mod url;

pub use tls::Client as TlsClient;
pub use url::Transport;

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::args::{parse, Parsed, Spec};
use super::{exit_code, rest_credentials, usage_error};
use checks::{UrlReport, Verdict};
use session::Creds;

pub const PROBE_USAGE: &str = "\
Usage: tern probe URL... [-u USER -p PASSWORD | -s SECRET [-u USER]] [--count N]
                  [--timeout SECONDS] [--ca FILE] [--insecure] [--json]
Checks a STUN/TURN server (tern, coturn or any other) at each URL: stun:HOST[:PORT],
turn:HOST[:PORT][?transport=udp|tcp], turns:HOST[:PORT] (ports 3478 and 5349 by default,
IPv6 addresses in brackets). For each: the Binding's mapped address and round trip; an Allocate
with the credentials (relayed address, public or private, lifetime); CreatePermission for
127.0.0.1, 169.254.169.254, 10.0.0.1 and ::ffff:127.0.0.1, which must be refused (no packet is
sent to them); N datagrams through two allocations and back (loss, rtt p50/p99); an Allocate
without credentials and one with a wrong password, which must be refused; for turns: the TLS
version, ALPN, certificate chain, names, expiry and trust.
  -u, --user USER          user name (with --secret: the user part of the REST username)
  -p, --password PASSWORD  password
  -s, --secret SECRET      TURN REST shared secret (static-auth-secret): credentials are derived
                           as tern rest-credentials does
  -n, --count N            datagrams relayed per URL (default 50)
      --timeout SECONDS    how long each request may wait for its answer (default 3)
      --ca FILE            also trust the CA certificates in this PEM file
      --insecure           go on over TLS with an untrusted certificate (reported as a warning)
      --json               one JSON document instead of the table
  -h, --help               this text
Exit status: 0 when every check passes, 1 when one fails or a server cannot be reached,
2 for an unusable command line or URL.
";

const SPECS: &[Spec] = &[
    Spec::value(Some('u'), "user"),
    Spec::value(Some('p'), "password"),
    Spec::value(Some('s'), "secret"),
    Spec::value(Some('n'), "count"),
    Spec::value(None, "timeout"),
    Spec::value(None, "ca"),
    Spec::switch(None, "insecure"),
    Spec::switch(None, "json"),
    Spec::switch(Some('h'), "help"),
];

/// The default number of datagrams relayed per URL.
const COUNT: u32 = 50;
/// The most datagrams one probe relays: a check, not a load test.
const MAX_COUNT: u32 = 10_000;
/// How long a REST username derived from `--secret` stays valid.
const REST_TTL: u64 = 3600;

/// What the command line asks for.
pub struct Options {
    pub creds: Option<Creds>,
    pub count: u32,
    pub timeout: Duration,
    pub ca: Option<PathBuf>,
    pub insecure: bool,
}

/// Runs `tern probe`; `args` excludes the subcommand, `unix_now` is the wall time.
pub fn run_probe(args: &[String], out: &mut dyn Write, err: &mut dyn Write, unix_now: u64) -> i32 {
    let (urls, flags): (Vec<String>, Vec<String>) = split_args(args);
    let parsed = match parse(&flags, SPECS) {
        Ok(p) => p,
        Err(e) => return usage_error(err, &e),
    };
    if parsed.has("help") {
        return exit_code(out.write_all(PROBE_USAGE.as_bytes()));
    }
    let opts = match options(&parsed, unix_now) {
        Ok(o) => o,
        Err(e) => return usage_error(err, &e),
    };
    if urls.is_empty() {
        return usage_error(err, "give at least one stun:, turn: or turns: URL");
    }
    let mut parsed_urls = Vec::with_capacity(urls.len());
    for u in &urls {
        match url::parse(u) {
            Ok(u) => parsed_urls.push(u),
            Err(e) => return usage_error(err, &e.to_string()),
        }
    }
    let reports: Vec<UrlReport> = parsed_urls
        .iter()
        .map(|u| checks::probe(u, &opts, unix_now))
        .collect();
    let passed = reports.iter().all(UrlReport::passed);
    let text = if parsed.has("json") {
        let urls: Vec<Value> = reports.iter().map(json_report).collect();
        json!({"pass": passed, "urls": urls}).to_string() + "\n"
    } else {
        reports.iter().map(table).collect::<Vec<_>>().join("\n")
    };
    match (exit_code(out.write_all(text.as_bytes())), passed) {
        (0, true) => 0,
        _ => 1,
    }
}

/// URLs (arguments with a scheme) apart from flags and their values.
fn split_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut urls = Vec::new();
    let mut flags = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            flags.push(a.clone());
            let long = a.trim_start_matches('-');
            let takes_value = SPECS.iter().any(|s| {
                s.takes_value
                    && (long == s.long || (a.len() == 2 && s.short == long.chars().next()))
            });
            if takes_value {
                flags.extend(it.next().cloned());
            }
        } else {
            urls.push(a.clone());
        }
    }
    (urls, flags)
}

fn options(p: &Parsed, unix_now: u64) -> Result<Options, String> {
    let creds = match (p.get("user"), p.get("password"), p.get("secret")) {
        (_, Some(_), Some(_)) => return Err("give --password or --secret, not both".into()),
        (Some(user), Some(password), None) => Some(Creds {
            username: user.to_owned(),
            password: password.to_owned(),
        }),
        (None, Some(_), None) => return Err("--password needs --user".into()),
        (Some(_), None, None) => return Err("--user needs --password or --secret".into()),
        (user, None, Some(secret)) => {
            let c = rest_credentials(secret, user.unwrap_or(""), REST_TTL, ':', unix_now)?;
            Some(Creds {
                username: c.username,
                password: c.password,
            })
        }
        (None, None, None) => None,
    };
    let count = match p.get("count") {
        None => COUNT,
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_COUNT).contains(n))
            .ok_or_else(|| format!("--count {n:?} is not a number from 1 to {MAX_COUNT}"))?,
    };
    let timeout = match p.get("timeout") {
        None => Duration::from_secs(3),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0 && *t <= 600.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("--timeout {t:?} is not a number of seconds up to 600"))?,
    };
    Ok(Options {
        creds,
        count,
        timeout,
        ca: p.get("ca").map(PathBuf::from),
        insecure: p.has("insecure"),
    })
}

/// The human table for one URL.
fn table(r: &UrlReport) -> String {
    let mut s = match r.server {
        Some(a) => format!("{} ({a} over {})\n", r.url, r.transport.name()),
        None => format!("{} (not resolved)\n", r.url),
    };
    for l in &r.lines {
        let mark = match l.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
            Verdict::Skip => "SKIP",
        };
        let _ = writeln!(s, "  {mark}  {:<22} {}", l.name, l.detail);
    }
    s
}

fn json_report(r: &UrlReport) -> Value {
    let checks: Vec<Value> = r
        .lines
        .iter()
        .map(|l| json!({"name": l.name, "result": l.verdict.name(), "detail": l.detail}))
        .collect();
    let mut v = json!({
        "url": r.url,
        "server": r.server.map(|a| a.to_string()),
        "transport": r.transport.name(),
        "pass": r.passed(),
        "checks": checks,
    });
    if let Value::Object(m) = &mut v {
        m.extend(r.facts.clone());
    }
    v
}
