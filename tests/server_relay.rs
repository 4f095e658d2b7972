//! Relaying through the engine's relay sockets (RFC 8656 §2.4-§2.5, RFC 6062 control over TCP):
//! coturn's `turnutils_uclient` allocates, binds channels or sends indications, and echoes
//! packets off `turnutils_peer`; every packet must come back.

mod support;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{interop_tool, output_within, Server, PASSWORD, USER};

/// `turnutils_peer` on a free loopback port, killed by PID on drop.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    fn start(tool: &std::path::Path) -> Peer {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(tool)
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnutils_peer");
        // The peer binds at once; give it a moment before the client's first packet.
        std::thread::sleep(Duration::from_millis(300));
        Peer { child, port }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs uclient with `extra` flags and checks that every message sent came back.
fn echo_through_tern(extra: &[&str]) {
    let (Some(client), Some(peer_tool)) = (
        interop_tool("turnutils_uclient"),
        interop_tool("turnutils_peer"),
    ) else {
        return;
    };
    let server = Server::start(&["--allow-loopback-peers"]);
    let peer = Peer::start(&peer_tool);
    let (peer_port, port) = (peer.port.to_string(), server.udp_addr().port().to_string());
    let mut args = vec![
        "-u",
        USER,
        "-w",
        PASSWORD,
        "-e",
        "127.0.0.1",
        "-r",
        &peer_port,
    ];
    args.extend_from_slice(&["-p", &port, "-n", "40", "-m", "3", "-l", "200", "-c"]);
    args.extend_from_slice(extra);
    args.push("127.0.0.1");
    let out = output_within(Command::new(client).args(&args), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    // uclient exits 0 even when an allocation fails: judge by what it prints.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let fail = |why: &str| -> ! {
        panic!(
            "{why} (uclient {extra:?}):\n{text}\nserver log:\n{}",
            server.log()
        )
    };
    if text.contains("error") {
        fail("uclient reported an error");
    }
    let totals = text
        .lines()
        .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))
        .unwrap_or_else(|| fail("no totals line"));
    let count = |key: &str| -> u64 {
        totals
            .split(key)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| fail("unreadable totals"))
    };
    let (sent, received) = (count("tot_send_msgs="), count("tot_recv_msgs="));
    assert_eq!(sent, 3 * 40, "{text}");
    assert_eq!(received, sent, "lost packets:\n{text}");
    assert!(text.contains("Total lost packets 0 "), "{text}");
}

#[test]
fn udp_channels_relay_every_packet() {
    echo_through_tern(&[]);
}

#[test]
fn udp_send_indications_relay_every_packet() {
    echo_through_tern(&["-s"]);
}

#[test]
fn tcp_client_connections_relay_every_packet() {
    echo_through_tern(&["-t"]);
}
