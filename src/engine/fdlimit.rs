//! The file-descriptor ceiling (RLIMIT_NOFILE, getrlimit(2)) turned into a maximum number of
//! allocations, so running out of descriptors answers 508 (RFC 8656 §7.2) instead of failing
//! sockets at random, and a maximum number of client stream connections, so connections that
//! hold no allocation cannot take the descriptors relays need. coturn plans the same way (about
//! half the descriptors for allocations).

use std::io;

/// Descriptors one allocation may hold: its relay socket and, for TURN over TCP/TLS, its client
/// connection (an ADDITIONAL-ADDRESS-FAMILY or reserved port takes one more, rarely).
pub(crate) const PER_ALLOCATION: u64 = 2;

/// Kept for the process itself: log files, the metrics listener and its connections, pipes.
pub(crate) const RESERVE: u64 = 64;

/// Raises the soft limit to the hard one (as far as the kernel allows) and returns the soft
/// limit in force. Public for the drill program, whose clients need as many descriptors.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own. On failure the old limit stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// Allocations that fit in `limit` descriptors when `fixed` are used by listeners and polls.
/// At least 1: a server that could hold none would refuse every Allocate forever.
pub(crate) fn max_allocations(limit: u64, fixed: u64) -> u32 {
    let free = limit.saturating_sub(fixed).saturating_sub(RESERVE);
    u32::try_from(free / PER_ALLOCATION)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Client stream connections that fit beside [`max_allocations`]: each allocation keeps one
/// descriptor for its relay socket, and its client connection, when it has one, is among these.
/// Connections past this are refused at accept, so a flood of them leaves every relay its socket.
pub(crate) fn max_streams(limit: u64, fixed: u64) -> u64 {
    let free = limit.saturating_sub(fixed).saturating_sub(RESERVE);
    free.saturating_sub(u64::from(max_allocations(limit, fixed)))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_of_what_listeners_and_the_reserve_leave() {
        assert_eq!(max_allocations(1024, 40), (1024 - 40 - RESERVE) as u32 / 2);
        assert_eq!(max_allocations(10, 40), 1);
        assert_eq!(max_allocations(u64::MAX, 0), u32::MAX);
    }

    #[test]
    fn streams_take_what_relay_sockets_leave() {
        for (limit, fixed) in [(1024, 40), (200, 8), (1 << 20, 8)] {
            let relays = u64::from(max_allocations(limit, fixed));
            let streams = max_streams(limit, fixed);
            assert_eq!(relays + streams, limit - fixed - RESERVE);
        }
        assert_eq!(max_streams(10, 40), 1);
    }
}
