//! The shard's allocations: a slab indexed by slot, and the maps the data path uses to find one,
//! by client 5-tuple (RFC 8656 §2.2: listener or connection + client address) and by relay socket.

use std::net::SocketAddr;

use super::allocation::{Allocation, Relay};
use super::hash::FxHashMap;
use super::io::{RelayId, Via};

/// A slot plus the generation it had when a timer entry was made: stale keys do not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handle {
    pub slot: u32,
    pub generation: u32,
}

struct Slot {
    generation: u32,
    alloc: Option<Allocation>,
}

#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_client: FxHashMap<(Via, SocketAddr), u32>,
    by_relay: FxHashMap<RelayId, u32>,
    /// A stream connection carries one 5-tuple, so at most one allocation.
    by_stream: FxHashMap<u32, u32>,
    live: usize,
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn insert(&mut self, alloc: Allocation) -> Handle {
        let key = (alloc.client.via, alloc.client.remote);
        let relay_ids: Vec<RelayId> = alloc.relays().map(|r| r.id).collect();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    alloc: None,
                });
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let mut generation = 0;
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.generation = s.generation.wrapping_add(1);
            s.alloc = Some(alloc);
            generation = s.generation;
        }
        self.by_client.insert(key, slot);
        if let Via::Stream(conn) = key.0 {
            self.by_stream.insert(conn, slot);
        }
        for id in relay_ids {
            self.by_relay.insert(id, slot);
        }
        self.live += 1;
        Handle { slot, generation }
    }

    pub(crate) fn remove(&mut self, slot: u32) -> Option<Allocation> {
        let alloc = self.slots.get_mut(slot as usize)?.alloc.take()?;
        self.by_client
            .remove(&(alloc.client.via, alloc.client.remote));
        for relay in alloc.relays() {
            self.by_relay.remove(&relay.id);
        }
        if let Via::Stream(conn) = alloc.client.via {
            self.by_stream.remove(&conn);
        }
        self.free.push(slot);
        self.live -= 1;
        Some(alloc)
    }

    /// Takes relay `id` out of the allocation in `slot`, which keeps its other relay.
    pub(crate) fn remove_relay(&mut self, slot: u32, id: RelayId) -> Option<Relay> {
        let relay = self.get_mut(slot)?.take_relay(id)?;
        self.by_relay.remove(&relay.id);
        Some(relay)
    }

    #[inline]
    pub(crate) fn find_client(&self, via: Via, remote: SocketAddr) -> Option<u32> {
        self.by_client.get(&(via, remote)).copied()
    }

    #[inline]
    pub(crate) fn find_relay(&self, id: RelayId) -> Option<u32> {
        self.by_relay.get(&id).copied()
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> Option<&Allocation> {
        self.slots.get(slot as usize)?.alloc.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Allocation> {
        self.slots.get_mut(slot as usize)?.alloc.as_mut()
    }

    /// The allocation if `handle` still names it.
    pub(crate) fn resolve(&mut self, handle: Handle) -> Option<&mut Allocation> {
        let s = self.slots.get_mut(handle.slot as usize)?;
        if s.generation != handle.generation {
            return None;
        }
        s.alloc.as_mut()
    }

    pub(crate) fn handle(&self, slot: u32) -> Option<Handle> {
        let s = self.slots.get(slot as usize)?;
        s.alloc.as_ref().map(|_| Handle {
            slot,
            generation: s.generation,
        })
    }

    /// The slots holding an allocation now.
    pub(crate) fn slots(&self) -> Vec<u32> {
        (0..self.slots.len())
            .filter(|&i| self.slots.get(i).is_some_and(|s| s.alloc.is_some()))
            .filter_map(|i| u32::try_from(i).ok())
            .collect()
    }

    /// Every live allocation (control plane: visits the whole slab).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Allocation> {
        self.slots.iter_mut().filter_map(|s| s.alloc.as_mut())
    }

    /// The allocation made through stream connection `conn`.
    pub(crate) fn find_stream(&self, conn: u32) -> Option<u32> {
        self.by_stream.get(&conn).copied()
    }
}
