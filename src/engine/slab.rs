//! A minimal slab: stable small integer ids for relay sockets and stream connections, reused
//! after removal so ids stay dense and fit in a poll token.

pub(crate) struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    limit: usize,
}

impl<T> Slab<T> {
    /// `limit`: the highest number of live entries (ids stay below it).
    pub(crate) fn new(limit: usize) -> Slab<T> {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            limit,
        }
    }

    /// The id of the new entry, or `None` when `limit` entries are live.
    pub(crate) fn insert(&mut self, value: T) -> Option<usize> {
        if let Some(id) = self.free.pop() {
            if let Some(slot) = self.entries.get_mut(id) {
                *slot = Some(value);
                return Some(id);
            }
        }
        if self.entries.len() >= self.limit {
            return None;
        }
        self.entries.push(Some(value));
        Some(self.entries.len() - 1)
    }

    pub(crate) fn remove(&mut self, id: usize) -> Option<T> {
        let value = self.entries.get_mut(id)?.take()?;
        self.free.push(id);
        Some(value)
    }

    pub(crate) fn get(&self, id: usize) -> Option<&T> {
        self.entries.get(id)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: usize) -> Option<&mut T> {
        self.entries.get_mut(id)?.as_mut()
    }

    /// Inserts `value` and registers the socket `socket` picks out of it with `registry`, under
    /// the token `token` makes of its id. None, keeping nothing, when either step fails.
    pub(crate) fn insert_registered<S: mio::event::Source + ?Sized>(
        &mut self,
        value: T,
        registry: &mio::Registry,
        socket: fn(&mut T) -> &mut S,
        token: fn(usize) -> mio::Token,
        interest: mio::Interest,
    ) -> Option<usize> {
        let id = self.insert(value)?;
        let registered = match self.get_mut(id) {
            Some(v) => registry.register(socket(v), token(id), interest).is_ok(),
            None => false,
        };
        if !registered {
            self.remove(id);
            return None;
        }
        Some(id)
    }

    /// Every live entry with its id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(id, e)| e.as_ref().map(|v| (id, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn ids_are_reused_and_bounded() {
        let mut s = Slab::new(2);
        assert_eq!(s.insert('a'), Some(0));
        assert_eq!(s.insert('b'), Some(1));
        assert_eq!(s.insert('c'), None);
        assert_eq!(s.remove(0), Some('a'));
        assert_eq!(s.remove(0), None);
        assert_eq!(s.insert('d'), Some(0));
        assert_eq!(s.get(0), Some(&'d'));
        assert_eq!(s.get(5), None);
    }
}
