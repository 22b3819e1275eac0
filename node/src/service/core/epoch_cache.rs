//! Caches of records read from `meta`, each entry stamped with the `meta` epoch
//! it was read at (see `RaftNode::meta_epoch`): an entry serves only while the
//! epoch is unchanged, so any change `meta` applies invalidates every entry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Values by key, each valid at one `meta` epoch; at most `capacity` entries.
pub struct EpochCache<V> {
    capacity: usize,
    entries: Mutex<HashMap<String, (u64, V)>>,
}

impl<V: Clone> EpochCache<V> {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The entry for `key` if it was read at `epoch`.
    pub fn get(&self, key: &str, epoch: u64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(e, _)| *e == epoch)
            .map(|(_, v)| v.clone())
    }

    /// Records `value`, read at `epoch`, for `key`. When full, entries of other
    /// epochs go first (they can never serve again), then all of them.
    pub fn insert(&self, key: &str, epoch: u64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, (e, _)| *e == epoch);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (epoch, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serves_only_at_the_epoch_it_was_read_at() {
        let cache = EpochCache::new(8);
        cache.insert("a", 3, 30);
        assert_eq!(cache.get("a", 3), Some(30));
        assert_eq!(cache.get("a", 4), None, "meta changed since");
        assert_eq!(cache.get("b", 3), None);
        cache.insert("a", 4, 40);
        assert_eq!(cache.get("a", 4), Some(40));
        assert_eq!(cache.get("a", 3), None, "replaced");
    }

    #[test]
    fn a_full_cache_drops_stale_entries_first_and_never_grows_past_its_capacity() {
        let cache = EpochCache::new(3);
        cache.insert("old", 1, 0);
        cache.insert("a", 2, 1);
        cache.insert("b", 2, 2);
        cache.insert("c", 2, 3);
        assert_eq!(cache.get("old", 1), None, "the stale entry went first");
        assert_eq!(
            (cache.get("a", 2), cache.get("b", 2), cache.get("c", 2)),
            (Some(1), Some(2), Some(3))
        );
        cache.insert("d", 2, 4);
        assert_eq!(cache.get("d", 2), Some(4));
        let len = cache.entries.lock().expect("entries").len();
        assert!(len <= 3, "{len} entries in a cache of 3");
        cache.insert("d", 2, 5);
        assert_eq!(
            cache.get("d", 2),
            Some(5),
            "updating an entry evicts nothing"
        );
    }
}
