//! Configuration diagnostics: where a problem is (file line or command-line flag) and what it is.

use std::fmt;
use std::path::PathBuf;

/// A line of a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem. `location: None` with `option: Some` means the option came from a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Option<Location>,
    pub option: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(location: Option<Location>, option: Option<&str>, message: String) -> Self {
        Self::new(Severity::Error, location, option, message)
    }

    pub fn warning(location: Option<Location>, option: Option<&str>, message: String) -> Self {
        Self::new(Severity::Warning, location, option, message)
    }

    fn new(
        severity: Severity,
        location: Option<Location>,
        option: Option<&str>,
        message: String,
    ) -> Self {
        Diagnostic {
            severity,
            location,
            option: option.map(str::to_owned),
            message,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        match (&self.location, &self.option) {
            (Some(l), Some(o)) => write!(
                f,
                "{}:{}: {}: {}",
                l.file.display(),
                l.line,
                o,
                self.message
            ),
            (Some(l), None) => write!(f, "{}:{}: {}", l.file.display(), l.line, self.message),
            (None, Some(o)) => write!(f, "--{}: {}", o, self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let at = Some(Location {
            file: PathBuf::from("/x/t.conf"),
            line: 2,
        });
        let e = Diagnostic::error(at.clone(), Some("max-bps"), "bad".into());
        assert_eq!(e.to_string(), "/x/t.conf:2: max-bps: bad");
        let w = Diagnostic::warning(None, Some("max-bps"), "bad".into());
        assert_eq!(w.to_string(), "warning: --max-bps: bad");
        let plain = Diagnostic::error(None, None, "no auth".into());
        assert_eq!(plain.to_string(), "no auth");
    }
}
