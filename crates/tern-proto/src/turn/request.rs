//! TURN requests other than Allocate (RFC 8656 §7.3 Refresh, §9 CreatePermission, §11
//! ChannelBind), and the dispatch that authenticates every request first (RFC 8489 §9.2.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocate::try_alternate;
use super::allocation::{family_of, ChannelConflict};
use super::auth_flow::{authenticate, reject, Asker, Authed, Reject};
use super::drops::DropReason;
use super::io::{Binder, Client};
use super::report::{allocation_event, EventKind};
use super::response::{unknown_attributes, Responder};
use super::shard::Shard;
use crate::auth::Refusal;
use crate::stun::{attr, ErrorCode, Message, Method};

impl Shard {
    pub(super) fn request(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        msg: &Message<'_>,
        mut r: Responder<'_>,
        io: &mut dyn Binder,
    ) -> Option<usize> {
        self.sync_fleet();
        let existing = self.live_allocation(now, client);
        let authed = self.authenticate_request(now, unix, client, msg, existing);
        let auth = match authed {
            Ok(auth) => auth,
            Err(Reject::Pending) => {
                // Not answered now (counted as dropped); a full queue loses the request, which
                // the client retransmits.
                self.parked.park(client, msg.as_bytes(), now);
                return None;
            }
            Err(Reject::Challenge(ErrorCode::UNAUTHORIZED))
                if existing.is_none() && is_first_allocate(msg) =>
            {
                // As coturn: a new client is redirected before the challenge. After one, a
                // client carries this node's nonce to the alternate, which cannot verify it,
                // and Chromium gives up on that 401 (docs/fleet.md, "Redirects").
                if let Some(alternate) = self.redirect_target(now, client) {
                    if !self.may_answer_unauthenticated(now, client) {
                        return None;
                    }
                    self.counters.redirects += 1;
                    return try_alternate(r, &alternate);
                }
                let why = Reject::Challenge(ErrorCode::UNAUTHORIZED);
                return self.rejected(now, unix, client, why, r);
            }
            Err(why) => return self.rejected(now, unix, client, why, r),
        };
        r.sign = auth.sign;
        let (unknown, n) = unknown_attributes(msg);
        if n > 0 {
            self.drops.count(DropReason::UnknownAttribute);
            let types = unknown.get(..n).unwrap_or_default();
            return r.error_with(ErrorCode::UNKNOWN_ATTRIBUTE, &mut |b| {
                b.add_unknown_attributes(types)
            });
        }
        match msg.method() {
            Method::ALLOCATE => self.allocate(now, client, msg, existing, &auth, r, io),
            Method::CONNECTION_BIND => self.connection_bind(client, msg, &auth, r),
            method => match existing {
                Some(slot) => {
                    let answer = self.with_allocation(now, client, slot, msg, r);
                    self.fast_sync(now, slot);
                    answer
                }
                None if is_allocation_method(method) => r.error(ErrorCode::ALLOCATION_MISMATCH),
                None => r.error(ErrorCode::BAD_REQUEST),
            },
        }
    }

    /// The allocation of `client`'s 5-tuple, unless it expired (the wheel collects at
    /// one-second ticks; an expired one is gone now).
    fn live_allocation(&mut self, now: Instant, client: &Client) -> Option<u32> {
        let slot = self.table.find_client(client.via, client.remote)?;
        if self.table.get(slot).is_some_and(|a| a.expires <= now) {
            self.deallocate(slot);
            return None;
        }
        Some(slot)
    }

    /// Authenticates a request (see `authenticate`), with the user database questions counted
    /// against the client's IP. A ConnectionBind may carry the nonce issued on the control
    /// connection (RFC 6062 §5.4 uses the allocation's credentials): that nonce is accepted too.
    fn authenticate_request<'m>(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        msg: &Message<'m>,
        existing: Option<u32>,
    ) -> Result<Authed<'m>, Reject> {
        let settings = Arc::clone(&self.settings);
        let shared = Arc::clone(&self.shared);
        let ns = self.nanos(now);
        let ip = client.remote.ip();
        let alloc = existing.and_then(|slot| self.table.get(slot));
        let asker = Asker {
            client: client.remote,
            shard: self.index,
            now,
            unix,
        };
        let budget = &mut || self.lookups.allow(ns, ip);
        let authed = authenticate(&settings, shared.nonce(), msg, asker, alloc, budget);
        if !matches!(authed, Err(Reject::Challenge(_))) {
            return authed;
        }
        let Some(owner) = self.bind_owner(msg) else {
            return authed;
        };
        let asker = Asker {
            client: owner,
            ..asker
        };
        let budget = &mut || self.lookups.allow(ns, ip);
        authenticate(&settings, shared.nonce(), msg, asker, None, budget)
    }

    /// A request on an existing allocation.
    fn with_allocation(
        &mut self,
        now: Instant,
        client: &Client,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        match msg.method() {
            Method::REFRESH => self.refresh(now, slot, msg, r),
            Method::CREATE_PERMISSION => self.create_permission(now, slot, msg, r),
            Method::CHANNEL_BIND => self.channel_bind(now, slot, msg, r),
            Method::CONNECT => self.connect(client, slot, msg, r),
            _ => r.error(ErrorCode::BAD_REQUEST),
        }
    }

    /// For a ConnectionBind naming a connection of this shard: the control connection's address.
    fn bind_owner(&mut self, msg: &Message<'_>) -> Option<std::net::SocketAddr> {
        if msg.method() != Method::CONNECTION_BIND {
            return None;
        }
        let id = msg.connection_id()?.ok()?;
        self.connection_owner(id)
    }

    /// Answers a request that did not authenticate, within the per-source rate limit.
    pub(super) fn rejected(
        &mut self,
        now: Instant,
        unix: u64,
        client: &Client,
        why: Reject,
        r: Responder<'_>,
    ) -> Option<usize> {
        if let Reject::NotAsked(refusal) = why {
            // Counted even when the answer is withheld: the metric is what the database was
            // spared.
            self.drops.count(match refusal {
                Refusal::TooLong => DropReason::UserdbNameTooLong,
                Refusal::OverBudget => DropReason::UserdbBudget,
                Refusal::Overloaded => DropReason::UserdbOverloaded,
            });
        }
        if !self.may_answer_unauthenticated(now, client) {
            return None;
        }
        match why {
            // A database that is down is counted apart too, by the resolver.
            Reject::Challenge(ErrorCode::UNAUTHORIZED)
            | Reject::DbUnavailable
            | Reject::NotAsked(_) => self.counters.unauthenticated_401 += 1,
            Reject::BadIntegrity => {
                self.counters.unauthenticated_401 += 1;
                self.drops.count(DropReason::BadIntegrity);
            }
            _ => {}
        }
        let settings = Arc::clone(&self.settings);
        let shared = Arc::clone(&self.shared);
        reject(r, why, &settings, shared.nonce(), client.remote, unix)
    }

    /// Refresh (RFC 8656 §7.3). With REQUESTED-ADDRESS-FAMILY only the relay of that family is
    /// refreshed, or deleted with lifetime 0, as coturn does for dual allocations; the allocation
    /// ends with its last relay.
    fn refresh(
        &mut self,
        now: Instant,
        slot: u32,
        msg: &Message<'_>,
        r: Responder<'_>,
    ) -> Option<usize> {
        let requested = match msg.u32_attr(attr::LIFETIME) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => return r.error(e.into()),
        };
        let family = match msg.requested_address_family() {
            None => None,
            Some(Ok(family)) => Some(family),
            Some(Err(e)) => return r.error(e.into()),
        };
        // A relay past its own lifetime is gone even before the wheel's tick collects it.
        self.end_expired_relays(slot, now);
        let alloc = self.table.get(slot)?;
        let relay = match family.map(|f| alloc.relay_for(f)) {
            None => None,
            Some(Some(relay)) => Some(relay.id),
            Some(None) => return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH),
        };
        if requested == Some(0) {
            match relay {
                Some(id) => self.end_relay(slot, id),
                None => self.deallocate(slot),
            }
            return r.success(&mut |b| b.add_u32(attr::LIFETIME, 0));
        }
        let lifetime = self.settings.granted_lifetime(requested);
        let alloc = self.table.get_mut(slot)?;
        alloc.refresh(family, now + Duration::from_secs(u64::from(lifetime)));
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
        let fleet = self.fleet_peers.clone();
        let alloc = self.table.get(slot)?;
        let mut count = 0;
        for peer in msg.xor_addresses(attr::XOR_PEER_ADDRESS) {
            let peer = match peer {
                Ok(peer) => fleet.internal(&settings, peer),
                Err(e) => return r.error(e.into()),
            };
            count += 1;
            if alloc.relay_for(family_of(peer.ip())).is_none() {
                return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
            }
            if !fleet.admits_ip(&settings, peer.ip()) {
                return r.error(ErrorCode::FORBIDDEN);
            }
        }
        if count == 0 {
            return r.error(ErrorCode::BAD_REQUEST);
        }
        let ips = || {
            msg.xor_addresses(attr::XOR_PEER_ADDRESS)
                .flatten()
                .map(|p| fleet.internal(&settings, p).ip())
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
            Some(Ok(n)) if settings.channels.contains(n) => n,
            _ => return r.error(ErrorCode::BAD_REQUEST),
        };
        let peer = match msg.xor_address(attr::XOR_PEER_ADDRESS) {
            Some(Ok(peer)) => self.fleet_peers.internal(&settings, peer),
            _ => return r.error(ErrorCode::BAD_REQUEST),
        };
        let alloc = self.table.get(slot)?;
        if alloc.tcp {
            // RFC 6062 §5: data of a TCP allocation flows on connections, never on channels.
            return r.error(ErrorCode::BAD_REQUEST);
        }
        if alloc.relay_for(family_of(peer.ip())).is_none() {
            return r.error(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        if !self.fleet_peers.admits(&settings, peer) {
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

/// An Allocate without credentials: the first request of a new client.
fn is_first_allocate(msg: &Message<'_>) -> bool {
    msg.method() == Method::ALLOCATE && !msg.has_integrity() && !msg.has_integrity_sha256()
}

/// The methods that need an allocation: without one, 437 Allocation Mismatch.
fn is_allocation_method(method: Method) -> bool {
    matches!(
        method,
        Method::REFRESH | Method::CREATE_PERMISSION | Method::CHANNEL_BIND | Method::CONNECT
    )
}
