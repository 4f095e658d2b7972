//! coturn's `turnserver.conf` line syntax: `name=value`, `name value` or a bare `name`; `#`
//! comment lines; one pair of surrounding double quotes removed; no inline comments.

/// One option line of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// 1-based line number.
    pub line: usize,
    pub name: &'a str,
    pub value: &'a str,
    /// The line ends with `;`, a common mistake coturn also warns about.
    pub semicolon: bool,
}

fn is_sep(c: char) -> bool {
    c == ' ' || c == '\t' || c == '='
}

/// Splits one line; `None` for blank and comment lines.
pub fn lex_line(line: usize, text: &str) -> Option<Entry<'_>> {
    let s = text.trim_start_matches([' ', '\t']).trim_end();
    if s.is_empty() || s.starts_with('#') {
        return None;
    }
    let (name, rest) = match s.find(is_sep) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_sep)),
        None => (s, ""),
    };
    let value = rest
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(rest);
    Some(Entry {
        line,
        name,
        value,
        semicolon: s.ends_with(';'),
    })
}

/// Every option line of a file, in order.
pub fn lex(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| lex_line(i + 1, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Option<(&str, &str)> {
        lex_line(1, s).map(|e| (e.name, e.value))
    }

    #[test]
    fn forms() {
        assert_eq!(one("listening-port=3478"), Some(("listening-port", "3478")));
        assert_eq!(one("listening-port 3478"), Some(("listening-port", "3478")));
        assert_eq!(
            one("listening-port\t = \t3478"),
            Some(("listening-port", "3478"))
        );
        assert_eq!(one("  fingerprint  "), Some(("fingerprint", "")));
        assert_eq!(one("name=a=b"), Some(("name", "a=b")));
        assert_eq!(one("name==x"), Some(("name", "x")));
    }

    #[test]
    fn comments_and_blanks() {
        assert_eq!(one("# listening-port=1"), None);
        assert_eq!(one("   \t# x"), None);
        assert_eq!(one("   "), None);
        assert_eq!(one(""), None);
        assert_eq!(one("realm=x # y"), Some(("realm", "x # y")));
    }

    #[test]
    fn quotes_and_trailing_blanks() {
        assert_eq!(
            one("cipher-list=\"HIGH:!aNULL\"  \r"),
            Some(("cipher-list", "HIGH:!aNULL"))
        );
        assert_eq!(one("realm=\"a b\""), Some(("realm", "a b")));
        assert_eq!(one("realm=\"\"\"\""), Some(("realm", "\"\"")));
        assert_eq!(one("realm=\"open"), Some(("realm", "\"open")));
        assert_eq!(one("realm=x   "), Some(("realm", "x")));
    }

    #[test]
    fn line_numbers_and_semicolons() {
        let v: Vec<_> = lex("# c\n\nrealm=x;\n  user=a:b\n").collect();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].line, v[0].semicolon), (3, true));
        assert_eq!((v[1].line, v[1].name, v[1].semicolon), (4, "user", false));
    }
}
