//! A small flag reader for the tools: `-u VALUE`, `-uVALUE`, `--user VALUE`, `--user=VALUE`
//! and bare switches such as `--json`.

/// One accepted flag.
pub struct Spec {
    pub short: Option<char>,
    pub long: &'static str,
    pub takes_value: bool,
}

impl Spec {
    /// A flag that takes a value, with an optional short letter.
    pub const fn value(short: Option<char>, long: &'static str) -> Spec {
        Spec {
            short,
            long,
            takes_value: true,
        }
    }

    /// A bare switch.
    pub const fn switch(short: Option<char>, long: &'static str) -> Spec {
        Spec {
            short,
            long,
            takes_value: false,
        }
    }
}

/// The flags that were given, by long name, in command-line order (a later one wins on get).
pub struct Parsed {
    given: Vec<(&'static str, String)>,
}

impl Parsed {
    pub fn get(&self, long: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, long: &str) -> bool {
        self.given.iter().any(|(l, _)| *l == long)
    }

    /// Every flag given, by long name with its value ("" for a switch), in command-line order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.given.iter().map(|(l, v)| (*l, v.as_str()))
    }
}

/// Reads `args` against `specs`; the error names the offending argument.
pub fn parse(args: &[String], specs: &[Spec]) -> Result<Parsed, String> {
    let (parsed, operands) = parse_with_operands(args, specs)?;
    match operands.first() {
        Some(arg) => Err(format!("unexpected argument {arg:?}")),
        None => Ok(parsed),
    }
}

/// As [`parse`], for commands that also take operands (arguments that are not flags, such as
/// the drills to run), returned in order.
pub fn parse_with_operands(
    args: &[String],
    specs: &[Spec],
) -> Result<(Parsed, Vec<String>), String> {
    let mut given = Vec::new();
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (spec, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let spec = specs
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            (spec, inline)
        } else if let Some(short) = arg.strip_prefix('-').and_then(|s| s.chars().next()) {
            let spec = specs
                .iter()
                .find(|s| s.short == Some(short))
                .ok_or_else(|| format!("unknown option -{short}"))?;
            let rest = &arg[1 + short.len_utf8()..];
            (spec, (!rest.is_empty()).then(|| rest.to_owned()))
        } else {
            operands.push(arg.clone());
            continue;
        };
        let value = match (spec.takes_value, inline) {
            (true, Some(v)) => v,
            (true, None) => it
                .next()
                .cloned()
                .ok_or_else(|| format!("--{} needs a value", spec.long))?,
            (false, None) => String::new(),
            (false, Some(_)) => return Err(format!("--{} takes no value", spec.long)),
        };
        given.push((spec.long, value));
    }
    Ok((Parsed { given }, operands))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[Spec::value(Some('u'), "user"), Spec::switch(None, "json")];

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_value_form() {
        for form in [
            &["-u", "alice"][..],
            &["-ualice"],
            &["--user", "alice"],
            &["--user=alice"],
        ] {
            let p = parse(&strings(form), SPECS).map_err(|e| format!("{form:?}: {e}"));
            assert_eq!(
                p.map(|p| p.get("user").map(str::to_owned)),
                Ok(Some("alice".into()))
            );
        }
    }

    #[test]
    fn switches_and_errors() {
        let p = parse(&strings(&["--json"]), SPECS);
        assert!(p.is_ok_and(|p| p.has("json") && p.get("user").is_none()));
        assert_eq!(
            parse(&strings(&["-u"]), SPECS).err().as_deref(),
            Some("--user needs a value")
        );
        assert_eq!(
            parse(&strings(&["--json=1"]), SPECS).err().as_deref(),
            Some("--json takes no value")
        );
        assert_eq!(
            parse(&strings(&["-x"]), SPECS).err().as_deref(),
            Some("unknown option -x")
        );
        assert_eq!(
            parse(&strings(&["alice"]), SPECS).err().as_deref(),
            Some("unexpected argument \"alice\"")
        );
    }
}
