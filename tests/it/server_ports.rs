//! Each server's listening port is its own. The shards share a port through SO_REUSEPORT, and
//! the kernel lets every reuseport socket of one user join such a group: set before the bind,
//! the option would let a second server start on a port the first holds (a port-0 bind may even
//! pick it), and each would silently get part of the other's clients. tern opens a group with
//! an exclusive bind, so `listening-port=0` (how every test starts tern) gets a port no socket
//! holds, and a configured port another server holds stops start-up with the address.

use crate::support;

use support::lab::skip;
use support::netns::{private_network, run};
use support::{run_tern, Server, PASSWORD, REALM, USER};

/// Servers started on port 0 with the namespace's ephemeral range cut to as many ports: were
/// ports shared, four random picks among four would all differ about one time in ten.
const SERVERS: usize = 4;

#[test]
fn port_zero_gives_every_server_a_port_of_its_own() {
    if let Err(why) = private_network("10.97.0.1/24") {
        return skip(&why);
    }
    let range = format!("net.ipv4.ip_local_port_range=40000 {}", 40000 + SERVERS - 1);
    run("sysctl", &["-qw", &range]).expect("the namespace's own ephemeral range");
    let servers: Vec<Server> = (0..SERVERS).map(|_| Server::start(&[])).collect();
    let mut ports: Vec<u16> = servers.iter().map(|s| s.udp_addr().port()).collect();
    for s in &servers {
        assert_eq!(s.tcp_addr().port(), s.udp_addr().port());
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), SERVERS, "servers share ports: {ports:?}");
    // Every port of the range is held now: one more server has none to take.
    let (started, text) = start_on(0);
    assert!(!started, "a fifth server started:\n{text}");
    assert!(text.contains("cannot listen on"), "{text}");
}

#[test]
fn a_port_another_server_holds_stops_start_up() {
    let first = Server::start(&[]);
    let port = first.udp_addr().port();
    let (started, text) = start_on(port);
    assert!(!started, "a second server started on {port}:\n{text}");
    assert!(
        text.contains(&format!("cannot listen on udp 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("in use"), "{text}");
}

/// Runs a server on 127.0.0.1 `port` that must fail to start: whether it started after all, and
/// its output.
fn start_on(port: u16) -> (bool, String) {
    let user = format!("--user={USER}:{PASSWORD}");
    let realm = format!("--realm={REALM}");
    let listening = format!("--listening-port={port}");
    run_tern(&[
        "-n",
        "--listening-ip=127.0.0.1",
        &listening,
        &user,
        &realm,
        "--no-tls",
    ])
}
