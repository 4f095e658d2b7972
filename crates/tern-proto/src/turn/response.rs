//! Writes STUN responses into the caller's scratch buffer (RFC 8489 §6.3, §9.2.4): SOFTWARE,
//! then MESSAGE-INTEGRITY(-SHA256) when the request authenticated, then FINGERPRINT.
//!
//! An error to a request that did not authenticate is bare: no SOFTWARE, an empty reason phrase
//! (RFC 8489 §14.8 leaves it to the server; clients act on the code), and FINGERPRINT only when
//! the request carried one. Any sender can draw it with a spoofed source, so its size is what
//! tern reflects onto a victim: a 401 to a 20-byte Allocate is 80 bytes under a 9-character
//! realm, not 132 (92 when `password-algorithms` offers SHA-256: PASSWORD-ALGORITHMS is required
//! in it). `software-attribute` and `fingerprint` govern every other response.

use super::allocation::Sign;
use crate::stun::{
    attr, Class, EncodeError, ErrorCode, Message, MessageBuilder, MessageType, Method,
    TransactionId,
};

const SOFTWARE: &str = concat!("tern/", env!("CARGO_PKG_VERSION"));

pub(crate) type Attrs<'f> = &'f mut dyn FnMut(&mut MessageBuilder<'_>) -> Result<(), EncodeError>;

/// How to answer one request.
pub(crate) struct Responder<'s> {
    buf: &'s mut [u8],
    method: Method,
    tid: TransactionId,
    software: bool,
    /// `fingerprint` is on.
    fingerprint: bool,
    /// The request carried FINGERPRINT: every answer does.
    echo_fingerprint: bool,
    pub sign: Sign,
}

impl<'s> Responder<'s> {
    pub(crate) fn new(
        buf: &'s mut [u8],
        msg: &Message<'_>,
        software: bool,
        fingerprint: bool,
    ) -> Self {
        Responder {
            buf,
            method: msg.method(),
            tid: *msg.transaction_id(),
            software,
            fingerprint,
            echo_fingerprint: msg.has_fingerprint(),
            sign: Sign::None,
        }
    }

    /// A response to a request answered later (Connect, RFC 6062 §5.2), from what was kept of it.
    pub(crate) fn deferred(
        buf: &'s mut [u8],
        method: Method,
        tid: TransactionId,
        software: bool,
        fingerprint: bool,
    ) -> Self {
        Responder {
            buf,
            method,
            tid,
            software,
            fingerprint,
            echo_fingerprint: fingerprint,
            sign: Sign::None,
        }
    }

    pub(crate) fn success(self, attrs: Attrs<'_>) -> Option<usize> {
        self.write(Class::Success, attrs)
    }

    pub(crate) fn error(self, code: ErrorCode) -> Option<usize> {
        self.error_with(code, &mut |_| Ok(()))
    }

    pub(crate) fn error_with(self, code: ErrorCode, attrs: Attrs<'_>) -> Option<usize> {
        let reason = if self.bare(Class::Error) {
            ""
        } else {
            code.reason()
        };
        self.write(Class::Error, &mut |b| {
            b.add_error_code(code, reason)?;
            attrs(b)
        })
    }

    /// An error to a request that did not authenticate (see the module comment).
    fn bare(&self, class: Class) -> bool {
        class == Class::Error && matches!(self.sign, Sign::None)
    }

    fn write(self, class: Class, attrs: Attrs<'_>) -> Option<usize> {
        let bare = self.bare(class);
        let typ = MessageType::new(self.method, class);
        let mut b = MessageBuilder::new(self.buf, typ, &self.tid).ok()?;
        attrs(&mut b).ok()?;
        if self.software && !bare {
            b.add_str(attr::SOFTWARE, SOFTWARE).ok()?;
        }
        match self.sign {
            Sign::None => {}
            Sign::Sha1(key) => b.add_message_integrity(key.as_bytes()).ok()?,
            Sign::Sha256(key) => b.add_message_integrity_sha256(key.as_bytes()).ok()?,
        }
        if self.echo_fingerprint || (self.fingerprint && !bare) {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }
}

/// Up to 16 unknown comprehension-required attribute types of `msg` (for 420), and how many.
pub(crate) fn unknown_attributes(msg: &Message<'_>) -> ([u16; 16], usize) {
    let mut types = [0u16; 16];
    let mut n = 0;
    for (slot, typ) in types.iter_mut().zip(msg.unknown_required()) {
        *slot = typ;
        n += 1;
    }
    (types, n)
}
