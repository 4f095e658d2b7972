//! `tern key` prints exactly the line coturn's `turnadmin -k` prints, and rejects incomplete
//! command lines without printing a key.

use std::process::Command;

use tern::tools::{run_key, EXIT_USAGE};

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// `tern key ARGS`: (exit code, stdout, stderr).
fn tern_key(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_key(&strings(args), &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// The first stdout line of `turnadmin -k` (its log chatter follows), or None when absent.
fn turnadmin_key_line(user: &str, realm: &str, password: &str) -> Option<String> {
    let out = match Command::new("turnadmin")
        .args(["-k", "-u", user, "-r", realm, "-p", password])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running turnadmin: {e}"),
    };
    assert!(out.status.success(), "turnadmin failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout.lines().next().map(|l| format!("{l}\n"))
}

#[test]
fn output_equals_turnadmin() {
    let cases = [
        ("alice", "example.org", "correct horse battery staple"),
        ("bob", "turn.example.com", "p@ss:w0rd"),
        (
            "1700000000:carol",
            "tern.example",
            "An2kjIxkLKTFjrmC7sgZFReed6M=",
        ),
    ];
    for (user, realm, password) in cases {
        let Some(expected) = turnadmin_key_line(user, realm, password) else {
            assert!(
                std::env::var("TERN_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "turnadmin not found and TERN_REQUIRE_INTEROP=1"
            );
            eprintln!("notice: turnadmin not installed; skipping the tern key interop test");
            return;
        };
        assert!(
            expected.starts_with("0x") && expected.len() == 35,
            "{expected:?}"
        );
        let (code, out, err) = tern_key(&["-u", user, "-r", realm, "-p", password]);
        assert_eq!((code, err.as_str()), (0, ""), "{user}");
        assert_eq!(out, expected, "{user}");
    }
}

#[test]
fn long_flags_give_the_same_key() {
    let short = tern_key(&["-u", "u", "-r", "r", "-p", "p"]);
    let long = tern_key(&["--user=u", "--realm", "r", "--password=p"]);
    assert_eq!(short, long);
    // MD5("u:r:p"), as turnadmin -k -u u -r r -p p prints it.
    assert_eq!(short.1, "0x44add22b6f3179b751eafd68ee370f7d\n");
}

#[test]
fn incomplete_command_lines_print_no_key() {
    for args in [
        &["-u", "u", "-r", "r"][..],
        &["-u", "u", "-p"],
        &["--user=u", "--realm=r", "--password=p", "--bogus"],
        &["extra"],
    ] {
        let (code, out, err) = tern_key(args);
        assert_eq!(code, EXIT_USAGE, "{args:?}");
        assert_eq!(out, "", "{args:?}");
        assert!(err.starts_with("tern: ") && err.contains("--help"), "{err}");
    }
    let (code, out, _) = tern_key(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Usage: tern key -u USER -r REALM -p PASSWORD"));
}

/// `--sha256` prints the RFC 8489 §9.2.2 SHA-256 key, `0x` and 64 hex digits, which a
/// `user=NAME:0x...` line takes as a SHA-256-only user.
#[test]
fn sha256_key() {
    // `printf 'user:realm:pass' | sha256sum`
    let (code, out, err) = tern_key(&["-u", "user", "-r", "realm", "-p", "pass", "--sha256"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "0x07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b\n"
    );
    let mut cfg = tern::config::Config::default();
    let mut diags = Vec::new();
    let text = format!("user=user:{}\nrealm=realm\n", out.trim());
    tern::config::parse_str(&text, std::path::Path::new("t.conf"), &mut cfg, &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    assert!(matches!(
        cfg.users.first().map(|u| &u.secret),
        Some(tern::config::UserSecret::Sha256Key(_))
    ));
}
