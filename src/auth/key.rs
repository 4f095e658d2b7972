//! Long-term credential keys (RFC 8489 §9.2.2) and TURN REST passwords (coturn's
//! `use-auth-secret` scheme, draft-uberti-behave-turn-rest).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// A long-term key: MD5("user:realm:password"), the HMAC-SHA1 key of MESSAGE-INTEGRITY.
pub type Key = [u8; 16];

/// Length of a REST password: base64 of a 20-byte HMAC-SHA1, padded.
pub const REST_PASSWORD_LEN: usize = 28;

/// MD5("user:realm:password"), as coturn's `turnadmin -k` prints it.
///
/// The input is hashed in pieces, so no string is built.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> Key {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// The TURN REST password: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> String {
    let mut out = [0u8; REST_PASSWORD_LEN];
    rest_password_into(secret, username, &mut out).to_owned()
}

/// [`rest_password`] written into a caller buffer: no heap allocation on the request path.
pub fn rest_password_into<'o>(
    secret: &str,
    username: &str,
    out: &'o mut [u8; REST_PASSWORD_LEN],
) -> &'o str {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return "",
    };
    mac.update(username.as_bytes());
    let digest = mac.finalize().into_bytes();
    match STANDARD.encode_slice(digest, out) {
        Ok(n) => std::str::from_utf8(out.get(..n).unwrap_or_default()).unwrap_or_default(),
        Err(_) => "",
    }
}

/// The long-term key of a REST username under one shared secret.
pub fn rest_key(secret: &str, username: &str, realm: &str) -> Key {
    let mut buf = [0u8; REST_PASSWORD_LEN];
    let password = rest_password_into(secret, username, &mut buf);
    long_term_key(username, realm, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(key: &Key) -> String {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn key_matches_turnadmin() {
        // Expected value printed by coturn 4.6.1: `turnadmin -k -u user -r realm -p pass`.
        assert_eq!(
            hex(&long_term_key("user", "realm", "pass")),
            "8493fbc53ba582fb4c044c456bdc40eb"
        );
    }

    #[test]
    fn rest_password_known_answer() {
        // `echo -n user | openssl dgst -sha1 -hmac secret -binary | base64`
        assert_eq!(
            rest_password("secret", "user"),
            "An2kjIxkLKTFjrmC7sgZFReed6M="
        );
    }

    #[test]
    fn rest_key_is_key_of_rest_password() {
        let name = "1700000000:alice";
        let expected = long_term_key(name, "example.org", &rest_password("s3", name));
        assert_eq!(rest_key("s3", name, "example.org"), expected);
    }
}
