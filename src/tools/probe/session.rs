//! Requests on one connection with long-term credentials (RFC 8489 §9.2): the first one unsigned,
//! a 401 or 438 answered once more with the realm and nonce it carried, a 401 to a signed request
//! taken as the server's refusal of the credentials.

use std::time::Duration;

use super::conn::Conn;
use crate::auth::{long_term_key, Key};
use crate::load::wire::{self, Reply, Request, Signed};
use std::net::SocketAddr;

/// Challenges answered per request: one for the first 401, more for 438 (stale nonce).
const MAX_CHALLENGES: usize = 3;

/// A user name and password (already derived from a REST secret where one was given).
#[derive(Clone, Debug)]
pub struct Creds {
    pub username: String,
    pub password: String,
}

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
    creds: Option<Creds>,
    realm: String,
    nonce: Vec<u8>,
    key: Key,
    timeout: Duration,
}

impl Session {
    /// Requests on `conn` signed with `creds`; unsigned ones only when None.
    pub fn new(conn: Conn, creds: Option<Creds>, timeout: Duration) -> Session {
        Session {
            conn,
            creds,
            realm: String::new(),
            nonce: Vec::new(),
            key: Key::default(),
            timeout,
        }
    }

    /// Sends `req` and returns the answer; Err for no answer within the timeout, a broken
    /// connection, or a success whose MESSAGE-INTEGRITY does not verify.
    pub fn request(&mut self, req: Request) -> Result<Answer, String> {
        let mut buf = [0u8; 1024];
        for _ in 0..=MAX_CHALLENGES {
            let mut tid = [0u8; 12];
            // Uniqueness, not secrecy: a failed read leaves zeros, still matched by the answer.
            let _ = getrandom::fill(&mut tid);
            let signed = self.creds.as_ref().map(|c| Signed {
                username: &c.username,
                realm: &self.realm,
                nonce: &self.nonce,
                key: &self.key,
            });
            let auth = signed.as_ref().filter(|_| !self.nonce.is_empty());
            let n = wire::request(&mut buf, &tid, req, auth)
                .map_err(|e| format!("cannot encode the request: {e}"))?;
            let was_signed = auth.is_some();
            let frame = self
                .conn
                .transact(&buf[..n], &tid, self.timeout)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no answer within {} s", self.timeout.as_secs_f64()))?;
            let key = was_signed.then_some(&self.key[..]);
            let reply = wire::reply(&frame, &tid, key).ok_or(
                "a success response whose MESSAGE-INTEGRITY does not verify with these credentials",
            )?;
            match reply {
                Reply::Success {
                    relayed,
                    mapped,
                    lifetime,
                } => {
                    return Ok(Answer::Success {
                        relayed,
                        mapped,
                        lifetime,
                    })
                }
                Reply::Error(code) => return Ok(Answer::Refused(code)),
                Reply::Challenge { code, realm, nonce } => {
                    let Some(creds) = &self.creds else {
                        return Ok(Answer::Refused(code));
                    };
                    if was_signed && code == 401 {
                        return Ok(Answer::Refused(code));
                    }
                    if realm != self.realm {
                        self.key = long_term_key(&creds.username, realm, &creds.password);
                        self.realm = realm.to_owned();
                    }
                    self.nonce = nonce.to_vec();
                }
            }
        }
        Ok(Answer::Refused(401))
    }
}
