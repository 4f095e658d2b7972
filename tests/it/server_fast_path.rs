//! The kernel fast path (`fast-path`, docs/fast-path.md) in the deployment lab: tern on the VM,
//! a client on the Internet side, an echo peer on another host, the program attached to the
//! VM's interfaces. What must hold: bound channels are relayed by the kernel (its counters move,
//! the shards' receive counters do not); the Prometheus totals, per user, equal the bytes the
//! client sent; an expired permission stops the kernel within a second; `max-bps` allocations
//! and quotas behave as without it, and a reload that sets `bps-capacity` takes the kernel's
//! routes back at once; a detached or unloadable program leaves relaying to the shards, and
//! says so once.

// Deadlines for real processes need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use prometheus_parse::Scrape;
use tern_testkit::process::{TernProcess, Wanted};

use crate::support::lab::{self, Lab, Vm, PEER, PUBLIC};
use crate::support::metrics;
use crate::support::turn_client::TurnClient;
use crate::support::{tern_bin, Server, TempDir, PASSWORD, REALM, USER};

const PEER_PORT: u16 = 3480;
const METRICS: &str = "127.0.0.1:9641";
const CHANNEL: u16 = 0x4001;

/// The lab's hosts with forwarding on in the VM, which the program's route lookups need
/// (docs/fast-path.md); None, with the reason printed, where namespaces cannot be made.
fn vm_lab() -> Option<Lab> {
    let lab = match Lab::new(Vm::Public) {
        Ok(lab) => lab,
        Err(why) => {
            lab::skip(&why.0);
            return None;
        }
    };
    forwarding_on(&lab);
    Some(lab)
}

/// `net.ipv4.conf.all.forwarding=1` on the lab's VM.
fn forwarding_on(lab: &Lab) {
    lab.sh("vm", &["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"])
        .expect("forwarding on the VM");
}

/// `wrapper` run on the lab's VM: `ip netns exec` and then `wrapper`.
fn on_vm(lab: &Lab, wrapper: &[&str]) -> Vec<String> {
    let mut all = lab.on("vm");
    all.extend(wrapper.iter().map(|s| (*s).to_owned()));
    all
}

/// Whether the program loads on this machine (root, built with clang): found once by starting
/// tern with `fast-path=on` on the lab's VM. Where it does not, the tests print why and pass,
/// unless `TERN_REQUIRE_INTEROP=1`.
pub fn program_loads() -> bool {
    static LOADS: OnceLock<Result<(), String>> = OnceLock::new();
    let result = LOADS.get_or_init(|| {
        let lab = Lab::new(Vm::Public).map_err(|why| why.0)?;
        forwarding_on(&lab);
        let args: Vec<String> = vec![
            String::from("-n"),
            format!("--listening-ip={PUBLIC}"),
            String::from("--listening-port=0"),
            String::from("--no-tcp"),
            format!("--user={USER}:{PASSWORD}"),
            format!("--realm={REALM}"),
            String::from("--fast-path=on"),
        ];
        let want = Wanted::from_args(&args);
        let on = lab.on("vm");
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let bin = Path::new(tern_bin());
        TernProcess::spawn(bin, &on, &args, &[], want, Duration::from_secs(20))
            .map(drop)
            .map_err(|log| log.lines().last().unwrap_or_default().to_owned())
    });
    match result {
        Ok(()) => true,
        Err(why) => {
            lab::skip(&format!("the fast path does not load here: {why}"));
            false
        }
    }
}

/// The lab with tern on the VM (`fast-path=on`, Prometheus on the VM's loopback) plus `extra`
/// flags, and an echo peer on the peer host; None when either cannot run here.
fn setup(extra: &[&str]) -> Option<(Lab, Server, Echo)> {
    setup_with(extra, Xdp::No)
}

/// Whether the VM's interface can carry the XDP program as well (docs/fast-path.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Xdp {
    /// As a veth whose other end has neither XDP nor GRO: TC only.
    No,
    /// GRO on at the router's end of the VM's veth: its driver then transmits XDP frames.
    /// The client and peer hosts checksum their datagrams in full (no TX checksum offload on
    /// their veths), as every datagram that crossed a wire is: XDP sees no skb, so a local
    /// namespace's CHECKSUM_PARTIAL datagram would leave it with a checksum the receiver
    /// refuses (docs/fast-path.md).
    Yes,
}

fn setup_with(extra: &[&str], xdp: Xdp) -> Option<(Lab, Server, Echo)> {
    if !program_loads() {
        return None;
    }
    let lab = vm_lab()?;
    if xdp == Xdp::Yes {
        let gro = lab.sh("internet", &["ethtool", "-K", "to-vm", "gro", "on"]);
        if gro.is_err() {
            lab::skip("no ethtool (apt-get install ethtool) to turn GRO on at the router's end");
            return None;
        }
        for host in ["client", "peer"] {
            lab.sh(host, &["ethtool", "-K", "eth0", "tx", "off"])
                .expect("TX checksum offload off");
        }
    }
    let on = on_vm(&lab, &[]);
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let listening = format!("--listening-ip={PUBLIC}");
    let user = format!("--user={USER}:{PASSWORD}");
    let realm = format!("--realm={REALM}");
    let mut args = vec![
        "-n",
        &listening,
        "--listening-port=3478",
        "--no-tcp",
        "--lt-cred-mech",
        &user,
        &realm,
        "--prometheus",
        "--prometheus-address=127.0.0.1",
        "--fast-path=on",
    ];
    if xdp == Xdp::Yes {
        // The VM's interface is a veth: only `on` puts XDP there.
        args.push("--fast-path-xdp=on");
    }
    args.extend_from_slice(extra);
    let server = Server::start_wrapped(&on, &args);
    let echo = Echo::start(&lab);
    Some((lab, server, echo))
}

/// A UDP echo on the peer host that counts what it received.
struct Echo {
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Echo {
    fn start(lab: &Lab) -> Echo {
        let addr = peer();
        let socket = lab.in_host("peer", || {
            UdpSocket::bind(addr).expect("bind the echo peer")
        });
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Echo {
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn peer() -> SocketAddr {
    SocketAddr::new(PEER.parse().expect("peer ip"), PEER_PORT)
}

/// A client on the client host with an allocation and `CHANNEL` bound to the echo peer.
fn bound_client(lab: &Lab) -> TurnClient {
    let server = SocketAddr::new(PUBLIC.parse().expect("ip"), 3478);
    lab.in_host("client", || {
        let mut client =
            TurnClient::bound("0.0.0.0:0".parse().expect("any"), server, USER, PASSWORD);
        client.allocate().expect("allocate");
        client.channel_bind(CHANNEL, peer()).expect("ChannelBind");
        client
    })
}

/// Sends `n` ChannelData messages of `len` bytes one at a time, each echoed back; false at the
/// first one that does not come back.
fn echo_round_trips(client: &TurnClient, n: usize, len: usize) -> bool {
    client
        .socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let payload: Vec<u8> = (0..len).map(|k| (i + k) as u8).collect();
        client.send_channel(CHANNEL, &payload);
        let Ok(got) = client.socket.recv(&mut buf) else {
            return false;
        };
        let mut expected = CHANNEL.to_be_bytes().to_vec();
        expected.extend_from_slice(&(len as u16).to_be_bytes());
        expected.extend_from_slice(&payload);
        assert_eq!(&buf[..got], &expected[..], "echo {i}");
    }
    true
}

fn scrape(lab: &Lab) -> Scrape {
    lab.in_host("vm", || metrics::fetch(METRICS.parse().expect("address")).1)
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics::find(s, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}")) as u64
}

/// What the shards themselves received (every UDP shard, ring or not).
fn shard_received(s: &Scrape) -> u64 {
    s.samples
        .iter()
        .filter(|x| x.metric == "tern_shard_packets_total")
        .map(|x| metrics::number(&x.value) as u64)
        .sum()
}

/// ChannelData messages the kernel relayed to peers.
fn fast_to_peer(s: &Scrape) -> u64 {
    value(
        s,
        "tern_fast_path_packets_total",
        &[("direction", "to_peer")],
    )
}

/// Waits until `f` holds on a scrape (the shards read the kernel's counts once a second).
fn eventually(lab: &Lab, what: &str, f: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(lab);
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: never held");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_kernel_relays_bound_channels_and_the_totals_count_every_byte() {
    relays_bound_channels_and_counts_every_byte(Xdp::No);
}

/// The same at XDP: the program runs in the veth's driver and relays before an skb exists.
#[test]
fn at_xdp_the_kernel_relays_bound_channels_and_the_totals_count_every_byte() {
    relays_bound_channels_and_counts_every_byte(Xdp::Yes);
}

fn relays_bound_channels_and_counts_every_byte(xdp: Xdp) {
    let Some((lab, server, echo)) = setup_with(&[], xdp) else {
        return;
    };
    let client = bound_client(&lab);
    let before = shard_received(&scrape(&lab));
    const N: u64 = 300;
    const LEN: u64 = 160;
    assert!(
        echo_round_trips(&client, N as usize, LEN as usize),
        "{}",
        server.log()
    );
    assert_eq!(echo.received(), N);
    let fast = |s: &Scrape, dir| value(s, "tern_fast_path_packets_total", &[("direction", dir)]);
    let s = eventually(&lab, "the fast path's counts reach the metrics", |s| {
        fast(s, "to_peer") == N && fast(s, "to_client") == N
    });
    let in_shards = shard_received(&s) - before;
    assert!(
        in_shards < 10,
        "the shards received {in_shards} packets for {N} round trips: not the fast path"
    );
    let bytes = |dir| value(&s, "tern_fast_path_bytes_total", &[("direction", dir)]);
    assert_eq!(bytes("to_peer"), N * LEN);
    assert_eq!(bytes("to_client"), N * LEN);
    // coturn's per-user counters: the client's datagrams with their 4-byte headers, the peer's
    // without.
    let user = [("realm", REALM)];
    assert_eq!(value(&s, "turn_traffic_rcvp", &user), N);
    assert_eq!(value(&s, "turn_traffic_rcvb", &user), N * (LEN + 4));
    assert_eq!(value(&s, "turn_traffic_sentb", &user), N * (LEN + 4));
    assert_eq!(value(&s, "turn_traffic_peer_sentb", &user), N * LEN);
    assert_eq!(value(&s, "turn_traffic_peer_rcvb", &user), N * LEN);
    assert_eq!(value(&s, "turn_total_traffic_peer_sentp", &[]), N);
    // Which program relayed them: at XDP all but those sent before the VM knew its gateway's
    // link address (the TC program resolves it), none without XDP.
    let at_xdp = value(&s, "tern_fast_path_xdp_packets_total", &[]);
    match xdp {
        Xdp::Yes => {
            assert!(server.log().contains("XDP on eth0"), "{}", server.log());
            assert!(
                (2 * N - 2..=2 * N).contains(&at_xdp),
                "{at_xdp} of {} at XDP",
                2 * N
            );
        }
        Xdp::No => {
            assert!(server.log().contains("XDP on none"), "{}", server.log());
            assert_eq!(at_xdp, 0);
        }
    }
}

#[test]
fn an_expired_permission_stops_the_kernel_within_a_second() {
    expired_permission_stops_the_kernel_within_a_second(Xdp::No);
}

#[test]
fn an_expired_permission_stops_xdp_within_a_second() {
    expired_permission_stops_the_kernel_within_a_second(Xdp::Yes);
}

fn expired_permission_stops_the_kernel_within_a_second(xdp: Xdp) {
    let Some((lab, server, echo)) = setup_with(&["--permission-lifetime=3"], xdp) else {
        return;
    };
    let client = bound_client(&lab);
    let bound = Instant::now();
    assert!(echo_round_trips(&client, 20, 100), "{}", server.log());
    let relayed = echo.received();
    let no_permission = |s: &Scrape| value(s, "tern_drops_total", &[("reason", "no_permission")]);
    let dropped = no_permission(&scrape(&lab));
    // The permission ends 3 s after the ChannelBind; one second later nothing may pass.
    thread::sleep((bound + Duration::from_secs(4)).saturating_duration_since(Instant::now()));
    for _ in 0..20 {
        client.send_channel(CHANNEL, &[7; 100]);
    }
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        echo.received(),
        relayed,
        "relayed after the permission expired"
    );
    let s = eventually(
        &lab,
        "the shards drop what the kernel no longer relays",
        |s| no_permission(s) >= dropped + 20,
    );
    assert_eq!(no_permission(&s), dropped + 20, "{}", server.log());
}

#[test]
fn bandwidth_limited_allocations_stay_in_the_shards_and_quotas_hold() {
    // 20 kB/s each way, and one allocation per user.
    let Some((lab, server, echo)) = setup(&["--max-bps=20000", "--user-quota=1"]) else {
        return;
    };
    let client = bound_client(&lab);
    let server_addr = SocketAddr::new(PUBLIC.parse().expect("ip"), 3478);
    let refused = lab.in_host("client", || {
        let mut second = TurnClient::bound(
            "0.0.0.0:0".parse().expect("any"),
            server_addr,
            USER,
            PASSWORD,
        );
        second
            .allocate()
            .expect_err("a second allocation past user-quota=1")
    });
    assert_eq!(refused.code, 486);
    // Two seconds of 1000-byte messages as fast as the socket takes them: 40 kB at most may
    // reach the peer (the bucket's burst included), far less than was sent.
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        client.send_channel(CHANNEL, &[1; 1000]);
        sent += 1;
        if sent % 50 == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    thread::sleep(Duration::from_millis(300));
    let relayed = echo.received();
    assert!(sent > 200, "sent only {sent}");
    assert!(
        (1..=60).contains(&relayed),
        "max-bps=20000 relayed {relayed} of {sent} 1000-byte messages in 2 s\n{}",
        server.log()
    );
    let s = scrape(&lab);
    let fast = value(
        &s,
        "tern_fast_path_packets_total",
        &[("direction", "to_peer")],
    );
    assert_eq!(fast, 0, "an allocation under max-bps went to the fast path");
}

/// The shards count bytes against `bps-capacity`; the kernel does not. A reload that sets it
/// must take the routes back at once, not at each allocation's next request or timer (minutes).
#[test]
fn a_reload_that_sets_bps_capacity_takes_the_routes_back_from_the_kernel() {
    let dir = TempDir::new("fast-capacity");
    let conf = dir.path("turnserver.conf");
    std::fs::write(&conf, "bps-capacity=0\n").expect("write config");
    let conf_arg = conf.to_str().expect("utf-8 path");
    let Some((lab, server, echo)) = setup(&["-c", conf_arg]) else {
        return;
    };
    let client = bound_client(&lab);
    assert!(echo_round_trips(&client, 20, 160), "{}", server.log());
    eventually(&lab, "the kernel relays the channel", |s| {
        fast_to_peer(s) == 20
    });
    let before = shard_received(&scrape(&lab));

    // max-bps comes with a capacity (coturn's rule) and holds for new allocations only.
    std::fs::write(&conf, "max-bps=10000000\nbps-capacity=10000\n").expect("rewrite config");
    server.signal(libc::SIGHUP);
    server
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reload:\n{}", server.log()));
    // No request on the allocation, and its timer is minutes away: only the reload can have
    // taken the route back. Probe until a ChannelData message reaches a shard.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard_received(&scrape(&lab)) == before {
        assert!(
            Instant::now() < deadline,
            "the kernel still relays the channel after the reload\n{}",
            server.log()
        );
        client.send_channel(CHANNEL, &[2; 100]);
        thread::sleep(Duration::from_millis(100));
    }
    // Probes sent before the shard took the route back went through the kernel; its counts
    // reach the metrics once a second. From here on nothing more may.
    thread::sleep(Duration::from_millis(1500));
    let in_kernel = fast_to_peer(&scrape(&lab));
    // The capacity holds: of 100 kB sent at once, a few kB reach the peer.
    let echoed = echo.received();
    for _ in 0..100 {
        client.send_channel(CHANNEL, &[1; 1000]);
    }
    thread::sleep(Duration::from_millis(300));
    let passed = echo.received() - echoed;
    assert!(
        (1..=20).contains(&passed),
        "{passed} of 100 passed\n{}",
        server.log()
    );
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(fast_to_peer(&scrape(&lab)), in_kernel);
}

/// The ids of the BPF links process `pid` holds (its `anon_inode:bpf_link` descriptors'
/// fdinfo): how an operator finds what to `bpftool link detach`.
fn bpf_links(pid: u32) -> Vec<u32> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the server's descriptors");
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:bpf_link")
        })
        .filter_map(|fd| {
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let info = std::fs::read_to_string(info).ok()?;
            let id = info.lines().find_map(|l| l.strip_prefix("link_id:"))?;
            id.trim().parse().ok()
        })
        .collect()
}

#[test]
fn a_detached_program_leaves_relaying_to_the_shards_and_says_so_once() {
    if crate::support::interop_tool("bpftool").is_none() {
        return;
    }
    let Some((lab, server, echo)) = setup(&[]) else {
        return;
    };
    let client = bound_client(&lab);
    assert!(echo_round_trips(&client, 50, 100), "{}", server.log());
    eventually(&lab, "the fast path relayed", |s| fast_to_peer(s) == 50);
    let links = bpf_links(server.pid());
    assert!(!links.is_empty(), "tern holds no BPF link");
    for link in links {
        let out = std::process::Command::new("bpftool")
            .args(["link", "detach", "id", &link.to_string()])
            .output()
            .expect("run bpftool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = shard_received(&scrape(&lab));
    assert!(echo_round_trips(&client, 50, 100), "{}", server.log());
    assert_eq!(echo.received(), 100);
    let s = scrape(&lab);
    assert_eq!(
        fast_to_peer(&s),
        50,
        "the kernel relayed after it was detached"
    );
    assert!(
        shard_received(&s) >= before + 100,
        "the shards did not relay"
    );
    let line = "the program was detached";
    assert!(
        server.wait_for_log(line, Duration::from_secs(5)).is_some(),
        "{}",
        server.log()
    );
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.log().matches(line).count(), 1, "{}", server.log());
}

/// `nobody` on the lab's VM with `caps` (setpriv's list, e.g. "+bpf,+net_admin") as its
/// inheritable, ambient and bounding sets: how the unit runs tern.
fn as_nobody(lab: &Lab, caps: &str) -> Vec<String> {
    let inherit = format!("--inh-caps=-all{caps}");
    let ambient = format!("--ambient-caps=-all{caps}");
    let bounding = format!("--bounding-set=-all{caps}");
    let setpriv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &inherit,
        &ambient,
        &bounding,
        "--",
    ];
    on_vm(lab, &setpriv)
}

/// tern's flags for the privilege tests: the VM's public address, `fast-path=<mode>`.
fn unprivileged_args(mode: &str) -> Vec<String> {
    vec![
        String::from("-n"),
        format!("--listening-ip={PUBLIC}"),
        String::from("--listening-port=3478"),
        String::from("--no-tcp"),
        format!("--user={USER}:{PASSWORD}"),
        format!("--realm={REALM}"),
        format!("--fast-path={mode}"),
    ]
}

#[test]
fn without_privileges_auto_relays_through_the_shards_and_on_refuses_to_start() {
    if !program_loads() {
        return;
    }
    let Some(lab) = vm_lab() else { return };
    // Without CAP_BPF and CAP_NET_ADMIN the program cannot load.
    let nobody = as_nobody(&lab, "");
    let nobody: Vec<&str> = nobody.iter().map(String::as_str).collect();
    let on = unprivileged_args("on");
    let want = Wanted::from_args(&on);
    let bin = Path::new(tern_bin());
    let refused = TernProcess::spawn(bin, &nobody, &on, &[], want, Duration::from_secs(20));
    let log = refused
        .err()
        .expect("fast-path=on without privileges must not start");
    assert!(log.contains("fast path"), "{log}");

    let auto = unprivileged_args("auto");
    let auto: Vec<&str> = auto.iter().map(String::as_str).collect();
    let server = Server::start_wrapped(&nobody, &auto);
    let line = server
        .wait_for_log("fast path: off", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no line saying why: {}", server.log()));
    assert!(line.contains("did not load"), "{line}");
    let echo = Echo::start(&lab);
    let client = bound_client(&lab);
    assert!(echo_round_trips(&client, 5, 100), "{}", server.log());
    assert_eq!(echo.received(), 5);
}

#[test]
fn the_units_drop_in_grants_what_loading_the_program_needs() {
    if !program_loads() {
        return;
    }
    let Some(lab) = vm_lab() else { return };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/fast-path.conf");
    let drop_in = std::fs::read_to_string(&path).expect("systemd/fast-path.conf");
    let caps = drop_in
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("an AmbientCapabilities line");
    let caps: String = caps
        .split_whitespace()
        .map(|c| format!(",+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let wrapper = as_nobody(&lab, &caps);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let args = unprivileged_args("on");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_wrapped(&wrapper, &args);
    assert!(
        server
            .wait_for_log("fast path: on", Duration::from_secs(5))
            .is_some(),
        "{}",
        server.log()
    );
    let echo = Echo::start(&lab);
    let client = bound_client(&lab);
    assert!(echo_round_trips(&client, 5, 100), "{}", server.log());
    assert_eq!(echo.received(), 5);
}
