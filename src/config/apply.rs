//! Applies one option occurrence (from a file line or a flag) to a `Config`, per its table row.

use super::diag::{Diagnostic, Location};
use super::options::{Arg, OptSpec, Setter, Status};
use super::{values, Config};

/// The message of the one warning a not-implemented option gets.
pub(crate) const NOT_IMPLEMENTED: &str = "not implemented by tern yet; accepted and ignored";

/// The error of an option tern refuses (`Status::Refused`).
pub(crate) const REFUSED: &str = "not implemented by tern, and in coturn it narrows who may \
relay: ignoring it would admit more than coturn does; remove it (tern --help says why)";

/// One occurrence of an option, kept for options applied last (`user`).
pub(crate) struct Pending {
    pub spec: &'static OptSpec,
    pub value: String,
    pub at: Option<Location>,
}

/// Applies `value` of `spec`; `at` is the file line, `None` for a command-line flag.
pub(crate) fn apply(
    cfg: &mut Config,
    diags: &mut Vec<Diagnostic>,
    spec: &'static OptSpec,
    value: &str,
    at: Option<Location>,
) {
    let error = |diags: &mut Vec<Diagnostic>, m: String| {
        diags.push(Diagnostic::error(at.clone(), Some(spec.name), m))
    };
    let on = if spec.arg == Arg::Flag {
        match values::boolean(value) {
            Ok(b) => b,
            Err(e) => return error(diags, e),
        }
    } else {
        if spec.arg == Arg::Required && value.is_empty() && !matches!(spec.setter, Setter::None) {
            return error(diags, "expects a value".into());
        }
        true
    };
    if spec.coturn_ignores_value && !on {
        diags.push(Diagnostic::warning(
            at.clone(),
            Some(spec.name),
            format!("`{value}` turns it off in tern; coturn would turn it on whatever the value"),
        ));
    }
    match spec.setter {
        Setter::Bool(set) => {
            set(cfg, on);
            cfg.origins.record(spec.name, at.clone());
        }
        Setter::Text(set) => {
            if let Err(e) = set(cfg, value) {
                match before_inline_comment(value) {
                    Some(head) if set(cfg, head).is_ok() => diags.push(Diagnostic::warning(
                        at.clone(),
                        Some(spec.name),
                        format!(
                            "`{}` is not a comment in turnserver.conf (only a line that starts \
                             with # is): coturn reads `{head}` and so does tern; put the comment \
                             on a line of its own",
                            &value[head.len()..].trim_start()
                        ),
                    )),
                    _ => return error(diags, e),
                }
            }
            cfg.origins.record(spec.name, at.clone());
        }
        Setter::None => {}
    }
    match spec.status {
        Status::NotImplemented if on => {
            diags.push(Diagnostic::warning(
                at.clone(),
                Some(spec.name),
                NOT_IMPLEMENTED.into(),
            ));
        }
        Status::Refused if on => {
            diags.push(Diagnostic::error(
                at.clone(),
                Some(spec.name),
                REFUSED.into(),
            ));
        }
        Status::Ignored if !cfg.ignored_options.iter().any(|n| n == spec.name) => {
            cfg.ignored_options.push(spec.name.to_owned());
        }
        _ => {}
    }
}

/// The value before a ` # ...` that guides write after it (`user-quota=12 # 3 calls per user`).
/// coturn reads numbers with atoi, which stops there; a value that is invalid whole is retried
/// with this part (a text value such as a realm keeps the whole line, as in coturn).
fn before_inline_comment(value: &str) -> Option<&str> {
    let hash = value.find(" #").or_else(|| value.find("\t#"))?;
    let head = value[..hash].trim_end();
    (!head.is_empty()).then_some(head)
}

/// Applies the options kept for last, in the order they came.
pub(crate) fn apply_pending(cfg: &mut Config, diags: &mut Vec<Diagnostic>, pending: Vec<Pending>) {
    for p in pending {
        apply(cfg, diags, p.spec, &p.value, p.at);
    }
}

/// Keeps only the first warning per not-implemented option ("one warning naming it").
pub(crate) fn dedupe_not_implemented(diags: &mut Vec<Diagnostic>) {
    let mut seen: Vec<String> = Vec::new();
    diags.retain(|d| {
        if d.message != NOT_IMPLEMENTED {
            return true;
        }
        let name = d.option.clone().unwrap_or_default();
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        true
    });
}
