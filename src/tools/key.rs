//! `tern key -u USER -r REALM -p PASSWORD`: the long-term key MD5(user:realm:password)
//! (RFC 8489 §9.2.2) printed as `0x<32 hex>`, exactly the line coturn's `turnadmin -k` prints,
//! ready for `user=USER:0x...` in turnserver.conf; with `--sha256`, the SHA-256 key
//! SHA-256(user:realm:password) as `0x<64 hex>`.

use std::io::Write;

use super::args::{parse, Spec};
use super::{exit_code, usage_error};
use crate::auth::{key_to_hex, long_term_key, long_term_key_sha256};

pub const KEY_USAGE: &str = "\
Usage: tern key -u USER -r REALM -p PASSWORD [--sha256]
Prints the long-term key MD5(USER:REALM:PASSWORD) as 0x<32 hex digits>, as `turnadmin -k` does.
Use it as `user=USER:0x...` in turnserver.conf so the password is not stored in the file.
  -u, --user USER          user name
  -r, --realm REALM        the realm (must equal the server's realm=)
  -p, --password PASSWORD  the password
      --sha256             the RFC 8489 SHA-256 key instead, 0x<64 hex digits>: such a user
                           authenticates only clients that negotiate SHA-256
  -h, --help               this text
";

const SPECS: &[Spec] = &[
    Spec::value(Some('u'), "user"),
    Spec::value(Some('r'), "realm"),
    Spec::value(Some('p'), "password"),
    Spec::switch(None, "sha256"),
    Spec::switch(Some('h'), "help"),
];

/// Runs `tern key`; `args` excludes `key`. The key goes to `out`, problems to `err`.
pub fn run_key(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let parsed = match parse(args, SPECS) {
        Ok(p) => p,
        Err(e) => return usage_error(err, &e),
    };
    if parsed.has("help") {
        return exit_code(out.write_all(KEY_USAGE.as_bytes()));
    }
    let (Some(user), Some(realm), Some(password)) = (
        parsed.get("user"),
        parsed.get("realm"),
        parsed.get("password"),
    ) else {
        return usage_error(err, "-u USER, -r REALM and -p PASSWORD are all required");
    };
    let hex = if parsed.has("sha256") {
        key_to_hex(&long_term_key_sha256(user, realm, password))
    } else {
        key_to_hex(&long_term_key(user, realm, password))
    };
    exit_code(writeln!(out, "0x{hex}"))
}
