//! `tern-load` options: what to load a TURN server with, read from the command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tern::tools::args::{self, Spec};

/// How the clients reach the server; the relay leg to the peers is UDP in every case.
pub use tern::tools::Transport;

pub const USAGE: &str = "\
tern-load: a TURN (RFC 8656) load generator for loopback benchmarks

usage: tern-load --server ADDR (--user U --pass P | --secret S [--user U]) [options]

  --server ADDR[,ADDR]   the TURN server (loopback, e.g. 127.0.0.1:3478); with several
                         addresses client i uses address i mod n (relay IPs follow them)
  --lab IP               in a lab of network namespaces (scripts/bench-lab.sh): clients and
                         echo peers on IP, and servers on documentation addresses (RFC 5737:
                         192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) as well as loopback
  --user U --pass P      long-term credentials
  --secret S             TURN REST shared secret (username <expiry>:U, U defaults to tern-load)
  --transport T          udp, tcp or tls: how clients reach the server (udp); tcp and tls
                         give every client its own connection, ChannelData padded to 4 bytes
                         (RFC 8656 §12.5); tls verifies no certificate (benchmarks use
                         self-signed ones); the relay leg to the echo peers is UDP in all
  --allocations N        clients, one allocation each (100)
  --mode channel|send    ChannelData or Send/Data indications (channel)
  --size BYTES           payload per packet, at least 24 (160)
  --rate PPS             total packets per second from all clients; 0 = closed loop (0)
  --window N             closed loop: packets in flight per client (4)
  --duration S           data phase in seconds; 0 = setup and teardown only (10)
  --peers N              echo peers on 127.0.0.1 (4)
  --setup-concurrency N  clients in setup at the same time (64)
  --client-ips N         spread UDP clients over 127.0.1.1..127.0.1.N (default: 1 per 20000)
  --server-pid PID       report the server's CPU and RSS (from /proc)
  --label TEXT           a name for this run in the JSON line
  --barrier DIR          after setup, create DIR/ready.PID.N and wait for DIR/go before the
                         data phase (several generators, one common data phase)
  --no-teardown          leave the allocations to expire
  --help

A human summary goes to stderr, one JSON line with every figure to stdout. Exit code 3 when no
client completed setup, 2 on a usage error.
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Channel,
    Send,
}

#[derive(Clone, Debug)]
pub enum Credentials {
    LongTerm { user: String, pass: String },
    Rest { secret: String, user: String },
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Client `i` talks to `servers[i % len]` (never empty).
    pub servers: Vec<SocketAddr>,
    pub credentials: Credentials,
    pub transport: Transport,
    pub allocations: usize,
    pub mode: Mode,
    pub size: usize,
    pub rate: u64,
    pub window: usize,
    pub duration: f64,
    pub peers: usize,
    pub setup_concurrency: usize,
    pub client_ips: usize,
    pub server_pid: Option<u32>,
    /// `--lab`: the address of the clients and echo peers (None: loopback).
    pub lab: Option<Ipv4Addr>,
    pub label: String,
    pub teardown: bool,
    /// Directory where generators started together meet between setup and data phase.
    pub barrier: Option<std::path::PathBuf>,
}

/// The payload's own header (magic, client, sequence, send time).
pub const MIN_SIZE: usize = 24;
/// Clients per client IP by default (the ephemeral port range holds about 28000).
const CLIENTS_PER_IP: usize = 20_000;

const SPECS: &[Spec] = &[
    Spec::value(None, "server"),
    Spec::value(None, "user"),
    Spec::value(None, "pass"),
    Spec::value(None, "secret"),
    Spec::value(None, "transport"),
    Spec::value(None, "allocations"),
    Spec::value(None, "mode"),
    Spec::value(None, "size"),
    Spec::value(None, "rate"),
    Spec::value(None, "window"),
    Spec::value(None, "duration"),
    Spec::value(None, "peers"),
    Spec::value(None, "setup-concurrency"),
    Spec::value(None, "client-ips"),
    Spec::value(None, "server-pid"),
    Spec::value(None, "lab"),
    Spec::value(None, "label"),
    Spec::value(None, "barrier"),
    Spec::switch(None, "no-teardown"),
    Spec::switch(Some('h'), "help"),
];

/// Ok(None) when `--help` was asked for.
pub fn parse(argv: &[String]) -> Result<Option<Options>, String> {
    let p = args::parse(argv, SPECS)?;
    if p.has("help") {
        return Ok(None);
    }
    let servers = p
        .get("server")
        .ok_or("--server is required")?
        .split(',')
        .map(|a| a.parse().map_err(|e| format!("--server {a}: {e}")))
        .collect::<Result<Vec<SocketAddr>, String>>()?;
    let lab = p
        .get("lab")
        .map(|v| match v.parse::<Ipv4Addr>() {
            Ok(ip) if is_documentation(IpAddr::V4(ip)) => Ok(ip),
            _ => Err(format!(
                "--lab {v}: not an IPv4 documentation address (RFC 5737)"
            )),
        })
        .transpose()?;
    let allowed = |ip: IpAddr| is_loopback(ip) || (lab.is_some() && is_documentation(ip));
    if !servers.iter().all(|s| allowed(s.ip())) {
        return Err(
            "--server must be loopback addresses (or, with --lab, documentation \
             addresses): tern-load never loads a real host"
                .into(),
        );
    }
    let credentials = match (p.get("secret"), p.get("user"), p.get("pass")) {
        (Some(secret), user, _) => Credentials::Rest {
            secret: secret.into(),
            user: user.unwrap_or("tern-load").into(),
        },
        (None, Some(user), Some(pass)) => Credentials::LongTerm {
            user: user.into(),
            pass: pass.into(),
        },
        _ => return Err("give --user and --pass, or --secret".into()),
    };
    let num = |name: &str, default: u64| -> Result<u64, String> {
        p.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("--{name}: {e}"))
        })
    };
    let allocations = num("allocations", 100)? as usize;
    let mode = match p.get("mode").unwrap_or("channel") {
        "channel" => Mode::Channel,
        "send" => Mode::Send,
        other => return Err(format!("--mode: {other:?} is not channel or send")),
    };
    let transport = match p.get("transport").unwrap_or("udp") {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        other => return Err(format!("--transport: {other:?} is not udp, tcp or tls")),
    };
    let size = num("size", 160)? as usize;
    if !(MIN_SIZE..=60_000).contains(&size) {
        return Err(format!("--size must be {MIN_SIZE}..=60000"));
    }
    let duration: f64 = p.get("duration").map_or(Ok(10.0), |v| {
        v.parse().map_err(|e| format!("--duration: {e}"))
    })?;
    let default_ips = allocations.div_ceil(CLIENTS_PER_IP).max(1) as u64;
    Ok(Some(Options {
        servers,
        credentials,
        transport,
        allocations: allocations.max(1),
        mode,
        size,
        rate: num("rate", 0)?,
        window: num("window", 4)?.max(1) as usize,
        duration: duration.max(0.0),
        peers: num("peers", 4)?.max(1) as usize,
        setup_concurrency: num("setup-concurrency", 64)?.max(1) as usize,
        client_ips: num("client-ips", default_ips)?.clamp(1, 254) as usize,
        server_pid: p
            .get("server-pid")
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("--server-pid: {e}"))?,
        lab,
        label: p.get("label").unwrap_or("").into(),
        teardown: !p.has("no-teardown"),
        barrier: p.get("barrier").map(Into::into),
    }))
}

/// The IPv4 documentation ranges (RFC 5737), which no real host holds: the lab's namespaces.
fn is_documentation(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(
            v4.octets(),
            [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]
        ),
        IpAddr::V6(_) => false,
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn documentation_servers_only_in_a_lab() {
        let lab = |server: &str, lab: &str| {
            let mut a = vec![format!("--server={server}"), "--secret=s".to_string()];
            if !lab.is_empty() {
                a.push(format!("--lab={lab}"));
            }
            parse(&a)
        };
        let o = lab("203.0.113.10:3478", "198.51.100.10").unwrap().unwrap();
        assert_eq!(o.lab, Some(Ipv4Addr::new(198, 51, 100, 10)));
        assert!(lab("203.0.113.10:3478", "")
            .unwrap_err()
            .contains("loopback"));
        assert!(lab("8.8.8.8:3478", "198.51.100.10")
            .unwrap_err()
            .contains("loopback"));
        assert!(lab("203.0.113.10:3478", "10.0.0.1")
            .unwrap_err()
            .contains("RFC 5737"));
        assert_eq!(lab("127.0.0.1:3478", "").unwrap().unwrap().lab, None);
    }

    #[test]
    fn reads_a_full_command_line() {
        let o = parse(&strings(&[
            "--server=127.0.0.1:3478,127.0.0.2:3478",
            "--secret",
            "s",
            "--allocations",
            "50000",
            "--mode=send",
            "--rate",
            "20000",
            "--barrier=/tmp/b",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.allocations, 50_000);
        assert_eq!(o.servers.len(), 2);
        assert_eq!(o.client_ips, 3);
        assert_eq!(o.mode, Mode::Send);
        assert_eq!(o.rate, 20_000);
        assert_eq!(o.barrier.as_deref(), Some(std::path::Path::new("/tmp/b")));
        assert!(matches!(o.credentials, Credentials::Rest { ref user, .. } if user == "tern-load"));
        assert_eq!(o.transport, Transport::Udp);
    }

    #[test]
    fn reads_the_transport() {
        let with = |t: &str| parse(&strings(&["--server=127.0.0.1:3478", "--secret=s", t]));
        let o = with("--transport=tcp").unwrap().unwrap();
        assert_eq!(o.transport, Transport::Tcp);
        assert!(o.transport.is_stream());
        let o = with("--transport=tls").unwrap().unwrap();
        assert_eq!((o.transport, o.transport.name()), (Transport::Tls, "tls"));
        assert!(!Transport::Udp.is_stream());
        let e = with("--transport=dtls").unwrap_err();
        assert!(e.contains("--transport") && e.contains("dtls"), "{e}");
    }

    #[test]
    fn refuses_other_hosts_and_missing_credentials() {
        let e = parse(&strings(&["--server=192.0.2.1:3478", "--secret=s"]));
        assert!(e.unwrap_err().contains("loopback"));
        let e = parse(&strings(&["--server=127.0.0.1:3478", "--user=u"]));
        assert!(e.unwrap_err().contains("--pass"));
        assert!(parse(&strings(&["--help"])).unwrap().is_none());
    }
}
