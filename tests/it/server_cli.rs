//! The command line: `--version`, `--help`, `check-config`, refusal of bad configurations and of
//! an open relay, and a clean exit on SIGTERM / SIGINT.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{output_within, tern_bin, Server};

const QUICK: Duration = Duration::from_secs(20);

fn tern(args: &[&str]) -> std::process::Output {
    output_within(Command::new(tern_bin()).args(args), QUICK).unwrap_or_else(|e| panic!("{e}"))
}

/// A config file in the temp directory, removed on drop.
struct TempConf(PathBuf);

impl TempConf {
    fn new(name: &str, text: &str) -> TempConf {
        let path = std::env::temp_dir().join(format!("tern-{}-{name}.conf", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConf(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = tern(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("tern {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_the_options() {
    let out = tern(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["listening-port", "static-auth-secret", "relay-ip"] {
        assert!(
            text.contains(name),
            "--help does not mention {name}:\n{text}"
        );
    }
}

#[test]
fn check_config_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/turnserver.conf");
    assert!(example.is_file(), "{} is missing", example.display());
    let out = tern(&["check-config", example.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "check-config failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_value_is_refused_with_file_and_line() {
    let conf = TempConf::new(
        "bad-value",
        "# a comment\nlistening-port=not-a-port\nno-auth\n",
    );
    let expected = format!("{}:2:", conf.path());

    let run = tern(&["-c", conf.path()]);
    assert!(!run.status.success(), "started with an invalid config");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(&expected), "no {expected} in:\n{stderr}");
    assert!(stderr.contains("listening-port"), "{stderr}");

    let check = tern(&["check-config", conf.path()]);
    assert!(!check.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(all.contains(&expected), "no {expected} in:\n{all}");
}

#[test]
fn an_external_ip_private_part_of_another_host_is_refused_at_its_line() {
    // 192.0.2.254 (TEST-NET-1) is no address of this host.
    let conf = TempConf::new(
        "external-ip",
        "no-auth\nno-tls\nexternal-ip=203.0.113.10/192.0.2.254\n",
    );
    let expected = format!(
        "{}:3: external-ip: the PRIVATE part 192.0.2.254",
        conf.path()
    );
    let run = tern(&["-c", conf.path(), "--listening-port=0"]);
    assert!(!run.status.success(), "started with a foreign PRIVATE part");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(&expected), "no {expected} in:\n{stderr}");
    let check = tern(&["check-config", conf.path()]);
    assert!(!check.status.success());
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains(&format!("error: {expected}")),
        "no {expected} in:\n{stdout}"
    );
}

#[test]
fn a_wildcard_listening_ip_listens_on_every_address_of_its_family() {
    let user = format!("--user={}:{}", support::USER, support::PASSWORD);
    let realm = format!("--realm={}", support::REALM);
    let server = Server::start_args(&[
        "-n",
        "--listening-ip=0.0.0.0",
        "--listening-port=0",
        "--no-tls",
        &user,
        &realm,
    ]);
    let port = server.udp_addr().port();
    let v4: Vec<std::net::IpAddr> = tern::net::local_addresses()
        .expect("interface addresses")
        .into_iter()
        .filter(|ip| ip.is_ipv4())
        .collect();
    assert!(!v4.is_empty());
    for ip in &v4 {
        let line = format!("listening on udp {}", std::net::SocketAddr::new(*ip, port));
        assert!(
            server.wait_for_log(&line, QUICK).is_some(),
            "no {line:?} in:\n{}",
            server.log()
        );
    }
    assert!(
        !server.log().contains("listening on udp [::"),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("listening on udp 0.0.0.0"),
        "{}",
        server.log()
    );
    let loopback = std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port);
    let mut client =
        support::turn_client::TurnClient::new(loopback, support::USER, support::PASSWORD);
    let relayed = client.allocate().expect("allocate through the wildcard");
    assert_eq!(
        relayed.ip(),
        loopback.ip(),
        "the relay is the address reached"
    );
}

#[test]
fn no_authentication_is_refused_with_a_clear_message() {
    let out = tern(&["-n", "--listening-ip=127.0.0.1", "--listening-port=0"]);
    assert!(!out.status.success(), "started an open relay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-auth"),
        "the refusal does not say what to set:\n{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(&[]);
        server.signal(signal);
        let status = server
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("still running 5 s after signal {signal}"));
        assert!(
            status.success(),
            "signal {signal}: exit {status:?}; log:\n{}",
            server.log()
        );
    }
}
