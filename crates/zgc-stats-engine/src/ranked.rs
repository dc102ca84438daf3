//! Counts kept in the order the queries answer them in.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Counts by key, kept ranked: the largest count first, ties by key. A
/// change moves one entry (`O(log n)`), so a ranking is read in its final
/// order without sorting; a count that falls to 0 leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<K: Ord + Hash> {
    counts: HashMap<K, i64>,
    order: BTreeSet<(Reverse<i64>, K)>,
}

impl<K: Ord + Hash> Default for Ranked<K> {
    fn default() -> Self {
        Self {
            counts: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> Ranked<K> {
    /// Adds `n` (negative to subtract) to `key`'s count.
    pub fn add(&mut self, key: &K, n: i64) {
        if n == 0 {
            return;
        }
        let old = self.counts.get(key).copied().unwrap_or(0);
        if old != 0 {
            self.order.remove(&(Reverse(old), key.clone()));
        }
        let new = old + n;
        if new == 0 {
            self.counts.remove(key);
        } else {
            self.counts.insert(key.clone(), new);
            self.order.insert((Reverse(new), key.clone()));
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (key, n) in &other.counts {
            self.add(key, *n);
        }
    }

    /// The counts, largest first, ties by key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, i64)> {
        self.order.iter().map(|(Reverse(n), key)| (key, *n))
    }

    /// Whether no key has a count.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Counts gathered for one answer, in the order of a [`Ranked`]: the
/// largest first, ties by key.
pub fn sorted<K: Ord>(counts: HashMap<K, i64>) -> Vec<(K, i64)> {
    let mut out: Vec<(K, i64)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_largest_first_then_by_key() {
        let mut r = Ranked::default();
        r.add(&"b", 2);
        r.add(&"a", 2);
        r.add(&"c", 5);
        r.add(&"d", 1);
        let got: Vec<_> = r.iter().map(|(k, n)| (*k, n)).collect();
        assert_eq!(got, [("c", 5), ("a", 2), ("b", 2), ("d", 1)]);
    }

    #[test]
    fn a_change_moves_its_key_and_a_count_of_zero_leaves() {
        let mut r = Ranked::default();
        r.add(&"a", 3);
        r.add(&"b", 2);
        r.add(&"b", 4);
        r.add(&"a", -3);
        r.add(&"c", 0);
        let got: Vec<_> = r.iter().map(|(k, n)| (*k, n)).collect();
        assert_eq!(got, [("b", 6)]);
        r.add(&"b", -6);
        assert!(r.is_empty());
        assert_eq!(r, Ranked::default());
    }

    #[test]
    fn a_merge_adds_counts_key_by_key() {
        let (mut left, mut right, mut both) =
            (Ranked::default(), Ranked::default(), Ranked::default());
        left.add(&"a", 1);
        left.add(&"b", 2);
        right.add(&"b", -2);
        right.add(&"c", 7);
        for (k, n) in [("a", 1), ("b", 2), ("b", -2), ("c", 7)] {
            both.add(&k, n);
        }
        left.merge(&right);
        assert_eq!(left, both);
    }
}
