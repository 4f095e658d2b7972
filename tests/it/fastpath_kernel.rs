//! The eBPF fast path (src/fastpath) in a real kernel: ChannelData relayed both ways without
//! the sockets of the listener and the relay seeing it, the expiry and removal handing traffic
//! back to user space, the counters, and the redirect path across veths with checksums the
//! receiving kernels verify. Needs root and a built program (clang and libbpf-dev when tern was
//! compiled); without them each test prints `NOTICE: skipped: ...` (fails under
//! `TERN_REQUIRE_INTEROP=1`).
#![allow(clippy::disallowed_methods)]

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tern::fastpath::{monotonic_ns, ChannelRoute, FastCounts, FastPath, FastPathError, XdpMode};

use crate::support::lab::{Lab, Vm, CLIENT, PEER, PUBLIC};

const CHANNEL: u16 = 0x4001;

fn skipped(why: &str) {
    if std::env::var("TERN_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why} (TERN_REQUIRE_INTEROP=1)");
    }
    eprintln!("NOTICE: skipped: {why}");
}

/// A lab when the kernel tests can run here.
fn lab() -> Option<Lab> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skipped("the fast path tests need root (eBPF, network namespaces)");
        return None;
    }
    if let Err(FastPathError::NotBuilt) = FastPath::load(&[], XdpMode::On) {
        skipped("the fast path was not built (no clang or libbpf-dev when tern was compiled)");
        return None;
    }
    match Lab::new(Vm::Public) {
        Ok(lab) => Some(lab),
        Err(e) => {
            skipped(&e.0);
            None
        }
    }
}

fn v4(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn bind(lab: &Lab, host: &str, addr: SocketAddrV4) -> UdpSocket {
    lab.in_host(host, || {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("{host} {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s
    })
}

fn channel_data(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(4 + payload.len());
    m.extend_from_slice(&channel.to_be_bytes());
    m.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// The next datagram on `s` and its source; None after the read timeout.
fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddrV4)> {
    let mut buf = [0u8; 2048];
    match s.recv_from(&mut buf) {
        Ok((n, SocketAddr::V4(from))) => Some((buf[..n].to_vec(), from)),
        Ok((_, from)) => panic!("IPv6 source {from}"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

fn nothing(s: &UdpSocket, what: &str) {
    if let Some((data, from)) = recv(s) {
        panic!("{what} received {} bytes from {from}", data.len());
    }
}

fn until(after: Duration) -> u64 {
    monotonic_ns(Instant::now() + after)
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// The four endpoints on one host's lo.
struct Local {
    client: UdpSocket,
    server: UdpSocket,
    relay: UdpSocket,
    peer: UdpSocket,
    route: ChannelRoute,
}

fn local(lab: &Lab, id: u64, until_ns: u64) -> Local {
    let (c, s, r, p) = (
        v4("127.0.0.2:40000"),
        v4("127.0.0.3:3478"),
        v4("127.0.0.4:50000"),
        v4("127.0.0.5:9000"),
    );
    Local {
        client: bind(lab, "vm", c),
        server: bind(lab, "vm", s),
        relay: bind(lab, "vm", r),
        peer: bind(lab, "vm", p),
        route: ChannelRoute {
            id,
            client: c,
            server: s,
            relay: r,
            peer: p,
            channel: CHANNEL,
            until_ns,
            dont_fragment: false,
        },
    }
}

/// Loads the program on `ifname` of `host`, at XDP too wherever the driver can (veths included).
fn load(lab: &Lab, host: &str, ifname: &str) -> FastPath {
    load_with(lab, host, ifname, XdpMode::On)
}

fn load_with(lab: &Lab, host: &str, ifname: &str, xdp: XdpMode) -> FastPath {
    let sysctl = format!("net.ipv4.conf.{ifname}.forwarding=1");
    lab.sh(host, &["sysctl", "-qw", &sysctl]).unwrap();
    lab.in_host(host, || FastPath::load(&[ifname.to_string()], xdp))
        .unwrap_or_else(|e| panic!("load on {host} {ifname}: {e}"))
}

#[test]
fn fastpath_relays_channel_data_on_lo_both_ways_and_counts() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "lo");
    assert_eq!(fp.interfaces(), ["lo"]);
    assert!(lab.in_host("vm", || fp.attached()));
    let l = local(&lab, 1, until(Duration::from_secs(60)));
    fp.install(&l.route).unwrap();
    fp.install(&l.route).unwrap();
    assert_eq!(fp.counts(1), Some(FastCounts::default()));

    let mut expected = FastCounts::default();
    for (i, n) in [1usize, 5, 100, 1199].into_iter().enumerate() {
        let data = payload(n, i as u8);
        l.client
            .send_to(&channel_data(CHANNEL, &data), l.route.server)
            .unwrap();
        let (got, from) = recv(&l.peer).expect("the peer receives the payload");
        assert_eq!((got, from), (data.clone(), l.route.relay));
        expected.to_peer_packets += 1;
        expected.to_peer_bytes += n as u64;

        l.peer.send_to(&data, l.route.relay).unwrap();
        let (got, from) = recv(&l.client).expect("the client receives ChannelData");
        assert_eq!((got, from), (channel_data(CHANNEL, &data), l.route.server));
        expected.to_client_packets += 1;
        expected.to_client_bytes += n as u64;
    }
    nothing(&l.server, "the listener");
    nothing(&l.relay, "the relay socket");
    assert_eq!(fp.counts(1), Some(expected));

    // Padded ChannelData (length short of the datagram) is user space's, untouched.
    let mut padded = channel_data(CHANNEL, b"abc");
    padded.push(0);
    l.client.send_to(&padded, l.route.server).unwrap();
    assert_eq!(recv(&l.server), Some((padded, l.route.client)));
    // So is another channel.
    let other = channel_data(0x4002, b"xyz");
    l.client.send_to(&other, l.route.server).unwrap();
    assert_eq!(recv(&l.server), Some((other, l.route.client)));
    assert_eq!(fp.counts(1), Some(expected));
}

/// The shards read the counts of all their routes once a second: in batches of 1,024 entries
/// per system call, here three of them, and the snapshot serves every reader within its age.
#[test]
fn fastpath_counts_of_thousands_of_routes_are_read_in_batches() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "lo");
    let l = local(&lab, 1, until(Duration::from_secs(60)));
    fp.install(&l.route).unwrap();
    let data = payload(200, 3);
    for _ in 0..3 {
        l.client
            .send_to(&channel_data(CHANNEL, &data), l.route.server)
            .unwrap();
        recv(&l.peer).expect("the peer receives the payload");
        l.peer.send_to(&data, l.route.relay).unwrap();
        recv(&l.client).expect("the client receives ChannelData");
    }
    let relayed = FastCounts {
        to_peer_packets: 3,
        to_peer_bytes: 600,
        to_client_packets: 3,
        to_client_bytes: 600,
    };
    assert_eq!(fp.counts(1), Some(relayed));
    const ROUTES: u16 = 2_600;
    for i in 1..ROUTES {
        let mut route = l.route.clone();
        route.id = 1 + u64::from(i);
        route.client.set_port(40_000 + i);
        route.relay.set_port(50_000 + i);
        fp.install(&route).unwrap();
    }

    let all = fp.read_all().expect("a batch read (Linux 5.6 and later)");
    assert_eq!(all.len(), usize::from(ROUTES));
    assert_eq!(all.get(&1), Some(&relayed));
    let idle = (2..=u64::from(ROUTES)).filter(|id| all.get(id) == Some(&FastCounts::default()));
    assert_eq!(idle.count(), usize::from(ROUTES) - 1);

    let now = Instant::now();
    let snapshot = fp.all_counts(now, Duration::from_secs(1));
    assert_eq!(*snapshot, all);
    fp.forget(2).expect("route 2 had counts");
    // Within its age the snapshot is served as it was; past it, read again.
    let cached = fp.all_counts(now + Duration::from_millis(500), Duration::from_secs(1));
    assert!(cached.contains_key(&2));
    let fresh = fp.all_counts(now + Duration::from_millis(1500), Duration::from_secs(1));
    assert!(!fresh.contains_key(&2));
    assert_eq!(fresh.len(), usize::from(ROUTES) - 1);
    assert_eq!(fresh.get(&1), Some(&relayed));
}

#[test]
fn fastpath_expired_route_goes_to_user_space() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "lo");
    let l = local(&lab, 2, until(Duration::from_millis(300)));
    fp.install(&l.route).unwrap();
    let message = channel_data(CHANNEL, b"before");
    l.client.send_to(&message, l.route.server).unwrap();
    assert_eq!(recv(&l.peer), Some((b"before".to_vec(), l.route.relay)));
    thread::sleep(Duration::from_millis(400));
    let message = channel_data(CHANNEL, b"after");
    l.client.send_to(&message, l.route.server).unwrap();
    assert_eq!(recv(&l.server), Some((message, l.route.client)));
    l.peer.send_to(b"late", l.route.relay).unwrap();
    assert_eq!(recv(&l.relay), Some((b"late".to_vec(), l.route.peer)));
    nothing(&l.peer, "the peer");
    nothing(&l.client, "the client");
    let counts = fp.counts(2).unwrap();
    assert_eq!((counts.to_peer_packets, counts.to_client_packets), (1, 0));
}

#[test]
fn fastpath_remove_and_forget_hand_traffic_back() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "lo");
    let l = local(&lab, 3, until(Duration::from_secs(60)));
    fp.install(&l.route).unwrap();
    l.client
        .send_to(&channel_data(CHANNEL, b"one"), l.route.server)
        .unwrap();
    assert_eq!(recv(&l.peer), Some((b"one".to_vec(), l.route.relay)));
    // Another id's route with the same addresses is not this one's to remove.
    fp.remove(&ChannelRoute {
        id: 99,
        ..l.route.clone()
    });
    l.peer.send_to(b"two", l.route.relay).unwrap();
    assert_eq!(
        recv(&l.client),
        Some((channel_data(CHANNEL, b"two"), l.route.server))
    );

    fp.remove(&l.route);
    let message = channel_data(CHANNEL, b"three");
    l.client.send_to(&message, l.route.server).unwrap();
    assert_eq!(recv(&l.server), Some((message, l.route.client)));
    l.peer.send_to(b"four", l.route.relay).unwrap();
    assert_eq!(recv(&l.relay), Some((b"four".to_vec(), l.route.peer)));

    let last = FastCounts {
        to_peer_packets: 1,
        to_peer_bytes: 3,
        to_client_packets: 1,
        to_client_bytes: 3,
    };
    assert_eq!(fp.forget(3), Some(last));
    assert_eq!(fp.counts(3), None);
    assert_eq!(fp.forget(3), None);

    // A route without a counts entry relays nothing in the kernel.
    fp.install(&l.route).unwrap();
    fp.forget(3);
    let message = channel_data(CHANNEL, b"five");
    l.client.send_to(&message, l.route.server).unwrap();
    assert_eq!(recv(&l.server), Some((message, l.route.client)));
}

/// On lo the kernel relays only into a socket of this host: a route whose client is on another
/// host (a relay-to-relay or media-server-on-the-VM packet crosses lo on its way there), or whose
/// peer address has no socket, leaves the datagram to user space. A packet on lo keeps the local
/// route it was sent with, so a rewrite toward anywhere else would be delivered here and lost.
#[test]
fn fastpath_on_lo_relays_only_into_local_sockets() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "lo");
    let relay_addr = SocketAddrV4::new(PUBLIC.parse().unwrap(), 50002);
    let relay = bind(&lab, "vm", relay_addr);
    let peer = bind(&lab, "vm", v4("127.0.0.5:9002"));
    let remote_client = ChannelRoute {
        id: 7,
        client: SocketAddrV4::new(CLIENT.parse().unwrap(), 40002),
        server: SocketAddrV4::new(PUBLIC.parse().unwrap(), 3478),
        relay: relay_addr,
        peer: v4("127.0.0.5:9002"),
        channel: CHANNEL,
        until_ns: until(Duration::from_secs(60)),
        dont_fragment: false,
    };
    fp.install(&remote_client).unwrap();
    peer.send_to(b"to a remote client", relay_addr).unwrap();
    assert_eq!(
        recv(&relay),
        Some((b"to a remote client".to_vec(), remote_client.peer))
    );

    let client = bind(&lab, "vm", v4("127.0.0.2:40002"));
    let server = bind(&lab, "vm", v4("127.0.0.3:3479"));
    let no_socket = ChannelRoute {
        id: 8,
        client: v4("127.0.0.2:40002"),
        server: v4("127.0.0.3:3479"),
        relay: v4("127.0.0.4:50002"),
        peer: v4("127.0.0.6:9003"),
        channel: CHANNEL,
        until_ns: until(Duration::from_secs(60)),
        dont_fragment: false,
    };
    fp.install(&no_socket).unwrap();
    let message = channel_data(CHANNEL, b"to a closed port");
    client.send_to(&message, no_socket.server).unwrap();
    assert_eq!(recv(&server), Some((message, no_socket.client)));
    assert_eq!(fp.counts(7), Some(FastCounts::default()));
    assert_eq!(fp.counts(8), Some(FastCounts::default()));
}

#[test]
fn fastpath_load_errors_say_why() {
    let err = match FastPath::load(&["tern-no-such0".to_string()], XdpMode::On) {
        Ok(_) => panic!("loaded on an interface that does not exist"),
        Err(e) => e,
    };
    match err {
        FastPathError::NotBuilt => skipped("the fast path was not built"),
        FastPathError::NoSuchInterface(name) => assert_eq!(name, "tern-no-such0"),
        other => panic!("unexpected error: {other}"),
    }
}

/// The one's-complement sum of `data` as 16-bit words.
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// A UDP header and payload with a full, correct checksum.
fn udp_datagram(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&src.port().to_be_bytes());
    d.extend_from_slice(&dst.port().to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let mut sum = sum16(&src.ip().octets()) + sum16(&dst.ip().octets()) + 17 + len as u32;
    sum += sum16(&d);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let check = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    d[6..8].copy_from_slice(&check.to_be_bytes());
    d
}

/// Sends a complete UDP datagram (checksum computed here, not by an offload) from `src`.
fn send_raw(lab: &Lab, host: &str, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
    let datagram = udp_datagram(src, dst, payload);
    lab.in_host(host, || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
        s.bind(&SocketAddr::V4(SocketAddrV4::new(*src.ip(), 0)).into())
            .unwrap();
        s.send_to(&datagram, &SocketAddr::V4(dst).into()).unwrap();
    });
}

/// Udp InCsumErrors of `host` (/proc/net/snmp).
fn csum_errors(lab: &Lab, host: &str) -> u64 {
    lab.in_host(host, || {
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
        let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
        let i = names
            .split_whitespace()
            .position(|n| n == "InCsumErrors")
            .unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    })
}

fn no_check(s: &UdpSocket) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt(2) with an int option on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// Datagrams of several sizes with complete checksums computed here (a socket's datagram would
/// be CHECKSUM_PARTIAL across the veth, see docs/fast-path.md) both ways through `route`: each
/// must arrive rewritten, and the kernels check the checksums. Adds them to `expected`.
fn relay_both_ways(
    lab: &Lab,
    route: &ChannelRoute,
    client: &UdpSocket,
    peer: &UdpSocket,
    expected: &mut FastCounts,
) {
    for (i, n) in [0usize, 1, 2, 3, 64, 1001, 1400].into_iter().enumerate() {
        let data = payload(n, 0x5a ^ i as u8);
        let message = channel_data(route.channel, &data);
        send_raw(lab, "client", route.client, route.server, &message);
        assert_eq!(recv(peer), Some((data.clone(), route.relay)), "raw {n}");
        expected.to_peer_packets += 1;
        expected.to_peer_bytes += n as u64;

        send_raw(lab, "peer", route.peer, route.relay, &data);
        assert_eq!(recv(client), Some((message, route.server)), "raw {n} back");
        expected.to_client_packets += 1;
        expected.to_client_bytes += n as u64;
    }
}

/// A channel from the client host to the peer host through the VM's public address; `n` picks
/// the ports.
fn across_the_lab(id: u64, n: u16) -> ChannelRoute {
    let public: Ipv4Addr = PUBLIC.parse().unwrap();
    ChannelRoute {
        id,
        client: SocketAddrV4::new(CLIENT.parse().unwrap(), 40000 + n),
        server: SocketAddrV4::new(public, 3478),
        relay: SocketAddrV4::new(public, 50000 + n),
        peer: SocketAddrV4::new(PEER.parse().unwrap(), 9000 + n),
        channel: CHANNEL,
        until_ns: until(Duration::from_secs(60)),
        dont_fragment: false,
    }
}

/// The sockets at the four addresses of a route across the lab, the route installed.
struct Across {
    client: UdpSocket,
    server: UdpSocket,
    relay: UdpSocket,
    peer: UdpSocket,
}

impl Across {
    fn bind(lab: &Lab, fp: &FastPath, route: &ChannelRoute) -> Across {
        let sockets = Across {
            client: bind(lab, "client", route.client),
            server: bind(lab, "vm", route.server),
            relay: bind(lab, "vm", route.relay),
            peer: bind(lab, "peer", route.peer),
        };
        fp.install(route).unwrap();
        sockets
    }
}

#[test]
fn fastpath_redirects_across_veth_with_checksums_the_receivers_verify() {
    let Some(lab) = lab() else { return };
    let fp = load(&lab, "vm", "eth0");
    assert!(lab.in_host("vm", || fp.attached()));
    let public: Ipv4Addr = PUBLIC.parse().unwrap();
    let route = ChannelRoute {
        dont_fragment: true,
        ..across_the_lab(10, 0)
    };
    let Across {
        client,
        server,
        relay,
        peer,
    } = Across::bind(&lab, &fp, &route);
    let (peer_errors, client_errors) = (csum_errors(&lab, "peer"), csum_errors(&lab, "client"));
    let mut expected = FastCounts::default();

    relay_both_ways(&lab, &route, &client, &peer, &mut expected);
    // No checksum (0) stays none.
    no_check(&client);
    client
        .send_to(&channel_data(CHANNEL, b"unchecked"), route.server)
        .unwrap();
    assert_eq!(recv(&peer), Some((b"unchecked".to_vec(), route.relay)));
    expected.to_peer_packets += 1;
    expected.to_peer_bytes += 9;

    nothing(&server, "the listener");
    nothing(&relay, "the relay socket");
    assert_eq!(csum_errors(&lab, "peer"), peer_errors);
    assert_eq!(csum_errors(&lab, "client"), client_errors);
    assert_eq!(fp.counts(10), Some(expected));

    // A peer on the server's own address: left to user space (the kernel would drop the
    // packet redirected to lo for its local source).
    let local_peer = SocketAddrV4::new(public, 9001);
    let to_self = ChannelRoute {
        id: 11,
        channel: 0x4002,
        peer: local_peer,
        ..route.clone()
    };
    let local_peer_socket = bind(&lab, "vm", local_peer);
    fp.install(&to_self).unwrap();
    send_raw(
        &lab,
        "client",
        route.client,
        route.server,
        &channel_data(0x4002, b"to myself"),
    );
    assert_eq!(
        recv(&server),
        Some((channel_data(0x4002, b"to myself"), route.client))
    );
    nothing(&local_peer_socket, "the local peer");
    assert_eq!(fp.counts(11), Some(FastCounts::default()));

    // The interface gone: no longer attached.
    lab.sh("vm", &["ip", "link", "del", "eth0"]).unwrap();
    assert!(!lab.in_host("vm", || fp.attached()));
}

/// The XDP program joins the TC one only where the driver can transmit XDP frames: on a veth
/// that is when its other end has GRO (or XDP) on, and only with `fast-path-xdp=on`. There it relays the single-interface VM's
/// hairpin (client and peer behind the same gateway) with XDP_TX both ways, with checksums
/// the receivers verify and every datagram in the route's counts; the TC program and the
/// sockets see none of it once the gateway's address is resolved.
#[test]
fn fastpath_xdp_relays_the_hairpin_where_the_driver_can_transmit() {
    let Some(lab) = lab() else { return };
    if lab.sh("internet", &["ethtool", "--version"]).is_err() {
        skipped("no ethtool (apt-get install ethtool) to turn GRO on at the veth's other end");
        return;
    }
    let fp = load(&lab, "vm", "eth0");
    assert!(fp.xdp_interfaces().is_empty(), "{}", fp.xdp_summary());
    assert!(
        fp.xdp_summary()
            .contains("eth0: its driver cannot transmit XDP frames"),
        "{}",
        fp.xdp_summary()
    );
    drop(fp);
    lab.sh("internet", &["ethtool", "-K", "to-vm", "gro", "on"])
        .unwrap();
    // By default not on a veth (slower there than TC), nor when it is off.
    for (mode, why) in [
        (XdpMode::Auto, "eth0: a veth, where XDP is slower than TC"),
        (XdpMode::Off, "fast-path-xdp=off"),
    ] {
        let fp = load_with(&lab, "vm", "eth0", mode);
        assert!(fp.xdp_interfaces().is_empty(), "{}", fp.xdp_summary());
        assert!(fp.xdp_summary().contains(why), "{}", fp.xdp_summary());
    }
    let fp = load(&lab, "vm", "eth0");
    assert_eq!(fp.xdp_interfaces(), ["eth0"], "{}", fp.xdp_summary());
    assert_eq!(fp.xdp_summary(), "XDP on eth0");

    let route = across_the_lab(20, 2);
    let Across {
        client,
        server,
        relay,
        peer,
    } = Across::bind(&lab, &fp, &route);
    // The gateway's address resolved (XDP does not resolve neighbours: the first datagram
    // goes through TC, which does).
    let mut expected = FastCounts::default();
    send_raw(&lab, "peer", route.peer, route.relay, b"warm");
    assert_eq!(
        recv(&client),
        Some((channel_data(CHANNEL, b"warm"), route.server))
    );
    expected.to_client_packets += 1;
    expected.to_client_bytes += 4;
    let (peer_errors, client_errors) = (csum_errors(&lab, "peer"), csum_errors(&lab, "client"));
    let before = fp.xdp_packets();

    relay_both_ways(&lab, &route, &client, &peer, &mut expected);
    assert_eq!(fp.xdp_packets() - before, 14, "every datagram at XDP");
    nothing(&server, "the listener");
    nothing(&relay, "the relay socket");
    assert_eq!(csum_errors(&lab, "peer"), peer_errors);
    assert_eq!(csum_errors(&lab, "client"), client_errors);
    assert_eq!(fp.counts(20), Some(expected));

    // A route gone: XDP hands the datagram on, and it reaches the listener untouched.
    fp.remove(&route);
    let message = channel_data(CHANNEL, b"to user space");
    send_raw(&lab, "client", route.client, route.server, &message);
    assert_eq!(recv(&server), Some((message, route.client)));
    nothing(&peer, "the peer");
    assert_eq!(fp.xdp_packets() - before, 14);
}
