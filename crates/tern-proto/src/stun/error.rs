//! STUN error values: decode/encode errors as small Copy enums, and ERROR-CODE numbers with their
//! reason phrases (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3).

use std::fmt;

/// An ERROR-CODE value: class * 100 + number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const TRY_ALTERNATE: ErrorCode = ErrorCode(300);
    pub const BAD_REQUEST: ErrorCode = ErrorCode(400);
    pub const UNAUTHORIZED: ErrorCode = ErrorCode(401);
    pub const FORBIDDEN: ErrorCode = ErrorCode(403);
    pub const MOBILITY_FORBIDDEN: ErrorCode = ErrorCode(405);
    pub const UNKNOWN_ATTRIBUTE: ErrorCode = ErrorCode(420);
    pub const ALLOCATION_MISMATCH: ErrorCode = ErrorCode(437);
    pub const STALE_NONCE: ErrorCode = ErrorCode(438);
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: ErrorCode = ErrorCode(440);
    pub const WRONG_CREDENTIALS: ErrorCode = ErrorCode(441);
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: ErrorCode = ErrorCode(442);
    pub const PEER_ADDRESS_FAMILY_MISMATCH: ErrorCode = ErrorCode(443);
    pub const CONNECTION_ALREADY_EXISTS: ErrorCode = ErrorCode(446);
    pub const CONNECTION_TIMEOUT_OR_FAILURE: ErrorCode = ErrorCode(447);
    pub const ALLOCATION_QUOTA_REACHED: ErrorCode = ErrorCode(486);
    pub const ROLE_CONFLICT: ErrorCode = ErrorCode(487);
    pub const SERVER_ERROR: ErrorCode = ErrorCode(500);
    pub const INSUFFICIENT_CAPACITY: ErrorCode = ErrorCode(508);

    /// The reason phrase the RFCs suggest. 401 keeps RFC 5389's "Unauthorized", which coturn and
    /// most clients print.
    pub fn reason(self) -> &'static str {
        match self.0 {
            300 => "Try Alternate",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            405 => "Mobility Forbidden",
            420 => "Unknown Attribute",
            437 => "Allocation Mismatch",
            438 => "Stale Nonce",
            440 => "Address Family not Supported",
            441 => "Wrong Credentials",
            442 => "Unsupported Transport Protocol",
            443 => "Peer Address Family Mismatch",
            446 => "Connection Already Exists",
            447 => "Connection Timeout or Failure",
            486 => "Allocation Quota Reached",
            487 => "Role Conflict",
            500 => "Server Error",
            508 => "Insufficient Capacity",
            _ => "Unknown Error",
        }
    }
}

/// Header-level problems: the bytes are not a usable STUN message and are dropped silently.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Fewer than 20 bytes.
    TooShort,
    /// One of the two top bits of the type is set.
    NotStun,
    BadCookie,
    /// The length field disagrees with the number of bytes.
    BadLength,
    /// The length field is not a multiple of 4.
    Misaligned,
    /// An attribute runs past the end of the message.
    AttrOverflow,
    /// FINGERPRINT is not the last attribute, has the wrong size or the wrong value.
    BadFingerprint,
}

/// A malformed attribute value: the request is answered with 400.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttrError {
    BadLength,
    BadFamily,
    BadValue,
    BadUtf8,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IntegrityError {
    Missing,
    Mismatch,
}

/// The output buffer is too small, or the message would exceed the 16-bit length field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EncodeError;

impl From<AttrError> for ErrorCode {
    fn from(_: AttrError) -> ErrorCode {
        ErrorCode::BAD_REQUEST
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// Display and Error for the small error enums: their variant names are the message.
macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self, f)
            }
        }
        impl std::error::Error for $t {}
    )*};
}

pub(crate) use display_as_debug;

display_as_debug!(DecodeError, AttrError, IntegrityError, EncodeError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(ErrorCode::STALE_NONCE.reason(), "Stale Nonce");
        assert_eq!(ErrorCode(499).reason(), "Unknown Error");
        assert_eq!(ErrorCode::from(AttrError::BadUtf8), ErrorCode::BAD_REQUEST);
        assert_eq!(ErrorCode::UNAUTHORIZED.to_string(), "401 Unauthorized");
    }
}
