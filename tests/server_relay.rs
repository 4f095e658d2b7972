//! Relaying through the engine's relay sockets (RFC 8656 §2.4-§2.5, RFC 6062 control over TCP):
//! coturn's `turnutils_uclient` allocates, binds channels or sends indications, and echoes
//! packets off `turnutils_peer`; every packet must come back. Each case runs its own server and
//! peer, so the cases run in parallel.

mod support;

use std::path::Path;
use std::thread;

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
    let secret = format!("--static-auth-secret={REST_SECRET}");
    let realm = format!("--realm={REALM}");
    Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--use-auth-secret",
        &secret,
        &realm,
        "--allow-loopback-peers",
        "--relay-threads=2",
    ])
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
    let cases: [Case; 7] = [
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
