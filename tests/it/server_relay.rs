//! Relaying through the engine's relay sockets (RFC 8656 §2.4-§2.5, RFC 6062 control over TCP):
//! coturn's `turnutils_uclient` allocates, binds channels or sends indications, and echoes
//! packets off `turnutils_peer`; every packet must come back. Each case runs its own server and
//! peer, so the cases run in parallel. Channel numbers (`channel-numbers`) with tern's own client.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::metrics::{fetch, find, start_with_metrics};
use support::turn_client::TurnClient;
use support::uclient::{self, Peer};
use support::{interop_tool, Server, PASSWORD, REALM, USER};

const CLIENTS: u64 = 4;
const MESSAGES: u64 = 100;
const REST_SECRET: &str = "tern-rest-secret";

/// Long-term credentials, two shards: uclient's second allocation (RTCP, claiming the
/// RESERVATION-TOKEN of the first) comes from another port and may land on the other shard.
fn long_term_server() -> Server {
    Server::start(&["--allow-loopback-peers", "--relay-threads=2"])
}

fn one_shard_server() -> Server {
    Server::start(&["--allow-loopback-peers", "--relay-threads=1"])
}

/// Relay addresses of both families, for dual allocations (RFC 8656 §7.2
/// ADDITIONAL-ADDRESS-FAMILY): uclient `-Z` allocates an IPv4 and an IPv6 relay, then refreshes
/// one family at random.
fn dual_server() -> Server {
    Server::start(&[
        "--allow-loopback-peers",
        "--relay-threads=2",
        "--relay-ip=127.0.0.1",
        "--relay-ip=::1",
    ])
}

/// TURN REST credentials only (coturn's `use-auth-secret`), two shards.
fn rest_server() -> Server {
    rest_server_with(&[])
}

/// As `rest_server`, with `extra` arguments.
fn rest_server_with(extra: &[&str]) -> Server {
    let secret = format!("--static-auth-secret={REST_SECRET}");
    let realm = format!("--realm={REALM}");
    let mut args = vec![
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--use-auth-secret",
        &secret,
        &realm,
        "--allow-loopback-peers",
        "--relay-threads=2",
    ];
    args.extend_from_slice(extra);
    Server::start_args(&args)
}

/// RFC 8489 SHA-256 and USERHASH offered (`password-algorithms`, `userhash`): uclient does not
/// negotiate, so it must keep MD5 unchanged.
fn offering_server() -> Server {
    let mut args = vec!["--allow-loopback-peers", "--relay-threads=2"];
    args.extend_from_slice(&OFFER);
    Server::start(&args)
}

const OFFER: [&str; 2] = ["--password-algorithms=sha256,md5", "--userhash"];

/// TURN REST credentials with SHA-256 and USERHASH offered.
fn offering_rest_server() -> Server {
    rest_server_with(&OFFER)
}

/// Runs uclient (4 clients x 100 messages) with `args` and checks that every message came back.
fn echo_through(tool: &Path, server: &Server, args: &[&str]) -> Result<(), String> {
    let peer = Peer::start().ok_or("turnutils_peer vanished")?;
    let (clients, messages) = (CLIENTS.to_string(), MESSAGES.to_string());
    let mut all = vec!["-m", &clients, "-n", &messages, "-l", "200", "-z", "5"];
    all.extend_from_slice(args);
    let text = uclient::run(tool, server.udp_addr().port(), peer.port, &all);
    let fail = |why: &str| Err(format!("{why}:\n{text}\nserver log:\n{}", server.log()));
    if uclient::reported_error(&text) {
        return fail("uclient reported an error");
    }
    let Some((sent, received)) = uclient::totals(&text) else {
        return fail("no totals line");
    };
    if sent != CLIENTS * MESSAGES || received != sent {
        return fail(&format!("sent {sent}, received {received}"));
    }
    if !text.contains("Total lost packets 0 ") {
        return fail("lost packets");
    }
    Ok(())
}

type Case = (&'static str, fn() -> Server, &'static [&'static str]);

/// Every case with its own server and peer, in parallel: uclient spends most of its few seconds
/// waiting on its one-second ticks.
#[test]
fn uclient_echoes_every_packet_in_every_mode() {
    let (Some(tool), Some(_)) = (uclient::tool(), interop_tool("turnutils_peer")) else {
        return;
    };
    let cases: [Case; 9] = [
        (
            "long-term channels",
            long_term_server,
            &["-u", USER, "-w", PASSWORD],
        ),
        (
            "long-term send",
            long_term_server,
            &["-u", USER, "-w", PASSWORD, "-s"],
        ),
        (
            "REST channels",
            rest_server,
            &["-u", "carol", "-W", REST_SECRET],
        ),
        (
            "REST send",
            rest_server,
            &["-u", "carol", "-W", REST_SECRET, "-s"],
        ),
        (
            "one shard, no RTCP",
            one_shard_server,
            &["-u", USER, "-w", PASSWORD, "-c"],
        ),
        (
            "TCP client",
            one_shard_server,
            &["-u", USER, "-w", PASSWORD, "-t", "-c"],
        ),
        (
            "dual allocation",
            dual_server,
            &["-u", USER, "-w", PASSWORD, "-Z"],
        ),
        (
            "long-term channels, SHA-256 offered",
            offering_server,
            &["-u", USER, "-w", PASSWORD],
        ),
        (
            "REST channels, SHA-256 offered",
            offering_rest_server,
            &["-u", "carol", "-W", REST_SECRET],
        ),
    ];
    let failures: Vec<String> = thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|&(name, server, args)| {
                let tool = &tool;
                s.spawn(move || (name, echo_through(tool, &server(), args)))
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| match run.join() {
                Ok((_, Ok(()))) => None,
                Ok((name, Err(why))) => Some(format!("== {name}: {why}")),
                Err(_) => Some("== a case panicked".to_string()),
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Sends `payload` on `channel` and checks the peer receives it from `relay`, then echoes back.
fn relays_on(client: &TurnClient, peer: &UdpSocket, relay: SocketAddr, channel: u16) {
    let mut buf = [0u8; 1500];
    let payload = format!("on channel {channel:#06x}");
    client.send_channel(channel, payload.as_bytes());
    let (n, from) = peer.recv_from(&mut buf).expect("relayed to the peer");
    assert_eq!((from, &buf[..n]), (relay, payload.as_bytes()));
    peer.send_to(b"echo", relay).expect("peer answers");
    assert_eq!(client.recv_channel(), (channel, b"echo".to_vec()));
}

fn bind_refusal(client: &mut TurnClient, channel: u16, peer: SocketAddr) -> Option<u16> {
    client.channel_bind(channel, peer).err().map(|r| r.code)
}

/// By default every number coturn 4.6 binds (RFC 5766 §11, 0x4000-0x7FFF) is bound: coturn's
/// client library picks from all of it. `channel-numbers=rfc8656` narrows it to RFC 8656 §12's
/// 0x4000-0x4FFF: a ChannelBind for the reserved numbers is answered 400 and ChannelData on them
/// is discarded and counted.
#[test]
fn channel_numbers_follow_coturn_unless_rfc8656_is_asked() {
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let peer_addr = peer.local_addr().expect("peer address");

    let (coturn_like, _) = start_with_metrics(&[]);
    // One peer address takes one channel (RFC 8656 §12.2), so one allocation per number.
    for channel in [0x5000, 0x7FFF] {
        let mut client = TurnClient::new(coturn_like.udp_addr(), USER, PASSWORD);
        let relay = client.allocate().expect("allocate");
        assert_eq!(bind_refusal(&mut client, 0x8000, peer_addr), Some(400));
        client.channel_bind(channel, peer_addr).expect("bound");
        relays_on(&client, &peer, relay, channel);
    }

    let (strict, metrics) = start_with_metrics(&["--channel-numbers=rfc8656"]);
    let mut client = TurnClient::new(strict.udp_addr(), USER, PASSWORD);
    let relay = client.allocate().expect("allocate");
    for channel in [0x3FFF, 0x5000, 0x7FFF] {
        assert_eq!(
            bind_refusal(&mut client, channel, peer_addr),
            Some(400),
            "{channel:#06x}"
        );
    }
    client.channel_bind(0x4FFF, peer_addr).expect("bound");
    // ChannelData on a reserved number goes nowhere: the next datagram the peer sees is the
    // one sent after it on a bindable channel.
    client.send_channel(0x5000, b"reserved");
    relays_on(&client, &peer, relay, 0x4FFF);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (body, scrape) = fetch(metrics);
        let dropped = find(
            &scrape,
            "tern_drops_total",
            &[("reason", "bad_channel_number")],
        );
        if dropped == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "not counted:\n{body}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Why rfc5766 is the default: coturn's own client picks channel numbers from 0x4000-0x7FFF and
/// gives up on the first 400, so under rfc8656 it relays nothing.
#[test]
fn uclient_cannot_relay_under_rfc8656_channel_numbers() {
    let (Some(tool), Some(_)) = (uclient::tool(), interop_tool("turnutils_peer")) else {
        return;
    };
    let server = Server::start(&["--allow-loopback-peers", "--channel-numbers=rfc8656"]);
    let peer = Peer::start().expect("turnutils_peer");
    let text = uclient::run(
        &tool,
        server.udp_addr().port(),
        peer.port,
        &[
            "-u", USER, "-w", PASSWORD, "-m", "4", "-n", "10", "-l", "200",
        ],
    );
    assert!(
        text.contains("channel bind: error 400"),
        "uclient bound only RFC 8656 numbers?\n{text}"
    );
}
