//! TURN requests other than Allocate (RFC 8656 §7.3 Refresh, §9 CreatePermission, §11
//! ChannelBind), and the dispatch that authenticates every request first (RFC 8489 §9.2.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::{family_of, ChannelConflict};
use super::auth_flow::{authenticate, reject, Reject};
use super::io::{Client, RelayIo};
use super::report::{allocation_event, EventKind};
use super::response::{unknown_attributes, Responder};
use super::shard::Shard;
use crate::stun::{attr, channel, ErrorCode, Message, Method};

impl Shard {
    pub(super) fn request(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        msg: &Message<'_>,
        mut r: Responder<'_>,
        io: &mut dyn RelayIo,
    ) -> Option<usize> {
        let settings = Arc::clone(&self.settings);
        let shared = Arc::clone(&self.shared);
        let mut existing = self.table.find_client(client.via, client.remote);
        // Expired but not yet collected by the wheel (it runs at one-second ticks): gone.
        if let Some(slot) = existing {
            if self.table.get(slot).is_some_and(|a| a.expires <= now) {
                self.deallocate(slot, io);
                existing = None;
            }
        }
        let alloc = existing.and_then(|slot| self.table.get(slot));
        let auth = match authenticate(&settings, shared.nonce(), msg, client.remote, unix, alloc) {
            Ok(auth) => auth,
            Err(why) => {
                if why == Reject::Challenge(ErrorCode::UNAUTHORIZED) {
                    self.counters.unauthenticated_401 += 1;
                }
                return reject(r, why, &settings, shared.nonce(), client.remote, unix);
            }
        };
        r.sign = auth.sign;
        let (unknown, n) = unknown_attributes(msg);
        if n > 0 {
            let types = unknown.get(..n).unwrap_or_default();
            return r.error_with(ErrorCode::UNKNOWN_ATTRIBUTE, &mut |b| {
                b.add_unknown_attributes(types)
            });
        }
        let method = msg.method();
        if method == Method::ALLOCATE {
            return self.allocate(now, client, msg, existing, &auth, r, io);
        }
        let Some(slot) = existing else {
            let code = match method {
                Method::REFRESH | Method::CREATE_PERMISSION | Method::CHANNEL_BIND => {
                    ErrorCode::ALLOCATION_MISMATCH
                }
                _ => ErrorCode::BAD_REQUEST,
            };
            return r.error(code);
        };
        match method {
            Method::REFRESH => self.refresh(now, slot, msg, r, io),
            Method::CREATE_PERMISSION => self.create_permission(now, slot, msg, r),
            Method::CHANNEL_BIND => self.channel_bind(now, slot, msg, r),
            _ => r.error(ErrorCode::BAD_REQUEST),
        }
    }

    fn refresh(
        &mut self,
        now: Instant,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
        io: &mut dyn RelayIo,
    ) -> Option<usize> {
        let requested = match msg.u32_attr(attr::LIFETIME) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => return r.error(e.into()),
        };
        let alloc = self.table.get(slot)?;
        match msg.requested_address_family() {
            None => {}
            Some(Err(e)) => return r.error(e.into()),
            Some(Ok(family)) if alloc.relay_for(family).is_none() => {
                return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH)
            }
            Some(Ok(_)) => {}
        }
        if requested == Some(0) {
            self.deallocate(slot, io);
            return r.success(&mut |b| b.add_u32(attr::LIFETIME, 0));
        }
        let lifetime = self.settings.granted_lifetime(requested);
        let alloc = self.table.get_mut(slot)?;
        alloc.expires = now + Duration::from_secs(u64::from(lifetime));
        let event = allocation_event(EventKind::AllocationRefreshed, alloc, lifetime);
        self.report.push(event);
        self.schedule(slot);
        r.success(&mut |b| b.add_u32(attr::LIFETIME, lifetime))
    }

    fn create_permission(
        &mut self,
        now: Instant,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        let settings = Arc::clone(&self.settings);
        let alloc = self.table.get(slot)?;
        let mut count = 0;
        for peer in msg.xor_addresses(attr::XOR_PEER_ADDRESS) {
            let peer = match peer {
                Ok(peer) => settings.internal(peer),
                Err(e) => return r.error(e.into()),
            };
            count += 1;
            if alloc.relay_for(family_of(peer.ip())).is_none() {
                return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
            }
            if settings.policy.check_ip(peer.ip()).is_err() {
                return r.error(ErrorCode::FORBIDDEN);
            }
        }
        if count == 0 {
            return r.error(ErrorCode::BAD_REQUEST);
        }
        let ips = || {
            msg.xor_addresses(attr::XOR_PEER_ADDRESS)
                .flatten()
                .map(|p| settings.internal(p).ip())
        };
        if !alloc.can_permit(ips()) {
            return r.error(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        let until = now + Duration::from_secs(u64::from(settings.permission_lifetime));
        let alloc = self.table.get_mut(slot)?;
        for ip in ips() {
            alloc.permit(ip, until);
        }
        self.schedule(slot);
        r.success(&mut |_| Ok(()))
    }

    fn channel_bind(
        &mut self,
        now: Instant,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        let settings = Arc::clone(&self.settings);
        let number = match msg.channel_number() {
            Some(Ok(n)) if channel::is_valid_channel(n) => n,
            _ => return r.error(ErrorCode::BAD_REQUEST),
        };
        let peer = match msg.xor_address(attr::XOR_PEER_ADDRESS) {
            Some(Ok(peer)) => settings.internal(peer),
            _ => return r.error(ErrorCode::BAD_REQUEST),
        };
        let alloc = self.table.get(slot)?;
        if alloc.relay_for(family_of(peer.ip())).is_none() {
            return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        if settings.policy.check(peer).is_err() {
            return r.error(ErrorCode::FORBIDDEN);
        }
        match alloc.check_bind(number, peer, now) {
            Ok(()) => {}
            Err(ChannelConflict::Taken) => return r.error(ErrorCode::BAD_REQUEST),
            Err(ChannelConflict::Full) => return r.error(ErrorCode::INSUFFICIENT_CAPACITY),
        }
        if !alloc.can_permit(std::iter::once(peer.ip())) {
            return r.error(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        let channel_until = now + Duration::from_secs(u64::from(settings.channel_lifetime));
        let permission_until = now + Duration::from_secs(u64::from(settings.permission_lifetime));
        let alloc = self.table.get_mut(slot)?;
        alloc.bind_channel(number, peer, channel_until);
        alloc.permit(peer.ip(), permission_until);
        self.schedule(slot);
        r.success(&mut |_| Ok(()))
    }
}
