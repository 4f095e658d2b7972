//! Authentication for the long-term credential mechanism (RFC 8489 §9.2, RFC 8656 §7):
//! keys, static users and TURN REST secrets, stateless nonces, and coturn's user databases.
//! No clock anywhere; the databases (`db`) do blocking I/O and run on the resolver thread only.

mod credentials;
pub mod db;
mod key;
mod keylist;
mod nonce;
mod offer;
mod resolver;
pub mod rest;
mod source;

pub use credentials::{Credentials, Lookup};
pub use key::{
    long_term_key, long_term_key_sha256, rest_key, rest_key_of, rest_password, rest_password_into,
    userhash, AnyKey, Key, PasswordAlgorithm, Sha256Key, UserKeys, Userhash, REST_PASSWORD_LEN,
};
pub use keylist::{KeyList, MAX_KEYS, MAX_REST_SECRETS};
pub use nonce::{Features, Nonce, NonceCheck, NonceKey, NONCE_COOKIE, NONCE_LEN};
pub use offer::{Downgrade, Offer};
pub use resolver::{
    Refusal, Resolved, Resolver, ResolverStats, DEFAULT_MAX_NAME, DOWN_TTL, NEGATIVE_TTL,
    POSITIVE_TTL,
};
pub use source::{
    bytes_from_hex, key_from_hex, key_to_hex, Answer, CredentialSource, RealmOptions, SourceError,
    REALM_OPTIONS,
};
