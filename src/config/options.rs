//! The option table's shape and look-ups: every coturn 4.6.1 / 4.17 option name and tern's own,
//! with how it takes a value, whether it repeats, and what tern does with it.

use super::table::OPTIONS;
use super::Config;

/// How an option takes a value (coturn's `getopt_long` `has_arg`, refined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A boolean: bare (true) or `=BOOL`. coturn: `optional_argument` read by `get_bool_value`.
    Flag,
    /// A value is required: `--name=V`, `--name V`, `name=V` in the file.
    Required,
    /// A value may follow; bare means the default (e.g. `stale-nonce`).
    Optional,
}

/// What tern does with an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fills a `Config` field.
    Implemented,
    /// A coturn option tern does not implement yet: accepted with one warning naming it.
    NotImplemented,
    /// Accepted and ignored by design (tern already behaves that way, or it has no meaning for
    /// tern); listed once by check-config, never a warning.
    Ignored,
    /// A coturn option tern does not implement that narrows who may relay (or to where) in
    /// coturn: ignoring it would open tern wider than the coturn it replaces, so it stops
    /// start-up at its line.
    Refused,
}

pub(crate) type SetBool = fn(&mut Config, bool);
pub(crate) type SetText = fn(&mut Config, &str) -> Result<(), String>;

/// How an implemented option writes its value into `Config`.
#[derive(Clone, Copy)]
pub(crate) enum Setter {
    None,
    Bool(SetBool),
    Text(SetText),
}

/// One row of the option table.
#[derive(Clone, Copy)]
pub struct OptSpec {
    pub name: &'static str,
    pub short: Option<char>,
    pub arg: Arg,
    /// Repeatable and accumulating; otherwise the last one wins.
    pub repeats: bool,
    pub status: Status,
    /// coturn sets this option even when given `=false`; tern reads the value and says so.
    pub coturn_ignores_value: bool,
    /// Applied after every other option of its source (`user`: keys depend on the final realm).
    pub applied_last: bool,
    pub help: &'static str,
    pub(crate) setter: Setter,
}

impl std::fmt::Debug for OptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptSpec")
            .field("name", &self.name)
            .field("short", &self.short)
            .field("arg", &self.arg)
            .field("repeats", &self.repeats)
            .field("status", &self.status)
            .finish()
    }
}

impl OptSpec {
    const fn new(name: &'static str, arg: Arg, status: Status, setter: Setter) -> Self {
        OptSpec {
            name,
            short: None,
            arg,
            repeats: false,
            status,
            coturn_ignores_value: false,
            applied_last: false,
            help: "",
            setter,
        }
    }

    /// An implemented boolean.
    pub(crate) const fn flag(name: &'static str, set: SetBool) -> Self {
        Self::new(name, Arg::Flag, Status::Implemented, Setter::Bool(set))
    }

    /// An implemented option with a required value.
    pub(crate) const fn value(name: &'static str, set: SetText) -> Self {
        Self::new(name, Arg::Required, Status::Implemented, Setter::Text(set))
    }

    /// An implemented option whose value may be left out (the setter gets "").
    pub(crate) const fn opt_value(name: &'static str, set: SetText) -> Self {
        Self::new(name, Arg::Optional, Status::Implemented, Setter::Text(set))
    }

    /// A coturn option tern does not implement yet.
    pub(crate) const fn todo(name: &'static str, arg: Arg) -> Self {
        Self::new(name, arg, Status::NotImplemented, Setter::None)
    }

    /// A coturn option that narrows who may relay in coturn and that tern does not implement.
    pub(crate) const fn refused(name: &'static str, arg: Arg) -> Self {
        Self::new(name, arg, Status::Refused, Setter::None)
    }

    /// A coturn option tern accepts and ignores by design.
    pub(crate) const fn ignored(name: &'static str, arg: Arg) -> Self {
        Self::new(name, arg, Status::Ignored, Setter::None)
    }

    /// Parsed and validated into `Config`, but not honoured yet: one warning naming it.
    pub(crate) const fn pending(mut self) -> Self {
        self.status = Status::NotImplemented;
        self
    }

    pub(crate) const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }

    pub(crate) const fn repeats(mut self) -> Self {
        self.repeats = true;
        self
    }

    pub(crate) const fn coturn_ignores_value(mut self) -> Self {
        self.coturn_ignores_value = true;
        self
    }

    pub(crate) const fn last(mut self) -> Self {
        self.applied_last = true;
        self
    }

    pub(crate) const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
}

/// Every option tern knows, in help order.
pub fn options() -> &'static [OptSpec] {
    OPTIONS
}

/// The option with exactly this long name (names are case-sensitive: `verbose` / `Verbose`).
pub fn option(name: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.name == name)
}

pub(crate) fn by_short(c: char) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

/// The known name closest to `name`, if it is close enough to be a likely typo (the first of
/// equally close names, in table order).
pub(crate) fn closest(name: &str) -> Option<&'static str> {
    // The distance is at least the difference in length, and the limit below is half the length:
    // a name over twice as long as every option can match none. Checking that first keeps a
    // hostile 100 KB key from costing a full edit-distance table per option.
    let longest = OPTIONS.iter().map(|o| o.name.len()).max()?;
    if name.len() > 2 * longest + 2 {
        return None;
    }
    let a = normalized(name);
    let limit = (a.len() / 2).max(2);
    let (mut b, mut row) = (Vec::new(), Vec::new());
    let mut best: Option<(&'static str, usize)> = None;
    for o in OPTIONS {
        b.clear();
        b.extend(o.name.chars().map(normal));
        // Only a strictly closer name replaces the best, and no name is closer than the
        // difference in length: most of the table is skipped without a distance.
        let gap = a.len().abs_diff(b.len());
        if gap > limit || best.is_some_and(|(_, d)| gap >= d) {
            continue;
        }
        let d = distance(&a, &b, &mut row);
        if d <= limit && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((o.name, d));
        }
    }
    best.map(|(n, _)| n)
}

/// A case-only or `_`/`-` difference costs nothing.
fn normal(c: char) -> char {
    if c == '_' {
        '-'
    } else {
        c.to_ascii_lowercase()
    }
}

fn normalized(s: &str) -> Vec<char> {
    s.chars().map(normal).collect()
}

/// Levenshtein distance of two normalised names, one row of the table at a time in `row`.
fn distance(a: &[char], b: &[char], row: &mut Vec<usize>) -> usize {
    row.clear();
    row.extend(0..=b.len());
    for (i, ca) in a.iter().enumerate() {
        // `diag` is the previous row's value at j, `row[j]` still holds the previous row's j+1.
        let mut diag = i;
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            let value = (diag + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diag = above;
            row[j + 1] = value;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_shorts_are_unique() {
        let mut names = HashSet::new();
        let mut shorts = HashSet::new();
        for o in OPTIONS {
            assert!(names.insert(o.name), "duplicate option {}", o.name);
            if let Some(c) = o.short {
                assert!(shorts.insert(c), "duplicate short -{c}");
            }
            assert!(!o.help.is_empty(), "{} has no help", o.name);
        }
    }

    #[test]
    fn setters_match_their_arg() {
        for o in OPTIONS {
            match (o.status, o.arg, o.setter) {
                (_, Arg::Flag, Setter::Bool(_)) => {}
                (_, Arg::Required | Arg::Optional, Setter::Text(_)) => {}
                (Status::Implemented, _, _) => panic!("{}: setter does not fit", o.name),
                (_, _, Setter::None) => {}
                _ => panic!("{}: setter does not fit", o.name),
            }
        }
    }

    #[test]
    fn edit_distances() {
        let mut row = Vec::new();
        for (a, b, d) in [
            ("kitten", "sitting", 3),
            ("", "abc", 3),
            ("abc", "", 3),
            ("flaw", "lawn", 2),
            ("listening-port", "listening-port", 0),
            ("Listening_Port", "listening-port", 0),
        ] {
            assert_eq!(
                distance(&normalized(a), &normalized(b), &mut row),
                d,
                "{a} {b}"
            );
        }
    }

    #[test]
    fn no_suggestion_for_a_name_longer_than_any_option_could_match() {
        let long = "listening-port".repeat(1000);
        assert_eq!(closest(&long), None);
        assert_eq!(closest("listening-portt"), Some("listening-port"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("lt-cred-mec"), Some("lt-cred-mech"));
        assert_eq!(closest("listen-port"), Some("listening-port"));
        assert_eq!(closest("no_tls"), Some("no-tls"));
        assert_eq!(closest("Fingerprint"), Some("fingerprint"));
        assert_eq!(closest("completely-unrelated-thing-here"), None);
    }
}
