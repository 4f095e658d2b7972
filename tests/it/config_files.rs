//! Every shipped configuration passes check-config; coturn's own stock file is understood.

use std::path::{Path, PathBuf};
use tern::config::{self, check_config, load, options, Status};

fn conf_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conf/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

fn check(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let code = check_config(&args, &mut out);
    (code, String::from_utf8(out).expect("utf-8 report"))
}

#[test]
fn every_shipped_file_passes_strict_check_config() {
    for f in conf_files() {
        let path = f.to_str().expect("utf-8 path");
        let (code, out) = check(&[path, "--strict"]);
        assert_eq!(code, 0, "{path}:\n{out}");
        assert!(
            out.contains(&format!("configuration file: {path}")),
            "{out}"
        );
        assert!(out.contains("# 0 error(s), 0 warning(s)"), "{out}");
    }
}

#[test]
fn example_runs_a_safe_server() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/turnserver.conf");
    let args = vec!["-c".to_string(), path.display().to_string()];
    let loaded = load(&args).expect("example loads");
    let c = loaded.config;
    assert_eq!(c.listening_port, 3478);
    assert_eq!(c.realm, "tern.example");
    assert!(c.lt_cred_mech && !c.no_auth);
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.users[0].name, "demo");
    assert!(c.fingerprint && c.no_tls && c.no_dtls);
    assert!(!c.allow_loopback_peers);
    assert!(c.allowed_peer_ips.is_empty());
    assert_eq!((c.min_port, c.max_port), (49152, 65535));
    assert_eq!(c.ignored_options, ["no-cli"]);
}

#[test]
fn example_mentions_every_implemented_option() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/turnserver.conf");
    let text = std::fs::read_to_string(path).expect("example readable");
    let lines: Vec<&str> = text.lines().map(|l| l.trim_start_matches('#')).collect();
    for o in options().iter().filter(|o| o.status == Status::Implemented) {
        let present = lines.iter().any(|l| {
            l.strip_prefix(o.name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['=', ' ']))
        });
        assert!(
            present,
            "conf/turnserver.conf does not mention `{}`",
            o.name
        );
    }
}

#[test]
fn check_config_masks_secrets_and_lists_ignored_options() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/turnserver.conf");
    let (code, out) = check(&[path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("change-this-demo-password"), "{out}");
    assert!(out.contains("user=demo:********"), "{out}");
    assert!(
        out.contains("note: no-cli: accepted and ignored by design"),
        "{out}"
    );
    assert!(out.contains("\nlistening-port=3478\n"), "{out}");
}

#[test]
fn debian_stock_config_needs_only_an_auth_mode() {
    let stock = Path::new("/etc/turnserver.conf");
    if !stock.is_file() {
        eprintln!(
            "skipped: {} is absent (Debian package coturn)",
            stock.display()
        );
        return;
    }
    let args = vec!["-c".to_string(), stock.display().to_string()];
    let diags = load(&args).expect_err("the stock file configures no authentication");
    for d in &diags {
        assert!(!d.message.contains("unknown option"), "{d}");
        if d.is_error() {
            assert!(d.message.contains("no authentication is configured"), "{d}");
        }
    }
    assert_eq!(diags.iter().filter(|d| d.is_error()).count(), 1);
    let with_auth = vec![
        "-c".to_string(),
        stock.display().to_string(),
        "--no-auth".to_string(),
    ];
    let loaded = load(&with_auth).expect("stock file with no-auth loads");
    assert_eq!(loaded.config.source.as_deref(), Some(stock));
}

#[test]
fn usage_lists_every_option() {
    let text = config::usage();
    for o in options() {
        assert!(
            text.contains(&format!("--{} ", o.name)) || text.contains(&format!("--{}\n", o.name)),
            "usage misses {}",
            o.name
        );
    }
    assert!(text.contains("-p, --listening-port <value>"), "{text}");
}
