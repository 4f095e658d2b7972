//! The packaged `tern(8)` page (`packaging/man/tern.8`) is exactly what the option table
//! generates. After changing an option, regenerate it with
//! `TERN_REGENERATE=1 cargo test --test it packaging_man::` and commit the file.

use std::path::Path;
use std::process::Command;

use tern::config::options;
use tern::tools::man_page;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/man/tern.8");

#[test]
fn committed_page_matches_the_option_table() {
    let generated = man_page();
    if std::env::var("TERN_REGENERATE").as_deref() == Ok("1") {
        std::fs::write(PAGE, &generated).expect("write packaging/man/tern.8");
    }
    let committed = std::fs::read_to_string(PAGE).unwrap_or_default();
    assert!(
        committed == generated,
        "packaging/man/tern.8 is stale: run `TERN_REGENERATE=1 cargo test --test it packaging_man::`"
    );
}

#[test]
fn every_option_has_an_entry() {
    let page = man_page();
    assert!(options().len() > 100);
    let tags: Vec<&str> = page
        .lines()
        .zip(page.lines().skip(1))
        .filter(|(prev, _)| *prev == ".TP")
        .map(|(_, tag)| tag)
        .collect();
    for o in options() {
        let entry = format!("\\fB\\-\\-{}\\fR", o.name.replace('-', "\\-"));
        assert!(
            tags.iter().any(|t| t.contains(&entry)),
            "no entry for --{}",
            o.name
        );
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "FILES",
    ] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
    }
}

/// `man` renders the page without a warning (skipped when man is not installed).
#[test]
fn renders_without_warnings() {
    let out = Command::new("man")
        .args(["--warnings", "-l", "-Tutf8", "-P", "cat"])
        .arg(Path::new(PAGE))
        .env("MANWIDTH", "100")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(_) => {
            eprintln!("notice: man not installed; not rendering tern.8");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    // grotty emboldens by overstriking: drop every character that a backspace takes back.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(text.contains("check-config") && text.contains("--static-auth-secret"));
}
