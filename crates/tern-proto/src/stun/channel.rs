//! ChannelData messages (RFC 8656 §12.4): a 4-byte header (channel number, length) and the
//! application data, padded to 4 bytes on streams only.

/// Channel number and length.
pub const HEADER_LEN: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChannelError {
    /// Fewer than 4 bytes.
    TooShort,
    /// The channel number is outside 0x4000..=0x7FFF.
    BadChannel,
    /// The length field is longer than the bytes that follow.
    BadLength,
}

super::error::display_as_debug!(ChannelError);

/// The top two bits are 01: a ChannelData message rather than STUN (00).
pub fn is_channel_data(first_byte: u8) -> bool {
    first_byte & 0xC0 == 0x40
}

/// Every number a ChannelData header can carry (RFC 5766 §11): what framing and parsing accept.
/// Which of them a client may bind is the server's `ChannelRange`.
pub fn is_valid_channel(ch: u16) -> bool {
    (0x4000..=0x7FFF).contains(&ch)
}

/// The channel numbers a ChannelBind may take, and so the only ones ChannelData can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelRange {
    /// RFC 5766 §11: 0x4000..=0x7FFF. coturn 4.6 accepts this range, and its client library
    /// (turnutils_uclient among its users) picks channel numbers at random from all of it.
    #[default]
    Rfc5766,
    /// RFC 8656 §12: 0x4000..=0x4FFF; 0x5000..=0x7FFF are reserved (RFC 7983 demultiplexing),
    /// so a ChannelBind for them is answered 400 and ChannelData on them is discarded.
    Rfc8656,
}

impl ChannelRange {
    pub fn contains(self, ch: u16) -> bool {
        let last = match self {
            ChannelRange::Rfc5766 => 0x7FFF,
            ChannelRange::Rfc8656 => 0x4FFF,
        };
        (0x4000..=last).contains(&ch)
    }

    pub fn name(self) -> &'static str {
        match self {
            ChannelRange::Rfc5766 => "rfc5766",
            ChannelRange::Rfc8656 => "rfc8656",
        }
    }
}

/// (channel, payload). The length field may be shorter than the bytes after the header (padding
/// is ignored); longer is an error.
pub fn parse(buf: &[u8]) -> Result<(u16, &[u8]), ChannelError> {
    let [c0, c1, l0, l1, rest @ ..] = buf else {
        return Err(ChannelError::TooShort);
    };
    let channel = u16::from_be_bytes([*c0, *c1]);
    if !is_valid_channel(channel) {
        return Err(ChannelError::BadChannel);
    }
    let len = usize::from(u16::from_be_bytes([*l0, *l1]));
    let payload = rest.get(..len).ok_or(ChannelError::BadLength)?;
    Ok((channel, payload))
}

/// Writes the header into `hdr[..4]`. Panics if `hdr` is shorter than 4 (a caller bug, never
/// wire data).
pub fn write_header(hdr: &mut [u8], channel: u16, len: u16) {
    hdr[0..2].copy_from_slice(&channel.to_be_bytes());
    hdr[2..4].copy_from_slice(&len.to_be_bytes());
}

/// `len` rounded up to a multiple of 4.
pub fn padded_len(len: usize) -> usize {
    super::padded(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ignores_padding_and_rejects_overlong() {
        let mut buf = [0u8; 12];
        write_header(&mut buf, 0x4001, 5);
        buf[4..9].copy_from_slice(b"hello");
        assert_eq!(parse(&buf), Ok((0x4001, &b"hello"[..])));
        assert_eq!(parse(&buf[..9]), Ok((0x4001, &b"hello"[..])));
        assert_eq!(parse(&buf[..8]), Err(ChannelError::BadLength));
        assert_eq!(parse(&buf[..3]), Err(ChannelError::TooShort));
    }

    #[test]
    fn channel_range() {
        assert!(!is_valid_channel(0x3FFF));
        assert!(is_valid_channel(0x4000));
        assert!(is_valid_channel(0x7FFF));
        assert!(!is_valid_channel(0x8000));
        let buf = [0x80, 0x00, 0x00, 0x00];
        assert_eq!(parse(&buf), Err(ChannelError::BadChannel));
        assert!(is_channel_data(0x40) && is_channel_data(0x7F));
        assert!(!is_channel_data(0x00) && !is_channel_data(0x80));
    }

    #[test]
    fn bindable_ranges() {
        for (range, last) in [
            (ChannelRange::Rfc5766, 0x7FFF),
            (ChannelRange::Rfc8656, 0x4FFF),
        ] {
            assert!(!range.contains(0x3FFF));
            assert!(range.contains(0x4000));
            assert!(range.contains(last));
            assert!(!range.contains(last + 1));
        }
        assert!(!ChannelRange::Rfc8656.contains(0x5000));
        assert!(ChannelRange::Rfc5766.contains(0x5000));
    }

    #[test]
    fn padding() {
        assert_eq!(padded_len(0), 0);
        assert_eq!(padded_len(1), 4);
        assert_eq!(padded_len(4), 4);
        assert_eq!(padded_len(5), 8);
    }
}
