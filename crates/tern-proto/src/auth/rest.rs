//! TURN REST usernames (coturn's `use-auth-secret`): `<expiry><sep><user>`, `<user><sep><expiry>`
//! or a bare `<expiry>`, where expiry is a Unix time in seconds.

/// A REST username split into its parts; `user` borrows from the username.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestName<'u> {
    pub expiry: u64,
    /// The part without the timestamp; empty for a bare `<expiry>`.
    pub user: &'u str,
}

/// Splits a REST username, or `None` when no form yields a timestamp.
///
/// As coturn does, a username starting with a digit is read as `<expiry><sep><user>`; otherwise
/// the timestamp is what follows the last separator.
pub fn parse(username: &str, sep: char) -> Option<RestName<'_>> {
    if username.starts_with(|c: char| c.is_ascii_digit()) {
        return match username.split_once(sep) {
            Some((ts, user)) => timestamp(ts).map(|expiry| RestName { expiry, user }),
            None => timestamp(username).map(|expiry| RestName { expiry, user: "" }),
        };
    }
    let (user, ts) = username.rsplit_once(sep)?;
    timestamp(ts).map(|expiry| RestName { expiry, user })
}

/// Decimal digits only: `u64::from_str` would also take a leading `+`.
fn timestamp(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_first() {
        assert_eq!(
            parse("1700000000:alice", ':'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: "alice"
            })
        );
        // Only the first separator splits: the user part may contain more.
        assert_eq!(
            parse("1700000000:a:b", ':'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: "a:b"
            })
        );
    }

    #[test]
    fn user_first() {
        assert_eq!(
            parse("alice:1700000000", ':'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: "alice"
            })
        );
        assert_eq!(
            parse("a:b:1700000000", ':'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: "a:b"
            })
        );
    }

    #[test]
    fn bare_expiry() {
        assert_eq!(
            parse("1700000000", ':'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: ""
            })
        );
    }

    #[test]
    fn custom_separator() {
        assert_eq!(
            parse("1700000000-alice", '-'),
            Some(RestName {
                expiry: 1_700_000_000,
                user: "alice"
            })
        );
        assert_eq!(parse("1700000000:alice", '-'), None);
    }

    #[test]
    fn unparseable() {
        for name in [
            "alice",
            "",
            "alice:",
            "alice:+17",
            "alice:17x",
            "17x:alice",
            ":alice",
            "alice:99999999999999999999999",
            "12é:alice",
        ] {
            assert_eq!(parse(name, ':'), None, "{name:?}");
        }
    }
}
