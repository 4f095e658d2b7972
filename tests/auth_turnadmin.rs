//! Interop: tern's long-term keys equal what coturn's `turnadmin -k` prints.

use std::process::Command;

use tern::auth::long_term_key;

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `0x...` token `turnadmin -k` prints, or None when the binary is absent.
fn turnadmin_key(user: &str, realm: &str, password: &str) -> Option<String> {
    let out = match Command::new("turnadmin")
        .args(["-k", "-u", user, "-r", realm, "-p", password])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running turnadmin: {e}"),
    };
    assert!(out.status.success(), "turnadmin failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .split_whitespace()
        .find(|t| t.starts_with("0x"))
        .unwrap_or_else(|| panic!("no key in turnadmin output: {stdout}"));
    Some(token.trim_start_matches("0x").to_lowercase())
}

#[test]
fn keys_match_turnadmin() {
    let cases = [
        ("user", "realm", "pass"),
        ("alice", "example.org", "correct horse battery staple"),
        (
            "1700000000:bob",
            "turn.example.com",
            "An2kjIxkLKTFjrmC7sgZFReed6M=",
        ),
    ];
    for (user, realm, password) in cases {
        let Some(expected) = turnadmin_key(user, realm, password) else {
            assert!(
                std::env::var("TERN_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "turnadmin not found and TERN_REQUIRE_INTEROP=1"
            );
            eprintln!("notice: turnadmin not installed; skipping the turnadmin interop test");
            return;
        };
        assert_eq!(
            hex(&long_term_key(user, realm, password)),
            expected,
            "{user}"
        );
    }
}
