//! Long-term credentials on the client side (RFC 8489 §9.2): the user and password (or a TURN
//! REST name and the password its secret derives), the realm and nonce of the last challenge,
//! and the key that signs with MESSAGE-INTEGRITY, or MESSAGE-INTEGRITY-SHA256 with
//! PASSWORD-ALGORITHM(S) and optionally USERHASH when SHA-256 is negotiated (§9.2.4, §9.2.5).

use crate::auth::{long_term_key, long_term_key_sha256, rest_password, userhash};
use crate::stun::{attr, EncodeError, Message, MessageBuilder};

/// PASSWORD-ALGORITHM values (RFC 8489 §18.5).
const MD5: [u8; 4] = [0, 1, 0, 0];
const SHA256: [u8; 4] = [0, 2, 0, 0];

/// How a SHA-256 client echoes the server's PASSWORD-ALGORITHMS (RFC 8489 §9.2.4): honestly, or
/// as a man in the middle would have it after a downgrade (tests of the server's check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The list as offered.
    Offered,
    /// No PASSWORD-ALGORITHMS (PASSWORD-ALGORITHM alone).
    Stripped,
    /// A list of MD5 only, as if SHA-256 had been removed on the way.
    Md5Only,
}

/// The password algorithm a client signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// MD5 and MESSAGE-INTEGRITY with USERNAME, as every browser does.
    #[default]
    Md5,
    /// RFC 8489 SHA-256, with USERHASH instead of USERNAME when `userhash`.
    Sha256 { userhash: bool, echo: Echo },
}

/// A user name and password.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn long_term(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// TURN REST credentials (coturn's `use-auth-secret`): the name `<expiry>:<user>` valid
    /// until the Unix time `expiry`, the password HMAC-SHA1(secret, name) in base64.
    pub fn rest(secret: &str, user: &str, expiry: u64) -> Credentials {
        let username = format!("{expiry}:{user}");
        let password = rest_password(secret, &username);
        Credentials { username, password }
    }
}

/// The signing key of the current realm.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SigningKey {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

/// Credentials with what the server's last challenge told: realm, nonce, offered algorithms.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    creds: Credentials,
    algorithm: Algorithm,
    realm: String,
    nonce: Vec<u8>,
    /// The PASSWORD-ALGORITHMS value of the last challenge.
    offered: Option<Vec<u8>>,
    key: Option<SigningKey>,
}

impl Auth {
    pub fn new(creds: Credentials, algorithm: Algorithm) -> Auth {
        Auth {
            creds,
            algorithm,
            ..Auth::default()
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// The PASSWORD-ALGORITHMS of the last challenge, if it carried one.
    pub fn offered(&self) -> Option<&[u8]> {
        self.offered.as_deref()
    }

    /// Whether requests are signed (a challenge has given a nonce).
    pub fn is_signing(&self) -> bool {
        !self.nonce.is_empty()
    }

    /// Takes the realm, nonce and PASSWORD-ALGORITHMS of a 401 or 438; false when it carried no
    /// nonce or the one already signed with (the credentials themselves were refused).
    pub fn challenge(&mut self, realm: &str, nonce: &[u8], offered: Option<&[u8]>) -> bool {
        if nonce.is_empty() || nonce == self.nonce.as_slice() {
            return false;
        }
        if realm != self.realm || self.key.is_none() {
            self.realm = realm.to_owned();
            self.key = Some(self.derive());
        }
        self.nonce = nonce.to_vec();
        self.offered = offered.map(<[u8]>::to_vec);
        true
    }

    /// Takes another client's realm and nonce (an RFC 6062 ConnectionBind may reuse them).
    pub fn adopt(&mut self, other: &Auth) {
        self.realm.clone_from(&other.realm);
        self.nonce.clone_from(&other.nonce);
        self.offered.clone_from(&other.offered);
        self.key = Some(self.derive());
    }

    /// Signs unsigned again: the next request starts over with a challenge.
    pub fn forget(&mut self) {
        self.nonce.clear();
    }

    fn derive(&self) -> SigningKey {
        let (u, r, p) = (&self.creds.username, &self.realm, &self.creds.password);
        match self.algorithm {
            Algorithm::Md5 => SigningKey::Md5(long_term_key(u, r, p)),
            Algorithm::Sha256 { .. } => SigningKey::Sha256(long_term_key_sha256(u, r, p)),
        }
    }

    /// Adds USERNAME or USERHASH, REALM, NONCE, the algorithm attributes and the integrity to a
    /// request the caller built (after its own attributes).
    pub fn sign(&self, b: &mut MessageBuilder<'_>) -> Result<(), EncodeError> {
        let user = &self.creds.username;
        match self.algorithm {
            Algorithm::Sha256 { userhash: true, .. } => {
                b.add_raw(attr::USERHASH, &userhash(user, &self.realm))?
            }
            _ => b.add_str(attr::USERNAME, user)?,
        }
        b.add_str(attr::REALM, &self.realm)?;
        b.add_raw(attr::NONCE, &self.nonce)?;
        if let Algorithm::Sha256 { echo, .. } = self.algorithm {
            match echo {
                Echo::Offered => b.add_raw(
                    attr::PASSWORD_ALGORITHMS,
                    self.offered().unwrap_or_default(),
                )?,
                Echo::Stripped => {}
                Echo::Md5Only => b.add_raw(attr::PASSWORD_ALGORITHMS, &MD5)?,
            }
            b.add_raw(attr::PASSWORD_ALGORITHM, &SHA256)?;
        }
        match &self.key {
            Some(SigningKey::Md5(k)) => b.add_message_integrity(k),
            Some(SigningKey::Sha256(k)) => b.add_message_integrity_sha256(k),
            None => Ok(()),
        }
    }

    /// Whether `msg` carries a valid integrity under this key (RFC 8489 §9.2.4: the answer is
    /// signed with the request's algorithm).
    pub fn verifies(&self, msg: &Message<'_>) -> bool {
        match &self.key {
            Some(SigningKey::Md5(k)) => msg.verify_integrity(k).is_ok(),
            Some(SigningKey::Sha256(k)) => msg.verify_integrity_sha256(k).is_ok(),
            None => false,
        }
    }
}
