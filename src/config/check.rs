//! `tern check-config FILE [--strict]`: every diagnostic, what is ignored by design, and the
//! effective settings; the exit code says whether the server would start.

use super::diag::Diagnostic;
use super::load::build;
use super::options::option;
use std::io::Write;

/// Writes the report to `out`; returns 0 when the configuration has no error (and, with
/// `--strict`, no warning), else 1.
pub fn check_config(args: &[String], out: &mut dyn Write) -> i32 {
    let strict = args.iter().any(|a| a == "--strict");
    let args: Vec<String> = args.iter().filter(|a| *a != "--strict").cloned().collect();
    let (cfg, diags) = build(&args, true);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let failed = errors > 0 || (strict && warnings > 0);
    // A reader closed early (`| head`) must not turn a valid configuration into a failure.
    let _ = report(out, &cfg, &diags, errors, warnings);
    i32::from(failed)
}

fn report(
    out: &mut dyn Write,
    cfg: &super::Config,
    diags: &[Diagnostic],
    errors: usize,
    warnings: usize,
) -> std::io::Result<()> {
    match &cfg.source {
        Some(p) => writeln!(out, "configuration file: {}", p.display())?,
        None => writeln!(out, "configuration file: none")?,
    }
    for d in diags {
        let tag = if d.is_error() { "error: " } else { "" };
        writeln!(out, "{tag}{d}")?;
    }
    for name in &cfg.ignored_options {
        let why = option(name).map_or("", |o| o.help);
        writeln!(out, "note: {name}: accepted and ignored by design ({why})")?;
    }
    writeln!(out, "# effective settings")?;
    out.write_all(cfg.effective().as_bytes())?;
    writeln!(
        out,
        "# redirects (alternate-server-mode={})",
        cfg.alternate_server_mode
    )?;
    for line in cfg.redirect_summary() {
        writeln!(out, "#   {line}")?;
    }
    writeln!(out, "# {errors} error(s), {warnings} warning(s)")
}
