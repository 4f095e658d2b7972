//! Binding requests (RFC 8489 §6.3.1): XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS for RFC 3489
//! clients; 420 with UNKNOWN-ATTRIBUTES for unknown comprehension-required attributes.

use super::io::Client;
use super::response::{unknown_attributes, Responder};
use super::shard::Shard;
use crate::stun::{attr, ErrorCode, Message};

impl Shard {
    pub(super) fn binding(
        &mut self,
        msg: &Message<'_>,
        client: &Client,
        r: Responder<'_>,
    ) -> Option<usize> {
        self.counters.binding_requests += 1;
        let (unknown, n) = unknown_attributes(msg);
        if n > 0 {
            self.counters.binding_errors += 1;
            let types = unknown.get(..n).unwrap_or_default();
            return r.error_with(ErrorCode::UNKNOWN_ATTRIBUTE, &mut |b| {
                b.add_unknown_attributes(types)
            });
        }
        self.counters.binding_responses += 1;
        if self.settings.log_binding {
            self.binding_event(client.transport, client.remote);
        }
        let remote = client.remote;
        r.success(&mut |b| {
            b.add_xor_address(attr::XOR_MAPPED_ADDRESS, remote)?;
            b.add_address(attr::MAPPED_ADDRESS, remote)
        })
    }
}
