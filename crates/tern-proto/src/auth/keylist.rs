//! A fixed-capacity, inline list of candidate long-term keys (RFC 8489 §9.2): one lookup may
//! yield a static user's key plus one key per REST secret, without touching the heap.

use super::key::Key;

/// The most keys one lookup can yield: one static key plus [`MAX_REST_SECRETS`].
pub const MAX_KEYS: usize = 8;

/// The most `static-auth-secret`s that are tried; later ones are ignored (and reported by
/// [`super::Credentials::ignored_secrets`]).
pub const MAX_REST_SECRETS: usize = MAX_KEYS - 1;

/// Up to [`MAX_KEYS`] keys (MD5 [`Key`]s unless said otherwise), stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyList<K = Key> {
    keys: [K; MAX_KEYS],
    len: usize,
}

impl<K: Copy + Default> KeyList<K> {
    pub fn new() -> KeyList<K> {
        KeyList {
            keys: [K::default(); MAX_KEYS],
            len: 0,
        }
    }

    /// Adds a key; returns false (and keeps the list unchanged) when full.
    pub fn push(&mut self, key: K) -> bool {
        match self.keys.get_mut(self.len) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.keys.iter().take(self.len)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<K: Copy + Default> Default for KeyList<K> {
    fn default() -> Self {
        KeyList::new()
    }
}

/// Never prints key material.
impl<K> std::fmt::Debug for KeyList<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyList({} keys)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_until_full() {
        let mut list: KeyList = KeyList::new();
        assert!(list.is_empty());
        for i in 0..MAX_KEYS {
            assert!(list.push([i as u8; 16]));
        }
        assert!(!list.push([0xff; 16]));
        assert_eq!(list.len(), MAX_KEYS);
        let firsts: Vec<u8> = list.iter().map(|k| k[0]).collect();
        assert_eq!(firsts, (0..MAX_KEYS as u8).collect::<Vec<_>>());
    }

    #[test]
    fn debug_hides_keys() {
        let mut list: KeyList = KeyList::new();
        list.push([0xab; 16]);
        assert_eq!(format!("{list:?}"), "KeyList(1 keys)");
    }
}
