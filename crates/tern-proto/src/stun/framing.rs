//! Splitting a TCP/TLS byte stream into STUN and ChannelData frames (RFC 8656 §12.5, RFC 8489
//! §6.2.2).

use super::{channel, HEADER_LEN};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The top two bits are 10 or 11: neither STUN nor ChannelData.
    NotAFrame,
    /// A STUN length that is not a multiple of 4.
    Misaligned,
}

super::error::display_as_debug!(FrameError);

/// Length of the first frame in `buf` (a STUN message, or ChannelData padded to 4, as streams
/// require), Ok(None) when more bytes are needed to tell, Err when the bytes cannot start a frame.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(first) = buf.first() else {
        return Ok(None);
    };
    let stun = match first & 0xC0 {
        0x00 => true,
        0x40 => false,
        _ => return Err(FrameError::NotAFrame),
    };
    let Some([l0, l1]) = buf.get(2..4) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([*l0, *l1]));
    if !stun {
        return Ok(Some(channel::HEADER_LEN + channel::padded_len(len)));
    }
    if len % 4 != 0 {
        return Err(FrameError::Misaligned);
    }
    Ok(Some(HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_the_length_field() {
        assert_eq!(frame_len(&[]), Ok(None));
        assert_eq!(frame_len(&[0x00, 0x01, 0x00]), Ok(None));
        assert_eq!(frame_len(&[0x40, 0x00, 0x00]), Ok(None));
    }

    #[test]
    fn stun_and_channel_data() {
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x08]), Ok(Some(28)));
        assert_eq!(
            frame_len(&[0x01, 0x01, 0x00, 0x06]),
            Err(FrameError::Misaligned)
        );
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x05, 1]), Ok(Some(12)));
        assert_eq!(frame_len(&[0x7F, 0xFF, 0x00, 0x00]), Ok(Some(4)));
    }

    #[test]
    fn other_top_bits_are_errors() {
        assert_eq!(frame_len(&[0x80]), Err(FrameError::NotAFrame));
        assert_eq!(frame_len(&[0xC0, 0, 0, 0]), Err(FrameError::NotAFrame));
    }
}
