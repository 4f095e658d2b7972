//! Walking the attributes of a STUN message (RFC 8489 §14): type, length, value padded to 4.

use super::{attr, padded, ATTR_HEADER_LEN};

/// One attribute as it appears on the wire, value without padding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawAttr<'a> {
    pub typ: u16,
    pub value: &'a [u8],
}

/// Attributes of `buf[pos..end]` in order. Stops at the first attribute that does not fit.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> AttrIter<'a> {
    pub(crate) fn new(buf: &'a [u8], start: usize, end: usize) -> Self {
        AttrIter {
            buf,
            pos: start,
            end: end.min(buf.len()),
        }
    }

    /// Offset just after the last attribute returned: `end` when every attribute fitted.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next attribute and the offset of its header.
    pub(crate) fn next_at(&mut self) -> Option<(usize, RawAttr<'a>)> {
        let at = self.pos;
        let value_start = at.checked_add(ATTR_HEADER_LEN)?;
        let header: [u8; ATTR_HEADER_LEN] = self.buf.get(at..value_start)?.try_into().ok()?;
        let [t0, t1, l0, l1] = header;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let next = value_start + padded(len);
        if next > self.end {
            return None;
        }
        let value = self.buf.get(value_start..value_start + len)?;
        self.pos = next;
        let typ = u16::from_be_bytes([t0, t1]);
        Some((at, RawAttr { typ, value }))
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = RawAttr<'a>;

    fn next(&mut self) -> Option<RawAttr<'a>> {
        self.next_at().map(|(_, a)| a)
    }
}

/// Comprehension-required attribute types that tern does not know (for a 420 response).
#[derive(Clone, Debug)]
pub struct UnknownIter<'a> {
    pub(crate) inner: AttrIter<'a>,
}

impl Iterator for UnknownIter<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        self.inner
            .by_ref()
            .map(|a| a.typ)
            .find(|&t| attr::is_comprehension_required(t) && !attr::is_known(t))
    }
}
