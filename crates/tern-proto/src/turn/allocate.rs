//! Allocate (RFC 8656 §7.2): transport and family checks, quotas (486 / 508), EVEN-PORT /
//! RESERVATION-TOKEN, ADDITIONAL-ADDRESS-FAMILY (dual allocation), relay socket binding through the engine, and the
//! identical answer to a retransmission.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::{Allocation, Budget, Granted, Owner, Relay};
use super::auth_flow::Authed;
use super::fleet::FleetCheck;
use super::io::{BindError, BindRequest, Binder, Bound, Client, Command, PortWish, Transport};
use super::redirect;
use super::report::{allocation_event, EventKind};
use super::reservation::{Token, TOKEN_LIFETIME};
use super::response::Responder;
use super::settings::Settings;
use super::shard::{Shard, TimerKey};
use crate::limits::TokenBucket;
use crate::options::{Alternate, RedirectMode};
use crate::stun::{attr, AttrError, EncodeError, ErrorCode, Family, Message, MessageBuilder};

/// REQUESTED-TRANSPORT protocol numbers: UDP, and TCP (RFC 6062 §6.1).
const UDP: u8 = 17;
const TCP: u8 = 6;

/// The checked options of one Allocate request.
struct Wanted {
    family: Option<Family>,
    additional: bool,
    even: Option<bool>,
    token: Option<[u8; 8]>,
    lifetime: Option<u32>,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn allocate(
        &mut self,
        now: Instant,
        client: &Client,
        msg: &Message<'_>,
        existing: Option<u32>,
        auth: &Authed<'_>,
        r: Responder<'_>,
        io: &mut dyn Binder,
    ) -> Option<usize> {
        if let Some(slot) = existing {
            let alloc = self.table.get(slot)?;
            if alloc.granted.tid == *msg.transaction_id() {
                return success(r, alloc);
            }
            return r.error(ErrorCode::ALLOCATION_MISMATCH);
        }
        let settings = Arc::clone(&self.settings);
        if let Some(alternate) = self.redirect_target(now, client) {
            self.counters.redirects += 1;
            return try_alternate(r, &alternate);
        }
        // Drain mode (coturn 4.17) with nowhere to send the client.
        if self.shared.is_draining() {
            return r.error(ErrorCode::FORBIDDEN);
        }
        let (tcp, want) = match requested(msg, client, &settings) {
            Ok(asked) => asked,
            Err(code) => return r.error(code),
        };
        let quota_user = settings.credentials.quota_user(&auth.username);
        let tid = *msg.transaction_id();
        let lease = match self.fleet_admit(now, client, tid, msg.as_bytes(), quota_user) {
            FleetCheck::Go(lease) => lease,
            FleetCheck::Parked => return None,
            FleetCheck::Refuse(code) => return r.error(code),
        };
        let quota = match self.shared.quotas().try_acquire(quota_user) {
            Ok(ticket) => ticket,
            Err(refused) => {
                self.fleet_release(lease);
                self.drops.quota_refused += 1;
                return r.error(refused.error_code());
            }
        };
        let local = client.local.ip();
        let dont_fragment = msg.dont_fragment();
        let first = match self.bind_first(now, &want, tcp, local, dont_fragment, io) {
            Ok(bound) => bound,
            Err(code) => {
                self.shared.quotas().release(quota);
                self.fleet_release(lease);
                return r.error(code);
            }
        };
        let lifetime = settings.granted_lifetime(want.lifetime);
        let expires = now + Duration::from_secs(u64::from(lifetime));
        let mut relays = [Some(self.relay(first, expires)), None];
        let mut address_error = None;
        if want.additional {
            match self.additional_relay(local, dont_fragment, expires, io) {
                Ok(relay) => relays[1] = Some(relay),
                Err(code) => address_error = Some((Family::V6, code)),
            }
        }
        let token = match want.even {
            Some(true) => self.reserve_next(now, first.addr),
            _ => None,
        };
        let granted = Granted {
            tid: *msg.transaction_id(),
            lifetime,
            token,
            address_error,
        };
        let ns = self.nanos(now);
        let budget = Budget {
            quota: Some(quota),
            lease,
            to_peer: TokenBucket::new(settings.max_bps, ns),
            to_client: TokenBucket::new(settings.max_bps, ns),
        };
        let owner = Owner {
            username: &auth.username,
            quota_user,
            key: auth.key,
        };
        let mut alloc = Allocation::new(*client, relays, owner, expires, granted, budget);
        alloc.tcp = tcp;
        alloc.dont_fragment = dont_fragment;
        self.install(alloc, client.transport, lifetime, r)
    }

    /// The allocation's first relay, bound where `relay_target` says. A claimed
    /// RESERVATION-TOKEN is used up: when its port cannot be bound, the engine may have it back
    /// now (found by the shard fuzz target).
    fn bind_first(
        &mut self,
        now: Instant,
        want: &Wanted,
        tcp: bool,
        local: IpAddr,
        dont_fragment: bool,
        io: &mut dyn Binder,
    ) -> Result<Bound, ErrorCode> {
        let (ip, port) = self.relay_target(now, want, local)?;
        let req = BindRequest {
            ip,
            port,
            dont_fragment,
        };
        let bound = if tcp {
            io.bind_tcp_relay(&req)
        } else {
            io.bind_relay(&req)
        };
        bound.map_err(|e| {
            if let PortWish::Exact(port) = port {
                self.command(Command::ReleasePort(SocketAddr::new(ip, port)));
            }
            bind_error_code(e, want.family.is_some())
        })
    }

    /// Puts a new allocation in the table, schedules its timers, answers and reports it.
    fn install(
        &mut self,
        alloc: Allocation,
        transport: Transport,
        lifetime: u32,
        r: Responder<'_>,
    ) -> Option<usize> {
        let handle = self.table.insert(alloc);
        self.counters.allocations = self.table.len() as u64;
        self.allocation_added(transport);
        self.schedule(handle.slot);
        let alloc = self.table.get(handle.slot)?;
        let written = success(r, alloc);
        let event = allocation_event(EventKind::AllocationCreated, alloc, lifetime);
        self.report.push(event);
        written
    }

    /// Where the first relay goes: the port a RESERVATION-TOKEN holds, else a relay IP of the
    /// requested family (or the default one) with the port wish of EVEN-PORT.
    fn relay_target(
        &self,
        now: Instant,
        want: &Wanted,
        local: IpAddr,
    ) -> Result<(IpAddr, PortWish), ErrorCode> {
        if let Some(token) = want.token {
            return match self.shared.take_token(&token, now) {
                Some(addr) => Ok((addr.ip(), PortWish::Exact(addr.port()))),
                None => Err(ErrorCode::INSUFFICIENT_CAPACITY),
            };
        }
        let family = match (want.family, want.additional) {
            (Some(family), _) => family,
            (None, true) => Family::V4,
            (None, false) => self.settings.default_family_for(local),
        };
        let port = match want.even {
            Some(reserve_next) => PortWish::Even { reserve_next },
            None => PortWish::Any,
        };
        self.settings
            .relay_ip(local, family)
            .map(|ip| (ip, port))
            .ok_or(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED)
    }

    /// The IPv6 relay of ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §7.2); its failure is reported in
    /// the success answer, not as an error.
    fn additional_relay(
        &mut self,
        local: IpAddr,
        dont_fragment: bool,
        expires: Instant,
        io: &mut dyn Binder,
    ) -> Result<Relay, ErrorCode> {
        let ip = self
            .settings
            .relay_ip(local, Family::V6)
            .ok_or(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED)?;
        let req = BindRequest {
            ip,
            port: PortWish::Any,
            dont_fragment,
        };
        match io.bind_relay(&req) {
            Ok(bound) => Ok(self.relay(bound, expires)),
            Err(e) => Err(bind_error_code(e, true)),
        }
    }

    /// EVEN-PORT with the R bit: the next port is kept for a RESERVATION-TOKEN until it expires.
    fn reserve_next(&mut self, now: Instant, first: SocketAddr) -> Option<Token> {
        let next = first.port().checked_add(1)?;
        let reserved = SocketAddr::new(first.ip(), next);
        let until = now + TOKEN_LIFETIME;
        let token = self.shared.issue_token(self.index, reserved, until);
        self.wheel.insert(until, TimerKey::Token(token));
        Some(token)
    }

    /// Where to send a new allocation from `client`, if `alternate-server-mode` redirects now
    /// and a list has a server for it (cloned: redirects are control plane and rare).
    pub(super) fn redirect_target(&mut self, now: Instant, client: &Client) -> Option<Alternate> {
        let settings = Arc::clone(&self.settings);
        let draining = self.shared.is_draining();
        if !settings.redirects.wanted(draining, || self.is_full(now)) {
            return None;
        }
        let fleet = match settings.redirects.mode {
            // `always` is coturn's redirector front: its list is the pool.
            RedirectMode::Always => None,
            RedirectMode::Draining | RedirectMode::Full => self.shared.fleet(),
        };
        fleet
            .and_then(|f| redirect::from_fleet(&f.nodes(), client.transport, client.local))
            .or_else(|| {
                settings
                    .redirects
                    .pick(client.transport, client.local)
                    .cloned()
            })
    }

    /// `alternate-server-mode=full`: no room for one more allocation (`total-quota` or the
    /// file-descriptor ceiling), or `bps-capacity` spent at `now`.
    fn is_full(&mut self, now: Instant) -> bool {
        let ns = self.nanos(now);
        self.shared.quotas().is_full() || self.shared.capacity().is_spent(ns)
    }

    fn relay(&self, bound: Bound, expires: Instant) -> Relay {
        Relay {
            id: bound.id,
            addr: bound.addr,
            advertised: self.settings.advertised(bound.addr),
            expires,
        }
    }
}

/// 300 Try Alternate (RFC 8489 §10) with ALTERNATE-SERVER, and ALTERNATE-DOMAIN (§14.16) when
/// the server was given with a name: signed when the request authenticated.
pub(super) fn try_alternate(r: Responder<'_>, alternate: &Alternate) -> Option<usize> {
    r.error_with(ErrorCode::TRY_ALTERNATE, &mut |b| {
        b.add_address(attr::ALTERNATE_SERVER, alternate.addr)?;
        match &alternate.domain {
            Some(domain) => b.add_str(attr::ALTERNATE_DOMAIN, domain),
            None => Ok(()),
        }
    })
}

/// Whether the client asks for a TCP relay (RFC 6062 §5.1: only over TCP or TLS, and without
/// the UDP-only attributes), and what else it asks for.
fn requested(
    msg: &Message<'_>,
    client: &Client,
    settings: &Settings,
) -> Result<(bool, Wanted), ErrorCode> {
    let tcp = match msg.requested_transport() {
        Some(Ok(UDP)) if settings.udp_relay => false,
        Some(Ok(TCP)) if settings.tcp_relay && client.transport != Transport::Udp => true,
        Some(Ok(TCP)) if settings.tcp_relay => return Err(ErrorCode::BAD_REQUEST),
        Some(Ok(_)) => return Err(ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL),
        None | Some(Err(_)) => return Err(ErrorCode::BAD_REQUEST),
    };
    let want = wanted(msg)?;
    let udp_only = want.even.is_some() || want.token.is_some() || want.additional;
    if tcp && (udp_only || msg.dont_fragment()) {
        return Err(ErrorCode::BAD_REQUEST);
    }
    Ok((tcp, want))
}

/// Reads and cross-checks the Allocate options (RFC 8656 §7.2 steps 3-6).
fn wanted(msg: &Message<'_>) -> Result<Wanted, ErrorCode> {
    let bad = ErrorCode::BAD_REQUEST;
    let family = match msg.requested_address_family() {
        None => None,
        Some(Ok(family)) => Some(family),
        Some(Err(AttrError::BadFamily)) => return Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
        Some(Err(_)) => return Err(bad),
    };
    // coturn up to 4.7 (`turnutils_uclient -Z`) asks for a dual allocation under the draft
    // number; with REQUESTED-ADDRESS-FAMILY it is a 400 there too.
    let draft = msg.draft_additional_address_family().map(Ok);
    let additional = match msg.additional_address_family().or(draft) {
        None => false,
        Some(Ok(Family::V6)) => true,
        Some(Ok(Family::V4)) | Some(Err(_)) => return Err(bad),
    };
    let even = msg.even_port().transpose().map_err(|_| bad)?;
    let token = msg.reservation_token().transpose().map_err(|_| bad)?;
    let lifetime = msg.u32_attr(attr::LIFETIME).transpose().map_err(|_| bad)?;
    let conflicting = (token.is_some() && (even.is_some() || family.is_some() || additional))
        || (family.is_some() && additional);
    if conflicting {
        return Err(bad);
    }
    Ok(Wanted {
        family,
        additional,
        even,
        token,
        lifetime,
    })
}

fn bind_error_code(e: BindError, family_requested: bool) -> ErrorCode {
    match e {
        BindError::Unavailable if family_requested => ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED,
        BindError::Exhausted | BindError::Resources | BindError::Unavailable => {
            ErrorCode::INSUFFICIENT_CAPACITY
        }
    }
}

/// The success response; the same bytes for a retransmission (RFC 8656 §7.2, last paragraph).
fn success(r: Responder<'_>, alloc: &Allocation) -> Option<usize> {
    let granted = alloc.granted;
    let client = alloc.client.remote;
    r.success(&mut |b| {
        for relay in alloc.relays() {
            b.add_xor_address(attr::XOR_RELAYED_ADDRESS, relay.advertised)?;
        }
        if let Some((family, code)) = granted.address_error {
            add_address_error(b, family, code)?;
        }
        b.add_u32(attr::LIFETIME, granted.lifetime)?;
        if let Some(token) = &granted.token {
            b.add_raw(attr::RESERVATION_TOKEN, token)?;
        }
        b.add_xor_address(attr::XOR_MAPPED_ADDRESS, client)
    })
}

/// ADDRESS-ERROR-CODE (RFC 8656 §18.11): family, reserved, class, number, reason.
fn add_address_error(
    b: &mut MessageBuilder<'_>,
    family: Family,
    code: ErrorCode,
) -> Result<(), EncodeError> {
    let mut value = [0u8; 64];
    let reason = code.reason().as_bytes();
    let reason = reason
        .get(..reason.len().min(value.len() - 4))
        .unwrap_or_default();
    value[0] = match family {
        Family::V4 => 0x01,
        Family::V6 => 0x02,
    };
    value[2] = (code.0 / 100) as u8;
    value[3] = (code.0 % 100) as u8;
    value[4..4 + reason.len()].copy_from_slice(reason);
    b.add_raw(attr::ADDRESS_ERROR_CODE, &value[..4 + reason.len()])
}
