//! A sans-IO STUN/TURN client (RFC 8489, RFC 8656, RFC 6062): it builds requests into the
//! caller's buffer and reads what comes back, and does no I/O and reads no clock, so the load
//! generator, the drills, `tern probe` and the tests drive the same code over their own sockets
//! and timers.
//!
//! [`Client`] holds one transaction at a time and the credentials: [`Client::start`] begins a
//! request, [`Client::transmit`] writes its bytes (again for a retransmission: the caller's timer
//! decides when), [`Client::handle`] takes a received message and says whether it finished the
//! transaction or asks for the request again, signed after a 401 or 438 (RFC 8489 §9.2).
//! Transaction ids come from a [`TidGen`] the caller seeds.

mod credentials;
mod reply;
mod request;
#[cfg(test)]
mod tests;

pub use credentials::{Algorithm, Auth, Credentials, Echo};
pub use reply::{incoming, response, Deframer, Incoming, Refusal, Response, Success};
pub use request::{
    channel_data, channel_data_padded, channel_frame, encode, send_indication, Allocate, Request,
    Transport,
};

use crate::stun::{EncodeError, Message, TransactionId};

/// Transaction ids from a seeded SplitMix64: unique within a run, not secret (RFC 8489 §6 asks
/// for uniqueness; a client that needs unpredictability seeds from the OS per run).
#[derive(Debug, Clone)]
pub struct TidGen(u64);

impl TidGen {
    pub fn new(seed: u64) -> TidGen {
        TidGen(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_tid(&mut self) -> TransactionId {
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        t[8..].copy_from_slice(&self.next_u64().to_le_bytes()[..4]);
        t
    }
}

/// Challenges answered per transaction: the first 401, then 438s (stale nonce).
pub const MAX_CHALLENGES: u8 = 3;

/// What a received message meant for the transaction in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The transaction ended: the server's answer. A success's `verified` is Some(false) when
    /// the request was signed and the answer's integrity does not verify with the key.
    Done {
        response: Response,
        verified: Option<bool>,
    },
    /// A 401 or 438 was taken: [`Client::transmit`] now writes the signed request (a new
    /// transaction id) to send at once.
    Challenged,
}

#[derive(Debug, Clone)]
struct Transaction {
    tid: TransactionId,
    request: Request,
    challenges: u8,
}

/// One client's credentials and its transaction in progress.
#[derive(Debug, Clone)]
pub struct Client {
    auth: Auth,
    /// Whether requests are signed once challenged (false: no credentials, every request
    /// unsigned, a challenge ends the transaction).
    signs: bool,
    tids: TidGen,
    txn: Option<Transaction>,
    fingerprint: bool,
}

impl Client {
    /// A client with long-term credentials (None: none, as an open-relay check sends).
    pub fn new(creds: Option<Credentials>, algorithm: Algorithm, tids: TidGen) -> Client {
        Client {
            signs: creds.is_some(),
            auth: Auth::new(creds.unwrap_or_default(), algorithm),
            tids,
            txn: None,
            fingerprint: false,
        }
    }

    /// Adds FINGERPRINT to every request.
    pub fn with_fingerprint(mut self) -> Client {
        self.fingerprint = true;
        self
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn auth_mut(&mut self) -> &mut Auth {
        &mut self.auth
    }

    /// A fresh transaction id from this client's generator (for indications).
    pub fn next_tid(&mut self) -> TransactionId {
        self.tids.next_tid()
    }

    /// Begins `request` (replacing any transaction in progress).
    pub fn start(&mut self, request: Request) {
        self.txn = Some(Transaction {
            tid: self.tids.next_tid(),
            request,
            challenges: 0,
        });
    }

    /// The request in progress and its transaction id.
    pub fn pending(&self) -> Option<(Request, TransactionId)> {
        self.txn.as_ref().map(|t| (t.request, t.tid))
    }

    /// Gives up the transaction in progress (the caller's retransmissions ran out).
    pub fn cancel(&mut self) -> Option<Request> {
        self.txn.take().map(|t| t.request)
    }

    /// Writes the request in progress into `out`; 0 when there is none.
    pub fn transmit(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let Some(t) = &self.txn else { return Ok(0) };
        let auth = self.signs.then_some(&self.auth);
        encode(out, &t.tid, &t.request, auth, self.fingerprint)
    }

    /// Reads a received message: None when it is not the answer to the transaction in progress.
    pub fn handle(&mut self, bytes: &[u8]) -> Option<Event> {
        let t = self.txn.as_mut()?;
        let response = response(bytes).filter(|r| r.tid == t.tid)?;
        if let Err(refusal) = &response.outcome {
            let (Some(realm), Some(nonce)) = (&refusal.realm, &refusal.nonce) else {
                return self.finish(response, None);
            };
            let fresh = self.signs
                && refusal.is_challenge()
                && t.challenges < MAX_CHALLENGES
                && self
                    .auth
                    .challenge(realm, nonce, refusal.algorithms.as_deref());
            if fresh {
                t.challenges += 1;
                t.tid = self.tids.next_tid();
                return Some(Event::Challenged);
            }
            return self.finish(response, None);
        }
        let verified = (self.signs && self.auth.is_signing())
            .then(|| Message::parse(bytes).is_ok_and(|m| self.auth.verifies(&m)));
        self.finish(response, verified)
    }

    fn finish(&mut self, response: Response, verified: Option<bool>) -> Option<Event> {
        self.txn = None;
        Some(Event::Done { response, verified })
    }
}
