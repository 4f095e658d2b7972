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
    /// The portable engine, why, and whether UDP GSO works (`gso::probe`).
    Epoll(String, bool),
    #[cfg(target_os = "linux")]
    Uring(super::uring::Features, &'static str),
}

impl Choice {
    pub(crate) fn kind(&self) -> EngineKind {
        match self {
            Choice::Epoll(..) => EngineKind::Epoll,
            #[cfg(target_os = "linux")]
            Choice::Uring(..) => EngineKind::Uring,
        }
    }

    /// Whether UDP GSO works here: the rings use it for every UDP send, the epoll shards for
    /// the datagrams of stream clients' frames (`gso::Train`).
    pub(crate) fn gso(&self) -> bool {
        match self {
            Choice::Epoll(_, gso) => *gso,
            #[cfg(target_os = "linux")]
            Choice::Uring(features, _) => features.gso,
        }
    }

    /// The start-up log line's text.
    pub(crate) fn describe(&self, shards: usize, streams: bool) -> String {
        let gso = if self.gso() {
            "on"
        } else {
            "off: refused by the kernel"
        };
        match self {
            Choice::Epoll(why, _) => {
                format!("epoll, {shards} shard threads ({why}; UDP GSO {gso})")
            }
            #[cfg(target_os = "linux")]
            Choice::Uring(_, why) => format!(
                "io_uring, {shards} ring shards{} ({why}; UDP GSO {gso})",
                if streams {
                    format!(" + {shards} epoll stream shards for TCP/TLS")
                } else {
                    String::new()
                },
            ),
        }
    }
}

fn epoll(why: String) -> Choice {
    Choice::Epoll(why, super::gso::probe().is_ok())
}

pub(crate) fn choose(wanted: IoEngine) -> Result<Choice, EngineError> {
    match wanted {
        IoEngine::Epoll => Ok(epoll("io-engine=epoll".into())),
        IoEngine::Uring => uring("io-engine=uring").map_err(|why| EngineError::Io {
            what: "io-engine=uring",
            source: std::io::Error::other(format!("io_uring is not usable here: {why}")),
        }),
        IoEngine::Auto => Ok(
            uring("auto: the io_uring probe succeeded").unwrap_or_else(|why| {
                warn!("io_uring is not usable here ({why}): using epoll");
                epoll(format!("auto: io_uring unavailable: {why}"))
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
