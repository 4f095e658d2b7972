//! Configuration diagnostics: where a problem is (file line or command-line flag) and what it is.

use std::fmt;
use std::path::PathBuf;

/// A line of a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

/// Where each option value came from, in the order applied: a file line, or `None` for a flag.
/// Checks across options use it to point at the line of the value they refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins(Vec<(&'static str, Option<Location>)>);

impl Origins {
    pub(crate) fn record(&mut self, option: &'static str, at: Option<Location>) {
        self.0.push((option, at));
    }

    /// Where the `index`-th value of `option` was given (counting every source in the order
    /// applied); `None` for a flag, or when there is no such value.
    pub fn of(&self, option: &str, index: usize) -> Option<&Location> {
        self.0
            .iter()
            .filter(|(name, _)| *name == option)
            .nth(index)
            .and_then(|(_, at)| at.as_ref())
    }

    /// Where the value in force of a single-valued `option` (the last one given) came from.
    pub fn last(&self, option: &str) -> Option<&Location> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| *name == option)
            .and_then(|(_, at)| at.as_ref())
    }
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

    #[test]
    fn origins_count_values_per_option() {
        let line = |n| Location {
            file: PathBuf::from("/x/t.conf"),
            line: n,
        };
        let mut o = Origins::default();
        o.record("external-ip", Some(line(3)));
        o.record("realm", Some(line(4)));
        o.record("external-ip", Some(line(5)));
        o.record("external-ip", None);
        assert_eq!(o.of("external-ip", 0), Some(&line(3)));
        assert_eq!(o.of("external-ip", 1), Some(&line(5)));
        assert_eq!(o.of("external-ip", 2), None, "a flag has no line");
        assert_eq!(o.of("external-ip", 3), None);
        assert_eq!(o.of("realm", 0), Some(&line(4)));
        assert_eq!(o.of("relay-ip", 0), None);
        o.record("realm", Some(line(9)));
        assert_eq!(o.last("realm"), Some(&line(9)));
        assert_eq!(
            o.last("external-ip"),
            None,
            "the last value came from a flag"
        );
        assert_eq!(o.last("relay-ip"), None);
    }
}
