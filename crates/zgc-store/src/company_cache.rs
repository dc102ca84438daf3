//! Companies held in memory as stored, so reading one by ID does not walk
//! sled's page cache: a company read costs well under a microsecond
//! instead of several (see BENCHMARKS.md).
//!
//! A bounded, concurrent cache ([`quick_cache`], S3-FIFO eviction)
//! weighted by bytes: the ID, the encoded company and a fixed allowance
//! for the cache's own bookkeeping per entry. It holds exactly what the
//! companies tree holds, or less:
//! - the writer updates it while it holds the apply lock for writing,
//!   right after the transaction that changed the tree applied;
//! - a read that missed fills it only while holding the apply lock for
//!   reading (never waiting for it), so no write can apply between the
//!   read of the tree and the fill, and a fill can never put back a value
//!   a write replaced.
//!
//! Each generation of the store has its own, so a reopen after a storage
//! failure starts empty.

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Bytes counted per entry beyond its ID and value: what the cache's own
/// structures and the allocator take per entry, measured with 1M entries
/// of about 180 bytes: about 90 when filled once, about 180 once a third
/// as many again have replaced some (the allocator keeps what was freed).
const ENTRY_OVERHEAD: u64 = 160;

/// Companies by ID, as stored.
pub(crate) struct CompanyCache {
    /// `None` when the cache is off (a capacity of 0).
    cache: Option<Cache<Box<[u8]>, Bytes, ByBytes>>,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Box<[u8]>, Bytes> for ByBytes {
    fn weight(&self, id: &Box<[u8]>, company: &Bytes) -> u64 {
        (id.len() + company.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// A typical entry's weight, to size the cache's tables up front.
const TYPICAL_WEIGHT: u64 = 360;

impl CompanyCache {
    /// A cache of at most `capacity` bytes (0: no cache).
    pub(crate) fn new(capacity: u64) -> Self {
        let cache = (capacity > 0).then(|| {
            let items = usize::try_from(capacity / TYPICAL_WEIGHT).unwrap_or(usize::MAX);
            Cache::with_weighter(items.max(1), capacity, ByBytes)
        });
        Self { cache }
    }

    /// Whether it holds anything at all.
    pub(crate) fn is_on(&self) -> bool {
        self.cache.is_some()
    }

    /// The company with this ID, if cached.
    pub(crate) fn get(&self, id: &[u8]) -> Option<Bytes> {
        self.cache.as_ref()?.get(id)
    }

    /// Sets what is stored under `id`: `Some` company or `None` (deleted).
    /// Only the writer, applying, and a fill under the apply lock call it.
    pub(crate) fn set(&self, id: &[u8], company: Option<Bytes>) {
        let Some(cache) = &self.cache else {
            return;
        };
        match company {
            Some(bytes) => cache.insert(id.into(), bytes),
            None => {
                cache.remove(id);
            }
        }
    }

    /// Bytes held (by the weights above).
    pub(crate) fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, Cache::weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_holds_what_it_is_told_and_forgets_deletions() {
        let c = CompanyCache::new(1 << 20);
        assert_eq!(c.get(b"a"), None);
        c.set(b"a", Some(Bytes::from_static(b"one")));
        assert_eq!(c.get(b"a"), Some(Bytes::from_static(b"one")));
        c.set(b"a", Some(Bytes::from_static(b"two")));
        assert_eq!(c.get(b"a"), Some(Bytes::from_static(b"two")));
        c.set(b"a", None);
        assert_eq!(c.get(b"a"), None);
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let capacity = 100 * (ENTRY_OVERHEAD + 200);
        // 1,000 companies, each weighing about 360: room for 100.
        let c = CompanyCache::new(capacity);
        for i in 0..1_000u32 {
            c.set(&i.to_be_bytes(), Some(Bytes::from(vec![0u8; 196])));
        }
        assert!(c.weight() <= capacity, "{} > {capacity}", c.weight());
        assert!(c.weight() > 0);
    }

    #[test]
    fn a_capacity_of_zero_caches_nothing() {
        let c = CompanyCache::new(0);
        c.set(b"a", Some(Bytes::from_static(b"one")));
        assert_eq!(c.get(b"a"), None);
        assert_eq!(c.weight(), 0);
    }
}
