//! The packaged `/etc/tern/turnserver.conf` parses cleanly and refuses to start only because no
//! authentication mode is set (no open relay out of the box); with either commented
//! authentication example enabled it passes `check-config --strict`.

use tern::config::check_config;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/etc/turnserver.conf");

/// `tern check-config FILE [--strict]`: (exit code, report).
fn check(path: &str, strict: bool) -> (i32, String) {
    let mut args = vec![path.to_owned()];
    if strict {
        args.push("--strict".into());
    }
    let mut out = Vec::new();
    let code = check_config(&args, &mut out);
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn as_shipped_only_the_missing_authentication_is_reported() {
    let (code, report) = check(CONF, false);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("# 1 error(s), 0 warning(s)"), "{report}");
    let errors: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("no authentication is configured")
                && e.contains("does not run an open relay")),
        "{report}"
    );
}

/// The shipped file with the lines of one commented example enabled.
fn with_enabled(lines: &[&str], name: &str) -> (i32, String) {
    let text = std::fs::read_to_string(CONF).expect("read the packaged config");
    let mut enabled = 0;
    let edited: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if lines.iter().any(|p| rest.starts_with(p)) => {
                enabled += 1;
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert_eq!(enabled, lines.len(), "every example line is in the file");
    let path = std::env::temp_dir().join(format!("tern-conf-{name}-{}", std::process::id()));
    std::fs::write(&path, edited).expect("write the edited config");
    let result = check(path.to_str().expect("utf-8 path"), true);
    std::fs::remove_file(&path).expect("remove the edited config");
    result
}

#[test]
fn long_term_example_starts_cleanly() {
    let (code, report) = with_enabled(&["realm=", "lt-cred-mech", "user="], "lt");
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("# 0 error(s), 0 warning(s)"), "{report}");
}

#[test]
fn rest_example_starts_cleanly() {
    let (code, report) = with_enabled(
        &["realm=", "use-auth-secret", "static-auth-secret="],
        "rest",
    );
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("# 0 error(s), 0 warning(s)"), "{report}");
}

#[test]
fn log_file_example_points_into_the_units_logs_directory() {
    let text = std::fs::read_to_string(CONF).expect("read the packaged config");
    assert!(text
        .lines()
        .any(|l| l == "#log-file=/var/log/tern/tern.log"));
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/tern.service"))
            .expect("read the unit");
    assert!(unit.lines().any(|l| l == "LogsDirectory=tern"));
}
