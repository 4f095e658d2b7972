//! Runs coturn's `turnutils_uclient` against a server and judges its output: it exits 0 even when
//! it prints errors, so the totals line and the lost-packet count decide.

use std::process::Command;
use std::time::Duration;

use super::{interop_tool, output_within, Server, PASSWORD, USER};

/// Runs uclient with `-u -w -p port` plus `args` (host last) and checks that `clients *
/// messages` messages were sent and all came back. Returns its output. None: uclient is absent.
pub fn echo_all(
    server: &Server,
    port: u16,
    args: &[&str],
    clients: u64,
    messages: u64,
) -> Option<String> {
    echo_all_except(server, port, args, clients, messages, &[])
}

/// `echo_all`, where output lines containing one of `expected` are not counted as errors.
pub fn echo_all_except(
    server: &Server,
    port: u16,
    args: &[&str],
    clients: u64,
    messages: u64,
    expected: &[&str],
) -> Option<String> {
    let tool = interop_tool("turnutils_uclient")?;
    let port = port.to_string();
    let (m, n) = (clients.to_string(), messages.to_string());
    let mut full = vec!["-u", USER, "-w", PASSWORD, "-p", &port, "-m", &m, "-n", &n];
    full.extend_from_slice(args);
    full.push("127.0.0.1");
    let out = output_within(Command::new(tool).args(&full), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let fail = |why: &str| -> ! {
        panic!(
            "{why} (uclient {full:?}):\n{text}\nserver log:\n{}",
            server.log()
        )
    };
    let unexpected = text
        .lines()
        .filter(|l| !expected.iter().any(|e| l.contains(e)))
        .any(|l| l.to_lowercase().contains("error"));
    if unexpected {
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
    if sent != clients * messages {
        fail(&format!("sent {sent}, expected {}", clients * messages));
    }
    if received != sent {
        fail(&format!("sent {sent}, received {received}"));
    }
    if !text.contains("Total lost packets 0 ") {
        fail("lost packets");
    }
    Some(text)
}
