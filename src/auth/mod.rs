//! Authentication for the long-term credential mechanism (RFC 8489 §9.2, RFC 8656 §7):
//! keys, static users and TURN REST secrets, and stateless nonces. No I/O, no clock.

mod credentials;
mod key;
mod keylist;
mod nonce;
pub mod rest;

pub use credentials::{Credentials, Lookup};
pub use key::{long_term_key, rest_key, rest_password, rest_password_into, Key, REST_PASSWORD_LEN};
pub use keylist::{KeyList, MAX_KEYS, MAX_REST_SECRETS};
pub use nonce::{Nonce, NonceCheck, NonceKey, NONCE_COOKIE, NONCE_LEN};
