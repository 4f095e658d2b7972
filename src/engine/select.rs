//! Which I/O engine drives the UDP shards (`io-engine = auto | uring | epoll`): `auto` takes
//! io_uring when a probe at start succeeds, else the portable epoll engine; the reason is logged.

use tracing::warn;

use super::EngineError;
use crate::config::IoEngine;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// io_uring rings for UDP (Linux 6.0+), stream shards on epoll.
    Uring,
    /// epoll (mio) with recvmmsg/sendmmsg for everything.
    Epoll,
}

pub(crate) enum Choice {
    /// The portable engine, and why.
    Epoll(String),
    #[cfg(target_os = "linux")]
    Uring(super::uring::Features, &'static str),
}

impl Choice {
    pub(crate) fn kind(&self) -> EngineKind {
        match self {
            Choice::Epoll(_) => EngineKind::Epoll,
            #[cfg(target_os = "linux")]
            Choice::Uring(..) => EngineKind::Uring,
        }
    }

    /// The start-up log line's text.
    pub(crate) fn describe(&self, shards: usize, streams: bool) -> String {
        match self {
            Choice::Epoll(why) => format!("epoll, {shards} shard threads ({why})"),
            #[cfg(target_os = "linux")]
            Choice::Uring(features, why) => format!(
                "io_uring, {shards} ring shards{} ({why}; UDP GSO {})",
                if streams {
                    format!(" + {shards} epoll stream shards for TCP/TLS")
                } else {
                    String::new()
                },
                if features.gso {
                    "on"
                } else {
                    "off: refused by the kernel"
                }
            ),
        }
    }
}

pub(crate) fn choose(wanted: IoEngine) -> Result<Choice, EngineError> {
    match wanted {
        IoEngine::Epoll => Ok(Choice::Epoll("io-engine=epoll".into())),
        IoEngine::Uring => uring("io-engine=uring").map_err(|why| EngineError::Io {
            what: "io-engine=uring",
            source: std::io::Error::other(format!("io_uring is not usable here: {why}")),
        }),
        IoEngine::Auto => Ok(
            uring("auto: the io_uring probe succeeded").unwrap_or_else(|why| {
                warn!("io_uring is not usable here ({why}): using epoll");
                Choice::Epoll(format!("auto: io_uring unavailable: {why}"))
            }),
        ),
    }
}

#[cfg(target_os = "linux")]
fn uring(why: &'static str) -> Result<Choice, String> {
    super::uring::probe().map(|f| Choice::Uring(f, why))
}

#[cfg(not(target_os = "linux"))]
fn uring(_why: &'static str) -> Result<Choice, String> {
    Err("io_uring exists on Linux only".into())
}
