//! Log output as coturn's options ask for it (`log-file` path / `stdout` / `-` / `syslog`,
//! `no-stdout-log`, `syslog-facility`, `verbose`, `Verbose`, `new-log-timestamp[-format]`),
//! through `tracing`. `RUST_LOG` may refine the level. A log file is written at exactly the path
//! given (no coturn date suffix, with or without `simple-log`) and reopened on SIGHUP, so
//! logrotate can move it away.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::time::ChronoLocal;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::config::{Config, LogTarget};

/// The level for `verbose` (0 normal, 1 `verbose`, 2 `Verbose`).
pub fn level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// coturn's `new-log-timestamp` format.
const COTURN_TIMESTAMP: &str = "%FT%T%z";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The installed logging; [`Logging::reopen`] is what SIGHUP does for logrotate.
#[derive(Debug, Default)]
pub struct Logging {
    file: Option<Arc<LogFile>>,
}

impl Logging {
    /// Reopens the log file at its path (a no-op without one).
    pub fn reopen(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.reopen(),
            None => Ok(()),
        }
    }
}

/// Installs the global subscriber. Fails when the log file cannot be opened for appending.
pub fn init(cfg: &Config) -> io::Result<Logging> {
    let filter = EnvFilter::builder()
        .with_default_directive(level(cfg.verbose).into())
        .from_env_lossy();
    let timer = cfg.new_log_timestamp.then(|| {
        cfg.new_log_timestamp_format
            .clone()
            .unwrap_or_else(|| COTURN_TIMESTAMP.into())
    });
    let mut logging = Logging::default();
    let stdout =
        (!cfg.no_stdout_log).then(|| layer(io::stdout, io::stdout().is_terminal(), &timer));
    let target = match &cfg.log_target {
        LogTarget::Stdout => None,
        LogTarget::File(path) => {
            let file = Arc::new(LogFile::open(path)?);
            logging.file = Some(Arc::clone(&file));
            Some(layer(FileWriter(file), false, &timer))
        }
        LogTarget::Syslog => {
            let facility = facility(cfg.syslog_facility.as_deref());
            // SAFETY: the identity is a static C string, valid for the life of the process.
            unsafe { libc::openlog(c"tern".as_ptr(), libc::LOG_PID, facility) };
            // syslog stamps every line itself.
            Some(
                fmt::layer()
                    .with_writer(Syslog)
                    .with_ansi(false)
                    .without_time()
                    .boxed(),
            )
        }
    };
    let layers: Vec<BoxedLayer> = stdout.into_iter().chain(target).collect();
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(io::Error::other)?;
    Ok(logging)
}

/// A formatting layer writing to `writer`, with tracing's timestamps or a strftime `timer`.
fn layer<W>(writer: W, ansi: bool, timer: &Option<String>) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = fmt::layer().with_writer(writer).with_ansi(ansi);
    match timer {
        Some(format) => base.with_timer(ChronoLocal::new(format.clone())).boxed(),
        None => base.boxed(),
    }
}

/// The syslog(3) facility for a `syslog-facility` name (validated by the config).
fn facility(name: Option<&str>) -> libc::c_int {
    match name.unwrap_or("daemon") {
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "cron" => libc::LOG_CRON,
        "ftp" => libc::LOG_FTP,
        "kern" => libc::LOG_KERN,
        "lpr" => libc::LOG_LPR,
        "mail" => libc::LOG_MAIL,
        "news" => libc::LOG_NEWS,
        "syslog" => libc::LOG_SYSLOG,
        "user" => libc::LOG_USER,
        "uucp" => libc::LOG_UUCP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => libc::LOG_DAEMON,
    }
}

/// A log file that can be reopened at its path while other threads log.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_owned(),
            file: Mutex::new(append(path)?),
        })
    }

    fn reopen(&self) -> io::Result<()> {
        let fresh = append(&self.path)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct FileWriter(Arc<LogFile>);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileGuard<'a>;

    fn make_writer(&'a self) -> FileGuard<'a> {
        FileGuard(self.0.file.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Holds the file for one event, so lines of concurrent events never interleave.
struct FileGuard<'a>(MutexGuard<'a, File>);

impl Write for FileGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Hands each formatted event to `syslog(3)` with the priority of its level.
struct Syslog;

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine::new(libc::LOG_INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        SyslogLine::new(priority(*meta.level()))
    }
}

fn priority(level: Level) -> libc::c_int {
    match level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        Level::DEBUG | Level::TRACE => libc::LOG_DEBUG,
    }
}

/// One event's text, sent to syslog when the formatter drops the writer.
struct SyslogLine {
    priority: libc::c_int,
    text: Vec<u8>,
}

impl SyslogLine {
    fn new(priority: libc::c_int) -> SyslogLine {
        SyslogLine {
            priority,
            text: Vec::new(),
        }
    }

    /// The line without its trailing newline and with NUL bytes (impossible in C strings)
    /// replaced.
    fn c_line(&self) -> CString {
        let trimmed = self.text.strip_suffix(b"\n").unwrap_or(&self.text);
        let clean: Vec<u8> = trimmed
            .iter()
            .map(|&b| if b == 0 { b'?' } else { b })
            .collect();
        CString::new(clean).unwrap_or_default()
    }
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let line = self.c_line();
        // SAFETY: a constant "%s" format with one valid C string argument.
        unsafe { libc::syslog(self.priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(level(0), LevelFilter::INFO);
        assert_eq!(level(1), LevelFilter::DEBUG);
        assert_eq!(level(2), LevelFilter::TRACE);
        assert_eq!(priority(Level::WARN), libc::LOG_WARNING);
    }

    #[test]
    fn every_configurable_facility_maps_to_its_own_constant() {
        let mut seen: Vec<libc::c_int> = crate::config::SYSLOG_FACILITIES
            .iter()
            .map(|n| facility(Some(n)))
            .collect();
        assert_eq!(facility(None), libc::LOG_DAEMON);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), crate::config::SYSLOG_FACILITIES.len());
    }

    #[test]
    fn a_reopened_log_file_is_written_at_its_path_again() {
        let dir = std::env::temp_dir().join(format!("tern-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tern.log");
        let log = LogFile::open(&path).unwrap();
        let writer = FileWriter(Arc::new(log));
        writer.make_writer().write_all(b"before\n").unwrap();
        std::fs::rename(&path, dir.join("tern.log.1")).unwrap();
        writer.0.reopen().unwrap();
        writer.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("tern.log.1")).unwrap(),
            "before\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syslog_lines_lose_the_newline_and_nul_bytes() {
        let mut line = SyslogLine::new(libc::LOG_INFO);
        line.write_all(b"a\0b\n").unwrap();
        assert_eq!(line.c_line().as_bytes(), b"a?b");
        line.text.clear();
    }
}
