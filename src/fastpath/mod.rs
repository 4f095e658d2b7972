//! The in-kernel fast path for TURN ChannelData over UDP/IPv4 (RFC 8656 §12).
//!
//! An eBPF program (bpf/fastpath.c, compiled by build.rs) sits at TC ingress of the server's
//! interfaces and relays bound channels without waking user space:
//!
//! - client → peer: a ChannelData datagram from `client` to the listener `server` whose
//!   channel is installed leaves as a plain UDP datagram from `relay` to `peer` carrying only
//!   the application data (the 4-byte ChannelData header is removed);
//! - peer → client: a datagram from `peer` to `relay` leaves as ChannelData from `server` to
//!   `client` (no padding: it is UDP).
//!
//! The program takes only what it can relay exactly: IPv4 without options or fragments, a
//! ChannelData length equal to the rest of the datagram (padded or short messages go to user
//! space), a destination the kernel routes without fragmenting (decided with `bpf_fib_lookup`
//! before the packet is touched). Everything else passes untouched to the sockets, where the
//! engine handles it as before. The engines stay the authority: they [`FastPath::install`] a
//! route when a channel is bound and permitted, refresh it with a later `until_ns`, and
//! [`FastPath::remove`] it when the binding or the permission goes.
//!
//! Expiry: each route carries `until_ns` on the `bpf_ktime_get_ns` clock (CLOCK_MONOTONIC, see
//! [`monotonic_ns`]). From that instant the program passes the channel's packets to user space,
//! which sees an expired binding and drops them: a route the engine forgot to remove cannot
//! keep relaying.
//!
//! Counters: a per-CPU map keyed by the route's `id` counts the packets and payload bytes
//! (without the ChannelData header) relayed in each direction; the program relays nothing for
//! an `id` without an entry, so every packet relayed in the kernel is counted. [`FastPath::counts`]
//! sums them, [`FastPath::forget`] takes the final counts and deletes the entry.
//!
//! Checksums are updated incrementally and every change goes through a helper that keeps
//! `skb->csum` right. Caveat: a locally generated packet (sent by a socket on this host: seen on
//! `lo`, or on a veth from a local namespace) is CHECKSUM_PARTIAL, and moving the UDP header
//! (which removing or adding the ChannelData header does) leaves its `csum_start` pointing at
//! the wrong bytes. The program therefore rewrites packets that arrived on `lo` only when they
//! are delivered locally, with a UDP checksum of 0; a PARTIAL packet from a local namespace
//! arriving on a veth is relayed with a wrong checksum (docs/fast-path.md).
//!
//! Requirements: `net.ipv4.conf.<interface>.forwarding=1` on each interface (the kernel's route
//! lookup for programs refuses otherwise; [`FastPath::load`] checks). A peer on one of the
//! host's own addresses reached from another interface is left to user space.
//!
//! Attachment uses TCX on Linux ≥ 6.6 (the attachment is a BPF link owned by this process: it
//! goes away with it) and a cls_bpf filter on a clsact qdisc before that.
//!
//! XDP: the same object holds an XDP program sharing the maps, attached in driver mode to each
//! interface (not `lo`) whose driver can transmit XDP frames ([`netdev`]). It relays what it
//! can send at once, by a redirect out of the interface the frame came in on (the single-NIC
//! VM) or of another interface with XDP, to a neighbour the kernel knows; the rest goes on to
//! the TC program unchanged. It runs before the kernel makes an skb, so a relayed frame costs the
//! driver's receive and transmit and nothing else. Where it cannot attach, TC does it all.

mod netdev;

use std::collections::HashMap as StdHashMap;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aya::maps::{HashMap, IterableMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues};
use aya::programs::tc::{self, NlOptions, SchedClassifier, TcAttachOptions, TcAttachType};
use aya::programs::{LinkOrder, ProgramError, Xdp, XdpFlags};
use aya::util::KernelVersion;
use aya::{Ebpf, EbpfError, EbpfLoader};
use tracing::debug;

/// The compiled program; empty when build.rs could not build it. Aligned: the ELF parser reads
/// its headers in place.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fastpath.o"));

/// The programs' names in bpf/fastpath.c.
const PROGRAM: &str = "tern_fastpath";
const XDP_PROGRAM: &str = "tern_fastpath_xdp";

/// Bit 0 of the route flags: set DF on the datagrams to the peer.
const FLAG_DONT_FRAGMENT: u32 = 1;

/// Only create an element (BPF_NOEXIST).
const NO_EXIST: u64 = 1;

/// How many lines of the verifier's log an error keeps (the end, where it says why).
const VERIFIER_LINES: usize = 20;
/// The `bpf(2)` command that reads many entries of a map in one call (linux/bpf.h, Linux 5.6).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Entries asked for in one batch call.
const BATCH: usize = 1024;

/// Where the XDP program is attached besides TC (`fast-path-xdp`, docs/fast-path.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// On every interface but `lo` whose driver transmits XDP frames, veths aside: there a
    /// frame is copied out of its skb for XDP and into a new one at the other end, which
    /// measured slower than TC alone (BENCHMARKS.md).
    #[default]
    Auto,
    /// As `Auto`, veths included.
    On,
    /// Nowhere: TC only.
    Off,
}

/// One bound channel, both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRoute {
    /// Names the counters; unique per allocation or channel, as the engine chooses.
    pub id: u64,
    /// The client's address as the server sees it.
    pub client: SocketAddrV4,
    /// The listener the client sends to.
    pub server: SocketAddrV4,
    /// The allocation's relayed address.
    pub relay: SocketAddrV4,
    /// The peer bound to `channel`.
    pub peer: SocketAddrV4,
    /// The channel number (0x4000..=0x4FFF).
    pub channel: u16,
    /// Until when the kernel relays, on the CLOCK_MONOTONIC clock ([`monotonic_ns`]).
    pub until_ns: u64,
    /// Set DF on the datagrams to the peer (the client asked for DONT-FRAGMENT).
    pub dont_fragment: bool,
}

/// What the kernel relayed for one route id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastCounts {
    pub to_peer_packets: u64,
    /// Application data, without the ChannelData header.
    pub to_peer_bytes: u64,
    pub to_client_packets: u64,
    /// Application data, without the ChannelData header.
    pub to_client_bytes: u64,
}

/// Why the fast path could not be loaded.
#[derive(Debug)]
pub enum FastPathError {
    /// build.rs did not build the program (no clang or headers when tern was compiled).
    NotBuilt,
    /// Not allowed to load programs or attach them (needs root, or CAP_BPF and CAP_NET_ADMIN).
    Permission(String),
    /// The kernel's verifier refused the program: the end of its log.
    Verifier { error: String, log: String },
    /// No interface of that name.
    NoSuchInterface(String),
    /// `net.ipv4.conf.<interface>.forwarding` is 0: the kernel's route lookup for programs
    /// (`bpf_fib_lookup`) then refuses every packet arriving there, so nothing would be relayed.
    ForwardingDisabled(String),
    /// Anything else, with aya's explanation.
    Other(String),
}

impl fmt::Display for FastPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FastPathError::NotBuilt => f.write_str(
                "the fast path was not built: clang, libbpf-dev or linux-libc-dev was missing \
                 when tern was compiled (see the build warning)",
            ),
            FastPathError::Permission(why) => {
                write!(
                    f,
                    "not permitted to load the fast path (run as root): {why}"
                )
            }
            FastPathError::Verifier { error, log } => {
                write!(
                    f,
                    "the kernel refused the fast path: {error}; verifier log:\n{log}"
                )
            }
            FastPathError::NoSuchInterface(name) => write!(f, "no such interface: {name}"),
            FastPathError::ForwardingDisabled(name) => write!(
                f,
                "net.ipv4.conf.{name}.forwarding is 0: the kernel does not route for the fast \
                 path there (set it to 1)"
            ),
            FastPathError::Other(why) => write!(f, "cannot load the fast path: {why}"),
        }
    }
}

impl std::error::Error for FastPathError {}

impl FastPathError {
    /// Classifies an aya error: a permission problem anywhere in its causes, a verifier
    /// refusal, or the message of the whole chain.
    fn from_aya(what: &str, e: &(dyn std::error::Error + 'static)) -> FastPathError {
        if let Some(ProgramError::LoadError {
            io_error,
            verifier_log,
        }) = e.downcast_ref::<ProgramError>()
        {
            if !is_permission(io_error) {
                let log = verifier_log.to_string();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(VERIFIER_LINES)..].join("\n");
                return FastPathError::Verifier {
                    error: io_error.to_string(),
                    log: tail,
                };
            }
        }
        let mut text = format!("{what}: {e}");
        let mut permission = false;
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            permission |= c.downcast_ref::<io::Error>().is_some_and(is_permission);
            cause = c.source();
        }
        if permission {
            FastPathError::Permission(text)
        } else {
            FastPathError::Other(text)
        }
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

// The map layouts of bpf/fastpath.c; addresses, ports and the channel in network byte order.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PeerKey {
    client_ip: u32,
    server_ip: u32,
    client_port: u16,
    server_port: u16,
    channel: u16,
    pad: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PeerValue {
    relay_ip: u32,
    peer_ip: u32,
    relay_port: u16,
    peer_port: u16,
    pad0: u32,
    until_ns: u64,
    id: u64,
    flags: u32,
    pad1: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ClientKey {
    peer_ip: u32,
    relay_ip: u32,
    peer_port: u16,
    relay_port: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ClientValue {
    server_ip: u32,
    client_ip: u32,
    server_port: u16,
    client_port: u16,
    channel: u16,
    pad0: u16,
    until_ns: u64,
    id: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    to_peer_packets: u64,
    to_peer_bytes: u64,
    to_client_packets: u64,
    to_client_bytes: u64,
}

// SAFETY: plain #[repr(C)] integers with explicit padding fields: every bit pattern is valid.
unsafe impl aya::Pod for PeerKey {}
// SAFETY: as above.
unsafe impl aya::Pod for PeerValue {}
// SAFETY: as above.
unsafe impl aya::Pod for ClientKey {}
// SAFETY: as above.
unsafe impl aya::Pod for ClientValue {}
// SAFETY: as above.
unsafe impl aya::Pod for Counts {}

fn ip(a: &SocketAddrV4) -> u32 {
    u32::from_ne_bytes(a.ip().octets())
}

fn port(a: &SocketAddrV4) -> u16 {
    a.port().to_be()
}

impl ChannelRoute {
    fn peer_key(&self) -> PeerKey {
        PeerKey {
            client_ip: ip(&self.client),
            server_ip: ip(&self.server),
            client_port: port(&self.client),
            server_port: port(&self.server),
            channel: self.channel.to_be(),
            pad: 0,
        }
    }

    fn client_key(&self) -> ClientKey {
        ClientKey {
            peer_ip: ip(&self.peer),
            relay_ip: ip(&self.relay),
            peer_port: port(&self.peer),
            relay_port: port(&self.relay),
        }
    }
}

struct Maps {
    /// The ids with a counts entry: aya 0.13.1's per-CPU lookup reads a missing key as zeros,
    /// and only this process creates and deletes entries.
    ids: std::collections::HashSet<u64>,
    to_peer: HashMap<MapData, PeerKey, PeerValue>,
    to_client: HashMap<MapData, ClientKey, ClientValue>,
    counts: PerCpuHashMap<MapData, u64, Counts>,
    xdp_stats: PerCpuArray<MapData, u64>,
}

/// The counts of every route id, read from the kernel at most once per the age the readers
/// accept and shared by the shards (`FastPath::all_counts`).
#[derive(Default)]
struct Snapshot {
    taken: Option<Instant>,
    counts: Arc<StdHashMap<u64, FastCounts>>,
}

/// `bpf_attr` as `BPF_MAP_LOOKUP_BATCH` reads it (the `batch` member of the union); the kernel
/// takes the rest of the union as zero.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// The loaded and attached program and its maps; share it between threads in an `Arc`.
pub struct FastPath {
    interfaces: Vec<String>,
    /// The interfaces with the XDP program too, and why each other one (not `lo`) has not.
    xdp: Vec<String>,
    xdp_not: Vec<String>,
    /// The program's kernel id, to find it among an interface's attached programs.
    program_id: u32,
    /// Attached with TCX (listable with aya) rather than a netlink cls_bpf filter.
    tcx: bool,
    cpus: usize,
    maps: Mutex<Maps>,
    snapshot: Mutex<Snapshot>,
    /// Owns the program and its attachments; dropping it detaches them.
    ebpf: Mutex<Ebpf>,
}

impl fmt::Debug for FastPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastPath")
            .field("interfaces", &self.interfaces)
            .field("xdp", &self.xdp)
            .field("program_id", &self.program_id)
            .finish_non_exhaustive()
    }
}

fn io_error(e: impl fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl FastPath {
    /// Loads the program and attaches it at TC ingress on each interface (adding the clsact
    /// qdisc when absent, on kernels without TCX), in the calling thread's network namespace.
    /// The error says why: not built, not permitted, the verifier's refusal, no such
    /// interface, forwarding disabled on it.
    pub fn load(interfaces: &[String], xdp_mode: XdpMode) -> Result<FastPath, FastPathError> {
        if OBJECT.is_empty() {
            return Err(FastPathError::NotBuilt);
        }
        for name in interfaces {
            let c = CString::new(name.as_str())
                .map_err(|_| FastPathError::NoSuchInterface(name.clone()))?;
            // SAFETY: if_nametoindex(3) reads a NUL-terminated string we own.
            if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
                return Err(FastPathError::NoSuchInterface(name.clone()));
            }
            let sysctl = format!("/proc/sys/net/ipv4/conf/{name}/forwarding");
            if std::fs::read_to_string(&sysctl).is_ok_and(|v| v.trim() == "0") {
                return Err(FastPathError::ForwardingDisabled(name.clone()));
            }
        }
        // The program has no CO-RE relocations, so the kernel's BTF (which `Ebpf::load` parses
        // from /sys/kernel/btf/vmlinux, megabytes of it) is not needed. The loader parses it
        // once on creation anyway; the heap it used goes back to the system below.
        let loaded = EbpfLoader::new().btf(None).load(OBJECT);
        release_free_heap();
        let mut ebpf =
            loaded.map_err(|e: EbpfError| FastPathError::from_aya("loading the object", &e))?;
        let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        let program_id;
        {
            let program: &mut SchedClassifier = ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| FastPathError::Other(format!("no program {PROGRAM} in the object")))?
                .try_into()
                .map_err(|e: ProgramError| FastPathError::from_aya(PROGRAM, &e))?;
            program
                .load()
                .map_err(|e| FastPathError::from_aya("loading the program", &e))?;
            program_id = program
                .info()
                .map_err(|e| FastPathError::from_aya("program info", &e))?
                .id();
            for name in interfaces {
                let options = if tcx {
                    TcAttachOptions::TcxOrder(LinkOrder::default())
                } else {
                    // EEXIST (already there) is fine; any other failure shows in the attach.
                    let _ = tc::qdisc_add_clsact(name);
                    TcAttachOptions::Netlink(NlOptions::default())
                };
                program
                    .attach_with_options(name, TcAttachType::Ingress, options)
                    .map_err(|e| FastPathError::from_aya(&format!("attaching to {name}"), &e))?;
            }
        }
        let map = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| FastPathError::Other(format!("no map {name} in the object")))
        };
        let maps = Maps {
            ids: std::collections::HashSet::new(),
            to_peer: HashMap::try_from(map(&mut ebpf, "to_peer")?)
                .map_err(|e| FastPathError::from_aya("to_peer", &e))?,
            to_client: HashMap::try_from(map(&mut ebpf, "to_client")?)
                .map_err(|e| FastPathError::from_aya("to_client", &e))?,
            counts: PerCpuHashMap::try_from(map(&mut ebpf, "counts")?)
                .map_err(|e| FastPathError::from_aya("counts", &e))?,
            xdp_stats: PerCpuArray::try_from(map(&mut ebpf, "xdp_stats")?)
                .map_err(|e| FastPathError::from_aya("xdp_stats", &e))?,
        };
        let mut xdp_out: HashMap<MapData, u32, u32> = HashMap::try_from(map(&mut ebpf, "xdp_out")?)
            .map_err(|e| FastPathError::from_aya("xdp_out", &e))?;
        let (xdp, xdp_not) = match xdp_mode {
            XdpMode::Off => (Vec::new(), vec![String::from("fast-path-xdp=off")]),
            _ => attach_xdp(&mut ebpf, interfaces, xdp_mode, &mut xdp_out),
        };
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| FastPathError::Other(format!("{what}: {e}")))?;
        Ok(FastPath {
            interfaces: interfaces.to_vec(),
            xdp,
            xdp_not,
            program_id,
            tcx,
            cpus,
            maps: Mutex::new(maps),
            snapshot: Mutex::default(),
            ebpf: Mutex::new(ebpf),
        })
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// The interfaces where the XDP program runs as well.
    pub fn xdp_interfaces(&self) -> &[String] {
        &self.xdp
    }

    /// For the log: where XDP runs, and why not on the other interfaces (`lo` aside).
    pub fn xdp_summary(&self) -> String {
        let on = if self.xdp.is_empty() {
            String::from("XDP on none")
        } else {
            format!("XDP on {}", self.xdp.join(", "))
        };
        if self.xdp_not.is_empty() {
            on
        } else {
            format!("{on} ({})", self.xdp_not.join("; "))
        }
    }

    /// The datagrams the XDP program relayed (both directions, all routes), summed over CPUs;
    /// they are in the routes' counts too.
    pub fn xdp_packets(&self) -> u64 {
        self.maps()
            .xdp_stats
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes both directions of a channel, and the counts entry for `route.id` when absent.
    /// Idempotent: a refresh is the same call with a later `until_ns`.
    pub fn install(&self, route: &ChannelRoute) -> io::Result<()> {
        let mut maps = self.maps();
        let zero = PerCpuValues::try_from(vec![Counts::default(); self.cpus]).map_err(io_error)?;
        // Counts first: the program relays nothing for an id without them.
        if let Err(e) = maps.counts.insert(route.id, zero, NO_EXIST) {
            let exists = matches!(&e, aya::maps::MapError::SyscallError(s)
                if s.io_error.raw_os_error() == Some(libc::EEXIST));
            if !exists {
                return Err(io_error(e));
            }
        }
        maps.ids.insert(route.id);
        let to_client = ClientValue {
            server_ip: ip(&route.server),
            client_ip: ip(&route.client),
            server_port: port(&route.server),
            client_port: port(&route.client),
            channel: route.channel.to_be(),
            pad0: 0,
            until_ns: route.until_ns,
            id: route.id,
        };
        maps.to_client
            .insert(route.client_key(), to_client, 0)
            .map_err(io_error)?;
        let to_peer = PeerValue {
            relay_ip: ip(&route.relay),
            peer_ip: ip(&route.peer),
            relay_port: port(&route.relay),
            peer_port: port(&route.peer),
            pad0: 0,
            until_ns: route.until_ns,
            id: route.id,
            flags: if route.dont_fragment {
                FLAG_DONT_FRAGMENT
            } else {
                0
            },
            pad1: 0,
        };
        maps.to_peer
            .insert(route.peer_key(), to_peer, 0)
            .map_err(io_error)
    }

    /// Removes both directions of a channel: only the entries that still belong to `route.id`
    /// (another route may have taken the same addresses since).
    pub fn remove(&self, route: &ChannelRoute) {
        let mut maps = self.maps();
        let peer_key = route.peer_key();
        if maps
            .to_peer
            .get(&peer_key, 0)
            .is_ok_and(|v| v.id == route.id)
        {
            let _ = maps.to_peer.remove(&peer_key);
        }
        let client_key = route.client_key();
        if maps
            .to_client
            .get(&client_key, 0)
            .is_ok_and(|v| v.id == route.id)
        {
            let _ = maps.to_client.remove(&client_key);
        }
    }

    fn sum(maps: &Maps, id: u64) -> Option<FastCounts> {
        if !maps.ids.contains(&id) {
            return None;
        }
        let per_cpu = maps.counts.get(&id, 0).ok()?;
        Some(total(per_cpu.iter()))
    }

    /// The counts of every id with an entry, each summed over the CPUs, as read at most
    /// `max_age` before `now`: the shards collect once a second each, and one read serves them
    /// all. The entries are read in batches of up to 1,024 per system call where the kernel can
    /// (Linux 5.6), one call per entry where it cannot; an id made since the read is missing.
    pub fn all_counts(&self, now: Instant, max_age: Duration) -> Arc<StdHashMap<u64, FastCounts>> {
        let mut snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if snapshot
            .taken
            .is_some_and(|t| now.saturating_duration_since(t) <= max_age)
        {
            return Arc::clone(&snapshot.counts);
        }
        let counts = self.read_all().unwrap_or_else(|e| {
            if !BATCH_REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                debug!("fast path: batch reads of the counts refused ({e}); one read per entry");
            }
            let maps = self.maps();
            maps.ids
                .iter()
                .filter_map(|&id| Some((id, Self::sum(&maps, id)?)))
                .collect()
        });
        snapshot.taken = Some(now);
        snapshot.counts = Arc::new(counts);
        Arc::clone(&snapshot.counts)
    }

    /// The counts of every id with an entry, read now with `BPF_MAP_LOOKUP_BATCH`; an error
    /// where the kernel does not have it.
    pub fn read_all(&self) -> io::Result<StdHashMap<u64, FastCounts>> {
        let maps = self.maps();
        let mut out = StdHashMap::with_capacity(maps.ids.len());
        let fd = IterableMap::map(&maps.counts).fd().as_fd().as_raw_fd();
        let mut keys = vec![0u64; BATCH];
        // A per-CPU value is the value (32 bytes, a multiple of 8) once per possible CPU.
        let mut values = vec![Counts::default(); BATCH * self.cpus];
        // A hash map's batch position is a bucket index (u32).
        let (mut at, mut next) = (0u32, 0u32);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { &raw const at as u64 },
                out_batch: &raw mut next as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: fd as u32,
                ..BatchAttr::default()
            };
            // SAFETY: bpf(2) with an attr of the layout linux/bpf.h gives the batch commands; it
            // writes at most `count` keys and `count` per-CPU values into the buffers, which
            // hold that many, and a u32 position into `next`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    &raw mut attr,
                    std::mem::size_of::<BatchAttr>(),
                )
            };
            let error = (r < 0).then(io::Error::last_os_error);
            let n = (attr.count as usize).min(BATCH);
            for (key, per_cpu) in keys.iter().zip(values.chunks(self.cpus)).take(n) {
                out.insert(*key, total(per_cpu.iter()));
            }
            match error {
                None => {}
                // The last entries came with this call.
                Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Some(e) => return Err(e),
            }
            at = next;
            first = false;
        }
    }

    /// The counts of `id` summed over the CPUs, since its entry was made; None without one.
    pub fn counts(&self, id: u64) -> Option<FastCounts> {
        Self::sum(&self.maps(), id)
    }

    /// The final counts of `id`, and its entry deleted (its routes, if any are left, stop
    /// relaying in the kernel).
    pub fn forget(&self, id: u64) -> Option<FastCounts> {
        let mut maps = self.maps();
        let counts = Self::sum(&maps, id)?;
        let _ = maps.counts.remove(&id);
        maps.ids.remove(&id);
        Some(counts)
    }

    /// Whether the program is still attached at ingress of every interface (an operator may
    /// have detached it, or an interface may be gone). With TCX this asks the kernel for the
    /// interface's programs. A netlink cls_bpf filter (kernels before 6.6) cannot be listed
    /// through aya, so there it answers whether every interface still exists. Interfaces are
    /// looked up by name: call it from the network namespace `load` ran in.
    pub fn attached(&self) -> bool {
        self.interfaces.iter().all(|name| {
            if self.tcx {
                SchedClassifier::query_tcx(name, TcAttachType::Ingress)
                    .is_ok_and(|(_, programs)| programs.iter().any(|p| p.id() == self.program_id))
            } else {
                CString::new(name.as_str()).is_ok_and(|c| {
                    // SAFETY: if_nametoindex(3) reads a NUL-terminated string we own.
                    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
                })
            }
        })
    }
}

/// Whether the kernel refused a batch read of the counts (said once, at debug level).
static BATCH_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One id's counts summed over the CPUs.
fn total<'a>(per_cpu: impl Iterator<Item = &'a Counts>) -> FastCounts {
    per_cpu.fold(FastCounts::default(), |s, c| FastCounts {
        to_peer_packets: s.to_peer_packets + c.to_peer_packets,
        to_peer_bytes: s.to_peer_bytes + c.to_peer_bytes,
        to_client_packets: s.to_client_packets + c.to_client_packets,
        to_client_bytes: s.to_client_bytes + c.to_client_bytes,
    })
}

/// Loads the XDP program and attaches it in driver mode to every interface but `lo` whose
/// driver transmits XDP frames (veths only when `mode` is `On`), entering each in `xdp_out`
/// (where XDP may redirect). Returns those interfaces and, for the others, why not. Nothing
/// here stops the fast path: without XDP the TC program relays everything.
fn attach_xdp(
    ebpf: &mut Ebpf,
    interfaces: &[String],
    mode: XdpMode,
    xdp_out: &mut HashMap<MapData, u32, u32>,
) -> (Vec<String>, Vec<String>) {
    let (mut on, mut not) = (Vec::new(), Vec::new());
    let candidates: Vec<&String> = interfaces.iter().filter(|name| *name != "lo").collect();
    if candidates.is_empty() {
        return (on, not);
    }
    let program: Result<&mut Xdp, String> = ebpf
        .program_mut(XDP_PROGRAM)
        .ok_or_else(|| format!("no program {XDP_PROGRAM} in the object"))
        .and_then(|p| <&mut Xdp>::try_from(p).map_err(|e| e.to_string()))
        .and_then(|p| {
            p.load()
                .map_err(|e| FastPathError::from_aya("loading it", &e).to_string())?;
            Ok(p)
        });
    let program = match program {
        Ok(program) => program,
        Err(why) => {
            not.push(format!("the XDP program did not load: {why}"));
            return (on, not);
        }
    };
    for name in candidates {
        let veth = netdev::driver(name).is_ok_and(|d| d == "veth");
        if mode == XdpMode::Auto && veth {
            not.push(format!(
                "{name}: a veth, where XDP is slower than TC (fast-path-xdp=on uses it)"
            ));
            continue;
        }
        let index = CString::new(name.as_str())
            // SAFETY: if_nametoindex(3) reads a NUL-terminated string we own.
            .map(|c| unsafe { libc::if_nametoindex(c.as_ptr()) })
            .unwrap_or(0);
        match netdev::xdp_features(index) {
            Ok(Some(features)) if features & netdev::XDP_ACT_NDO_XMIT != 0 => {}
            Ok(Some(_)) => {
                let why = if veth {
                    " (a veth: its other end has neither XDP nor GRO)"
                } else {
                    ""
                };
                not.push(format!(
                    "{name}: its driver cannot transmit XDP frames{why}"
                ));
                continue;
            }
            Ok(None) => {
                not.push(format!(
                    "{name}: this kernel does not say what its driver can do (before 6.3)"
                ));
                continue;
            }
            Err(e) => {
                not.push(format!("{name}: asking for its XDP features: {e}"));
                continue;
            }
        }
        // Entered before the attach: the program redirects only to interfaces in xdp_out.
        if let Err(e) = xdp_out.insert(index, index, 0) {
            not.push(format!("{name}: xdp_out: {e}"));
            continue;
        }
        if let Err(e) = program.attach(name, XdpFlags::DRV_MODE) {
            let _ = xdp_out.remove(&index);
            not.push(FastPathError::from_aya(&format!("{name}: attaching XDP"), &e).to_string());
            continue;
        }
        on.push(name.clone());
    }
    (on, not)
}

impl Drop for FastPath {
    fn drop(&mut self) {
        let mut ebpf = self.ebpf.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(program)) = ebpf
            .program_mut(PROGRAM)
            .map(<&mut SchedClassifier>::try_from)
        {
            // Unloading detaches every attachment the program owns (TCX links and filters).
            let _ = program.unload();
        }
        if let Some(Ok(program)) = ebpf.program_mut(XDP_PROGRAM).map(<&mut Xdp>::try_from) {
            let _ = program.unload();
        }
    }
}

/// CLOCK_MONOTONIC nanoseconds of `t`: the clock of `bpf_ktime_get_ns`, which std's `Instant`
/// also reads on Linux. Computed from one (`Instant::now()`, `clock_gettime`) pair.
#[allow(clippy::disallowed_methods)] // the fast path is not the protocol core
pub fn monotonic_ns(t: Instant) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let now = Instant::now();
    // SAFETY: clock_gettime(2) writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now_ns = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
    if t >= now {
        now_ns.saturating_add((t - now).as_nanos() as u64)
    } else {
        now_ns.saturating_sub((now - t).as_nanos() as u64)
    }
}

/// Returns the heap's free memory to the system (glibc keeps it otherwise): the loader's
/// transient parse of the kernel's BTF would stay in the resident set for good.
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_network_byte_order() {
        let route = ChannelRoute {
            id: 7,
            client: "192.0.2.1:1234".parse().unwrap(),
            server: "192.0.2.2:3478".parse().unwrap(),
            relay: "192.0.2.2:50000".parse().unwrap(),
            peer: "198.51.100.9:9".parse().unwrap(),
            channel: 0x4001,
            until_ns: 0,
            dont_fragment: false,
        };
        let key = route.peer_key();
        assert_eq!(key.client_ip.to_ne_bytes(), [192, 0, 2, 1]);
        assert_eq!(key.client_port.to_ne_bytes(), [0x04, 0xd2]);
        assert_eq!(key.channel.to_ne_bytes(), [0x40, 0x01]);
        assert_eq!(std::mem::size_of::<PeerValue>(), 40);
        assert_eq!(std::mem::size_of::<ClientValue>(), 32);
        assert_eq!(std::mem::size_of::<PeerKey>(), 16);
        assert_eq!(std::mem::size_of::<ClientKey>(), 12);
    }

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn monotonic_ns_follows_instant() {
        let now = Instant::now();
        let a = monotonic_ns(now);
        let b = monotonic_ns(now + std::time::Duration::from_millis(300));
        assert!((b - a).abs_diff(300_000_000) < 1_000_000, "{a} {b}");
    }
}
