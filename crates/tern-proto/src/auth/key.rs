//! Long-term credential keys (RFC 8489 §9.2.2: MD5 and SHA-256), USERHASH (§14.4) and TURN REST
//! passwords (coturn's `use-auth-secret` scheme, draft-uberti-behave-turn-rest).
//!
//! The username, realm and password are hashed as given: RFC 8489 asks for OpaqueString (RFC 8265)
//! on the realm and password, which leaves ASCII and NFC-normalised text unchanged, and tern, as
//! coturn, applies no profile; a client that normalises sends the same bytes for such text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// A long-term key: MD5("user:realm:password"), the HMAC key of MESSAGE-INTEGRITY(-SHA256) for
/// clients that do not negotiate an algorithm (RFC 8489 §18.5.1.1).
pub type Key = [u8; 16];

/// The SHA-256 long-term key: SHA-256("user:realm:password") (RFC 8489 §18.5.1.2).
pub type Sha256Key = [u8; 32];

/// USERHASH (RFC 8489 §14.4): SHA-256("user:realm").
pub type Userhash = [u8; 32];

/// The PASSWORD-ALGORITHM values tern knows (RFC 8489 §18.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PasswordAlgorithm {
    Md5,
    Sha256,
}

impl PasswordAlgorithm {
    /// The registry number of the algorithm.
    pub const fn number(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    pub fn from_number(n: u16) -> Option<PasswordAlgorithm> {
        match n {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The name `password-algorithms` and `tern key` use.
    pub const fn name(self) -> &'static str {
        match self {
            PasswordAlgorithm::Md5 => "md5",
            PasswordAlgorithm::Sha256 => "sha256",
        }
    }
}

/// A long-term key of either algorithm: what MESSAGE-INTEGRITY(-SHA256) is computed with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AnyKey {
    Md5(Key),
    Sha256(Sha256Key),
}

impl AnyKey {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AnyKey::Md5(k) => k,
            AnyKey::Sha256(k) => k,
        }
    }

    pub fn algorithm(&self) -> PasswordAlgorithm {
        match self {
            AnyKey::Md5(_) => PasswordAlgorithm::Md5,
            AnyKey::Sha256(_) => PasswordAlgorithm::Sha256,
        }
    }
}

/// Only to fill the unused slots of a [`super::KeyList`].
impl Default for AnyKey {
    fn default() -> Self {
        AnyKey::Md5([0; 16])
    }
}

/// Never prints key material.
impl std::fmt::Debug for AnyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyKey({}, ..)", self.algorithm().name())
    }
}

/// The keys one user has: a plain password gives both; a stored key only its own.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct UserKeys {
    pub md5: Option<Key>,
    pub sha256: Option<Sha256Key>,
}

impl UserKeys {
    /// Both keys of `username` with `password`.
    pub fn from_password(username: &str, realm: &str, password: &str) -> UserKeys {
        UserKeys {
            md5: Some(long_term_key(username, realm, password)),
            sha256: Some(long_term_key_sha256(username, realm, password)),
        }
    }

    /// The key of `algorithm`, if the user has one.
    pub fn get(&self, algorithm: PasswordAlgorithm) -> Option<AnyKey> {
        match algorithm {
            PasswordAlgorithm::Md5 => self.md5.map(AnyKey::Md5),
            PasswordAlgorithm::Sha256 => self.sha256.map(AnyKey::Sha256),
        }
    }
}

/// Never prints key material.
impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKeys")
            .field("md5", &self.md5.is_some())
            .field("sha256", &self.sha256.is_some())
            .finish()
    }
}

/// Length of a REST password: base64 of a 20-byte HMAC-SHA1, padded.
pub const REST_PASSWORD_LEN: usize = 28;

/// MD5("user:realm:password"), as coturn's `turnadmin -k` prints it.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> Key {
    joined::<Md5>(&[username, realm, password]).into()
}

/// SHA-256("user:realm:password"), the key of PASSWORD-ALGORITHM SHA-256.
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> Sha256Key {
    joined::<Sha256>(&[username, realm, password]).into()
}

/// USERHASH: SHA-256("user:realm"), what a client sends instead of USERNAME.
pub fn userhash(username: &str, realm: &str) -> Userhash {
    joined::<Sha256>(&[username, realm]).into()
}

/// The digest of `parts` joined by `:`, hashed in pieces so no string is built.
fn joined<D: Digest>(parts: &[&str]) -> md5::digest::Output<D> {
    let mut d = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(part.as_bytes());
    }
    d.finalize()
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

/// The key of `algorithm` of a REST username under one shared secret: the REST password is
/// derived first, then keyed as any password is.
pub fn rest_key_of(
    algorithm: PasswordAlgorithm,
    secret: &str,
    username: &str,
    realm: &str,
) -> AnyKey {
    let mut buf = [0u8; REST_PASSWORD_LEN];
    let password = rest_password_into(secret, username, &mut buf);
    match algorithm {
        PasswordAlgorithm::Md5 => AnyKey::Md5(long_term_key(username, realm, password)),
        PasswordAlgorithm::Sha256 => {
            AnyKey::Sha256(long_term_key_sha256(username, realm, password))
        }
    }
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
    fn sha256_key_and_userhash_known_answers() {
        // `printf 'user:realm:pass' | sha256sum`, `printf 'user:realm' | sha256sum`.
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&long_term_key_sha256("user", "realm", "pass")),
            "07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b"
        );
        assert_eq!(
            hex(&userhash("user", "realm")),
            "6a3029116b47aa98bcaa325399733dc1a23cd57e26b81bef3ff6531ce624e2da"
        );
    }

    #[test]
    fn rest_key_of_either_algorithm() {
        let name = "1700000000:alice";
        let password = rest_password("s3", name);
        assert_eq!(
            rest_key_of(PasswordAlgorithm::Md5, "s3", name, "r"),
            AnyKey::Md5(rest_key("s3", name, "r"))
        );
        assert_eq!(
            rest_key_of(PasswordAlgorithm::Sha256, "s3", name, "r"),
            AnyKey::Sha256(long_term_key_sha256(name, "r", &password))
        );
    }

    #[test]
    fn rest_key_is_key_of_rest_password() {
        let name = "1700000000:alice";
        let expected = long_term_key(name, "example.org", &rest_password("s3", name));
        assert_eq!(rest_key("s3", name, "example.org"), expected);
    }
}
