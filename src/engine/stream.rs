//! TCP client connections (RFC 8656 §12.5 stream framing, RFC 8489 §6.2.2): a read buffer split
//! into frames with `stun::framing::frame_len`, and a bounded write queue per connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use crate::stun::framing::frame_len;

/// The longest frame: a STUN message (20-byte header + 16-bit length) or ChannelData
/// (4-byte header + 16-bit length, padded to 4).
pub(crate) const MAX_FRAME: usize = 20 + 65_535;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes a connection may have waiting to be written; a frame that would exceed it is dropped
/// whole (a stream cannot drop part of a frame).
pub(crate) const WRITE_QUEUE_LIMIT: usize = 256 * 1024;
/// Reads per wakeup, so one busy connection cannot starve the rest of the shard.
pub(crate) const READS_PER_WAKEUP: usize = 8;

pub(crate) struct Conn {
    pub(crate) stream: mio::net::TcpStream,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    rbuf: Vec<u8>,
    rstart: usize,
    wq: Vec<u8>,
    wstart: usize,
}

/// Why a frame could not be taken from the read buffer: the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadFrame;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The write queue is full: the frame is dropped, the connection stays.
    Full,
    /// The connection failed: close it.
    Broken,
}

impl Conn {
    pub(crate) fn new(stream: mio::net::TcpStream, local: SocketAddr, remote: SocketAddr) -> Conn {
        Conn {
            stream,
            local,
            remote,
            rbuf: Vec::new(),
            rstart: 0,
            wq: Vec::new(),
            wstart: 0,
        }
    }

    /// One `read` into the buffer. `Ok(0)` is end of stream; `WouldBlock` means drained.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        if self.rstart == self.rbuf.len() {
            self.rbuf.clear();
            self.rstart = 0;
        } else if self.rstart > 0 {
            self.rbuf.drain(..self.rstart);
            self.rstart = 0;
        }
        let old = self.rbuf.len();
        self.rbuf.resize(old + READ_CHUNK, 0);
        let r = self.stream.read(&mut self.rbuf[old..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.rbuf.truncate(old + n);
        r
    }

    /// The next complete frame in the buffer, consumed; `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<&[u8]>, BadFrame> {
        let pending = &self.rbuf[self.rstart..];
        match frame_len(pending) {
            Ok(Some(n)) if n > MAX_FRAME || n == 0 => Err(BadFrame),
            Ok(Some(n)) if n <= pending.len() => {
                let start = self.rstart;
                self.rstart += n;
                Ok(Some(&self.rbuf[start..start + n]))
            }
            Ok(_) if pending.len() > MAX_FRAME => Err(BadFrame),
            Ok(_) => Ok(None),
            Err(_) => Err(BadFrame),
        }
    }

    /// Writes what it can now and queues the rest.
    pub(crate) fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if self.wq.len() - self.wstart + frame.len() > WRITE_QUEUE_LIMIT {
            return Err(SendError::Full);
        }
        let mut written = 0;
        if self.wstart == self.wq.len() {
            written = match self.stream.write(frame) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(_) => return Err(SendError::Broken),
            };
        }
        if let Some(rest) = frame.get(written..) {
            self.wq.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Writes queued bytes until the socket would block.
    pub(crate) fn flush(&mut self) -> Result<(), SendError> {
        while self.wstart < self.wq.len() {
            match self.stream.write(&self.wq[self.wstart..]) {
                Ok(0) => return Err(SendError::Broken),
                Ok(n) => self.wstart += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(SendError::Broken),
            }
        }
        if self.wstart == self.wq.len() {
            self.wq.clear();
        } else {
            self.wq.drain(..self.wstart);
        }
        self.wstart = 0;
        Ok(())
    }
}
