//! One client's way to the server: a UDP socket, or its own TCP or TLS connection (RFC 8656
//! §3.1, TURN over TCP and TLS), non-blocking in the fleet's poll. On a stream, messages are
//! cut from the bytes with `tern::client::Deframer` (STUN by its length, ChannelData by its
//! length padded to 4 bytes, §12.5), and what the socket does not take at once waits for the
//! next writable event.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Registry, Token};
use rustls::{ClientConfig, ClientConnection};

use tern::client::Deframer;

/// How long a TCP connect and a TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Io {
    Udp(mio::net::UdpSocket),
    Stream(Box<Stream>),
    /// A stream client before its connection, or whose connection failed.
    Unconnected,
}

impl Io {
    /// Sends one datagram, or queues one message on the stream and writes what the socket takes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Io::Udp(sock) => sock.send(bytes).map(drop),
            Io::Stream(s) => s.send(bytes),
            Io::Unconnected => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The next datagram or whole stream message into `buf`; WouldBlock when none is waiting.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Udp(sock) => sock.recv(buf),
            Io::Stream(s) => s.recv(buf),
            Io::Unconnected => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Writes what a stream's socket refused earlier (on a writable event).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Stream(s) => s.flush(),
            Io::Udp(_) | Io::Unconnected => Ok(()),
        }
    }
}

/// A client's connection: plain TCP, or TLS over it (`tls`).
pub struct Stream {
    sock: mio::net::TcpStream,
    tls: Option<Box<ClientConnection>>,
    deframer: Deframer,
    /// TCP bytes the socket has not taken yet (rustls keeps its own for TLS).
    unsent: Vec<u8>,
    /// The server closed the connection or sent what no frame can be: nothing more will come.
    closed: bool,
}

impl Stream {
    /// Connects to `server` (and completes the TLS handshake when `tls` is given), blocking up
    /// to [`CONNECT_TIMEOUT`] for each, then registers the connection under `token`.
    pub fn connect(
        server: SocketAddr,
        tls: Option<&Arc<ClientConfig>>,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Stream> {
        let mut tcp = std::net::TcpStream::connect_timeout(&server, CONNECT_TIMEOUT)?;
        // Every message is a packet the server should relay now: no Nagle delay.
        tcp.set_nodelay(true)?;
        let tls = match tls {
            None => None,
            Some(config) => {
                tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                tcp.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                let name = tern::tools::TlsClient::server_name(&server.ip().to_string())
                    .map_err(io::Error::other)?;
                let mut conn =
                    ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
                // Sends are queued, never refused: the closed loop bounds what is in flight.
                conn.set_buffer_limit(None);
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp)?;
                }
                Some(Box::new(conn))
            }
        };
        tcp.set_nonblocking(true)?;
        let mut sock = mio::net::TcpStream::from_std(tcp);
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Stream {
            sock,
            tls,
            deframer: Deframer::default(),
            unsent: Vec::new(),
            closed: false,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::NotConnected.into());
        }
        match &mut self.tls {
            Some(tls) => tls.writer().write_all(bytes)?,
            None if self.unsent.is_empty() => match self.sock.write(bytes) {
                Ok(n) => self.unsent.extend_from_slice(&bytes[n..]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.unsent.extend_from_slice(bytes)
                }
                Err(e) => return Err(e),
            },
            None => self.unsent.extend_from_slice(bytes),
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.write_out() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            done => done,
        }
    }

    /// Writes queued bytes until none are left or the socket would block (WouldBlock then).
    fn write_out(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.sock)?;
            }
            return Ok(());
        }
        while !self.unsent.is_empty() {
            match self.sock.write(&self.unsent)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => drop(self.unsent.drain(..n)),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.deframer.next_frame() {
                Ok(Some(frame)) => {
                    let n = frame.len();
                    let out = buf.get_mut(..n).ok_or(io::ErrorKind::InvalidData)?;
                    out.copy_from_slice(&frame);
                    return Ok(n);
                }
                Ok(None) => {}
                Err(e) => {
                    // The bytes can never make a frame: drop them with the connection.
                    self.deframer = Deframer::default();
                    return Err(self.close(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
            }
            if self.closed {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            match self.read_more(buf) {
                Ok(0) => return Err(self.close(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => self.deframer.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => return Err(self.close(e)),
            }
        }
    }

    /// Reads bytes of the stream (decrypted for TLS) into `buf`; Ok(0) at its end.
    fn read_more(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if tls.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    /// Marks the connection dead: the error is reported once, later reads find nothing.
    fn close(&mut self, e: io::Error) -> io::Error {
        self.closed = true;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tern::client::channel_frame;

    fn pair() -> (Stream, std::net::TcpStream, mio::Poll) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let poll = mio::Poll::new().unwrap();
        let addr = listener.local_addr().unwrap();
        let s = Stream::connect(addr, None, poll.registry(), Token(0)).unwrap();
        let (server, _) = listener.accept().unwrap();
        (s, server, poll)
    }

    /// Reads until one message is whole (the server's bytes may still be in flight).
    fn next(io: &mut Io, buf: &mut [u8]) -> io::Result<usize> {
        for _ in 0..500 {
            match io.recv(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                done => return done,
            }
        }
        Err(io::ErrorKind::TimedOut.into())
    }

    #[test]
    fn cuts_padded_channel_data_from_bytes_in_any_pieces() {
        let (s, mut server, _poll) = pair();
        let mut io = Io::Stream(Box::new(s));
        // 5 and 160 bytes of payload: the first is padded to 12 bytes on the stream.
        let a = channel_frame(0x4000, b"hello", true);
        let b = channel_frame(0x4001, &[7u8; 160], true);
        assert_eq!(a.len(), 12);
        let bytes = [a.clone(), b.clone()].concat();
        let mut buf = vec![0u8; 65_536];
        for piece in bytes.chunks(7) {
            server.write_all(piece).unwrap();
            server.flush().unwrap();
        }
        assert_eq!(next(&mut io, &mut buf).unwrap(), a.len());
        assert_eq!(&buf[..a.len()], &a[..]);
        assert_eq!(next(&mut io, &mut buf).unwrap(), b.len());
        assert_eq!(&buf[..b.len()], &b[..]);
        assert_eq!(
            io.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn sends_whole_messages_and_reports_the_end_once() {
        let (s, mut server, _poll) = pair();
        let mut io = Io::Stream(Box::new(s));
        let frame = channel_frame(0x4000, &[1u8; 1200], true);
        for _ in 0..3 {
            io.send(&frame).unwrap();
        }
        let mut got = vec![0u8; 3 * frame.len()];
        server.read_exact(&mut got).unwrap();
        assert_eq!(got, [frame.clone(), frame.clone(), frame].concat());
        drop(server);
        let mut buf = vec![0u8; 2048];
        let end = next(&mut io, &mut buf).unwrap_err();
        assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            io.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            io.send(b"more").unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        assert!(Io::Unconnected.send(b"x").is_err());
    }
}
