//! coturn options that narrow who may relay in coturn and that tern does not implement
//! (`mysql-userdb`, `mongo-userdb`, `check-origin-consistency`, `listening-device`,
//! `relay-device`) stop the real binary's start-up and check-config at their FILE:LINE; options
//! where tern is already at least as strict (`oauth`, `mobility`, `cli-password`) only warn.
// Deadlines for a real process need the real clock (the clock ban is for the protocol core).
#![allow(clippy::disallowed_methods)]

use crate::support;

use support::{run_tern, TempDir};

const BASE: &str = "listening-ip=127.0.0.1\nlistening-port=0\nno-tls\nno-auth\n";

#[test]
fn options_that_narrow_who_may_relay_stop_start_up_at_their_line() {
    let dir = TempDir::new("refused");
    for line in [
        "mysql-userdb=host=127.0.0.1 dbname=coturn user=turn password=x",
        "mongo-userdb=mongodb://127.0.0.1/coturn",
        "check-origin-consistency",
        "listening-device=eth0",
        "relay-device=eth0",
    ] {
        let name = line.split('=').next().unwrap_or(line);
        let conf = dir.path(&format!("{name}.conf"));
        std::fs::write(&conf, format!("{BASE}{line}\n")).unwrap();
        let conf = conf.display().to_string();
        let at = format!("{conf}:5: {name}: ");
        let (started, text) = run_tern(&["-c", &conf]);
        assert!(!started, "{name}: started:\n{text}");
        assert!(text.contains(&at), "{name}: {at:?} missing:\n{text}");
        assert!(text.contains("who may"), "{name}: no reason:\n{text}");
        let (passed, text) = run_tern(&["check-config", &conf]);
        assert!(!passed, "{name}: check-config passed:\n{text}");
        assert!(
            text.contains(&at),
            "{name}: check-config: {at:?} missing:\n{text}"
        );
    }
}

#[test]
fn options_where_tern_is_already_stricter_only_warn() {
    let dir = TempDir::new("stricter");
    for line in ["oauth", "mobility", "cli-password=x", "server-relay"] {
        let conf = dir.path("stricter.conf");
        std::fs::write(&conf, format!("{BASE}{line}\n")).unwrap();
        let conf = conf.display().to_string();
        let (passed, text) = run_tern(&["check-config", &conf]);
        assert!(passed, "{line}: check-config failed:\n{text}");
        assert!(
            text.contains("not implemented"),
            "{line}: no warning:\n{text}"
        );
    }
}
