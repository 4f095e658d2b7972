//! Command-line flags as coturn takes them: `--name`, `--name=value`, `--name value`, the short
//! letters (`-p 3478`, `-p3478`, `-af`), `-c FILE` and `-n`.

use super::diag::Diagnostic;
use super::file::unknown;
use super::options::{by_short, option, Arg, OptSpec};
use std::path::PathBuf;

/// What the command line asks for besides running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Run,
    Help,
    Version,
}

/// `-h` / `--help` print the usage, `--version` the version (coturn checks these first).
pub fn action(args: &[String]) -> Action {
    for a in args {
        match a.as_str() {
            "-h" | "--help" => return Action::Help,
            "--version" => return Action::Version,
            _ => {}
        }
    }
    Action::Run
}

/// Which configuration file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileChoice {
    /// `turnserver.conf` in the search path, if there is one.
    Default,
    /// `-n`.
    None,
    /// `-c FILE`.
    Named(PathBuf),
}

pub(crate) struct Flag {
    pub spec: &'static OptSpec,
    pub value: String,
}

pub(crate) struct Invocation {
    pub file: FileChoice,
    pub flags: Vec<Flag>,
    pub positional: Vec<String>,
}

/// Splits the command line; unknown flags and missing values are errors.
pub(crate) fn parse_args(args: &[String], diags: &mut Vec<Diagnostic>) -> Invocation {
    let mut inv = Invocation {
        file: FileChoice::Default,
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        if let Some(long) = arg.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if name == "help" || name == "version" {
                continue;
            }
            let Some(spec) = option(name) else {
                diags.push(Diagnostic::error(None, Some(name), unknown(name)));
                continue;
            };
            let value = match (inline, spec.arg) {
                (Some(v), _) => Some(v.to_owned()),
                (None, Arg::Flag) => Some(String::new()),
                (None, Arg::Required) => it.next().cloned(),
                (None, Arg::Optional) => Some(
                    it.next_if(|v| !v.starts_with('-'))
                        .cloned()
                        .unwrap_or_default(),
                ),
            };
            push(&mut inv, diags, spec, value);
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            short_flags(shorts, &mut it, &mut inv, diags);
        } else {
            inv.positional.push(arg.clone());
        }
    }
    inv
}

fn short_flags<'a>(
    shorts: &str,
    it: &mut impl Iterator<Item = &'a String>,
    inv: &mut Invocation,
    diags: &mut Vec<Diagnostic>,
) {
    for (i, c) in shorts.char_indices() {
        let rest = &shorts[i + c.len_utf8()..];
        let value = || (!rest.is_empty()).then(|| rest.to_owned());
        match c {
            'n' => inv.file = FileChoice::None,
            'h' => {}
            'c' => {
                match value().or_else(|| it.next().cloned()) {
                    Some(f) => inv.file = FileChoice::Named(PathBuf::from(f)),
                    None => diags.push(Diagnostic::error(
                        None,
                        None,
                        "-c: expects a file name".into(),
                    )),
                }
                return;
            }
            _ => {
                let Some(spec) = by_short(c) else {
                    diags.push(Diagnostic::error(None, None, format!("-{c}: unknown flag")));
                    continue;
                };
                if spec.arg == Arg::Flag {
                    push(inv, diags, spec, Some(String::new()));
                    continue;
                }
                let v = value().or_else(|| it.next().cloned());
                push(inv, diags, spec, v);
                return;
            }
        }
    }
}

fn push(
    inv: &mut Invocation,
    diags: &mut Vec<Diagnostic>,
    spec: &'static OptSpec,
    value: Option<String>,
) {
    match value {
        Some(value) => inv.flags.push(Flag { spec, value }),
        None => diags.push(Diagnostic::error(
            None,
            Some(spec.name),
            "expects a value".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Invocation, Vec<Diagnostic>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut d = Vec::new();
        (parse_args(&args, &mut d), d)
    }

    fn pairs(inv: &Invocation) -> Vec<(&str, &str)> {
        inv.flags
            .iter()
            .map(|f| (f.spec.name, f.value.as_str()))
            .collect()
    }

    #[test]
    fn long_forms() {
        let (inv, d) = parse(&[
            "--listening-port",
            "4000",
            "--realm=x",
            "--fingerprint",
            "--stale-nonce",
        ]);
        assert!(d.is_empty());
        assert_eq!(
            pairs(&inv),
            [
                ("listening-port", "4000"),
                ("realm", "x"),
                ("fingerprint", ""),
                ("stale-nonce", "")
            ]
        );
        assert_eq!(inv.file, FileChoice::Default);
    }

    #[test]
    fn short_forms() {
        let (inv, d) = parse(&[
            "-c",
            "a.conf",
            "-p3000",
            "-af",
            "-u",
            "u:p",
            "-L",
            "127.0.0.1",
        ]);
        assert!(d.is_empty());
        assert_eq!(inv.file, FileChoice::Named(PathBuf::from("a.conf")));
        assert_eq!(
            pairs(&inv),
            [
                ("listening-port", "3000"),
                ("lt-cred-mech", ""),
                ("fingerprint", ""),
                ("user", "u:p"),
                ("listening-ip", "127.0.0.1")
            ]
        );
        let (inv, _) = parse(&["-n"]);
        assert_eq!(inv.file, FileChoice::None);
    }

    #[test]
    fn problems() {
        let (_, d) = parse(&["--lisening-port", "1"]);
        assert!(
            d[0].to_string().contains("did you mean `listening-port`"),
            "{}",
            d[0]
        );
        let (_, d) = parse(&["--realm"]);
        assert_eq!(d[0].to_string(), "--realm: expects a value");
        let (_, d) = parse(&["-Y"]);
        assert!(d[0].is_error());
    }
}
