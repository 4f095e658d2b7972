//! Authentication for the long-term credential mechanism (RFC 8489 §9.2, RFC 8656 §7), the
//! pure half: keys, static users and TURN REST secrets, stateless nonces, the offer of password
//! algorithms, and the non-blocking face of a user database ([`UserLookup`]). No clock and no
//! I/O; the databases themselves live in the server.

mod credentials;
mod key;
mod keylist;
mod lookup;
mod nonce;
mod offer;
pub mod rest;
mod source;

pub use credentials::{Credentials, Lookup};
pub use key::{
    long_term_key, long_term_key_sha256, rest_key, rest_key_of, rest_password, rest_password_into,
    userhash, AnyKey, Key, PasswordAlgorithm, Sha256Key, UserKeys, Userhash, REST_PASSWORD_LEN,
};
pub use keylist::{KeyList, MAX_KEYS, MAX_REST_SECRETS};
pub use lookup::{Refusal, Resolved, UserLookup};
pub use nonce::{Features, Nonce, NonceCheck, NonceKey, NONCE_COOKIE, NONCE_LEN};
pub use offer::{Downgrade, Offer};
pub use source::{
    bytes_from_hex, key_from_hex, key_to_hex, Answer, CredentialSource, RealmOptions, SourceError,
    REALM_OPTIONS,
};
