//! Why the engine could not start: settings rejected by the core, or a socket that could not be
//! bound. Transient I/O errors after start are counted, never returned.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::turn::Transport;

#[derive(Debug)]
pub enum EngineError {
    /// The core refused the configuration (`turn::Settings::from_options`).
    Settings(String),
    /// Nothing to listen on: every transport disabled, or no usable local address.
    NoListener,
    /// `cert`/`pkey` configured but unusable; the message says which file and what to set.
    Tls(super::tls::TlsError),
    /// A listening socket could not be created or bound.
    Bind {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
    /// Any other start-up system call (poll, waker, thread, interface list).
    Io {
        what: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Settings(why) => write!(f, "invalid settings: {why}"),
            EngineError::NoListener => f.write_str(
                "nothing to listen on (no-udp and no-tcp without a usable TLS certificate, \
                     or no local address)",
            ),
            EngineError::Bind {
                transport,
                addr,
                source,
            } => write!(f, "cannot listen on {} {addr}: {source}", name(*transport)),
            EngineError::Io { what, source } => write!(f, "{what}: {source}"),
            EngineError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// No source: every message above already ends with its cause, and a report that prints the
/// chain (`{:#}` in main) would say it twice.
impl std::error::Error for EngineError {}

/// The lower-case transport name used in logs (`listening on udp ...`).
pub(crate) fn name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_report_names_the_cause_once() {
        let e = EngineError::Io {
            what: "loading the fast path (fast-path=on)",
            source: io::Error::other("net.ipv4.conf.lo.forwarding is 0"),
        };
        let report = format!("{:#}", anyhow::Error::new(e).context("cannot start"));
        assert_eq!(
            report,
            "cannot start: loading the fast path (fast-path=on): net.ipv4.conf.lo.forwarding is 0"
        );
    }
}
