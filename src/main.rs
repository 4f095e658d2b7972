//! The `tern` command: coturn's flags and `turnserver.conf`, then the engine until SIGINT or
//! SIGTERM. `tern check-config FILE [--strict]` validates a configuration without starting;
//! `tern key` and `tern rest-credentials` print credentials.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{info, warn};

use tern::config::{self, Config};
use tern::engine::Server;
use tern::limits::PeerPolicy;
use tern::logging;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`, `key` and `rest-credentials`: tools that run instead of the server.
fn subcommand(args: &[String]) -> Option<i32> {
    let (name, rest) = args.split_first()?;
    // Each arm takes its own stdout lock: holding one for the whole run would block logging.
    match name.as_str() {
        "check-config" => Some(config::check_config(rest, &mut io::stdout().lock())),
        "key" => Some(tern::tools::run_key(
            rest,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )),
        "rest-credentials" => {
            // Wall time: REST usernames carry their Unix expiry.
            #[allow(clippy::disallowed_methods)]
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Some(tern::tools::run_rest_credentials(
                rest,
                &mut io::stdout().lock(),
                &mut io::stderr().lock(),
                now,
            ))
        }
        _ => None,
    }
}

fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    if let Some(code) = subcommand(args) {
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", config::usage());
        return Ok(ExitCode::SUCCESS);
    }
    if args.iter().any(|a| a == "--version") {
        println!("tern {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = match config::load(args) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            let mut err = io::stderr().lock();
            for d in &diagnostics {
                writeln!(err, "{d}")?;
            }
            writeln!(err, "tern: not started: the configuration has errors")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let cfg = loaded.config;
    logging::init(&cfg).context("cannot set up logging")?;
    match &cfg.source {
        Some(path) => info!(
            "tern {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            path.display()
        ),
        None => info!(
            "tern {} starting without a configuration file",
            env!("CARGO_PKG_VERSION")
        ),
    }
    for w in &loaded.warnings {
        warn!("{w}");
    }
    // Installed before binding, so a signal during start-up stops the server cleanly.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let server = Server::start(&cfg).context("cannot start")?;
    let listeners: Vec<SocketAddr> = server.listeners().iter().map(|(_, a)| *a).collect();
    let policy = PeerPolicy::from_config(&cfg, &listeners, &relay_ips(&cfg, &listeners));
    info!("peer policy: {}", policy.describe());
    if let Some(signal) = signals.forever().next() {
        info!("signal {signal} received: stopping");
    }
    server.stop();
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The server's own relay addresses as the core derives them: `relay-ip`, else the listening
/// addresses, plus the public forms from `external-ip`.
fn relay_ips(cfg: &Config, listeners: &[SocketAddr]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if cfg.relay_ips.is_empty() {
        listeners.iter().map(SocketAddr::ip).collect()
    } else {
        cfg.relay_ips.clone()
    };
    ips.extend(cfg.external_ips.iter().map(|e| e.public));
    ips.sort();
    ips.dedup();
    ips
}
