//! Requests on one connection with long-term credentials (RFC 8489 §9.2): the first one unsigned,
//! a 401 or 438 answered with the realm and nonce it carried, a 401 carrying the nonce already
//! signed with taken as the server's refusal of the credentials.

use std::net::SocketAddr;
use std::time::Duration;

use super::conn::Conn;
use crate::client::{Algorithm, Client, Event, Request, TidGen};

/// A user name and password (already derived from a REST secret where one was given).
pub use crate::client::Credentials as Creds;

/// The server's answer, owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Success {
        relayed: Option<SocketAddr>,
        mapped: Option<SocketAddr>,
        lifetime: Option<u32>,
    },
    /// An error response: its code (401 when the credentials, or their absence, were refused).
    Refused(u16),
}

pub struct Session {
    pub conn: Conn,
    client: Client,
    timeout: Duration,
}

impl Session {
    /// Requests on `conn` signed with `creds`; unsigned ones only when None.
    pub fn new(conn: Conn, creds: Option<Creds>, timeout: Duration) -> Session {
        let mut seed = [0u8; 8];
        // Uniqueness, not secrecy: a failed read leaves zeros, still unique within the run.
        let _ = getrandom::fill(&mut seed);
        let tids = TidGen::new(u64::from_le_bytes(seed));
        Session {
            conn,
            client: Client::new(creds, Algorithm::Md5, tids).with_fingerprint(),
            timeout,
        }
    }

    /// Sends `req` and returns the answer; Err for no answer within the timeout, a broken
    /// connection, or a success whose MESSAGE-INTEGRITY does not verify.
    pub fn request(&mut self, req: Request) -> Result<Answer, String> {
        let mut buf = [0u8; 1024];
        self.client.start(req);
        while let Some((_, tid)) = self.client.pending() {
            let n = self
                .client
                .transmit(&mut buf)
                .map_err(|e| format!("cannot encode the request: {e}"))?;
            let frame = self
                .conn
                .transact(&buf[..n], &tid, self.timeout)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no answer within {} s", self.timeout.as_secs_f64()))?;
            let Some(Event::Done { response, verified }) = self.client.handle(&frame) else {
                continue;
            };
            if verified == Some(false) {
                return Err(
                    "a success response whose MESSAGE-INTEGRITY does not verify with \
                            these credentials"
                        .into(),
                );
            }
            return Ok(match response.outcome {
                Ok(s) => Answer::Success {
                    relayed: s.relayed,
                    mapped: s.mapped,
                    lifetime: s.lifetime,
                },
                Err(refusal) => Answer::Refused(refusal.code),
            });
        }
        Ok(Answer::Refused(401))
    }
}
