//! Limits that keep stream clients from exhausting the server: open connections per source
//! address, and the handshake and idle deadlines (RFC 8656 §3.1 leaves both to the server).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;

/// The longest a connection may take to send its first byte and finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadlines for client connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    /// First byte and TLS handshake.
    pub(crate) handshake: Duration,
    /// A connection without an allocation and without traffic (coturn `max-allocate-timeout`).
    pub(crate) idle: Duration,
}

impl Deadlines {
    pub(crate) fn from_config(cfg: &Config) -> Deadlines {
        let idle = Duration::from_secs(u64::from(cfg.max_allocate_timeout.max(1)));
        Deadlines {
            handshake: HANDSHAKE_TIMEOUT.min(idle),
            idle,
        }
    }
}

/// Open client connections per source IP, across every shard (touched on accept and close only).
pub(crate) struct PerIp {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl PerIp {
    /// `max` 0: no limit.
    pub(crate) fn new(max: u32) -> PerIp {
        PerIp {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `ip`; false when `ip` is at its limit.
    pub(crate) fn acquire(&self, ip: IpAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.max != 0 && *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }

    pub(crate) fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_counts_and_releases() {
        let limit = PerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limit.acquire(a));
        assert!(limit.acquire(a));
        assert!(!limit.acquire(a));
        assert!(limit.acquire(b));
        limit.release(a);
        assert!(limit.acquire(a));
        assert!(PerIp::new(0).acquire(a));
    }

    #[test]
    fn deadlines_follow_max_allocate_timeout() {
        let mut cfg = Config::default();
        assert_eq!(Deadlines::from_config(&cfg).idle, Duration::from_secs(60));
        assert_eq!(Deadlines::from_config(&cfg).handshake, HANDSHAKE_TIMEOUT);
        cfg.max_allocate_timeout = 2;
        assert_eq!(
            Deadlines::from_config(&cfg).handshake,
            Duration::from_secs(2)
        );
    }
}
