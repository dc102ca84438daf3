//! GetSummary's answers, kept encoded per scope until the engine changes.
//!
//! A summary is the same bytes for every caller until the next change is
//! applied, and building and encoding it was a large share of a
//! GetSummary's CPU (BENCHMARKS.md). Each answer is kept with the engine generation
//! it was read at ([`crate::state::Reading::generation`]) and served only
//! while the engine still is at that generation, so a cached answer is
//! always exactly what the engine would answer now.
//!
//! The cache is bounded by bytes, keys included: scopes come from clients,
//! and a province or sector nobody has heard of still has a (zero) summary.

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use zgc_proto::stats::v1::Summary;
use zgc_server::encoded::Encoded;

use crate::metrics::CacheMetrics;

/// The bytes the cache may hold, keys and answers together.
pub const BUDGET_BYTES: u64 = 8 << 20;
/// What one entry costs besides its key and answer.
const ENTRY_OVERHEAD: u64 = 64;

#[derive(Clone)]
struct Entry {
    generation: u64,
    summary: Encoded<Summary>,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Bytes, Entry> for ByBytes {
    fn weight(&self, key: &Bytes, entry: &Entry) -> u64 {
        (key.len() + entry.summary.bytes().len()) as u64 + ENTRY_OVERHEAD
    }
}

/// Encoded summaries by scope.
pub struct Summaries {
    cache: Cache<Bytes, Entry, ByBytes>,
    metrics: CacheMetrics,
}

impl Summaries {
    /// A cache of at most `budget` bytes, counting its hits and misses
    /// into `metrics`.
    pub fn new(budget: u64, metrics: CacheMetrics) -> Self {
        let estimated_entries = usize::try_from(budget / 1024).unwrap_or(1024).max(16);
        Self {
            cache: Cache::with_weighter(estimated_entries, budget, ByBytes),
            metrics,
        }
    }

    /// The summary of `scope` (the scope's encoding) made at `generation`,
    /// if it is cached.
    pub fn get(&self, scope: &[u8], generation: u64) -> Option<Encoded<Summary>> {
        let found = self
            .cache
            .get(scope)
            .filter(|e| e.generation == generation)
            .map(|e| e.summary);
        if found.is_some() {
            self.metrics.hits.inc();
        } else {
            self.metrics.misses.inc();
        }
        found
    }

    /// Keeps the summary of `scope` made at `generation`. An answer made at
    /// an older generation than the one kept may replace it; the next call
    /// then builds it again.
    pub fn put(&self, scope: Bytes, generation: u64, summary: Encoded<Summary>) {
        self.cache.insert(
            scope,
            Entry {
                generation,
                summary,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(budget: u64) -> Summaries {
        Summaries::new(budget, CacheMetrics::default())
    }

    fn summary(companies: i64) -> Encoded<Summary> {
        Encoded::new(&Summary {
            company_count: companies,
            ..Summary::default()
        })
    }

    #[test]
    fn an_answer_is_served_only_at_the_generation_it_was_made() {
        let s = summaries(BUDGET_BYTES);
        s.put(Bytes::from_static(b"scope"), 7, summary(3));
        let hit = s.get(b"scope", 7).map(|e| e.decode().ok());
        assert_eq!(hit.flatten().map(|x| x.company_count), Some(3));
        assert!(s.get(b"scope", 8).is_none(), "the engine moved on");
        assert!(s.get(b"other", 7).is_none(), "another scope");
        assert_eq!((s.metrics.hits.get(), s.metrics.misses.get()), (1, 2));
    }

    #[test]
    fn a_newer_answer_replaces_an_older_one() {
        let s = summaries(BUDGET_BYTES);
        s.put(Bytes::from_static(b"scope"), 7, summary(3));
        s.put(Bytes::from_static(b"scope"), 9, summary(4));
        assert!(s.get(b"scope", 7).is_none());
        let hit = s.get(b"scope", 9).map(|e| e.decode().ok());
        assert_eq!(hit.flatten().map(|x| x.company_count), Some(4));
    }

    #[test]
    fn the_cache_never_holds_more_than_its_budget() {
        let s = summaries(64 << 10);
        for i in 0..10_000u32 {
            let scope = Bytes::from(format!("a scope nobody has heard of, number {i}"));
            s.put(scope, 1, summary(i64::from(i)));
        }
        assert!(s.cache.weight() <= 64 << 10, "{}", s.cache.weight());
        assert!(!s.cache.is_empty());
    }
}
