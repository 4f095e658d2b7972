//! Both I/O engines relay the same traffic (RFC 8656 §2.4-§2.5): coturn's `turnutils_uclient`
//! through `--io-engine=epoll` and `--io-engine=uring`, channels, Send indications and a TCP
//! client, and each engine says in its log that it is the one running; tern-load's closed loop
//! through both, over UDP, TCP and TLS; relay ports freed on deallocation.

use crate::support;

use std::net::UdpSocket;

use support::tls::TestCert;
use support::uclient::{self, Peer};
use support::{Server, PASSWORD, USER};
use tern_load::{Credentials, Mode, Options, Transport};

/// Starts tern with `server_args` (plus `--allow-loopback-peers`), runs uclient with `extra`
/// (3 clients x 40 packets of 200 bytes) and checks that every message came back. None when the
/// tools are not installed.
fn echo_through(server_args: &[&str], extra: &[&str]) -> Option<Server> {
    let tool = uclient::tool()?;
    let peer = Peer::start()?;
    let mut args = vec!["--allow-loopback-peers"];
    args.extend_from_slice(server_args);
    let server = Server::start(&args);
    let mut all = vec![
        "-u", USER, "-w", PASSWORD, "-n", "40", "-m", "3", "-l", "200", "-c",
    ];
    all.extend_from_slice(extra);
    let text = uclient::run(&tool, server.udp_addr().port(), peer.port, &all);
    let totals = uclient::totals(&text);
    let ok = !uclient::reported_error(&text)
        && totals == Some((120, 120))
        && text.contains("Total lost packets 0 ");
    assert!(
        ok,
        "tern {server_args:?}, uclient {extra:?}:\n{text}\nserver log:\n{}",
        server.log()
    );
    Some(server)
}

fn relay_all_ways(engine: &str, log_says: &str) {
    let flag = format!("--io-engine={engine}");
    for extra in [&[][..], &["-s"], &["-t"]] {
        let Some(server) = echo_through(&[&flag], extra) else {
            return;
        };
        let log = server.log();
        assert!(
            log.lines().any(|l| l.contains(log_says)),
            "no {log_says:?} line:\n{log}"
        );
    }
}

#[test]
fn epoll_relays_channels_indications_and_tcp() {
    relay_all_ways("epoll", "I/O engine: epoll");
}

#[test]
fn uring_relays_channels_indications_and_tcp() {
    relay_all_ways("uring", "I/O engine: io_uring");
}

#[test]
fn auto_prefers_io_uring_here() {
    // This machine's kernel has io_uring (the uring test above proves it works): auto takes it.
    let Some(server) = echo_through(&["--io-engine=auto"], &[]) else {
        return;
    };
    let log = server.log();
    assert!(log.contains("I/O engine: io_uring"), "{log}");
    assert!(log.contains("auto: the io_uring probe succeeded"), "{log}");
}

/// Runs tern-load for a short run against `server`.
fn load(server: &Server, allocations: usize, mode: Mode, duration: f64) -> tern_load::Report {
    tern_load::run(&options(server, allocations, mode, duration)).expect("tern-load ran")
}

/// tern-load's options for a short run against `server`.
fn options(server: &Server, allocations: usize, mode: Mode, duration: f64) -> Options {
    Options {
        servers: vec![server.udp_addr()],
        credentials: Credentials::LongTerm {
            user: USER.into(),
            pass: PASSWORD.into(),
        },
        transport: Transport::Udp,
        allocations,
        mode,
        size: 160,
        rate: 0,
        window: 4,
        duration,
        peers: 2,
        setup_concurrency: 8,
        client_ips: 1,
        server_pid: Some(server.pid()),
        lab: None,
        label: String::new(),
        teardown: true,
        barrier: None,
    }
}

#[test]
fn both_engines_relay_every_packet_of_a_closed_loop() {
    for engine in ["--io-engine=epoll", "--io-engine=uring"] {
        let server = Server::start(&[engine, "--allow-loopback-peers"]);
        for mode in [Mode::Channel, Mode::Send] {
            let r = load(&server, 16, mode, 1.0);
            let why = format!("{engine} {mode:?}: {}\n{}", r.json(), server.log());
            assert_eq!((r.setup_ok, r.setup_failed), (16, 0), "{why}");
            // A window of 4 packets per client: trains the uring engine sends as GSO batches.
            assert!(r.sent > 16 * 4, "{why}");
            assert_eq!(r.received, r.sent, "{why}");
            assert_eq!(r.peer_received, r.sent, "{why}");
            assert_eq!(r.bad, 0, "{why}");
            assert_eq!(r.dealloc_ok, Some(16), "{why}");
        }
    }
}

#[test]
fn both_engines_relay_every_packet_over_tcp_and_tls_connections() {
    // Clients behind UDP-blocking firewalls: each allocation on its own stream, ChannelData
    // padded on it (RFC 8656 §12.5: 150 B of payload travel as 156 B), the relay leg UDP.
    let cert = TestCert::new("load");
    let [c, k] = cert.args();
    for engine in ["--io-engine=epoll", "--io-engine=uring"] {
        let server = Server::start(&[
            engine,
            "--allow-loopback-peers",
            &c,
            &k,
            "--tls-listening-port=0",
        ]);
        for (transport, addr) in [
            (Transport::Tcp, server.tcp_addr()),
            (Transport::Tls, server.tls_addr()),
        ] {
            for (mode, rate) in [(Mode::Channel, 0), (Mode::Channel, 2000), (Mode::Send, 0)] {
                let mut o = options(&server, 12, mode, 0.5);
                o.servers = vec![addr];
                o.transport = transport;
                o.size = 150;
                o.rate = rate;
                let r = tern_load::run(&o).expect("tern-load ran");
                let why = format!("{engine} {transport:?} {mode:?} {rate}: {}", r.json());
                let why = format!("{why}\n{}", server.log());
                assert_eq!((r.setup_ok, r.setup_failed), (12, 0), "{why}");
                assert!(r.sent > 12 * 4, "{why}");
                assert_eq!(r.received, r.sent, "{why}");
                assert_eq!(r.peer_received, r.sent, "{why}");
                assert_eq!((r.bad, r.send_errors, r.loss_pct), (0, 0, 0.0), "{why}");
                assert!(r.pkts_per_server_cpu_s.is_some_and(|p| p > 0.0), "{why}");
                // The machine's CPU less the generator's comes from /proc/stat in clock ticks:
                // at 2000 packets/s for half a second the rest of the machine may use less than
                // the ticks' jitter, and the report then rightly has no figure.
                if rate == 0 {
                    assert!(r.pkts_per_nongen_cpu_s.is_some_and(|p| p > 0.0), "{why}");
                }
                assert_eq!(r.transport, transport.name(), "{why}");
                assert_eq!(r.dealloc_ok, Some(12), "{why}");
            }
        }
    }
}

#[test]
fn generators_hold_their_allocations_at_the_barrier_until_go() {
    // The benchmark's multi-process run relies on this: no data phase starts before every
    // generator has set up, and each says so with a ready file.
    let server = Server::start(&["--io-engine=epoll", "--allow-loopback-peers"]);
    let dir = std::env::temp_dir().join(format!("tern-barrier-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("barrier dir");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut o = options(&server, 8, Mode::Channel, 0.5);
            o.barrier = Some(dir.clone());
            std::thread::spawn(move || tern_load::run(&o).expect("tern-load ran"))
        })
        .collect();
    let ready = || {
        std::fs::read_dir(&dir)
            .expect("barrier dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("ready."))
            })
            .count()
    };
    // Up to 30 s for two setups of 8 clients.
    for _ in 0..1500 {
        if ready() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(ready(), 2, "generators never got ready");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        runs.iter().all(|r| !r.is_finished()),
        "a generator went on without go"
    );
    std::fs::write(dir.join("go"), b"").expect("go file");
    for r in runs {
        let r = r.join().expect("generator thread");
        assert_eq!(r.setup_ok, 8, "{}", r.json());
        assert!(r.sent > 0, "{}", r.json());
        assert_eq!(r.received, r.sent, "{}", r.json());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` free UDP ports in a row on loopback, below the ephemeral range.
fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let mut b = [0u8; 2];
        getrandom::fill(&mut b).expect("random");
        let lo = 20_000 + u16::from_le_bytes(b) % 10_000;
        let free = (lo..lo + n).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return lo;
        }
    }
    panic!("no {n} free ports in a row");
}

/// A server on one shard relaying from `n` ports starting at a free one.
fn with_ports(engine: &str, n: u16) -> Server {
    let lo = free_ports(n);
    let (min, max) = (
        format!("--min-port={lo}"),
        format!("--max-port={}", lo + n - 1),
    );
    Server::start(&[
        engine,
        "--allow-loopback-peers",
        "--relay-threads=1",
        &min,
        &max,
    ])
}

#[test]
fn udp_clients_get_the_whole_relay_port_range() {
    // Under io_uring the portable shard only serves streams; slicing the range for it too left
    // the ring half the ports.
    for engine in ["--io-engine=uring", "--io-engine=epoll"] {
        let server = with_ports(engine, 64);
        let r = load(&server, 64, Mode::Channel, 0.2);
        let why = format!("{engine}: {}\n{}", r.json(), server.log());
        assert_eq!((r.setup_ok, r.setup_failed), (64, 0), "{why}");
        assert_eq!(r.received, r.sent, "{why}");
    }
}

#[test]
fn a_deallocated_relay_socket_gives_its_port_back() {
    // With io_uring a socket stays open while a receive holds it: the engine must cancel it.
    for engine in ["--io-engine=uring", "--io-engine=epoll"] {
        let server = with_ports(engine, 4);
        for round in 0..3 {
            let r = load(&server, 4, Mode::Channel, 0.0);
            let why = format!("{engine} round {round}: {}\n{}", r.json(), server.log());
            assert_eq!(r.setup_ok, 4, "{why}");
            assert_eq!(r.dealloc_ok, Some(4), "{why}");
        }
    }
}

#[test]
fn a_full_relay_port_range_refuses_allocations_and_says_why() {
    for engine in ["--io-engine=uring", "--io-engine=epoll"] {
        let server = with_ports(engine, 4);
        let r = load(&server, 6, Mode::Channel, 0.0);
        let log = server.log();
        let why = format!("{engine}: {}\n{log}", r.json());
        assert_eq!((r.setup_ok, r.setup_failed), (4, 2), "{why}");
        assert_eq!(r.failures.get("alloc_508"), Some(&2), "{why}");
        // Logged at the first refusal and the second (powers of two), not for every one.
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("cannot open a relay on 127.0.0.1: no free port found"))
            .collect();
        assert_eq!(lines.len(), 2, "{why}");
        assert!(lines[0].contains("min-port..max-port"), "{why}");
        assert!(lines[1].contains("(2 refused by this shard)"), "{why}");
    }
}
