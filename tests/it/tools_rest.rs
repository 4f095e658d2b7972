//! `tern rest-credentials` pairs authenticate against tern's own credential check: the username
//! resolves under the configured secret and a request signed with the pair's key passes
//! MESSAGE-INTEGRITY; past the expiry, or under another secret, it does not.

use tern::auth::{long_term_key, Credentials, Lookup};
use tern::config::{load, Config};
use tern::stun::{attr, Class, Message, MessageBuilder, MessageType, Method};
use tern::tools::{rest_credentials, run_rest_credentials, EXIT_USAGE};

const NOW: u64 = 1_700_000_000;
const REALM: &str = "tern.example";

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn rest_config(secrets: &[&str], separator: &str) -> Config {
    let mut args = strings(&["-n", "--use-auth-secret", "--realm", REALM]);
    args.extend(secrets.iter().map(|s| format!("--static-auth-secret={s}")));
    args.push(format!("--rest-api-separator={separator}"));
    match load(&args) {
        Ok(loaded) => loaded.config,
        Err(diags) => panic!("config refused: {diags:?}"),
    }
}

/// `tern rest-credentials ARGS` at NOW: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_rest_credentials(&strings(args), &mut out, &mut err, NOW);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// The `username:` and `password:` lines of the text output.
fn pair(out: &str) -> (String, String) {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out:?}"))
            .to_owned()
    };
    (field("username: "), field("password: "))
}

/// An Allocate request signed as a client holding (username, password) would sign it.
fn signed_request(buf: &mut [u8], username: &str, password: &str) -> usize {
    let tid = [7u8; 12];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut b = MessageBuilder::new(buf, typ, &tid).expect("buffer");
    b.add_raw(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .expect("attr");
    b.add_str(attr::USERNAME, username).expect("attr");
    b.add_str(attr::REALM, REALM).expect("attr");
    b.add_str(attr::NONCE, "nonce").expect("attr");
    b.add_message_integrity(&long_term_key(username, REALM, password))
        .expect("integrity");
    b.finish()
}

/// What the server concludes about a request signed with the pair at `now`.
fn server_accepts(cfg: &Config, username: &str, password: &str, now: u64) -> Result<(), String> {
    let mut buf = [0u8; 512];
    let n = signed_request(&mut buf, username, password);
    let msg = Message::parse(&buf[..n]).map_err(|e| format!("parse: {e:?}"))?;
    let name = match msg.username() {
        Some(Ok(name)) => name,
        other => return Err(format!("username: {other:?}")),
    };
    match Credentials::from_options(&cfg.proto_options()).lookup(name, now) {
        Lookup::Keys(keys) if keys.iter().any(|k| msg.verify_integrity(k).is_ok()) => Ok(()),
        Lookup::Keys(_) => Err("integrity mismatch under every key".into()),
        Lookup::Expired => Err("expired".into()),
        Lookup::Unknown => Err("unknown user".into()),
    }
}

#[test]
fn generated_pair_authenticates_until_expiry() {
    let cfg = rest_config(&["old-secret", "s3cret"], ":");
    let (code, out, err) = run(&["-s", "s3cret", "-u", "alice", "--ttl", "3600"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (username, password) = pair(&out);
    assert_eq!(username, format!("{}:alice", NOW + 3600));
    assert_eq!(server_accepts(&cfg, &username, &password, NOW), Ok(()));
    assert_eq!(
        server_accepts(&cfg, &username, &password, NOW + 3600),
        Ok(())
    );
    assert_eq!(
        server_accepts(&cfg, &username, &password, NOW + 3601),
        Err("expired".into())
    );
    let other = rest_config(&["another-secret"], ":");
    assert_eq!(
        server_accepts(&other, &username, &password, NOW),
        Err("integrity mismatch under every key".into())
    );
}

#[test]
fn default_ttl_separator_and_bare_expiry() {
    let (_, out, _) = run(&["--secret=s3cret", "-u", "bob", "--separator", "-"]);
    let (username, password) = pair(&out);
    assert_eq!(username, format!("{}-bob", NOW + 86_400));
    assert_eq!(
        server_accepts(&rest_config(&["s3cret"], "-"), &username, &password, NOW),
        Ok(())
    );
    let (_, out, _) = run(&["-s", "s3cret"]);
    let (username, password) = pair(&out);
    assert_eq!(username, (NOW + 86_400).to_string());
    assert_eq!(
        server_accepts(&rest_config(&["s3cret"], ":"), &username, &password, NOW),
        Ok(())
    );
}

#[test]
fn json_output_holds_the_same_pair() {
    let (code, text, _) = run(&["-s", "s3cret", "-u", "a\"b", "--ttl=60"]);
    assert_eq!(code, 0);
    let (username, password) = pair(&text);
    let (code, json, _) = run(&["-s", "s3cret", "-u", "a\"b", "--ttl=60", "--json"]);
    assert_eq!(code, 0);
    let expected = format!(
        "{{\"username\": \"{}:a\\\"b\", \"password\": \"{password}\", \"ttl\": 60}}\n",
        NOW + 60
    );
    assert_eq!(json, expected);
    assert_eq!(username, format!("{}:a\"b", NOW + 60));
}

#[test]
fn secret_file_equals_secret_flag() {
    let path = std::env::temp_dir().join(format!("tern-rest-secret-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").expect("write secret file");
    let from_file = run(&[
        "--secret-file",
        path.to_str().expect("utf-8 path"),
        "-u",
        "c",
    ]);
    std::fs::remove_file(&path).expect("remove secret file");
    assert_eq!(from_file, run(&["-s", "s3cret", "-u", "c"]));
}

#[test]
fn unusable_command_lines_print_nothing() {
    for args in [
        &["-u", "alice"][..],
        &["-s", ""],
        &["-s", "x", "--ttl", "0"],
        &["-s", "x", "--ttl", "-5"],
        &["-s", "x", "--ttl", "18446744073709551615"],
        &["-s", "x", "--separator", "::"],
        &["-s", "x", "--separator", "7"],
        &["-s", "x", "--secret-file", "/nonexistent/tern-secret"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (EXIT_USAGE, ""), "{args:?}");
        assert!(err.starts_with("tern: "), "{args:?}: {err}");
    }
}

#[test]
fn library_function_matches_the_command() {
    let c = rest_credentials("s3cret", "alice", 3600, ':', NOW).expect("credentials");
    let (_, out, _) = run(&["-s", "s3cret", "-u", "alice", "--ttl", "3600"]);
    assert_eq!(pair(&out), (c.username, c.password));
    assert_eq!(c.ttl, 3600);
}
