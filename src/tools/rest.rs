//! `tern rest-credentials -s SECRET [-u USER] [--ttl S] [--separator C] [--json]`: a TURN REST
//! username `<expiry><sep><user>` and its password base64(HMAC-SHA1(secret, username)), the pair
//! a web application hands to browsers for a server running `use-auth-secret`.

use std::fmt::Write as _;
use std::io::Write;

use super::args::{parse, Parsed, Spec};
use super::{exit_code, usage_error};
use crate::auth::rest_password;

pub const REST_USAGE: &str = "\
Usage: tern rest-credentials (-s SECRET | --secret-file FILE) [-u USER] [--ttl SECONDS]
                             [--separator C] [--json]
Prints a TURN REST API username and password valid for SECONDS (default 86400) against a server
with use-auth-secret and static-auth-secret=SECRET:
  username: <expiry>:<user>
  password: <base64 HMAC-SHA1(SECRET, username)>
  -s, --secret SECRET      the shared secret (visible to other local users in ps; prefer the file)
      --secret-file FILE   read the secret from the first line of FILE
  -u, --user USER          the user part (quotas count per user); without it: a bare <expiry>
      --ttl SECONDS        lifetime of the username (default 86400)
      --separator C        one character between expiry and user (rest-api-separator, default :)
      --json               {\"username\": ..., \"password\": ..., \"ttl\": ...} instead
  -h, --help               this text
";

const SPECS: &[Spec] = &[
    Spec::value(Some('s'), "secret"),
    Spec::value(None, "secret-file"),
    Spec::value(Some('u'), "user"),
    Spec::value(None, "ttl"),
    Spec::value(None, "separator"),
    Spec::switch(None, "json"),
    Spec::switch(Some('h'), "help"),
];

/// The default lifetime of a REST username: one day.
pub const DEFAULT_TTL: u64 = 86_400;

/// A REST username and its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestCredentials {
    pub username: String,
    pub password: String,
    /// Seconds from `unix_now` to the expiry in the username.
    pub ttl: u64,
}

/// The pair valid until `unix_now + ttl`; `user` empty gives a bare `<expiry>` username.
pub fn rest_credentials(
    secret: &str,
    user: &str,
    ttl: u64,
    separator: char,
    unix_now: u64,
) -> Result<RestCredentials, String> {
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    if separator.is_ascii_digit() {
        return Err("the separator cannot be a digit (it would merge with the expiry)".into());
    }
    let expiry = unix_now
        .checked_add(ttl)
        .ok_or_else(|| format!("--ttl {ttl} is too large"))?;
    let username = if user.is_empty() {
        expiry.to_string()
    } else {
        format!("{expiry}{separator}{user}")
    };
    let password = rest_password(secret, &username);
    Ok(RestCredentials {
        username,
        password,
        ttl,
    })
}

/// Runs `tern rest-credentials`; `args` excludes the subcommand, `unix_now` is the wall time.
pub fn run_rest_credentials(
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
    unix_now: u64,
) -> i32 {
    let parsed = match parse(args, SPECS) {
        Ok(p) => p,
        Err(e) => return usage_error(err, &e),
    };
    if parsed.has("help") {
        return exit_code(out.write_all(REST_USAGE.as_bytes()));
    }
    let creds = match settings(&parsed).and_then(|(secret, ttl, sep)| {
        rest_credentials(
            &secret,
            parsed.get("user").unwrap_or(""),
            ttl,
            sep,
            unix_now,
        )
    }) {
        Ok(c) => c,
        Err(e) => return usage_error(err, &e),
    };
    let text = if parsed.has("json") {
        format!(
            "{{\"username\": {}, \"password\": {}, \"ttl\": {}}}\n",
            json_string(&creds.username),
            json_string(&creds.password),
            creds.ttl
        )
    } else {
        format!(
            "username: {}\npassword: {}\n",
            creds.username, creds.password
        )
    };
    exit_code(out.write_all(text.as_bytes()))
}

/// The secret, lifetime and separator the command line asks for.
fn settings(parsed: &Parsed) -> Result<(String, u64, char), String> {
    let secret = match (parsed.get("secret"), parsed.get("secret-file")) {
        (Some(_), Some(_)) => return Err("give --secret or --secret-file, not both".into()),
        (Some(s), None) => s.to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {path}: {e}"))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        (None, None) => return Err("-s SECRET or --secret-file FILE is required".into()),
    };
    let ttl = match parsed.get("ttl") {
        None => DEFAULT_TTL,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("--ttl {t:?} is not a positive number of seconds"))?,
    };
    let separator = match parsed.get("separator") {
        None => ':',
        Some(s) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => return Err(format!("--separator {s:?} must be one character")),
            }
        }
    };
    Ok((secret, ttl, separator))
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
