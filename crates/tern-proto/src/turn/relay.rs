//! The data path (RFC 8656 §10 Send/Data indications, §12 ChannelData): client to peer and peer
//! to client without copying the payload, without heap allocation and without locks. The only
//! limit checked per packet is the `max-bps` bucket (and the shard's share of `bps-capacity`).
//! ICMP errors about peers go back to the client as Data indications (§11.5).

use std::net::SocketAddr;
use std::time::Instant;

use super::allocation::family_of;
use super::drops::DropReason;
use super::indication;
use super::io::{Client, Icmp, Output, RelayId, Span, Transport, HEADROOM};
use super::shard::Shard;
use crate::stun::channel::{self, ChannelError};
use crate::stun::{attr, Message};

/// ICMP reports per allocation per second (RFC 8656 §11.5 lets the server drop them): a peer
/// that answers every datagram with an ICMP error (a closed port under a 50 packet/s stream)
/// does not turn the relay into a generator of indications, and a client doing path MTU
/// discovery or ICE checks still hears about each dead peer within a second.
pub(crate) const ICMP_PER_SECOND: u8 = 4;

/// Which of an allocation's buckets a packet spends.
#[derive(Clone, Copy)]
enum Direction {
    ToPeer,
    ToClient,
}

impl Shard {
    /// ChannelData from a client: `packet` is `buf[HEADROOM..HEADROOM + len]`.
    pub(super) fn channel_from_client(
        &mut self,
        now: Instant,
        client: &Client,
        packet: &[u8],
    ) -> Output {
        let (number, payload) = match channel::parse(packet) {
            Ok(parsed) => parsed,
            Err(ChannelError::TooShort) => return self.drop_for(DropReason::Truncated),
            Err(ChannelError::BadChannel) => return self.drop_for(DropReason::BadChannelNumber),
            Err(ChannelError::BadLength) => return self.drop_for(DropReason::BadChannelLength),
        };
        if !self.settings.channels.contains(number) {
            // Never bound under `channel-numbers=rfc8656`: discarded as RFC 8656 §12 says.
            return self.drop_for(DropReason::BadChannelNumber);
        }
        let Some(slot) = self.table.find_client(client.via, client.remote) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        let Some(alloc) = self.table.get_mut(slot) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        if alloc.expires <= now {
            return self.drop_for(DropReason::NoAllocation);
        }
        alloc.traffic.rcvp += 1;
        alloc.traffic.rcvb += packet.len() as u64;
        let Some(peer) = alloc.channel_peer(number, now) else {
            return self.drop_for(DropReason::NoChannel);
        };
        if !alloc.is_permitted(peer.ip(), now) {
            return self.drop_for(DropReason::NoPermission);
        }
        let relay = alloc.relay_for(family_of(peer.ip()));
        let Some(relay) = relay.filter(|r| r.expires > now).map(|r| r.id) else {
            return self.drop_for(DropReason::NoPermission);
        };
        let dont_fragment = alloc.dont_fragment;
        let n = payload.len();
        if !self.spend(now, slot, Direction::ToPeer, n) {
            return self.drop_for(DropReason::Bandwidth);
        }
        let start = HEADROOM + channel::HEADER_LEN;
        let span = Span::Packet(start..start + n);
        self.send_peer(relay, peer, (span, n), dont_fragment)
    }

    /// A Send indication (RFC 8656 §10.2): relays the DATA value in place.
    pub(super) fn send_indication(
        &mut self,
        now: Instant,
        client: &Client,
        msg: &Message<'_>,
    ) -> Output {
        let Some(slot) = self.table.find_client(client.via, client.remote) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        let Some(alloc) = self.table.get_mut(slot) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        alloc.traffic.rcvp += 1;
        alloc.traffic.rcvb += msg.as_bytes().len() as u64;
        let (Some(Ok(peer)), Some(range)) =
            (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.data_range())
        else {
            return self.drop_for(DropReason::UnexpectedMessage);
        };
        // An indication with an unknown comprehension-required attribute is discarded
        // (RFC 8489 §6.3.2).
        if msg.unknown_required().next().is_some() {
            return self.drop_for(DropReason::UnknownAttribute);
        }
        if alloc.expires <= now {
            return self.drop_for(DropReason::NoAllocation);
        }
        let peer = self.fleet_peers.internal(&self.settings, peer);
        let allowed =
            alloc.is_permitted(peer.ip(), now) && self.fleet_peers.admits(&self.settings, peer);
        let relay = alloc.relay_for(family_of(peer.ip()));
        let Some(relay) = relay.filter(|r| allowed && r.expires > now).map(|r| r.id) else {
            return self.drop_for(DropReason::NoPermission);
        };
        // DONT-FRAGMENT applies to this datagram (RFC 8656 §10.2).
        let dont_fragment = alloc.dont_fragment || msg.dont_fragment();
        let n = range.len();
        if !self.spend(now, slot, Direction::ToPeer, n) {
            return self.drop_for(DropReason::Bandwidth);
        }
        let span = Span::Packet(HEADROOM + range.start..HEADROOM + range.end);
        self.send_peer(relay, peer, (span, n), dont_fragment)
    }

    /// A datagram from a peer to relay `relay`: ChannelData when a channel is bound to the peer,
    /// else a Data indication, written into the headroom in front of the payload.
    pub(super) fn relay_from_peer(
        &mut self,
        now: Instant,
        relay: RelayId,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Output {
        self.counters.peer_rx_packets += 1;
        self.counters.peer_rx_bytes += len as u64;
        let Some(slot) = self.table.find_relay(relay) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        let Some(alloc) = self.table.get_mut(slot) else {
            return self.drop_for(DropReason::NoAllocation);
        };
        // The relay's own lifetime: one relay of a dual allocation may end before the other.
        if !alloc.relay_live(relay, now) {
            return self.drop_for(DropReason::NoAllocation);
        }
        if !alloc.is_permitted(from.ip(), now) {
            return self.drop_for(DropReason::NoPermission);
        }
        alloc.traffic.peer_rcvp += 1;
        alloc.traffic.peer_rcvb += len as u64;
        let (via, to) = (alloc.client.via, alloc.client.remote);
        let stream = alloc.client.transport != Transport::Udp;
        let number = alloc.channel_of(from, now);
        if !self.spend(now, slot, Direction::ToClient, len) {
            return self.drop_for(DropReason::Bandwidth);
        }
        let range = match number {
            Some(number) => channel_data(buf, len, number, stream),
            None => {
                let peer = self.fleet_peers.advertised(&self.settings, from);
                let fingerprint = self.settings.fingerprint;
                let tid = self.next_tid();
                indication::write(buf, len, peer, &tid, fingerprint)
            }
        };
        match range {
            Some(range) => {
                let n = range.len();
                if let Some(alloc) = self.table.get_mut(slot) {
                    alloc.traffic.sentp += 1;
                    alloc.traffic.sentb += n as u64;
                }
                self.send_client(via, to, Span::Packet(range), n)
            }
            None => self.drop_for(DropReason::UnexpectedMessage),
        }
    }

    /// An ICMP error about a datagram relay `relay` sent to `peer` (RFC 8656 §11.5): a Data
    /// indication with XOR-PEER-ADDRESS and ICMP, written into `scratch`, when the allocation
    /// has a permission for the peer's IP (the port does not matter) and this second's reports
    /// are not used up. Types other than §11.5's (ICMPv4 3 and 11, ICMPv6 1, 2 and 3) are
    /// dropped.
    pub(super) fn icmp_from_peer(
        &mut self,
        now: Instant,
        relay: RelayId,
        peer: SocketAddr,
        icmp: Icmp,
        scratch: &mut [u8],
    ) -> Output {
        let Some(data) = icmp_error_data(peer, icmp) else {
            return Output::Nothing;
        };
        let second = (self.nanos(now) / 1_000_000_000) as u32;
        let Some(slot) = self.table.find_relay(relay) else {
            return Output::Nothing;
        };
        let Some(alloc) = self.table.get_mut(slot) else {
            return Output::Nothing;
        };
        if !alloc.relay_live(relay, now) || !alloc.is_permitted(peer.ip(), now) {
            return Output::Nothing;
        }
        if alloc.icmp_second != second {
            alloc.icmp_second = second;
            alloc.icmp_sent = 0;
        }
        if alloc.icmp_sent >= ICMP_PER_SECOND {
            return Output::Nothing;
        }
        alloc.icmp_sent += 1;
        let (via, to) = (alloc.client.via, alloc.client.remote);
        let peer = self.fleet_peers.advertised(&self.settings, peer);
        let fingerprint = self.settings.fingerprint;
        let tid = self.next_tid();
        let value = (icmp.icmp_type, icmp.code, data);
        match indication::write_icmp(scratch, peer, &tid, value, fingerprint) {
            Some(n) => self.send_client(via, to, Span::Scratch(n), n),
            None => Output::Nothing,
        }
    }

    /// Takes `bytes` of payload from the allocation's bucket for `dir` and from the shard's share
    /// of the server capacity; false when either is empty.
    #[inline]
    fn spend(&mut self, now: Instant, slot: u32, dir: Direction, bytes: usize) -> bool {
        let ns = self.nanos(now);
        let Some(alloc) = self.table.get_mut(slot) else {
            return false;
        };
        let bucket = match dir {
            Direction::ToPeer => &mut alloc.budget.to_peer,
            Direction::ToClient => &mut alloc.budget.to_client,
        };
        let allowed =
            bucket.allow(ns, bytes) && self.capacity.allow(self.shared.capacity(), ns, bytes);
        if allowed {
            if let Direction::ToPeer = dir {
                alloc.traffic.peer_sentp += 1;
                alloc.traffic.peer_sentb += bytes as u64;
            }
        }
        allowed
    }
}

/// Writes the ChannelData header into the headroom; over streams pads the payload to 4 bytes
/// (RFC 8656 §12.5). Returns the frame's range of `buf`.
#[inline]
fn channel_data(
    buf: &mut [u8],
    len: usize,
    number: u16,
    stream: bool,
) -> Option<std::ops::Range<usize>> {
    let length = u16::try_from(len).ok()?;
    let start = HEADROOM - channel::HEADER_LEN;
    channel::write_header(buf.get_mut(start..HEADROOM)?, number, length);
    let mut end = HEADROOM.checked_add(len)?;
    if stream {
        let padded = HEADROOM + channel::padded_len(len);
        buf.get_mut(end..padded)?.fill(0);
        end = padded;
    }
    Some(start..end)
}

/// The ICMP attribute's error data (RFC 8656 §18.13): the MTU for ICMPv4 "fragmentation needed"
/// (3/4) and ICMPv6 "packet too big" (2), zero for the other types §11.5 relays; None for a type
/// it does not relay.
fn icmp_error_data(peer: SocketAddr, icmp: Icmp) -> Option<u32> {
    let mtu = match (peer.is_ipv6(), icmp.icmp_type) {
        (false, 3) => icmp.code == 4,
        (false, 11) | (true, 1 | 3) => false,
        (true, 2) => true,
        _ => return None,
    };
    Some(if mtu { icmp.info } else { 0 })
}
