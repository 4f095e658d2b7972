//! The deployment lab's topologies (tests/it/support/lab.rs): tern on a VM standing for the public
//! VMs operators run it on, configured from a turnserver.conf as they write it, and driven from
//! a client host on the Internet side by clients someone else wrote: coturn's
//! `turnutils_uclient` against `turnutils_peer` on another host, headless Chromium relay-only
//! data channels over UDP, TCP and TLS, and aiortc; plus tern's own test client for what the
//! others do not show (the relayed address, refusals). Every topology runs on both engines, and
//! on the default one again with the kernel fast path on (`fast-path=on`, docs/fast-path.md).
//!
//! Each test asserts the data really relayed (every message echoed, uclient 0 lost), the relayed
//! address the client was given (the public one), and that wrong credentials connect nothing.

// Deadlines for real processes need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::{run_groups, Page};
use support::lab::{self, Lab, Vm, PEER, PEER6, PRIVATE, PUBLIC, PUBLIC2, PUBLIC6};
use support::stream_client::TurnStream;
use support::tls::TestCert;
use support::turn_client::TurnClient;
use support::{output_within, Server, TempDir, PASSWORD, USER};

const REALM: &str = "lab.example";
/// Where the echo peer listens on the peer host (uclient's default peer port).
const PEER_PORT: u16 = 3480;
/// A UDP service on the VM outside the relay range: a media server next to the TURN server.
const SFU_PORT: u16 = 10000;
/// Messages each uclient client sends; data channel messages per browser pair.
const MESSAGES: u32 = 20;

/// tern in the VM, from a configuration file written the way an operator writes one.
struct Tern {
    server: Server,
    _dir: TempDir,
    _cert: TestCert,
}

/// Starts tern on `lab`'s VM with `engine` and the common lines (credentials, certificate,
/// metrics) plus `lines`.
fn start_tern(lab: &Lab, engine: &str, lines: &[&str]) -> Tern {
    let dir = TempDir::new("lab-conf");
    let cert = TestCert::new("lab");
    let conf = dir.path("turnserver.conf");
    let mut text = format!(
        "# as an operator writes it\nlt-cred-mech\nrealm={REALM}\nuser={USER}:{PASSWORD}\n\
         cert={}\npkey={}\nfingerprint\nno-cli\nprometheus\n",
        cert.cert.display(),
        cert.key.display()
    );
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&conf, text).expect("write turnserver.conf");
    let on = lab.on("vm");
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let conf = conf.display().to_string();
    let [engine, fast] = engine_flags(lab, engine);
    let server = Server::start_wrapped(&on, &["-c", &conf, &engine, &fast]);
    Tern {
        server,
        _dir: dir,
        _cert: cert,
    }
}

/// tern's flags for `engine`: an I/O engine, with `+fast` the kernel fast path on (and the
/// forwarding it needs on the VM's interfaces, docs/fast-path.md), without it off.
fn engine_flags(lab: &Lab, engine: &str) -> [String; 2] {
    let (engine, fast) = match engine.strip_suffix("+fast") {
        Some(engine) => {
            lab.sh("vm", &["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"])
                .expect("forwarding on the VM");
            (engine, "on")
        }
        None => (engine, "off"),
    };
    [
        format!("--io-engine={engine}"),
        format!("--fast-path={fast}"),
    ]
}

/// `turnutils_peer` echoing on `ip:port` on `host`, killed by PID on drop.
struct EchoPeer(Child);

impl EchoPeer {
    fn start(lab: &Lab, host: &str, ip: &str, port: u16) -> EchoPeer {
        let child = lab
            .command(host, "turnutils_peer")
            .args(["-L", ip, "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnutils_peer");
        let peer = EchoPeer(child);
        let target = SocketAddr::new(ip.parse().expect("peer ip"), port);
        let echoed = lab.in_host(host, || {
            let probe = UdpSocket::bind(any(target)).expect("probe socket");
            probe
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let _ = probe.send_to(b"lab-probe", target);
                if let Ok(n) = probe.recv(&mut buf) {
                    return buf.get(..n) == Some(&b"lab-probe"[..]);
                }
            }
            false
        });
        assert!(echoed, "turnutils_peer on {host} {target} never echoed");
        peer
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The wildcard address of `addr`'s family, port 0.
fn any(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("address"),
    }
}

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// Runs `turnutils_uclient` on the client host against `server` with `args` (peer options
/// included) and returns its output.
fn uclient(lab: &Lab, server: &str, user: &str, password: &str, args: &[&str]) -> String {
    let mut cmd = lab.command("client", "turnutils_uclient");
    cmd.args([
        "-u",
        user,
        "-w",
        password,
        "-n",
        &MESSAGES.to_string(),
        "-z",
        "5",
    ])
    .args(args)
    .arg(server);
    let out = output_within(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// uclient relayed every message and reported no error.
fn relayed_all(what: &str, out: &str, tern: &Tern) {
    let totals = support::uclient::totals(out);
    let context = || format!("{what}:\n{out}\ntern's log:\n{}", tern.server.log());
    let (sent, received) = totals.unwrap_or_else(|| panic!("no totals from uclient {}", context()));
    assert!(sent > 0, "{}", context());
    assert_eq!(sent, received, "uclient lost messages {}", context());
    assert!(
        !support::uclient::reported_error(out),
        "uclient reported an error {}",
        context()
    );
}

/// uclient with a wrong password relayed nothing.
fn refused(what: &str, out: &str) {
    let received = support::uclient::totals(out).map_or(0, |(_, r)| r);
    assert_eq!(received, 0, "{what}: relayed with a wrong password:\n{out}");
}

/// Chromium on the client host: one relay-only pair per group of URLs, all at once.
fn browser(lab: &Lab, groups: &[Vec<String>], password: &str) -> Option<Vec<Value>> {
    let page = Page {
        urls: &[],
        user: USER,
        pass: password,
        messages: MESSAGES,
        timeout_ms: 30_000,
    };
    lab.in_host("client", || run_groups(&page, groups))
}

/// Every message echoed over a relay/relay pair allocated over `protocol`, and every relay
/// candidate on `relayed` (the address the server advertised).
fn browser_relayed(run: &Value, protocol: &str, relayed: &[IpAddr], tern: &Tern) {
    let context = || format!("{run}\ntern's log:\n{}", tern.server.log());
    assert_eq!(run["echoes"], MESSAGES, "{}", context());
    let pair = &run["pair"];
    assert_eq!(pair["local"], "relay", "{}", context());
    assert_eq!(pair["remote"], "relay", "{}", context());
    assert_eq!(pair["relayProtocol"], protocol, "{}", context());
    let candidates = run["candidates"].as_array().cloned().unwrap_or_default();
    assert!(!candidates.is_empty(), "{}", context());
    for c in candidates.iter().filter_map(Value::as_str) {
        assert!(c.contains(" typ relay"), "{c}: {}", context());
        let ip = c
            .split_whitespace()
            .nth(4)
            .and_then(|a| a.parse::<IpAddr>().ok());
        assert!(
            ip.is_some_and(|ip| relayed.contains(&ip)),
            "{c}: not on {relayed:?}: {}",
            context()
        );
    }
}

/// aiortc on the client host: every message echoed over relay candidates on `relayed`.
fn aiortc_relayed(lab: &Lab, url: &str, relayed: &[IpAddr], tern: &Tern) {
    if !support::aiortc::available() {
        return;
    }
    let on = lab.on("client");
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let result = support::aiortc::run(&on, &[url.to_string()], USER, PASSWORD, MESSAGES);
    let context = || format!("{result}\ntern's log:\n{}", tern.server.log());
    assert_eq!(result["echoes"], MESSAGES, "{}", context());
    assert_eq!(result["selected"]["local"], "relay", "{}", context());
    let local = result["selected"]["local_addr"]
        .as_str()
        .unwrap_or_default();
    let ip = local.parse::<SocketAddr>().map(|a| a.ip()).ok();
    assert!(
        ip.is_some_and(|ip| relayed.contains(&ip)),
        "{local} not on {relayed:?}: {}",
        context()
    );
}

/// tern's own client on the client host: the relayed address it is given (one of `relayed`),
/// and a wrong password refused (401 after the challenge).
fn own_client_relayed(lab: &Lab, server: SocketAddr, relayed: &[IpAddr]) -> SocketAddr {
    lab.in_host("client", || {
        let mut wrong = TurnClient::bound(any(server), server, USER, "wrong-password");
        let refusal = wrong
            .allocate()
            .expect_err("a wrong password must not allocate");
        assert_eq!(refusal.code, 401);
        let mut client = TurnClient::bound(any(server), server, USER, PASSWORD);
        let addr = client.allocate().expect("allocate");
        assert!(
            relayed.contains(&addr.ip()),
            "the relayed address the client is given: {addr}, not one of {relayed:?}"
        );
        addr
    })
}

/// The whole set of clients against one server address: uclient to the peer host and client to
/// client (relay to relay), uclient with a wrong password, Chromium over UDP, TCP and TLS, and
/// aiortc over UDP, all at the same time. Every relayed address is one of `relayed`. Over an
/// IPv6 server address uclient asks for IPv6 relays (`-x`) and echoes off the peer's IPv6
/// address; the browsers get what they ask for.
fn all_clients(lab: &Lab, tern: &Tern, server_ip: &str, relayed: &[&str]) {
    let relayed: Vec<IpAddr> = relayed.iter().map(|ip| ip.parse().expect("ip")).collect();
    let relayed = &relayed[..];
    own_client_relayed(lab, at(server_ip, 3478), relayed);
    let v6 = server_ip.contains(':');
    let (peer, family): (&str, &[&str]) = if v6 { (PEER6, &["-x"]) } else { (PEER, &[]) };
    let _peer = EchoPeer::start(lab, "peer", peer, PEER_PORT);
    let host = if v6 {
        format!("[{server_ip}]")
    } else {
        server_ip.to_string()
    };
    let groups = vec![
        vec![format!("turn:{host}:3478?transport=udp")],
        vec![format!("turn:{host}:3478?transport=tcp")],
        vec![format!("turns:{host}:5349?transport=tcp")],
    ];
    let args =
        |more: &[&'static str]| -> Vec<&str> { family.iter().chain(more).copied().collect() };
    thread::scope(|s| {
        let to_peer = s.spawn(|| {
            let mut a = args(&["-m", "2", "-e"]);
            a.push(peer);
            uclient(lab, server_ip, USER, PASSWORD, &a)
        });
        let client_to_client =
            s.spawn(|| uclient(lab, server_ip, USER, PASSWORD, &args(&["-y", "-m", "2"])));
        let wrong = s.spawn(|| {
            let mut a = args(&["-c", "-e"]);
            a.push(peer);
            uclient(lab, server_ip, USER, "wrong", &a)
        });
        // aiortc 1.16 cannot parse a TURN URI with an IPv6 literal ("malformed uri"): it runs
        // against IPv4 server addresses only.
        let aiortc = s.spawn(|| {
            if !v6 {
                aiortc_relayed(lab, &groups[0][0], relayed, tern);
            }
        });
        if let Some(runs) = browser(lab, &groups, PASSWORD) {
            for (run, protocol) in runs.iter().zip(["udp", "tcp", "tls"]) {
                browser_relayed(run, protocol, relayed, tern);
            }
        }
        relayed_all("uclient to the peer host", &to_peer.join().unwrap(), tern);
        relayed_all(
            "uclient client to client",
            &client_to_client.join().unwrap(),
            tern,
        );
        refused("uclient with a wrong password", &wrong.join().unwrap());
        aiortc.join().unwrap();
    });
}

/// Builds the lab or prints why it is skipped.
fn lab(vm: Vm) -> Option<Lab> {
    support::interop_tool("turnutils_uclient")?;
    match Lab::new(vm) {
        Ok(lab) => Some(lab),
        Err(why) => {
            lab::skip(&why.0);
            None
        }
    }
}

/// One test per engine for each topology, and one on io_uring with the kernel fast path.
macro_rules! on_both_engines {
    ($($name:ident: $body:expr;)*) => {
        $(mod $name {
            #[test]
            fn uring() {
                ($body)("uring");
            }
            #[test]
            fn epoll() {
                ($body)("epoll");
            }
            #[test]
            fn uring_fast_path() {
                ($body)("uring+fast");
            }
        })*
    };
}

on_both_engines! {
    a_public_address_with_external_ip: super::a_public_address_with_external_ip;
    b_wildcard_listening_ip: super::b_wildcard_listening_ip;
    c_cloud_nat_public_private: super::c_cloud_nat_public_private;
    c_cloud_nat_bare_public: super::c_cloud_nat_bare_public;
    c_cloud_nat_bare_public_wildcard: super::c_cloud_nat_bare_public_wildcard;
    c_cloud_nat_with_hairpin: super::c_cloud_nat_with_hairpin;
    d_listening_ip_and_relay_ip: super::d_listening_ip_and_relay_ip;
    d_two_public_addresses: super::d_two_public_addresses;
    e_dual_stack: super::e_dual_stack;
    f_media_server_on_the_vm: super::f_media_server_on_the_vm;
    f_media_server_behind_nat: super::f_media_server_behind_nat;
    g_udp_blocked_tls_5349: super::g_udp_blocked_tls_5349;
    g_udp_blocked_tls_443: super::g_udp_blocked_tls_443;
    deployment_guides_configurations: super::deployment_guides_configurations;
}

/// (a) The public address on the VM's interface, no listening-ip, `external-ip=PUBLIC`: tern
/// listens on 127.0.0.1, PUBLIC and ::1 (and the IPv6 address). Before the fix every
/// CreatePermission and ChannelBind toward the server's own address was refused (403).
fn a_public_address_with_external_ip(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    let tern = start_tern(&lab, engine, &[&format!("external-ip={PUBLIC}")]);
    all_clients(&lab, &tern, PUBLIC, &[PUBLIC]);
    // The issue's own reproduction: the echo peer on the VM's public address.
    let _sfu = EchoPeer::start(&lab, "vm", PUBLIC, PEER_PORT);
    let out = uclient(&lab, PUBLIC, USER, PASSWORD, &["-e", PUBLIC, "-c"]);
    relayed_all("uclient to a peer on the VM's public address", &out, &tern);
}

/// (b) The wildcard: `listening-ip=0.0.0.0` and `::` mean every address of the host, for
/// listeners and relays alike; no external-ip.
fn b_wildcard_listening_ip(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    let tern = start_tern(&lab, engine, &["listening-ip=0.0.0.0", "listening-ip=::"]);
    all_clients(&lab, &tern, PUBLIC, &[PUBLIC]);
    own_client_relayed_v6(&lab, &tern);
}

/// (c) A cloud VM: the private address on the interface behind a 1:1 NAT without hairpinning.
fn c_cloud_nat_public_private(engine: &str) {
    let _ = cloud_nat(engine, false, &[&format!("external-ip={PUBLIC}/{PRIVATE}")]);
}

/// The bare form names no address of this host: the start-up log says which relay address it
/// is advertised for.
fn c_cloud_nat_bare_public(engine: &str) {
    let tern = cloud_nat(engine, false, &[&format!("external-ip={PUBLIC}")]);
    if let Some(tern) = tern {
        let warning = format!(
            "external-ip {PUBLIC} is not an address of this host: advertised for relay address \
             {PRIVATE}"
        );
        assert!(
            tern.server.log().contains(&warning),
            "{}",
            tern.server.log()
        );
    }
}

fn c_cloud_nat_bare_public_wildcard(engine: &str) {
    let _ = cloud_nat(
        engine,
        false,
        &[&format!("external-ip={PUBLIC}"), "listening-ip=0.0.0.0"],
    );
}

fn c_cloud_nat_with_hairpin(engine: &str) {
    let _ = cloud_nat(engine, true, &[&format!("external-ip={PUBLIC}")]);
}

/// Runs every client through the NAT; the server, stopped, for a look at its log.
fn cloud_nat(engine: &str, hairpin: bool, lines: &[&str]) -> Option<Tern> {
    let lab = lab(Vm::CloudNat { hairpin })?;
    let tern = start_tern(&lab, engine, lines);
    all_clients(&lab, &tern, PUBLIC, &[PUBLIC]);
    Some(tern)
}

/// (d) `listening-ip=PUBLIC` only, with `relay-ip` set.
fn d_listening_ip_and_relay_ip(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    let lines = [
        format!("listening-ip={PUBLIC}"),
        format!("relay-ip={PUBLIC}"),
    ];
    let tern = start_tern(&lab, engine, &lines.each_ref().map(String::as_str));
    all_clients(&lab, &tern, PUBLIC, &[PUBLIC]);
}

/// (d) A host with two public addresses: listening on one, relaying on the other.
fn d_two_public_addresses(engine: &str) {
    let Some(lab) = lab(Vm::TwoPublic) else {
        return;
    };
    let lines = [
        format!("listening-ip={PUBLIC}"),
        format!("relay-ip={PUBLIC2}"),
    ];
    let tern = start_tern(&lab, engine, &lines.each_ref().map(String::as_str));
    all_clients(&lab, &tern, PUBLIC, &[PUBLIC2]);
}

/// (e) Dual stack: IPv6 relays over an IPv6 URL, REQUESTED-ADDRESS-FAMILY IPv6, and a dual
/// allocation (ADDITIONAL-ADDRESS-FAMILY).
fn e_dual_stack(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    let tern = start_tern(&lab, engine, &[]);
    own_client_relayed_v6(&lab, &tern);
    let _peer4 = EchoPeer::start(&lab, "peer", PEER, PEER_PORT);
    let _peer6 = EchoPeer::start(&lab, "peer", PEER6, PEER_PORT);
    // uclient: an IPv6 relay requested over IPv4, and a dual allocation.
    let out = uclient(&lab, PUBLIC, USER, PASSWORD, &["-x", "-e", PEER6, "-c"]);
    relayed_all("uclient -x (IPv6 relay)", &out, &tern);
    let out = uclient(&lab, PUBLIC, USER, PASSWORD, &["-Z", "-e", PEER]);
    relayed_all("uclient -Z (dual allocation)", &out, &tern);
    all_clients(&lab, &tern, PUBLIC6, &[PUBLIC, PUBLIC6]);
}

/// REQUESTED-ADDRESS-FAMILY IPv6 and a dual allocation through the public addresses.
fn own_client_relayed_v6(lab: &Lab, tern: &Tern) {
    let server = at(PUBLIC, 3478);
    lab.in_host("client", || {
        let mut v6 = TurnClient::bound(any(server), server, USER, PASSWORD);
        let addr = v6.allocate_family(true).expect("an IPv6 relay");
        assert_eq!(
            addr.ip(),
            PUBLIC6.parse::<IpAddr>().unwrap(),
            "{}",
            tern.server.log()
        );
        let mut dual = TurnClient::bound(any(server), server, USER, PASSWORD);
        let addrs = dual.allocate_dual().expect("a dual allocation");
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        let want: Vec<IpAddr> = vec![PUBLIC.parse().unwrap(), PUBLIC6.parse().unwrap()];
        assert_eq!(ips, want, "{}", tern.server.log());
    });
}

/// (f) A media server on the VM itself, on its public address outside the relay range: UDP is
/// relayed to it; TCP relaying into the host is refused (and logged with the line that admits
/// it) unless allowed-peer-ip admits it; the listeners and the metrics port stay refused.
fn f_media_server_on_the_vm(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    media_server(
        &lab,
        engine,
        PUBLIC,
        PUBLIC,
        &[&format!("external-ip={PUBLIC}")],
    );
}

fn f_media_server_behind_nat(engine: &str) {
    let Some(lab) = lab(Vm::CloudNat { hairpin: false }) else {
        return;
    };
    // Behind the NAT the peer policy sees the address the public one maps to, and the log names
    // that one.
    media_server(
        &lab,
        engine,
        "0.0.0.0",
        PRIVATE,
        &[&format!("external-ip={PUBLIC}")],
    );
}

/// `sfu_ip`: where the media server binds; `admit`: the address whose allowed-peer-ip line
/// admits TCP relaying into the host.
fn media_server(lab: &Lab, engine: &str, sfu_ip: &str, admit: &str, lines: &[&str]) {
    let tern = start_tern(lab, engine, lines);
    let _sfu = EchoPeer::start(lab, "vm", sfu_ip, SFU_PORT);
    let out = uclient(
        lab,
        PUBLIC,
        USER,
        PASSWORD,
        &["-e", PUBLIC, "-r", &SFU_PORT.to_string(), "-c"],
    );
    relayed_all("uclient to the media server on the VM", &out, &tern);
    let server = at(PUBLIC, 3478);
    own_client_relayed(lab, server, &[PUBLIC.parse().expect("ip")]);
    lab.in_host("client", || {
        let mut client = TurnClient::bound(any(server), server, USER, PASSWORD);
        client.allocate().expect("allocate");
        for port in [3478, 5349, 9641] {
            let refusal = client.channel_bind(0x4001, at(PUBLIC, port));
            assert_eq!(
                refusal.map_err(|r| r.code),
                Err(403),
                "UDP to the server's own port {port}: {}",
                tern.server.log()
            );
        }
    });
    let tcp_service = at(PUBLIC, 8080);
    let (connect, listener_connect) = lab.in_host("client", || {
        let mut stream = TurnStream::new(TcpStream::connect(server).expect("connect to tern"));
        stream.allocate(6).expect("io").expect("a TCP allocation");
        let connect = stream.connect(tcp_service).expect("io");
        let listener_connect = stream.connect(at(PUBLIC, 3478)).expect("io");
        (connect, listener_connect)
    });
    assert_eq!(
        connect,
        Err(403),
        "TCP relaying into the host: {}",
        tern.server.log()
    );
    assert_eq!(listener_connect, Err(403), "{}", tern.server.log());
    let hint = format!("allowed-peer-ip={admit}");
    assert!(
        tern.server
            .wait_for_log(&hint, Duration::from_secs(5))
            .is_some(),
        "the refusal names the line that admits it:\n{}",
        tern.server.log()
    );
    drop(tern);
    // Admitted by the line the log named: the Connect is attempted (a TCP service listens).
    let mut admitted = lines.to_vec();
    admitted.push(&hint);
    let tern = start_tern(lab, engine, &admitted);
    let service = lab
        .command("vm", "python3")
        .args(["-c", TCP_SERVICE, "8080"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a TCP service");
    let mut service = ServiceGuard(service);
    wait_listening(lab, "vm", 8080);
    let (connect, own_ports) = lab.in_host("client", || {
        let mut stream = TurnStream::new(TcpStream::connect(server).expect("connect to tern"));
        stream.allocate(6).expect("io").expect("a TCP allocation");
        stream
            .create_permission(tcp_service)
            .expect("io")
            .expect("permission");
        let connect = stream.connect(tcp_service).expect("io");
        // The listeners and the metrics port stay refused on an admitted address.
        let own_ports: Vec<_> = [3478, 5349, 9641]
            .into_iter()
            .map(|port| (port, stream.connect(at(PUBLIC, port)).expect("io")))
            .collect();
        (connect, own_ports)
    });
    assert!(connect.is_ok(), "{connect:?}: {}", tern.server.log());
    for (port, refusal) in own_ports {
        assert_eq!(
            refusal,
            Err(403),
            "TCP to own port {port}: {}",
            tern.server.log()
        );
    }
    let _ = service.0.kill();
}

/// A TCP service on the VM that accepts connections (a database or an admin panel).
const TCP_SERVICE: &str = "import socket,sys\n\
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(8)\n\
while True:\n    c,_=s.accept(); c.close()\n";

struct ServiceGuard(Child);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` on `host`.
fn wait_listening(lab: &Lab, host: &str, port: u16) {
    let ok = lab.in_host(host, || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    });
    assert!(ok, "nothing listens on {host}:{port}");
}

/// (g) UDP blocked between the client and the VM: Chromium given the UDP and the TLS URL fails
/// over to TLS.
fn g_udp_blocked_tls_5349(engine: &str) {
    udp_blocked(engine, 5349);
}

fn g_udp_blocked_tls_443(engine: &str) {
    udp_blocked(engine, 443);
}

fn udp_blocked(engine: &str, tls_port: u16) {
    let Some(lab) = lab(Vm::Public) else { return };
    let line = format!("tls-listening-port={tls_port}");
    let tern = start_tern(&lab, engine, &[&line, &format!("external-ip={PUBLIC}")]);
    lab.block_udp_from_client().expect("block UDP");
    // The block is real: a Binding over UDP gets no answer.
    let answered = lab.in_host("client", || {
        let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(1000)))
            .unwrap();
        let tid = support::transaction_id();
        let _ = probe.send_to(&support::binding_request(&tid, false), at(PUBLIC, 3478));
        probe.recv(&mut [0u8; 512]).is_ok()
    });
    assert!(!answered, "UDP to the TURN port still answered");
    let group = vec![
        format!("turn:{PUBLIC}:3478?transport=udp"),
        format!("turns:{PUBLIC}:{tls_port}?transport=tcp"),
    ];
    if let Some(runs) = browser(&lab, &[group], PASSWORD) {
        browser_relayed(&runs[0], "tls", &[PUBLIC.parse().unwrap()], &tern);
    }
    let wrong = vec![format!("turns:{PUBLIC}:{tls_port}?transport=tcp")];
    if let Some(runs) = browser(&lab, &[wrong], "wrong-password") {
        assert_eq!(runs[0]["echoes"], -1, "{}", runs[0]);
        assert!(runs[0]["pair"].is_null(), "{}", runs[0]);
    }
}

/// `check-config` fails exactly when the server refuses to start: every refusal the lab meets
/// is a check-config error naming the file and line, and every topology's configuration above
/// passes it.
#[test]
fn check_config_matches_start_up_on_the_vm() {
    let Some(lab) = lab(Vm::CloudNat { hairpin: false }) else {
        return;
    };
    let dir = TempDir::new("lab-check");
    let refused: [&[&str]; 3] = [
        // The private part of external-ip is no address of this host.
        &["external-ip=203.0.113.10/10.99.0.5"],
        // A listening address the host does not have.
        &["listening-ip=198.51.100.99"],
        // A relay address the host does not have.
        &["relay-ip=198.51.100.99"],
    ];
    let accepted: [&[&str]; 5] = [
        &["external-ip=203.0.113.10/10.20.0.10"],
        &["external-ip=203.0.113.10"],
        &["external-ip=203.0.113.10", "listening-ip=0.0.0.0"],
        &["listening-ip=0.0.0.0", "listening-ip=::"],
        &["listening-ip=10.20.0.10", "relay-ip=10.20.0.10"],
    ];
    for (i, lines) in refused.iter().chain(&accepted).enumerate() {
        let should_start = i >= refused.len();
        let conf = dir.path(&format!("case{i}.conf"));
        let bad_line = 4;
        let text = format!(
            "lt-cred-mech\nrealm={REALM}\nuser={USER}:{PASSWORD}\n{}\nno-tls\n",
            lines.join("\n")
        );
        std::fs::write(&conf, &text).expect("write conf");
        let conf = conf.display().to_string();
        let mut check = lab.command("vm", support::tern_bin());
        check.args(["check-config", &conf]);
        let check = output_within(&mut check, Duration::from_secs(30)).expect("check-config");
        let report = String::from_utf8_lossy(&check.stdout).into_owned()
            + &String::from_utf8_lossy(&check.stderr);
        let mut start = lab.command("vm", support::tern_bin());
        start.args(["-c", &conf]);
        let started = starts(start);
        assert_eq!(
            started.is_ok(),
            should_start,
            "{text}\nstart-up: {started:?}\ncheck-config:\n{report}"
        );
        assert_eq!(
            check.status.success(),
            should_start,
            "{text}\ncheck-config disagrees with start-up ({started:?}):\n{report}"
        );
        if !should_start {
            let at = format!("{conf}:{bad_line}:");
            assert!(
                report
                    .lines()
                    .any(|l| l.contains("error") && l.contains(&at)),
                "{text}\ncheck-config names no file:line ({at}):\n{report}"
            );
        }
    }
}

/// Ok when the server says it is ready within a few seconds (it is then stopped), else its
/// output when it exits first.
fn starts(mut cmd: std::process::Command) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tern");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let ready = thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains(" ready"))
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ready.is_finished() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut { err }, &mut stderr);
    match ready.join() {
        Ok(true) => Ok(()),
        _ => Err(format!("{status}: {stderr}")),
    }
}

/// A configuration in the shape a popular deployment guide gives (tests/lab/corpus), with the
/// operator's values filled in; or coturn's own example file with an operator's lines appended.
struct Guide {
    name: &'static str,
    /// A file of tests/lab/corpus; None: coturn's example file from its Debian package.
    file: Option<&'static str>,
    /// Plain TCP listens (the guide does not set no-tcp).
    tcp: bool,
    /// The TLS port, where the guide runs TLS.
    tls: Option<u16>,
    /// TURN REST credentials (use-auth-secret); else the long-term user.
    rest: bool,
}

const GUIDES: [Guide; 5] = [
    Guide {
        name: "Matrix homeserver (Synapse)",
        file: Some("matrix-synapse.conf"),
        tcp: true,
        tls: Some(5349),
        rest: true,
    },
    Guide {
        name: "Nextcloud Talk",
        file: Some("nextcloud-talk.conf"),
        tcp: true,
        tls: None,
        rest: true,
    },
    Guide {
        name: "Jitsi Meet",
        file: Some("jitsi-meet.conf"),
        tcp: false,
        tls: Some(5349),
        rest: true,
    },
    Guide {
        name: "BigBlueButton",
        file: Some("bigbluebutton.conf"),
        tcp: true,
        tls: Some(443),
        rest: true,
    },
    Guide {
        name: "coturn's example turnserver.conf",
        file: None,
        tcp: true,
        tls: Some(5349),
        rest: false,
    },
];

const SECRET: &str = "lab-shared-secret";
/// coturn's example configuration, as its Debian package installs it.
const COTURN_EXAMPLE: &str = "/usr/share/doc/coturn/examples/etc/turnserver.conf";

/// The guide's file with the operator's values: this VM's public address, a certificate, the
/// shared secret and the realm.
fn guide_text(guide: &Guide, cert: &TestCert) -> Option<String> {
    let fill = |text: &str| {
        text.replace("{SECRET}", SECRET)
            .replace("{REALM}", REALM)
            .replace("{PUBLIC}", PUBLIC)
            .replace("{CERT}", &cert.cert.display().to_string())
            .replace("{PKEY}", &cert.key.display().to_string())
    };
    match guide.file {
        Some(file) => {
            let path = format!("{}/tests/lab/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
            Some(fill(&std::fs::read_to_string(&path).expect("corpus file")))
        }
        None => {
            let Ok(example) = std::fs::read_to_string(COTURN_EXAMPLE) else {
                lab::skip(&format!(
                    "{COTURN_EXAMPLE} (package coturn) is not installed"
                ));
                return None;
            };
            Some(format!(
                "{example}\n# the operator's lines\nlt-cred-mech\nuser={USER}:{PASSWORD}\n\
                 realm={REALM}\nexternal-ip={PUBLIC}\ncert={{CERT}}\npkey={{PKEY}}\n"
            ))
            .map(|t| fill(&t))
        }
    }
}

/// Every guide's configuration passes check-config on the VM and relays relay to relay for
/// coturn's uclient (client to client) and for Chromium over each transport the guide offers;
/// a wrong password connects nothing.
fn deployment_guides_configurations(engine: &str) {
    let Some(lab) = lab(Vm::Public) else { return };
    for guide in &GUIDES {
        let cert = TestCert::new("guide");
        let Some(text) = guide_text(guide, &cert) else {
            continue;
        };
        let dir = TempDir::new("guide");
        let conf = dir.path("turnserver.conf");
        std::fs::write(&conf, &text).expect("write the guide's configuration");
        let conf = conf.display().to_string();
        let mut check = lab.command("vm", support::tern_bin());
        check.args(["check-config", &conf]);
        let check = output_within(&mut check, Duration::from_secs(30)).expect("check-config");
        assert!(
            check.status.success(),
            "{}: check-config fails:\n{}",
            guide.name,
            String::from_utf8_lossy(&check.stdout)
        );
        guide_relays(&lab, guide, &conf, engine);
    }
}

fn guide_relays(lab: &Lab, guide: &Guide, conf: &str, engine: &str) {
    let on = lab.on("vm");
    let on: Vec<&str> = on.iter().map(String::as_str).collect();
    let [engine_arg, fast] = engine_flags(lab, engine);
    // Guides log to syslog; the test reads the log on stdout (a flag overrides the file).
    let mut args = vec!["-c", conf, &engine_arg, &fast, "--log-file=stdout"];
    if !guide.tcp {
        // The file says no-tcp already; the harness waits for the listeners its flags name.
        args.push("--no-tcp");
    }
    let server = Server::start_wrapped(&on, &args);
    let context = |what: &str, out: &str| {
        format!(
            "{} on {engine}: {what}:\n{out}\ntern's log:\n{}",
            guide.name,
            server.log()
        )
    };
    let (user, password) = if guide.rest {
        let user = format!("{}:{USER}", unix_now() + 3600);
        let password = tern::auth::rest_password(SECRET, &user);
        (user, password)
    } else {
        (USER.to_string(), PASSWORD.to_string())
    };
    let mut groups = vec![vec![format!("turn:{PUBLIC}:3478?transport=udp")]];
    let mut protocols = vec!["udp"];
    if guide.tcp {
        groups.push(vec![format!("turn:{PUBLIC}:3478?transport=tcp")]);
        protocols.push("tcp");
    }
    if let Some(port) = guide.tls {
        groups.push(vec![format!("turns:{PUBLIC}:{port}?transport=tcp")]);
        protocols.push("tls");
    }
    thread::scope(|s| {
        let relayed = s.spawn(|| {
            let out = uclient(lab, PUBLIC, &user, &password, &["-y", "-m", "2"]);
            let totals = support::uclient::totals(&out);
            assert!(
                totals.is_some_and(|(sent, got)| sent > 0 && sent == got)
                    && !support::uclient::reported_error(&out),
                "{}",
                context("uclient client to client", &out)
            );
        });
        let wrong = s.spawn(|| {
            let out = uclient(lab, PUBLIC, &user, "wrong", &["-y", "-m", "2"]);
            refused(guide.name, &out);
        });
        let page = Page {
            urls: &[],
            user: &user,
            pass: &password,
            messages: MESSAGES,
            timeout_ms: 30_000,
        };
        if let Some(runs) = lab.in_host("client", || run_groups(&page, &groups)) {
            for (run, protocol) in runs.iter().zip(&protocols) {
                let ok = run["echoes"] == MESSAGES && run["pair"]["relayProtocol"] == *protocol;
                assert!(ok, "{}", context(protocol, &run.to_string()));
            }
        }
        relayed.join().unwrap();
        wrong.join().unwrap();
    });
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
