//! The engine's only clock read: monotonic time for the core's timers and wall-clock seconds for
//! TURN REST expiries. The core never reads a clock (docs/architecture.md, "Time").

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// (monotonic now, unix seconds now).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> (Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), unix)
}
