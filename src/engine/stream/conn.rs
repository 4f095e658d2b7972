//! One client stream connection (RFC 8656 §12.5 framing, RFC 8489 §6.2.2/§6.2.3 TCP and TLS):
//! plain TCP or TLS told apart by the first byte (0x16 starts a TLS handshake, as coturn
//! detects), a read buffer split into frames with `stun::framing::frame_len`, and a bounded
//! write queue. Buffers are allocated when bytes arrive and released when drained, so a
//! connection that sends nothing costs a socket and this struct.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use rustls::server::Acceptor;
use rustls::ServerConnection;

use super::super::tls::Tls;

use crate::stun::framing::frame_len;
use crate::turn::{ConnectionId, Transport};

/// The longest frame: a STUN message (20-byte header + 16-bit length) or ChannelData
/// (4-byte header + 16-bit length, padded to 4).
pub(crate) const MAX_FRAME: usize = 20 + 65_535;
/// Bytes a connection may have waiting to be written; a frame that would exceed it is dropped
/// whole (a stream cannot drop part of a frame).
pub(crate) const WRITE_QUEUE_LIMIT: usize = 256 * 1024;
/// Reads per wakeup, so one busy connection cannot starve the rest of the shard.
pub(crate) const READS_PER_WAKEUP: usize = 8;
/// A drained buffer larger than this is freed rather than kept for the next bytes.
const KEEP_CAPACITY: usize = 4096;
/// Plaintext taken out of rustls per call.
const PLAINTEXT_CHUNK: usize = 4096;

/// The TLS record type of a handshake: the first byte of every TLS ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

pub(crate) enum Layer {
    /// No byte seen yet: TLS if the first is 0x16 and TLS is set up, else plain when `plain`.
    Detect {
        plain: bool,
    },
    Plain,
    /// A TLS ClientHello is being read; its ALPN offer picks the configuration (`Tls::current`).
    Hello(Box<Acceptor>),
    Tls(Box<ServerConnection>),
}

/// What the bytes of the connection are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// STUN messages and ChannelData for the core.
    Stun,
    /// RFC 6062 data connection: raw bytes to and from peer connection `peer`.
    Data { peer: usize, id: ConnectionId },
}

pub(crate) struct Conn {
    pub(crate) stream: mio::net::TcpStream,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    layer: Layer,
    pub(crate) mode: Mode,
    pub(crate) opened: Instant,
    /// A complete frame was taken from this connection (the first-message deadline is met).
    pub(crate) framed: bool,
    rbuf: Vec<u8>,
    rstart: usize,
    wq: Vec<u8>,
    wstart: usize,
    /// Frames were queued since the last `flush`: the shard has this connection on its list of
    /// connections to write (`Streams::unflushed`).
    listed: bool,
    /// The last read took less than it asked for, so the socket had nothing more then: with
    /// edge-triggered readiness the next byte brings a new event, and reading again now would
    /// only return EAGAIN. Plain TCP only (rustls decides how much a TLS read asks for).
    drained: bool,
    /// An event said the client's end of the stream was reached (`EPOLLRDHUP`) or the
    /// connection failed: from then on the shard reads until EOF, whatever a read returned.
    pub(crate) read_closed: bool,
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
    pub(crate) fn new(
        stream: mio::net::TcpStream,
        local: SocketAddr,
        remote: SocketAddr,
        layer: Layer,
        now: Instant,
    ) -> Conn {
        Conn {
            stream,
            local,
            remote,
            layer,
            mode: Mode::Stun,
            opened: now,
            framed: false,
            rbuf: Vec::new(),
            rstart: 0,
            wq: Vec::new(),
            wstart: 0,
            listed: false,
            drained: false,
            read_closed: false,
        }
    }

    pub(crate) fn transport(&self) -> Transport {
        match self.layer {
            Layer::Hello(_) | Layer::Tls(_) => Transport::Tls,
            Layer::Detect { .. } | Layer::Plain => Transport::Tcp,
        }
    }

    /// One read from the socket; new plaintext is appended to the read buffer. `Ok(0)` is end of
    /// stream; `WouldBlock` means drained. `chunk` is the shard's scratch for socket reads.
    /// Plain TCP reads no more than fills the buffer to one longest frame: a longer run of
    /// unparsed bytes cannot be a frame, so the connection fails with `InvalidData`.
    pub(crate) fn fill(&mut self, chunk: &mut [u8], tls: Option<&Tls>) -> io::Result<usize> {
        self.compact();
        let room = MAX_FRAME.saturating_sub(self.rbuf.len());
        if room == 0 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let len = chunk.len().min(room);
        let chunk = chunk.get_mut(..len).unwrap_or_default();
        match &mut self.layer {
            Layer::Plain => {
                let n = self.stream.read(chunk)?;
                self.drained = n < len && !self.read_closed;
                self.rbuf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Layer::Detect { plain } => {
                let plain = *plain;
                let n = self.stream.read(chunk)?;
                let bytes = chunk.get(..n).unwrap_or_default();
                match (bytes.first(), tls) {
                    (None, _) => Ok(0),
                    (Some(&TLS_HANDSHAKE), Some(config)) => {
                        let mut hello = Box::<Acceptor>::default();
                        let mut rest = bytes;
                        while !rest.is_empty() {
                            hello.read_tls(&mut rest)?;
                        }
                        self.layer = Layer::Hello(hello);
                        self.accept_hello(config)?;
                        Ok(n)
                    }
                    _ if plain => {
                        self.layer = Layer::Plain;
                        self.rbuf.extend_from_slice(bytes);
                        Ok(n)
                    }
                    _ => Err(io::ErrorKind::InvalidData.into()),
                }
            }
            Layer::Hello(hello) => {
                let n = hello.read_tls(&mut self.stream)?;
                if n == 0 {
                    return Ok(0);
                }
                match tls {
                    Some(config) => self.accept_hello(config)?,
                    None => return Err(io::ErrorKind::InvalidData.into()),
                }
                Ok(n)
            }
            Layer::Tls(tls) => {
                let n = tls.read_tls(&mut self.stream)?;
                if n == 0 {
                    return Ok(0);
                }
                let mut none: &[u8] = &[];
                self.take_tls(&mut none)?;
                Ok(n)
            }
        }
    }

    /// Whether the last read emptied the socket (`drained`): the next event brings more.
    pub(crate) fn drained(&self) -> bool {
        self.drained
    }

    /// Once the whole ClientHello is read, starts the TLS connection with the configuration its
    /// ALPN offer calls for and runs the handshake on the bytes read so far.
    fn accept_hello(&mut self, config: &Tls) -> io::Result<()> {
        let Layer::Hello(hello) = &mut self.layer else {
            return Ok(());
        };
        let refused = match hello.accept() {
            Ok(None) => return Ok(()),
            Ok(Some(accepted)) => {
                let chosen = config.current(&accepted.client_hello());
                match accepted.into_connection(chosen) {
                    Ok(tls) => {
                        self.layer = Layer::Tls(Box::new(tls));
                        let mut none: &[u8] = &[];
                        return self.take_tls(&mut none);
                    }
                    Err(refused) => refused,
                }
            }
            Err(refused) => refused,
        };
        let (e, mut alert) = refused;
        // The alert is a courtesy: the connection closes either way.
        let _ = alert.write_all(&mut self.stream);
        Err(io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Feeds `bytes` (possibly empty: the record was read already) to rustls, then moves the
    /// plaintext into the read buffer and writes what the handshake wants to send.
    fn take_tls(&mut self, bytes: &mut &[u8]) -> io::Result<()> {
        let Layer::Tls(tls) = &mut self.layer else {
            return Ok(());
        };
        while !bytes.is_empty() {
            tls.read_tls(bytes)?;
            process(tls, &mut self.stream)?;
        }
        process(tls, &mut self.stream)?;
        let mut plain = [0u8; PLAINTEXT_CHUNK];
        loop {
            match tls.reader().read(&mut plain) {
                Ok(0) => break,
                Ok(n) => self
                    .rbuf
                    .extend_from_slice(plain.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // Handshake messages are written at once; a full socket keeps them for `flush`.
        match self.flush() {
            Ok(()) => Ok(()),
            Err(_) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// The next complete frame in the buffer, consumed; `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<&[u8]>, BadFrame> {
        let pending = self.rbuf.get(self.rstart..).unwrap_or_default();
        match frame_len(pending) {
            Ok(Some(n)) if n > MAX_FRAME || n == 0 => Err(BadFrame),
            Ok(Some(n)) if n <= pending.len() => {
                let start = self.rstart;
                self.rstart += n;
                self.framed = true;
                Ok(self.rbuf.get(start..start + n))
            }
            Ok(_) if pending.len() > MAX_FRAME => Err(BadFrame),
            Ok(_) => Ok(None),
            Err(_) => Err(BadFrame),
        }
    }

    /// Puts the last `n` consumed bytes back (a frame handed on with the connection).
    pub(crate) fn unread(&mut self, n: usize) {
        self.rstart = self.rstart.saturating_sub(n);
    }

    /// Bytes read and not yet consumed (a data connection's raw bytes).
    pub(crate) fn unconsumed(&self) -> &[u8] {
        self.rbuf.get(self.rstart..).unwrap_or_default()
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.rstart = (self.rstart + n).min(self.rbuf.len());
        self.compact();
    }

    /// Frees the read buffer once everything in it was consumed.
    fn compact(&mut self) {
        if self.rstart < self.rbuf.len() {
            if self.rstart > 0 {
                self.rbuf.drain(..self.rstart);
                self.rstart = 0;
            }
            return;
        }
        self.rstart = 0;
        if self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = Vec::new();
        } else {
            self.rbuf.clear();
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.wq.len() - self.wstart
    }

    /// Everything queued has reached the socket, TLS records included: a shutdown(Write) now
    /// cuts nothing off.
    pub(crate) fn written(&self) -> bool {
        let tls_pending = match &self.layer {
            Layer::Tls(tls) => tls.wants_write(),
            _ => false,
        };
        self.queued() == 0 && !tls_pending
    }

    /// Queues a whole frame, or refuses it when the queue is full. Nothing is written here: the
    /// shard flushes its listed connections once the datagrams or frames in hand are handled
    /// (`Streams::unflushed`), so what one batch of a peer's datagrams brings a client leaves in
    /// one write (one TLS record) instead of one system call per frame. True when the
    /// connection is to be listed (nothing was waiting for that flush yet).
    pub(crate) fn send(&mut self, frame: &[u8]) -> Result<bool, SendError> {
        if self.queued() + frame.len() > WRITE_QUEUE_LIMIT {
            // Much arrived for this client at once: what the socket takes now makes room. The
            // connection stays listed if it was.
            let listed = self.listed;
            self.flush()?;
            self.listed = listed;
            if self.queued() + frame.len() > WRITE_QUEUE_LIMIT {
                return Err(SendError::Full);
            }
        }
        self.wq.extend_from_slice(frame);
        Ok(!std::mem::replace(&mut self.listed, true))
    }

    /// Takes the shard's spare write buffer when this connection has none, so that queuing a
    /// frame does not allocate.
    pub(crate) fn borrow_buffer(&mut self, spare: &mut Vec<u8>) {
        if self.wq.capacity() == 0 {
            std::mem::swap(&mut self.wq, spare);
        }
    }

    /// After a flush that wrote everything: the buffer goes back to the shard's spare (or is
    /// freed when the spare is there already), so an idle connection holds none.
    pub(crate) fn return_buffer(&mut self, spare: &mut Vec<u8>) {
        if !self.wq.is_empty() {
            return;
        }
        if spare.capacity() == 0 {
            std::mem::swap(&mut self.wq, spare);
        } else {
            self.wq = Vec::new();
        }
    }

    /// Queues as much of `bytes` as the queue limit allows (raw data); returns how much.
    pub(crate) fn send_partial(&mut self, bytes: &[u8]) -> Result<usize, SendError> {
        let room = WRITE_QUEUE_LIMIT.saturating_sub(self.queued());
        let take = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        self.wq.extend_from_slice(take);
        self.flush()?;
        Ok(take.len())
    }

    /// Before the server closes: what is queued goes out as far as the socket takes it without
    /// waiting, and a TLS client gets close_notify, so it sees an orderly end, not a truncation.
    pub(crate) fn finish(&mut self) {
        if let Layer::Tls(tls) = &mut self.layer {
            tls.send_close_notify();
        }
        // Best effort: the connection closes whatever this manages.
        let _ = self.flush();
    }

    /// Writes queued bytes (through TLS when it is on) until the socket would block.
    pub(crate) fn flush(&mut self) -> Result<(), SendError> {
        self.listed = false;
        let result = match &mut self.layer {
            Layer::Plain | Layer::Detect { .. } => {
                write_out(&mut self.stream, &self.wq, &mut self.wstart)
            }
            // Nothing can be written before the handshake starts; the queue waits for it.
            Layer::Hello(_) => Ok(()),
            Layer::Tls(tls) => loop {
                if self.wstart < self.wq.len() {
                    match tls
                        .writer()
                        .write(self.wq.get(self.wstart..).unwrap_or_default())
                    {
                        Ok(n) => self.wstart += n,
                        Err(_) => break Err(SendError::Broken),
                    }
                }
                match write_tls(tls, &mut self.stream) {
                    Ok(true) if self.wstart < self.wq.len() => {}
                    Ok(_) => break Ok(()),
                    Err(e) => break Err(e),
                }
            },
        };
        if self.wstart == self.wq.len() {
            self.wstart = 0;
            if self.wq.capacity() > KEEP_CAPACITY {
                self.wq = Vec::new();
            } else {
                self.wq.clear();
            }
        } else if self.wstart > KEEP_CAPACITY {
            self.wq.drain(..self.wstart);
            self.wstart = 0;
        }
        result
    }
}

/// Whether `e` ended a TLS handshake over the client's certificate (`CA-file`): none was
/// presented, or it was not issued by a configured CA. The server sees these errors only from
/// its own verification of the client; a client refusing the server's certificate arrives as an
/// alert instead.
pub(crate) fn certificate_refused(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .filter(|tls| {
            matches!(
                tls,
                rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_)
            )
        })
}

/// Runs rustls on what it has read; a protocol error is sent to the client as an alert.
fn process(tls: &mut ServerConnection, stream: &mut mio::net::TcpStream) -> io::Result<()> {
    if let Err(e) = tls.process_new_packets() {
        // The alert is a courtesy: the connection closes either way.
        let _ = write_tls(tls, stream);
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    Ok(())
}

/// Writes TLS records until rustls has none or the socket would block. Ok(true): all written.
fn write_tls(
    tls: &mut ServerConnection,
    stream: &mut mio::net::TcpStream,
) -> Result<bool, SendError> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(SendError::Broken),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(SendError::Broken),
        }
    }
    Ok(true)
}

/// Writes `queue[*start..]` until done or the socket would block.
fn write_out(
    stream: &mut mio::net::TcpStream,
    queue: &[u8],
    start: &mut usize,
) -> Result<(), SendError> {
    while *start < queue.len() {
        match stream.write(queue.get(*start..).unwrap_or_default()) {
            Ok(0) => return Err(SendError::Broken),
            Ok(n) => *start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(SendError::Broken),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A plain connection as the shard holds it, and the client's end.
    fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let local = server.local_addr().unwrap();
        let stream = mio::net::TcpStream::from_std(server);
        let conn = Conn::new(
            stream,
            local,
            remote,
            Layer::Plain,
            crate::engine::clock::now().0,
        );
        (conn, client)
    }

    /// Frames wait in the queue until the shard flushes the connection, then leave together;
    /// the connection asks to be listed once per flush.
    #[test]
    fn frames_leave_together_at_the_flush() {
        let (mut conn, mut client) = pair();
        assert_eq!(conn.send(b"one."), Ok(true));
        assert_eq!(conn.send(b"two."), Ok(false));
        client.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let early = client.read(&mut buf);
        assert!(
            matches!(&early, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "written before the flush: {early:?}"
        );
        assert_eq!(conn.flush(), Ok(()));
        assert_eq!(conn.queued(), 0);
        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 8 {
            let n = client.read(&mut buf).unwrap();
            assert_ne!(n, 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"one.two.");
        assert_eq!(conn.send(b"three"), Ok(true));
    }

    /// The shard's one spare buffer goes to the connection written to and comes back after the
    /// flush: a connection that was sent something holds no buffer afterwards.
    #[test]
    fn a_flushed_connection_gives_its_buffer_back() {
        let (mut conn, _client) = pair();
        let mut spare = Vec::with_capacity(1024);
        conn.borrow_buffer(&mut spare);
        assert_eq!(spare.capacity(), 0);
        assert_eq!(conn.send(&[1u8; 300]), Ok(true));
        assert_eq!(conn.flush(), Ok(()));
        conn.return_buffer(&mut spare);
        assert!(spare.capacity() >= 1024);
        assert_eq!(conn.wq.capacity(), 0);
        // With the spare taken back already, a second connection's buffer is freed.
        let (mut other, _client) = pair();
        assert_eq!(other.send(&[2u8; 300]), Ok(true));
        assert_eq!(other.flush(), Ok(()));
        other.return_buffer(&mut spare);
        assert_eq!(other.wq.capacity(), 0);
    }

    /// A queue that would pass its limit is written first, so a burst the socket takes is not
    /// dropped for want of a flush; one the socket cannot take is refused whole.
    #[test]
    fn a_full_queue_is_written_before_a_frame_is_refused() {
        let (mut conn, client) = pair();
        let frame = vec![7u8; 60 * 1024];
        // Five frames pass the limit: the fifth makes room by writing the first four.
        for _ in 0..5 {
            assert!(conn.send(&frame).is_ok());
        }
        assert!(conn.queued() < WRITE_QUEUE_LIMIT);
        // The client reads nothing: the socket buffers fill, then the queue, then frames are
        // refused and the queue holds whole frames only.
        let mut refused = false;
        for _ in 0..200 {
            if conn.send(&frame) == Err(SendError::Full) {
                refused = true;
                break;
            }
        }
        assert!(refused, "an unread connection never filled");
        assert!(conn.queued() + frame.len() > WRITE_QUEUE_LIMIT);
        drop(client);
    }
}
