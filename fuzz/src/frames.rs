//! The `frame_stream` target: a TCP/TLS byte stream cut at arbitrary points and fed to
//! `framing::frame_len` the way a stream reader does (RFC 8656 §12.5, RFC 6062): never a panic,
//! never a frame shorter than its header or longer than the length field allows, and the same
//! frames however the stream was cut.

use tern::stun::{channel, framing, HEADER_LEN};

/// The longest frames a 16-bit length field allows: a STUN length is a multiple of 4, a
/// ChannelData payload of 65535 bytes is padded to 65536 on streams.
const MAX_STUN_FRAME: usize = HEADER_LEN + 65532;
const MAX_CHANNEL_FRAME: usize = channel::HEADER_LEN + 65536;

/// What a reader made of a stream: the frame lengths, and whether it stopped on an error.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    frames: Vec<usize>,
    error: bool,
}

/// Reads `stream` in chunks whose sizes cycle through `cuts` (1..=256 bytes each).
fn read(stream: &[u8], cuts: &[u8]) -> Read {
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Read {
        frames: Vec::new(),
        error: false,
    };
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let size = cuts
            .get(i % cuts.len().max(1))
            .map_or(stream.len(), |c| usize::from(*c) + 1);
        i += 1;
        let end = (pos + size).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match framing::frame_len(&buf) {
                Err(_) => {
                    out.error = true;
                    return out;
                }
                Ok(None) => {
                    assert!(
                        buf.len() < 4,
                        "{} bytes hold a length field, yet more are needed",
                        buf.len()
                    );
                    break;
                }
                Ok(Some(n)) => {
                    check_len(&buf, n);
                    if buf.len() < n {
                        break;
                    }
                    out.frames.push(n);
                    buf.drain(..n);
                }
            }
        }
    }
    out
}

fn check_len(buf: &[u8], n: usize) {
    let stun = buf.first().is_some_and(|b| b & 0xC0 == 0);
    let (min, max) = if stun {
        (HEADER_LEN, MAX_STUN_FRAME)
    } else {
        (channel::HEADER_LEN, MAX_CHANNEL_FRAME)
    };
    assert!(n >= min && n <= max, "frame length {n}");
    assert_eq!(n % 4, 0, "stream frames are padded to 4");
    // The length depends on the first four bytes only: a reader may decide as soon as it has them.
    assert_eq!(framing::frame_len(buf.get(..4).unwrap_or(buf)), Ok(Some(n)));
}

/// `data`: the number of cut sizes, the sizes, then the stream.
pub fn frame_stream(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(k);
    let whole = read(stream, &[]);
    let cut = read(stream, cuts);
    assert_eq!(cut, whole, "frames depend on where the stream was cut");
}
