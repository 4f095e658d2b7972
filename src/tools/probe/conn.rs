//! One connection from the probe to the server over UDP, TCP or TLS, and STUN transactions on it:
//! retransmitted over UDP (RFC 8489 §6.2.1), sent once over streams, whose bytes are split into
//! STUN and ChannelData frames (RFC 8656 §12.5).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::url::Transport;
use crate::client;
use crate::stun::framing::frame_len;
use crate::stun::TransactionId;

/// The first retransmission timeout over UDP; doubled on every retry (RFC 8489 §6.2.1).
const RTO: Duration = Duration::from_millis(250);
/// The largest frame read: a STUN message or ChannelData with a 64 KiB payload.
const MAX_FRAME: usize = 65_536 + 8;

pub enum Conn {
    Udp(UdpSocket),
    Tcp(Framed<TcpStream>),
    Tls(Box<Framed<StreamOwned<ClientConnection, TcpStream>>>),
}

/// A byte stream and the bytes read from it that do not make a whole frame yet.
pub struct Framed<S> {
    stream: S,
    pending: Vec<u8>,
}

/// Where the TLS client's handshake ends up: its TLS details are read from the connection.
pub struct TlsSetup<'a> {
    pub config: Arc<ClientConfig>,
    pub name: &'a ServerName<'static>,
}

impl Conn {
    /// A fresh connection to `server`: a connected UDP socket, or a TCP connection (and a
    /// completed TLS handshake) within `timeout`.
    pub fn open(
        server: SocketAddr,
        transport: Transport,
        tls: Option<&TlsSetup<'_>>,
        timeout: Duration,
    ) -> io::Result<Conn> {
        match transport {
            Transport::Udp => {
                let local: SocketAddr = if server.is_ipv4() {
                    ([0u8; 4], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let sock = UdpSocket::bind(local)?;
                sock.connect(server)?;
                Ok(Conn::Udp(sock))
            }
            Transport::Tcp => Ok(Conn::Tcp(Framed::new(connect(server, timeout)?))),
            Transport::Tls => {
                let setup = tls.ok_or_else(|| io::Error::other("no TLS configuration"))?;
                let tcp = connect(server, timeout)?;
                tcp.set_read_timeout(Some(timeout))?;
                tcp.set_write_timeout(Some(timeout))?;
                let conn = ClientConnection::new(Arc::clone(&setup.config), setup.name.clone())
                    .map_err(io::Error::other)?;
                let mut tls = StreamOwned::new(conn, tcp);
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock)?;
                }
                Ok(Conn::Tls(Box::new(Framed::new(tls))))
            }
        }
    }

    /// The TLS session, for its version, ALPN and certificates.
    pub fn tls(&self) -> Option<&ClientConnection> {
        match self {
            Conn::Tls(f) => Some(&f.stream.conn),
            _ => None,
        }
    }

    pub fn is_stream(&self) -> bool {
        !matches!(self, Conn::Udp(_))
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(bytes).map(drop),
            Conn::Tcp(f) => f.stream.write_all(bytes),
            Conn::Tls(f) => {
                f.stream.write_all(bytes)?;
                f.stream.flush()
            }
        }
    }

    /// The next datagram or frame, or None when `deadline` passes first.
    pub fn recv(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match self {
            Conn::Udp(s) => {
                s.set_read_timeout(Some(left))?;
                let mut buf = vec![0u8; MAX_FRAME];
                match s.recv(&mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(Some(buf))
                    }
                    Err(e) if timed_out(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Conn::Tcp(f) => f.next(deadline, |s, t| s.set_read_timeout(Some(t))),
            Conn::Tls(f) => f.next(deadline, |s, t| s.sock.set_read_timeout(Some(t))),
        }
    }

    /// Sends `request` (transaction `tid`) and returns the answer to it, retransmitting over UDP
    /// until `timeout` has passed since the first send; other frames are dropped.
    pub fn transact(
        &mut self,
        request: &[u8],
        tid: &TransactionId,
        timeout: Duration,
    ) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut rto = RTO;
        loop {
            self.send(request)?;
            let resend = if self.is_stream() {
                deadline
            } else {
                (Instant::now() + rto).min(deadline)
            };
            rto *= 2;
            while let Some(frame) = self.recv(resend)? {
                if client::response(&frame).is_some_and(|r| r.tid == *tid) {
                    return Ok(Some(frame));
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}

impl<S: Read> Framed<S> {
    fn new(stream: S) -> Framed<S> {
        Framed {
            stream,
            pending: Vec::new(),
        }
    }

    /// The next whole frame; `set_timeout` bounds each read by the time left.
    fn next(
        &mut self,
        deadline: Instant,
        set_timeout: impl Fn(&S, Duration) -> io::Result<()>,
    ) -> io::Result<Option<Vec<u8>>> {
        loop {
            match frame_len(&self.pending) {
                Ok(Some(n)) if n <= self.pending.len() => {
                    let rest = self.pending.split_off(n);
                    return Ok(Some(std::mem::replace(&mut self.pending, rest)));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent bytes that are not STUN or ChannelData ({e})"),
                    ))
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            set_timeout(&self.stream, left)?;
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) if self.pending.len() + n <= 2 * MAX_FRAME => {
                    self.pending.extend_from_slice(&buf[..n]);
                }
                Ok(_) => return Err(io::Error::other("a frame longer than any STUN message")),
                Err(e) if timed_out(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

fn connect(server: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&server, timeout)?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
