//! Log output as coturn's options ask for it (`log-file` path / `stdout` / `syslog`,
//! `no-stdout-log`, `verbose`, `Verbose`), through `tracing`. `RUST_LOG` may refine the level.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{Config, LogTarget};

/// The level for `verbose` (0 normal, 1 `verbose`, 2 `Verbose`).
pub fn level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the global subscriber. Fails when the log file cannot be opened for appending.
pub fn init(cfg: &Config) -> io::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(level(cfg.verbose).into())
        .from_env_lossy();
    let stdout = (!cfg.no_stdout_log).then(|| {
        fmt::layer()
            .with_writer(io::stdout)
            .with_ansi(io::stdout().is_terminal())
            .boxed()
    });
    let target = match &cfg.log_target {
        LogTarget::Stdout => None,
        LogTarget::File(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            Some(
                fmt::layer()
                    .with_writer(Mutex::new(file))
                    .with_ansi(false)
                    .boxed(),
            )
        }
        LogTarget::Syslog => {
            // SAFETY: the identity is a static C string, valid for the life of the process.
            unsafe { libc::openlog(c"tern".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
            Some(
                fmt::layer()
                    .with_writer(Syslog)
                    .with_ansi(false)
                    .without_time()
                    .boxed(),
            )
        }
    };
    tracing_subscriber::registry()
        .with(stdout)
        .with(target)
        .with(filter)
        .try_init()
        .map_err(io::Error::other)
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
    fn syslog_lines_lose_the_newline_and_nul_bytes() {
        let mut line = SyslogLine::new(libc::LOG_INFO);
        line.write_all(b"a\0b\n").unwrap();
        assert_eq!(line.c_line().as_bytes(), b"a?b");
        line.text.clear();
    }
}
