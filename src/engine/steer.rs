//! Steers each SO_REUSEPORT group of listeners by the source IP alone (docs/architecture.md,
//! "Threads"): a classic BPF program, attached with SO_ATTACH_REUSEPORT_CBPF (no privilege needed),
//! hashes the source address and returns the index of a shard's socket in the group. Every port
//! of one IP then reaches the same shard, so per-IP budgets (`unauthorized-ratelimit-rps`) hold
//! server-wide; the kernel's own choice hashes the 4-tuple, and a spoofed victim address with
//! varying source ports got one budget per shard.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use tracing::{info, warn};

/// asm-generic/socket.h, which x86, arm and riscv use (the libc crate names it only for
/// Android). Where an architecture numbers it otherwise, attaching fails and the kernel's
/// 4-tuple spreading stays, which is logged.
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Where the source address is. The kernel runs a reuseport program with the packet's data at
/// the payload, past the UDP or TCP header, so the IP header is only reached through the
/// SKF_NET_OFF window, which starts at the network header.
const SADDR_V4: i32 = libc::SKF_NET_OFF + 12;
const SADDR_V6: i32 = libc::SKF_NET_OFF + 8;

/// Absorbs each 32-bit word of the address (an odd multiplier: the golden ratio).
const ABSORB: u32 = 0x9e37_79b1;
/// murmur3's finaliser (fmix32): every input bit reaches the low bits that `% shards` keeps.
const FMIX1: u32 = 0x85eb_ca6b;
const FMIX2: u32 = 0xc2b2_ae35;

/// The steering of one run: a keyed hash of the source IP, modulo the shard count. The key is
/// random per process so that no sender can pick source addresses that all land on one shard.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SourceHash {
    key: u32,
    shards: u32,
}

impl SourceHash {
    /// None for fewer than two shards: there is nothing to steer.
    pub(crate) fn new(key: u32, shards: usize) -> Option<SourceHash> {
        let shards = u32::try_from(shards).ok().filter(|n| *n > 1)?;
        Some(SourceHash { key, shards })
    }

    /// The program for one address family: `hash(key, saddr) % shards` in the accumulator.
    pub(crate) fn program(&self, v6: bool) -> Vec<libc::sock_filter> {
        let (start, words) = if v6 { (SADDR_V6, 4) } else { (SADDR_V4, 1) };
        let mut p = vec![stmt(libc::BPF_LD | libc::BPF_IMM, self.key)];
        for i in 0..words {
            // The loaded word replaces the accumulator, so the hash so far waits in X.
            p.push(stmt(libc::BPF_MISC | libc::BPF_TAX, 0));
            // A negative offset travels in the unsigned `k` as its two's complement.
            p.push(stmt(
                libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
                (start + 4 * i) as u32,
            ));
            p.push(alu_x(libc::BPF_XOR));
            p.push(alu_k(libc::BPF_MUL, ABSORB));
        }
        for (shift, mul) in [(16, Some(FMIX1)), (13, Some(FMIX2)), (16, None)] {
            p.push(stmt(libc::BPF_MISC | libc::BPF_TAX, 0));
            p.push(alu_k(libc::BPF_RSH, shift));
            p.push(alu_x(libc::BPF_XOR));
            if let Some(mul) = mul {
                p.push(alu_k(libc::BPF_MUL, mul));
            }
        }
        p.push(alu_k(libc::BPF_MOD, self.shards));
        p.push(stmt(libc::BPF_RET | libc::BPF_A, 0));
        p
    }

    /// Attaches the program to the reuseport group `socket` belongs to (one socket per group is
    /// enough: the program is the group's). The index it returns is a socket's place in the
    /// group, which is the order the sockets were bound in.
    pub(crate) fn attach(&self, socket: &impl AsRawFd, v6: bool) -> io::Result<()> {
        let program = self.program(v6);
        let fprog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: a valid fd, and a pointer/length pair describing one sock_fprog whose filter
        // points at `program.len()` instructions; the kernel copies them before returning.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The shard the program picks for `ip` (what the tests hold the kernel to).
    #[cfg(test)]
    pub(crate) fn shard_of(&self, ip: std::net::IpAddr) -> usize {
        let words: Vec<u32> = match ip {
            std::net::IpAddr::V4(a) => vec![u32::from(a)],
            std::net::IpAddr::V6(a) => a
                .octets()
                .chunks(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .collect(),
        };
        let mut h = self.key;
        for w in words {
            h = (h ^ w).wrapping_mul(ABSORB);
        }
        h ^= h >> 16;
        h = h.wrapping_mul(FMIX1);
        h ^= h >> 13;
        h = h.wrapping_mul(FMIX2);
        h ^= h >> 16;
        (h % self.shards) as usize
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn alu_k(op: u32, k: u32) -> libc::sock_filter {
    stmt(libc::BPF_ALU | op | libc::BPF_K, k)
}

fn alu_x(op: u32) -> libc::sock_filter {
    stmt(libc::BPF_ALU | op | libc::BPF_X, 0)
}

/// How one transport's listeners are spread over the shards.
#[derive(Debug, Default)]
pub(crate) enum Steering {
    /// Not listened on.
    #[default]
    Off,
    /// One shard: every datagram reaches it anyway.
    OneShard,
    /// Every group has the program.
    BySource,
    /// The kernel refused the program for the group of `addr`: the kernel's 4-tuple hash
    /// spreads at least that group.
    Failed { addr: SocketAddr, error: io::Error },
}

/// The steering of the UDP and the TCP listeners.
#[derive(Debug, Default)]
pub(crate) struct Steerings {
    pub(crate) udp: Steering,
    pub(crate) tcp: Steering,
}

impl Steerings {
    /// One start-up line per transport listened on; a warning where per-IP budgets no longer
    /// hold server-wide.
    pub(crate) fn log(&self) {
        for (transport, steering) in [("UDP", &self.udp), ("TCP", &self.tcp)] {
            let line = Line(transport, steering);
            match steering {
                Steering::Off => {}
                Steering::Failed { .. } => warn!("{line}"),
                Steering::OneShard | Steering::BySource => info!("{line}"),
            }
        }
    }
}

struct Line<'a>(&'a str, &'a Steering);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line(transport, steering) = self;
        match steering {
            Steering::Off => write!(f, "no {transport} listeners"),
            Steering::OneShard => write!(f, "{transport} listeners: one shard, nothing to steer"),
            Steering::BySource => {
                write!(
                    f,
                    "{transport} listeners steered by source IP (reuseport CBPF)"
                )
            }
            Steering::Failed { addr, error } => write!(
                f,
                "{transport} listeners spread by the kernel's 4-tuple hash, not by source IP \
                 (attaching the reuseport CBPF program to {addr} failed: {error}): per-IP limits \
                 hold per shard"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sockets::{udp_listener, Group};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6, UdpSocket};

    /// Runs the instructions `program` uses on a packet whose network header is `net` (what
    /// the SKF_NET_OFF window shows); None where the kernel would abort the program.
    fn run(program: &[libc::sock_filter], net: &[u8]) -> Option<u32> {
        let (mut a, mut x) = (0u32, 0u32);
        for ins in program {
            let code = u32::from(ins.code);
            match code {
                c if c == libc::BPF_LD | libc::BPF_IMM => a = ins.k,
                c if c == libc::BPF_MISC | libc::BPF_TAX => x = a,
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let off = (ins.k as i32).checked_sub(libc::SKF_NET_OFF)?;
                    let at = usize::try_from(off).ok()?;
                    let w = net.get(at..at + 4)?;
                    a = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                }
                c if c == libc::BPF_RET | libc::BPF_A => return Some(a),
                c if c & 0x07 == libc::BPF_ALU => {
                    let v = if c & libc::BPF_X != 0 { x } else { ins.k };
                    a = match c & 0xf0 {
                        op if op == libc::BPF_XOR => a ^ v,
                        op if op == libc::BPF_MUL => a.wrapping_mul(v),
                        op if op == libc::BPF_RSH => a >> v,
                        op if op == libc::BPF_MOD => a.checked_rem(v)?,
                        op => panic!("ALU op {op:#x} not modelled"),
                    };
                }
                c => panic!("instruction {c:#x} not modelled"),
            }
        }
        None
    }

    fn ipv4_header(src: Ipv4Addr) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&[192, 0, 2, 1]);
        h
    }

    fn ipv6_header(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h
    }

    #[test]
    fn the_program_hashes_the_source_address_of_crafted_headers() {
        let steer = SourceHash::new(0x5eed_1234, 3).unwrap();
        let (v4, v6) = (steer.program(false), steer.program(true));
        let mut seen = [0usize; 3];
        for n in 0..300u32 {
            let src = Ipv4Addr::from(0xc633_6400 + n);
            let shard = run(&v4, &ipv4_header(src)).unwrap() as usize;
            assert_eq!(shard, steer.shard_of(IpAddr::V4(src)), "{src}");
            seen[shard] += 1;
            let src6 = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(n) << 40);
            let shard6 = run(&v6, &ipv6_header(src6)).unwrap() as usize;
            assert_eq!(shard6, steer.shard_of(IpAddr::V6(src6)), "{src6}");
        }
        // Spread, not piled on one shard: each gets at least half its fair share.
        assert!(seen.iter().all(|n| *n >= 50), "{seen:?}");
        // The destination and the rest of the header do not matter.
        let mut other = ipv4_header(Ipv4Addr::new(198, 51, 100, 7));
        other[16..20].copy_from_slice(&[203, 0, 113, 10]);
        other[8] = 1;
        let same = run(&v4, &ipv4_header(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!(run(&v4, &other), same);
    }

    #[test]
    fn the_key_changes_the_shards() {
        let ips: Vec<IpAddr> = (1..=64u8)
            .map(|n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
            .collect();
        let a = SourceHash::new(1, 2).unwrap();
        let b = SourceHash::new(2, 2).unwrap();
        let moved = ips.iter().filter(|ip| a.shard_of(**ip) != b.shard_of(**ip));
        assert!(moved.count() > 8);
    }

    #[test]
    fn one_shard_needs_no_program() {
        assert!(SourceHash::new(7, 1).is_none());
        assert!(SourceHash::new(7, 0).is_none());
    }

    /// On this kernel: IPv6 datagrams from ::1 reach the socket the hash names, whatever their
    /// source port, in a group of four bound here (`listen` checks IPv4, TCP and shard order).
    #[test]
    fn the_kernel_steers_ipv6_by_source_address() {
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0));
        let first = udp_listener(any, Group::Open).unwrap();
        let addr = first.local_addr().unwrap();
        let mut group = vec![first];
        for _ in 1..4 {
            group.push(udp_listener(addr, Group::Join).unwrap());
        }
        // A key that sends ::1 anywhere but socket 0, where a program that failed to load the
        // address (an aborted program returns 0) would also send it.
        let steer = (0..)
            .filter_map(|key| SourceHash::new(key, 4))
            .find(|s| s.shard_of(IpAddr::V6(Ipv6Addr::LOCALHOST)) != 0)
            .unwrap();
        steer.attach(&group[2], true).unwrap();
        let want = steer.shard_of(IpAddr::V6(Ipv6Addr::LOCALHOST));
        for s in &group {
            s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
        }
        for _ in 0..16 {
            let tx = UdpSocket::bind(any).unwrap();
            tx.send_to(b"x", addr).unwrap();
            let mut buf = [0u8; 8];
            group[want].recv(&mut buf).unwrap();
        }
        for (i, s) in group.iter().enumerate() {
            s.set_nonblocking(true).unwrap();
            assert!(s.recv(&mut [0u8; 8]).is_err(), "socket {i} got a datagram");
        }
    }
}
