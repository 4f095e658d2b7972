//! A blocking TURN client over UDP: one `tern_proto::client::Client` on one socket, each request
//! retransmitted on a fixed timer (RFC 8489 §6.2.1 leaves the schedule to the client) and its
//! 401/438 challenges answered.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tern_proto::client::{Algorithm, Client, Credentials, Event, Response};

/// The server's final answer to a request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub response: Response,
    /// Whether a signed request's success verified with the key (None: not signed, or refused).
    pub verified: Option<bool>,
    /// The answer as received.
    pub bytes: Vec<u8>,
}

pub struct UdpClient {
    pub socket: UdpSocket,
    pub server: SocketAddr,
    pub client: Client,
    /// How long each transmission waits for its answer.
    pub rto: Duration,
    /// Transmissions per transaction.
    pub tries: u32,
    /// Whether each wait is jittered by ±20% (a client whose timer owes nothing to the server's
    /// scheduler, as real clients).
    pub jitter: bool,
}

impl UdpClient {
    /// A client on a socket bound to `local`, talking to `server`: 250 ms per try, 16 tries.
    pub fn bind(
        local: SocketAddr,
        server: SocketAddr,
        creds: Option<Credentials>,
        algorithm: Algorithm,
    ) -> io::Result<UdpClient> {
        let socket = UdpSocket::bind(local)?;
        Ok(UdpClient::on(socket, server, creds, algorithm))
    }

    /// As [`UdpClient::bind`] on a socket the caller opened.
    pub fn on(
        socket: UdpSocket,
        server: SocketAddr,
        creds: Option<Credentials>,
        algorithm: Algorithm,
    ) -> UdpClient {
        UdpClient {
            socket,
            server,
            client: Client::new(creds, algorithm, super::tid_gen()),
            rto: Duration::from_millis(250),
            tries: 16,
            jitter: false,
        }
    }

    pub fn timing(mut self, rto: Duration, tries: u32, jitter: bool) -> UdpClient {
        (self.rto, self.tries, self.jitter) = (rto, tries, jitter);
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `request` until answered (challenges answered on the way); None when every
    /// transmission went unanswered or the socket failed. Datagrams that are not the answer
    /// (ChannelData, late answers) are dropped.
    pub fn request(&mut self, request: tern_proto::client::Request) -> Option<Answer> {
        self.client.start(request);
        let mut out = [0u8; 1500];
        let mut buf = vec![0u8; 65_536];
        'signed: loop {
            let n = self.client.transmit(&mut out).ok()?;
            self.socket.set_read_timeout(Some(self.rto)).ok()?;
            for _ in 0..self.tries {
                self.socket.send_to(&out[..n], self.server).ok()?;
                let deadline = Instant::now() + self.wait();
                while Instant::now() < deadline {
                    let Ok(len) = self.socket.recv(&mut buf) else {
                        break;
                    };
                    match self.client.handle(&buf[..len]) {
                        Some(Event::Challenged) => continue 'signed,
                        Some(Event::Done { response, verified }) => {
                            let bytes = buf[..len].to_vec();
                            return Some(Answer {
                                response,
                                verified,
                                bytes,
                            });
                        }
                        None => {}
                    }
                }
            }
            self.client.cancel();
            return None;
        }
    }

    fn wait(&self) -> Duration {
        if !self.jitter {
            return self.rto;
        }
        let mut b = [0u8; 1];
        // A failed read leaves 0: the shortest wait, still a valid one.
        let _ = getrandom::fill(&mut b);
        self.rto.mul_f64(0.8 + 0.4 * f64::from(b[0]) / 256.0)
    }
}
