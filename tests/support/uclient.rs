//! coturn's `turnutils_uclient` against a running tern, echoing off `turnutils_peer`: every
//! packet sent must come back.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{interop_tool, output_within, Server, PASSWORD, USER};

/// `turnutils_peer` on a free loopback port, killed by PID on drop.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    pub fn start(tool: &std::path::Path) -> Peer {
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

/// Starts tern with `server_args` (plus `--allow-loopback-peers`), runs uclient with `extra`
/// (3 clients x 40 packets of 200 bytes) and checks every message came back. Returns the server
/// for further checks, or None when the tools are not installed.
pub fn echo_through(server_args: &[&str], extra: &[&str]) -> Option<Server> {
    let (Some(client), Some(peer_tool)) = (
        interop_tool("turnutils_uclient"),
        interop_tool("turnutils_peer"),
    ) else {
        return None;
    };
    let mut args = vec!["--allow-loopback-peers"];
    args.extend_from_slice(server_args);
    let server = Server::start(&args);
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
            "{why} (tern {server_args:?}, uclient {extra:?}):\n{text}\nserver log:\n{}",
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
    if sent != 3 * 40 || received != sent || !text.contains("Total lost packets 0 ") {
        fail("not every packet came back");
    }
    Some(server)
}
