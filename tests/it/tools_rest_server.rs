//! `tern rest-credentials` end to end: the pair the command prints allocates on a real tern
//! started with the same `static-auth-secret`, and is refused by one with another secret.

use crate::support;

use std::process::Command;

use support::turn_client::TurnClient;
use support::{tern_bin, Server, REALM};

const SECRET: &str = "rest-e2e-secret";

/// Runs `tern rest-credentials` and returns (username, password) from its two lines.
fn credentials(user: &str) -> (String, String) {
    let out = Command::new(tern_bin())
        .args([
            "rest-credentials",
            "-s",
            SECRET,
            "-u",
            user,
            "--ttl",
            "3600",
        ])
        .output()
        .expect("run tern rest-credentials");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    (field("username:"), field("password:"))
}

fn rest_server(secret: &str) -> Server {
    let realm = format!("--realm={REALM}");
    let secret = format!("--static-auth-secret={secret}");
    Server::start_args(&[
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-port=0",
        "--use-auth-secret",
        &secret,
        &realm,
    ])
}

#[test]
fn printed_pair_allocates_on_tern_with_the_same_secret() {
    let (username, password) = credentials("carol");
    assert!(username.ends_with(":carol"), "{username}");

    let server = rest_server(SECRET);
    let mut client = TurnClient::new(server.udp_addr(), &username, &password);
    let relayed = client.allocate();
    assert!(
        relayed.is_ok(),
        "{:?}\n{}",
        relayed.err().map(|r| r.code),
        server.log()
    );

    let other = rest_server("another-secret");
    let mut client = TurnClient::new(other.udp_addr(), &username, &password);
    let refused = client.allocate().err().map(|r| r.code);
    assert_eq!(refused, Some(401), "{}", other.log());
}
