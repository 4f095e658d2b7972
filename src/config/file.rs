//! Configuration files: where a relative `-c` name is looked for, and parsing a file's text into
//! a `Config` with file:line diagnostics.

use super::apply::{apply, apply_pending, Pending};
use super::diag::{Diagnostic, Location};
use super::lexer::lex;
use super::options::{closest, option};
use super::Config;
use std::path::{Path, PathBuf};

/// Where a relative configuration file name is looked for, in order (coturn's list plus
/// `/etc/tern/`).
pub const SEARCH_DIRS: &[&str] = &[
    "./",
    "./etc/",
    "/etc/",
    "/etc/turnserver/",
    "/etc/coturn/",
    "/etc/tern/",
];

/// The file `name` refers to: itself when absolute, else the first match in [`SEARCH_DIRS`].
pub fn find_config_file(name: &Path) -> Option<PathBuf> {
    if name.is_absolute() {
        return name.is_file().then(|| name.to_path_buf());
    }
    SEARCH_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Parses the text of a configuration file into `cfg`, reporting problems against `file`.
/// `user` lines are applied after every other line of the file.
pub fn parse_str(text: &str, file: &Path, cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    let mut pending = Vec::new();
    for e in lex(text) {
        let at = Location {
            file: file.to_path_buf(),
            line: e.line,
        };
        if e.semicolon {
            diags.push(Diagnostic::warning(
                Some(at.clone()),
                Some(e.name),
                "the line ends with `;`, which is part of the value".into(),
            ));
        }
        let Some(spec) = option(e.name) else {
            diags.push(Diagnostic::warning(Some(at), Some(e.name), unknown(e.name)));
            continue;
        };
        if spec.applied_last {
            pending.push(Pending {
                spec,
                value: e.value.to_owned(),
                at: Some(at),
            });
        } else {
            apply(cfg, diags, spec, e.value, Some(at));
        }
    }
    apply_pending(cfg, diags, pending);
}

/// "unknown option", with the closest known name when there is one.
pub(crate) fn unknown(name: &str) -> String {
    match closest(name) {
        Some(c) => format!("unknown option; did you mean `{c}`?"),
        None => "unknown option".into(),
    }
}

/// Reads and parses one file; a file that cannot be read is an error.
pub(crate) fn parse_file(path: &Path, cfg: &mut Config, diags: &mut Vec<Diagnostic>) {
    match std::fs::read(path) {
        Ok(bytes) => {
            cfg.source = Some(path.to_path_buf());
            parse_str(&String::from_utf8_lossy(&bytes), path, cfg, diags);
        }
        Err(e) => diags.push(Diagnostic::error(
            None,
            None,
            format!("{}: cannot read: {e}", path.display()),
        )),
    }
}
