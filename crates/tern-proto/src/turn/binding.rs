//! Binding requests (RFC 8489 §6.3.1): XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS for RFC 3489
//! clients (RFC 3489 §11.2.1; both unless `no-stun-backward-compatibility`); 420 with UNKNOWN-ATTRIBUTES for unknown comprehension-required attributes. Answers
//! to unauthenticated UDP sources are rate-limited per source; `secure-stun` requires the
//! long-term credentials (RFC 8489 §9.2) first.

use std::sync::Arc;
use std::time::Instant;

use super::auth_flow::{authenticate, Asker, Reject};
use super::drops::DropReason;
use super::io::Client;
use super::response::{unknown_attributes, Responder};
use super::shard::Shard;
use crate::stun::classic::{self, ClassicBinding};
use crate::stun::{attr, ErrorCode, Message};

impl Shard {
    pub(super) fn binding(
        &mut self,
        now: Instant,
        unix: u64,
        msg: &Message<'_>,
        client: &Client,
        mut r: Responder<'_>,
    ) -> Option<usize> {
        self.counters.binding_requests += 1;
        if self.settings.secure_stun && !self.settings.credentials.is_open() {
            let settings = Arc::clone(&self.settings);
            let shared = Arc::clone(&self.shared);
            let asker = Asker {
                client: client.remote,
                shard: self.index,
                now,
                unix,
            };
            let (ns, ip) = (self.nanos(now), client.remote.ip());
            let budget = &mut || self.lookups.allow(ns, ip);
            match authenticate(&settings, shared.nonce(), msg, asker, None, budget) {
                Ok(auth) => r.sign = auth.sign,
                Err(Reject::Pending) => {
                    self.parked.park(client, msg.as_bytes(), now);
                    return None;
                }
                Err(why) => {
                    self.counters.binding_errors += 1;
                    return self.rejected(now, unix, client, why, r);
                }
            }
        } else if !self.may_answer_unauthenticated(now, client) {
            return None;
        }
        let (unknown, n) = unknown_attributes(msg);
        if n > 0 {
            self.counters.binding_errors += 1;
            self.drops.count(DropReason::UnknownAttribute);
            let types = unknown.get(..n).unwrap_or_default();
            return r.error_with(ErrorCode::UNKNOWN_ATTRIBUTE, &mut |b| {
                b.add_unknown_attributes(types)
            });
        }
        self.counters.binding_responses += 1;
        if self.settings.log_binding {
            self.binding_event(client.transport, client.remote);
        }
        let (remote, classic) = (client.remote, self.settings.stun_backward_compatibility);
        r.success(&mut |b| {
            b.add_xor_address(attr::XOR_MAPPED_ADDRESS, remote)?;
            if classic {
                b.add_address(attr::MAPPED_ADDRESS, remote)?;
            }
            Ok(())
        })
    }

    /// A Binding request from an RFC 3489 client (no magic cookie), with
    /// `stun-backward-compatibility`: MAPPED-ADDRESS only, the 16-byte transaction id echoed
    /// (RFC 3489 §11.2.1). Such a client cannot authenticate, so `secure-stun` leaves it
    /// unanswered; the answer counts against the same per-source budget as any other.
    pub(super) fn classic_binding(
        &mut self,
        now: Instant,
        client: &Client,
        req: &ClassicBinding<'_>,
        scratch: &mut [u8],
    ) -> Option<usize> {
        self.counters.binding_requests += 1;
        if self.settings.secure_stun && !self.settings.credentials.is_open() {
            self.drops.count(DropReason::Disabled);
            return None;
        }
        if !self.may_answer_unauthenticated(now, client) {
            return None;
        }
        let n =
            classic::write_binding_response(scratch, req.transaction_id(), client.remote).ok()?;
        self.counters.binding_responses += 1;
        if self.settings.log_binding {
            self.binding_event(client.transport, client.remote);
        }
        Some(n)
    }
}
