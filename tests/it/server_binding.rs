//! STUN Binding (RFC 8489 §3, §14.2) against the real binary over UDP and TCP on loopback, and
//! interop with coturn's `turnutils_stunclient`.

use crate::support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use support::{binding_request, interop_tool, mapped_address, output_within, read_stun};
use support::{transaction_id, Server};
use tern::stun::Message;

const ANSWER: Duration = Duration::from_secs(3);

fn udp_binding(server: SocketAddr, fingerprint: bool) -> (SocketAddr, Vec<u8>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(ANSWER)).unwrap();
    let tid = transaction_id();
    sock.send_to(&binding_request(&tid, fingerprint), server)
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = sock.recv_from(&mut buf).expect("a Binding response");
    assert_eq!(from, server, "the answer comes from the address asked");
    let resp = buf[..n].to_vec();
    assert_eq!(mapped_address(&resp, &tid), sock.local_addr().unwrap());
    (sock.local_addr().unwrap(), resp)
}

#[test]
fn udp_binding_returns_the_exact_source_address() {
    let server = Server::start(&[]);
    udp_binding(server.udp_addr(), false);
}

#[test]
fn tcp_binding_returns_the_exact_source_address() {
    let server = Server::start(&[]);
    let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    for _ in 0..2 {
        let tid = transaction_id();
        stream.write_all(&binding_request(&tid, false)).unwrap();
        let resp = read_stun(&mut stream).expect("a Binding response on the stream");
        assert_eq!(mapped_address(&resp, &tid), stream.local_addr().unwrap());
    }
}

#[test]
fn tcp_requests_split_and_coalesced_are_framed() {
    let server = Server::start(&[]);
    let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (t1, t2) = (transaction_id(), transaction_id());
    let mut both = binding_request(&t1, false);
    both.extend(binding_request(&t2, true));
    let (head, tail) = both.split_at(7);
    stream.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(tail).unwrap();
    let local = stream.local_addr().unwrap();
    assert_eq!(mapped_address(&read_stun(&mut stream).unwrap(), &t1), local);
    assert_eq!(mapped_address(&read_stun(&mut stream).unwrap(), &t2), local);
}

#[test]
fn fingerprint_in_the_request_gets_fingerprint_back() {
    let server = Server::start(&[]);
    let (_, resp) = udp_binding(server.udp_addr(), true);
    let msg = Message::parse(&resp).expect("Message::parse checks the FINGERPRINT value");
    assert!(msg.has_fingerprint(), "response without FINGERPRINT");
}

/// The ephemeral port range the kernel gives unbound client sockets.
fn ephemeral_ports() -> std::ops::RangeInclusive<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| String::from("1024 65535"));
    let mut it = text
        .split_whitespace()
        .filter_map(|p| p.parse::<u16>().ok());
    let lo = it.next().unwrap_or(1024);
    let hi = it.next().unwrap_or(65535);
    lo..=hi
}

#[test]
fn turnutils_stunclient_reports_its_reflexive_address() {
    let Some(tool) = interop_tool("turnutils_stunclient") else {
        return;
    };
    let server = Server::start(&[]);
    let port = server.udp_addr().port().to_string();
    let out = output_within(
        Command::new(tool).args(["-p", &port, "127.0.0.1"]),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stunclient failed: {text}");
    // Output: "0: : IPv4. UDP reflexive addr: 127.0.0.1:56882"
    let reflexive: SocketAddr = text
        .lines()
        .find_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reflexive address in: {text}"));
    assert_eq!(reflexive.ip().to_string(), "127.0.0.1");
    // stunclient cannot be told its port; it is an ephemeral one, and our own client (which
    // knows its port) must get exactly its own address from the same server.
    assert!(
        ephemeral_ports().contains(&reflexive.port()),
        "{reflexive} is not an ephemeral client port"
    );
    assert_ne!(reflexive.port(), server.udp_addr().port());
    udp_binding(server.udp_addr(), false);
}

/// Sends a classic (RFC 3489) Binding request, without the magic cookie, from `sock`; the
/// answer, if one comes within a second.
fn classic_binding(sock: &UdpSocket, server: SocketAddr, tid: &[u8; 16]) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut request = vec![0x00, 0x01, 0x00, 0x00];
    request.extend_from_slice(tid);
    sock.send_to(&request, server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

#[test]
fn rfc3489_clients_get_mapped_address_unless_backward_compatibility_is_off() {
    let mut tid = [0xC1u8; 16];
    tid[4..].copy_from_slice(&transaction_id());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sock.local_addr().unwrap();

    let server = Server::start(&[]);
    let answer = classic_binding(&sock, server.udp_addr(), &tid).expect("an answer");
    // A Binding success, the 16-byte id echoed whole, MAPPED-ADDRESS alone.
    assert_eq!(answer[..4], [0x01, 0x01, 0x00, 0x0C]);
    assert_eq!(answer[4..20], tid);
    assert_eq!(answer[20..24], [0x00, 0x01, 0x00, 0x08]);
    assert_eq!(
        tern::stun::address::decode_address(&answer[24..]),
        Ok(local)
    );
    let (_, modern) = udp_binding(server.udp_addr(), false);
    let modern_local = Message::parse(&modern).unwrap();
    assert!(modern_local
        .address(tern::stun::attr::MAPPED_ADDRESS)
        .is_some());
    assert!(answer.len() <= modern.len());

    let off = Server::start(&["--no-stun-backward-compatibility"]);
    assert_eq!(classic_binding(&sock, off.udp_addr(), &tid), None);
    let (_, modern) = udp_binding(off.udp_addr(), false);
    let m = Message::parse(&modern).unwrap();
    assert_eq!(m.address(tern::stun::attr::MAPPED_ADDRESS), None);
}

/// `check-config` shows the choice among the effective settings.
#[test]
fn check_config_shows_stun_backward_compatibility() {
    let dir = support::TempDir::new("backward");
    let conf = dir.path("turnserver.conf");
    for (text, shown) in [
        ("no-auth\nno-tls\n", "stun-backward-compatibility=on"),
        (
            "no-auth\nno-tls\nno-stun-backward-compatibility\n",
            "stun-backward-compatibility=off",
        ),
    ] {
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(support::tern_bin())
            .args(["check-config", conf.to_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(shown), "no {shown} in:\n{stdout}");
    }
}
