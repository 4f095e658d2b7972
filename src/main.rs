//! The `tern` command: coturn's flags and `turnserver.conf`, then the engine until SIGINT or
//! SIGTERM (SIGHUP reloads and reopens the log, SIGUSR1 drains, SIGUSR2 reloads the TLS
//! certificate as coturn does). `tern check-config FILE [--strict]` validates a configuration
//! without starting; `tern key` and `tern rest-credentials` print credentials.

mod ops;

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;
use tracing::{error, info, warn};

use tern::auth::db::DbSpec;
use tern::config::{self, Config};
use tern::engine::Server;
use tern::logging::{self, Logging};
use tern::metrics::{self, Health, MetricsServer};

use ops::notify::notify;
use ops::pidfile::Pidfile;
use ops::privileges::drop_privileges;

/// How often a draining server checks whether its last allocation has gone.
const DRAIN_CHECK: Duration = Duration::from_millis(100);
/// Shards publish their allocation counts once per loop turn (at least every 100 ms): counts
/// read this long after the drain began include every allocation made before it.
const DRAIN_SETTLE: Duration = Duration::from_millis(300);
/// How often the user database's realm options and peer lists are read again (coturn's
/// authentication thread reads them every 5 s).
const DATABASE_EVERY: Duration = Duration::from_secs(5);

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

/// `check-config`, `key`, `admin`, `rest-credentials` and `probe`: tools that run instead of the
/// server.
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
        "admin" => Some(tern::tools::run_admin(
            rest,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )),
        "rest-credentials" => Some(tern::tools::run_rest_credentials(
            rest,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
            unix_now(),
        )),
        "probe" => Some(tern::tools::run_probe(
            rest,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
            unix_now(),
        )),
        _ => None,
    }
}

/// Wall time in Unix seconds: REST usernames carry their expiry, certificates theirs.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    let logging = logging::init(&cfg).context("cannot set up logging")?;
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
    // Installed before binding, so a signal during start-up is handled once running.
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
        .context("cannot install signal handlers")?;
    // coturn's turn_realm_option rows override max-bps and the quotas for the realm, and its
    // allowed_peer_ip and denied_peer_ip rows join the configuration's peer lists.
    let base = cfg;
    let cfg = tern::auth::db::with_database_options(&base);
    for c in ops::reload::changes(&base, &base, &cfg).applied {
        info!("user database: {}: {}", c.option, c.detail);
    }
    let server = Server::start(&cfg).context("cannot start")?;
    info!("peer policy: {}", server.peer_policy());
    let health = Arc::new(Health::new(Arc::clone(server.shared())));
    let metrics = start_metrics(&cfg, &server, &health)?;
    let pidfile = match &cfg.pidfile {
        Some(path) => Some(
            Pidfile::write(path)
                .with_context(|| format!("cannot write pidfile {}", path.display()))?,
        ),
        None => None,
    };
    drop_privileges(cfg.proc_user.as_deref(), cfg.proc_group.as_deref())
        .context("cannot drop privileges")?;
    ready();
    health.set_ready();
    run_until_stopped(args, base, cfg, &server, &logging, signals);
    if let Err(e) = notify("STOPPING=1") {
        warn!("cannot notify systemd: {e}");
    }
    if let Some(m) = metrics {
        m.stop();
    }
    server.stop();
    drop(pidfile);
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGUSR2 (and SIGHUP): new TLS connections get the certificate and key now on disk.
fn reload_tls(server: &Server) {
    match server.reload_tls() {
        Ok(()) => info!("TLS certificate and key reloaded"),
        Err(e) => warn!("TLS reload failed, the previous certificate stays: {e}"),
    }
}

/// The Prometheus endpoint, with `/healthz`, `/readyz` and `/load`, when `prometheus` is set;
/// its address is logged like the listeners.
fn start_metrics(
    cfg: &Config,
    server: &Server,
    health: &Arc<Health>,
) -> anyhow::Result<Option<MetricsServer>> {
    if !cfg.prometheus {
        return Ok(None);
    }
    let addr = metrics::listen_addr(cfg);
    let m = MetricsServer::start_with(
        addr,
        cfg.prometheus_path.clone(),
        Arc::clone(server.registry()),
        cfg.prometheus_username_labels,
        Arc::clone(health),
    )
    .with_context(|| format!("cannot serve metrics on {addr}"))?;
    info!(
        "metrics on http://{}{}",
        m.local_addr(),
        cfg.prometheus_path
    );
    Ok(Some(m))
}

/// Every listener is bound, privileges are dropped: tell systemd (`Type=notify`).
fn ready() {
    let state = format!("READY=1\nMAINPID={}", std::process::id());
    match notify(&state) {
        Ok(true) => info!("ready (systemd notified)"),
        Ok(false) => info!("ready"),
        Err(e) => warn!("ready, but systemd could not be notified: {e}"),
    }
}

/// Serves signals until SIGINT/SIGTERM, or until a drain has finished; reads the user
/// database's realm options and peer lists again every `DATABASE_EVERY`. `base` is the
/// configuration as loaded, `started` the one the server started with (`base` and the database).
fn run_until_stopped(
    args: &[String],
    mut base: Config,
    started: Config,
    server: &Server,
    logging: &Logging,
    mut signals: Signals,
) {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("tern-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| error!("cannot start the signal thread: {e}"))
        .ok();
    let mut running = started.clone();
    let mut drain_since: Option<Instant> = None;
    let mut database = Database {
        next: monotonic() + DATABASE_EVERY,
        down: false,
    };
    loop {
        match rx.recv_timeout(DRAIN_CHECK) {
            Ok(SIGHUP) => {
                if let Err(e) = logging.reopen() {
                    error!("cannot reopen the log file: {e}");
                }
                if let Some((loaded, new)) = reload(args, &started, &running, server) {
                    base = loaded;
                    running = new;
                }
                if server.has_tls() {
                    reload_tls(server);
                }
            }
            Ok(SIGUSR2) => reload_tls(server),
            Ok(SIGUSR1) => {
                if drain_since.is_none() {
                    drain_since = Some(monotonic());
                    server.drain();
                    info!(
                        "SIGUSR1: draining: new allocations are redirected or refused; exiting when at most {} \
                         of {} allocations remain",
                        running.drain_min_allocations,
                        server.allocations()
                    );
                }
            }
            Ok(signal) => {
                info!("signal {signal} received: stopping");
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        database.refresh(&base, &started, &mut running, server);
        let settled = drain_since.is_some_and(|t| monotonic().duration_since(t) >= DRAIN_SETTLE);
        if settled && server.allocations() <= running.drain_min_allocations {
            info!("drained: stopping");
            return;
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn monotonic() -> Instant {
    Instant::now()
}

/// When the user database is read again, and whether it was down at the last read.
struct Database {
    next: Instant,
    down: bool,
}

impl Database {
    /// Once every `DATABASE_EVERY` with a user database: its realm options and peer lists again,
    /// applied when they changed (coturn re-reads them every 5 s too). While the database is
    /// down the last ones read stay, and that is logged once.
    fn refresh(&mut self, base: &Config, started: &Config, running: &mut Config, server: &Server) {
        if !matches!(DbSpec::from_config(base), Ok(Some(_))) || monotonic() < self.next {
            return;
        }
        self.next = monotonic() + DATABASE_EVERY;
        let new = match tern::auth::db::database_options(base) {
            Ok(new) => new,
            Err(e) => {
                if !std::mem::replace(&mut self.down, true) {
                    error!("{e}; keeping the realm options and peer lists read last");
                }
                return;
            }
        };
        if std::mem::take(&mut self.down) {
            info!("user database readable again");
        }
        if new == *running {
            return;
        }
        let changes = ops::reload::changes(started, running, &new);
        if let Err(e) = server.reload(&new) {
            error!("user database changes not applied: {e}");
            return;
        }
        for c in &changes.applied {
            info!("user database: {}: {}", c.option, c.detail);
        }
        *running = new;
    }
}

/// SIGHUP: re-reads the configuration with the start-up arguments and hands the new settings to
/// every shard. Returns the configuration as loaded and as applied (with the user database's
/// options), or None when it was rejected (the old one stays).
fn reload(
    args: &[String],
    started: &Config,
    running: &Config,
    server: &Server,
) -> Option<(Config, Config)> {
    info!("SIGHUP: reloading the configuration");
    let loaded = match config::load(args) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in &diagnostics {
                error!("{d}");
            }
            error!("reload rejected: the configuration has errors; keeping the running one");
            return None;
        }
    };
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let new = tern::auth::db::with_database_options(&loaded.config);
    if let Err(e) = server.reload(&new) {
        error!("reload rejected: {e}; keeping the running configuration");
        return None;
    }
    let changes = ops::reload::changes(started, running, &new);
    for c in &changes.applied {
        info!("reload: {}: {}", c.option, c.detail);
    }
    if !changes.restart.is_empty() {
        let named: Vec<String> = changes
            .restart
            .iter()
            .map(|c| format!("{} ({})", c.option, c.detail))
            .collect();
        warn!(
            "reload: changed but needs a restart, still running with the old value: {}",
            named.join(", ")
        );
    }
    info!(
        "reload done: {} change(s) applied, {} waiting for a restart",
        changes.applied.len(),
        changes.restart.len()
    );
    Some((loaded.config, new))
}
