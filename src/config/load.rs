//! Building the effective `Config` from the command line: the file (if any), then the flags
//! (which win), then `user` entries, then the cross-option checks and the address options
//! against the host's addresses.

use super::apply::{apply, apply_pending, dedupe_not_implemented, Pending};
use super::cli::{parse_args, FileChoice};
use super::diag::Diagnostic;
use super::file::{find_config_file, parse_file, SEARCH_DIRS};
use super::semantic::{finalize, host_addresses};
use super::Config;
use std::path::Path;

/// A configuration that may start a server, and the warnings to log at start-up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// `args` excludes argv[0]. Err holds every diagnostic (at least one error) in order.
pub fn load(args: &[String]) -> Result<Loaded, Vec<Diagnostic>> {
    let (config, diags) = build(args, false);
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok(Loaded {
            config,
            warnings: diags,
        })
    }
}

/// The configuration and every diagnostic. With `file_operand`, a bare argument names the file
/// (`tern check-config FILE`).
pub(crate) fn build(args: &[String], file_operand: bool) -> (Config, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut inv = parse_args(args, &mut diags);
    let mut operands = inv.positional.into_iter();
    if file_operand && inv.file == FileChoice::Default {
        if let Some(f) = operands.next() {
            inv.file = FileChoice::Named(f.into());
        }
    }
    for extra in operands {
        diags.push(Diagnostic::error(
            None,
            None,
            format!("unexpected argument `{extra}`"),
        ));
    }
    let mut cfg = Config::default();
    match &inv.file {
        FileChoice::None => {}
        FileChoice::Default => {
            if let Some(p) = find_config_file(Path::new("turnserver.conf")) {
                parse_file(&p, &mut cfg, &mut diags);
            }
        }
        FileChoice::Named(name) => match find_config_file(name) {
            Some(p) => parse_file(&p, &mut cfg, &mut diags),
            None => diags.push(Diagnostic::error(
                None,
                None,
                format!(
                    "cannot find configuration file `{}` (looked in {})",
                    name.display(),
                    SEARCH_DIRS.join(" ")
                ),
            )),
        },
    }
    let mut pending = Vec::new();
    for f in inv.flags {
        if f.spec.applied_last {
            pending.push(Pending {
                spec: f.spec,
                value: f.value,
                at: None,
            });
        } else {
            apply(&mut cfg, &mut diags, f.spec, &f.value, None);
        }
    }
    apply_pending(&mut cfg, &mut diags, pending);
    finalize(&mut cfg, &mut diags);
    host_addresses(&cfg, &mut diags);
    dedupe_not_implemented(&mut diags);
    (cfg, diags)
}
