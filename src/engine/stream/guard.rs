//! Limits that keep stream clients from exhausting the server (RFC 8656 §3.1 leaves them to the
//! server): open connections per source address, IPv6 grouped by prefix, and in total, from the
//! descriptor plan; and deadlines counted from accept, for the first complete message and for
//! holding an allocation, which bytes trickled in do not extend (slowloris).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;

/// Deadlines for client connections, both from accept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    /// The first complete STUN message or ChannelData, TLS handshake included
    /// (`stream-first-message-timeout`, at most `allocate`).
    pub(crate) first_message: Duration,
    /// To hold an allocation (coturn `max-allocate-timeout`): a connection without one past it
    /// is closed however much it sends.
    pub(crate) allocate: Duration,
}

impl Deadlines {
    pub(crate) fn from_config(cfg: &Config) -> Deadlines {
        let allocate = Duration::from_secs(u64::from(cfg.max_allocate_timeout.max(1)));
        let first = Duration::from_secs(u64::from(cfg.stream_first_message_timeout.max(1)));
        Deadlines {
            first_message: first.min(allocate),
            allocate,
        }
    }
}

/// The address a per-address count is kept under: IPv4 as it is, IPv6 cut to its first
/// `v6_prefix` bits, since one subscriber usually holds a whole /64 and picks from it at will.
/// An IPv4-mapped IPv6 address counts as its IPv4 address.
pub(crate) fn address_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let keep = u128::MAX
                    .checked_shl(128 - u32::from(v6_prefix.min(128)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
            }
        },
    }
}

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its source address (or IPv6 prefix) holds `stream-connections-per-ip` already.
    PerAddress,
    /// The server holds as many stream connections as the descriptor plan leaves them.
    Total,
}

struct Open {
    per_key: HashMap<IpAddr, u32>,
    total: u64,
}

/// Open client connections per source address and in total, across every shard (touched on
/// accept and close only).
pub(crate) struct Admission {
    per_address: u32,
    v6_prefix: u8,
    total: u64,
    open: Mutex<Open>,
}

impl Admission {
    /// `per_address` 0: no per-address limit; `total` None: no total limit.
    pub(crate) fn new(per_address: u32, v6_prefix: u8, total: Option<u64>) -> Admission {
        Admission {
            per_address,
            v6_prefix,
            total: total.unwrap_or(u64::MAX),
            open: Mutex::new(Open {
                per_key: HashMap::new(),
                total: 0,
            }),
        }
    }

    /// Counts a new connection from `ip`, or says why it may not open.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Result<(), Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return Err(Refused::Total);
        }
        let n = open
            .per_key
            .entry(address_key(ip, self.v6_prefix))
            .or_insert(0);
        if self.per_address != 0 && *n >= self.per_address {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        open.total += 1;
        Ok(())
    }

    pub(crate) fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let key = address_key(ip, self.v6_prefix);
        if let Some(n) = open.per_key.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_key.remove(&key);
            }
            open.total = open.total.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_limit_counts_and_releases() {
        let limit = Admission::new(2, 64, None);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(limit.acquire(a), Ok(()));
        assert_eq!(limit.acquire(a), Ok(()));
        assert_eq!(limit.acquire(a), Err(Refused::PerAddress));
        assert_eq!(limit.acquire(b), Ok(()));
        limit.release(a);
        assert_eq!(limit.acquire(a), Ok(()));
        assert_eq!(Admission::new(0, 64, None).acquire(a), Ok(()));
    }

    #[test]
    fn ipv6_addresses_of_one_prefix_share_a_count() {
        let limit = Admission::new(2, 64, None);
        assert_eq!(limit.acquire(ip("2001:db8:1:2::1")), Ok(()));
        assert_eq!(limit.acquire(ip("2001:db8:1:2:ffff::9")), Ok(()));
        assert_eq!(
            limit.acquire(ip("2001:db8:1:2:dead:beef:0:7")),
            Err(Refused::PerAddress)
        );
        assert_eq!(limit.acquire(ip("2001:db8:1:3::1")), Ok(()));
        limit.release(ip("2001:db8:1:2::1"));
        assert_eq!(limit.acquire(ip("2001:db8:1:2::42")), Ok(()));
    }

    #[test]
    fn address_keys_cut_ipv6_only() {
        assert_eq!(address_key(ip("192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:a:b:c:d:e:f"), 64),
            ip("2001:db8:a:b::")
        );
        assert_eq!(
            address_key(ip("2001:db8:a:b:c:d:e:f"), 48),
            ip("2001:db8:a::")
        );
        assert_eq!(
            address_key(ip("2001:db8:a:b:c:d:e:f"), 128),
            ip("2001:db8:a:b:c:d:e:f")
        );
        assert_eq!(address_key(ip("2001:db8::1"), 0), ip("::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
    }

    #[test]
    fn the_total_limit_spans_addresses() {
        let limit = Admission::new(0, 64, Some(3));
        for i in 1..=3 {
            assert_eq!(limit.acquire(ip(&format!("192.0.2.{i}"))), Ok(()));
        }
        assert_eq!(limit.acquire(ip("192.0.2.9")), Err(Refused::Total));
        limit.release(ip("192.0.2.2"));
        assert_eq!(limit.acquire(ip("192.0.2.9")), Ok(()));
        // Releasing an address that holds nothing frees no place.
        limit.release(ip("198.51.100.1"));
        assert_eq!(limit.acquire(ip("192.0.2.10")), Err(Refused::Total));
    }

    #[test]
    fn deadlines_follow_the_options() {
        let mut cfg = Config::default();
        let d = Deadlines::from_config(&cfg);
        assert_eq!(d.allocate, Duration::from_secs(60));
        assert_eq!(d.first_message, Duration::from_secs(10));
        cfg.max_allocate_timeout = 2;
        assert_eq!(
            Deadlines::from_config(&cfg).first_message,
            Duration::from_secs(2)
        );
        cfg.max_allocate_timeout = 60;
        cfg.stream_first_message_timeout = 30;
        assert_eq!(
            Deadlines::from_config(&cfg).first_message,
            Duration::from_secs(30)
        );
    }
}
