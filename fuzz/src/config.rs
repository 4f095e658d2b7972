//! The `config_parse` target: arbitrary turnserver.conf text through `config::parse_str`, and
//! arbitrary command lines through `config::load` with `-n` (no file): never a panic, every
//! diagnostic points at a real line, and a configuration that loads gives shard settings.

use std::net::SocketAddr;
use std::path::Path;

use tern::config::{load, parse_str, Config};

const FILE: &str = "fuzz.conf";

pub fn config(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode & 1 == 0 {
        file(&text);
    } else {
        flags(&text);
    }
}

fn file(text: &str) {
    let mut cfg = Config::default();
    let mut diags = Vec::new();
    parse_str(text, Path::new(FILE), &mut cfg, &mut diags);
    let lines = text.split('\n').count();
    for d in &diags {
        if let Some(at) = &d.location {
            assert_eq!(at.file, Path::new(FILE));
            assert!(
                at.line >= 1 && at.line <= lines,
                "line {} of {lines}",
                at.line
            );
        }
        let _ = d.to_string();
    }
    let _ = cfg.effective();
}

/// Arguments are separated by NUL or newline. `-n` goes last, twice, so that no argument can
/// name a file to read (the first may be taken as a flag's value, the second cannot).
fn flags(text: &str) {
    let mut args: Vec<String> = text
        .split(['\0', '\n'])
        .take(64)
        .map(str::to_owned)
        .collect();
    args.push("-n".into());
    args.push("-n".into());
    match load(&args) {
        Ok(loaded) => {
            let _ = loaded.config.effective();
            let listeners = [SocketAddr::from(([192, 0, 2, 1], 3478))];
            let _ =
                tern::turn::Settings::from_options(&loaded.config.proto_options(), &listeners, &[]);
        }
        Err(diags) => assert!(
            diags.iter().any(|d| d.is_error()),
            "load failed without an error"
        ),
    }
}
