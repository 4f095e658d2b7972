//! STUN wire format (RFC 8489, the RFC 5389 behaviour clients still expect): borrowing decoder,
//! builder into a caller-owned buffer, attributes, MESSAGE-INTEGRITY(-SHA256), FINGERPRINT and
//! ChannelData framing (RFC 8656 §12). No I/O, no clock.

pub mod address;
pub mod attr;
mod builder;
pub mod channel;
pub mod classic;
mod error;
pub mod framing;
mod getters;
mod integrity;
mod iter;
mod message;
mod msgtype;
#[cfg(test)]
mod tests;

pub use address::Family;
pub use builder::MessageBuilder;
pub use error::{AttrError, DecodeError, EncodeError, ErrorCode, IntegrityError};
pub use iter::{AttrIter, RawAttr, UnknownIter};
pub use message::Message;
pub use msgtype::{Class, MessageType, Method};

/// Fixed value in every RFC 5389/8489 header (§5); tells STUN apart from RFC 3489 and other data.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header: type, length, cookie, transaction id (RFC 8489 §5).
pub const HEADER_LEN: usize = 20;
/// Length of an attribute header: type and length (RFC 8489 §14).
pub const ATTR_HEADER_LEN: usize = 4;
pub type TransactionId = [u8; 12];

/// Attribute values are padded to a multiple of four bytes (RFC 8489 §14).
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}
