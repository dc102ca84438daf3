//! Counts kept ranked at city and province level, and by period: the
//! shape of the branch footprint and of the relocation flows.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::ops::RangeBounds;

use crate::model::{Level, Region};
use crate::ranked::{Ranked, sorted};

/// A key that can be told apart less finely.
pub trait AtLevel: Clone + Ord + Hash {
    /// The key as told apart at `level`.
    fn at(&self, level: Level) -> Self;
}

impl AtLevel for Region {
    fn at(&self, level: Level) -> Self {
        Region::at(self, level)
    }
}

impl AtLevel for (Region, Region) {
    fn at(&self, level: Level) -> Self {
        (self.0.at(level), self.1.at(level))
    }
}

/// Counts by city-level key `K` and period `P`. Over every period (those
/// unknown included) the answer is a ranking kept at both levels, read in
/// order with no sort; over a span of periods, the periods in it are read
/// and what they hold is ranked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leveled<K: AtLevel, P> {
    cities: Ranked<K>,
    provinces: Ranked<K>,
    /// The counts of known period, by period and city-level key.
    by_period: BTreeMap<P, HashMap<K, i64>>,
}

impl<K: AtLevel, P> Default for Leveled<K, P> {
    fn default() -> Self {
        Self {
            cities: Ranked::default(),
            provinces: Ranked::default(),
            by_period: BTreeMap::new(),
        }
    }
}

impl<K: AtLevel, P: Ord + Copy> Leveled<K, P> {
    /// Adds `n` (negative to subtract) at city-level `key`, in `period`.
    pub fn add(&mut self, key: &K, period: Option<P>, n: i64) {
        self.cities.add(key, n);
        self.provinces.add(&key.at(Level::Province), n);
        if let Some(p) = period {
            let counts = self.by_period.entry(p).or_default();
            let count = counts.entry(key.clone()).or_default();
            *count += n;
            if *count == 0 {
                counts.remove(key);
                if counts.is_empty() {
                    self.by_period.remove(&p);
                }
            }
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        self.cities.merge(&other.cities);
        self.provinces.merge(&other.provinces);
        for (p, counts) in &other.by_period {
            let into = self.by_period.entry(*p).or_default();
            for (key, n) in counts {
                *into.entry(key.clone()).or_default() += n;
            }
        }
    }

    /// Whether nothing is counted.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.cities.is_empty()
    }

    /// The counts at `level` of the keys `keep` admits: over every period
    /// when `periods` is `None`, else over the periods in it. The largest
    /// first, ties by key.
    pub fn counts(
        &self,
        periods: Option<impl RangeBounds<P>>,
        level: Level,
        keep: impl Fn(&K) -> bool,
    ) -> Vec<(K, i64)> {
        let Some(periods) = periods else {
            let ranked = match level {
                Level::Province => &self.provinces,
                Level::City => &self.cities,
            };
            return ranked
                .iter()
                .filter(|(key, _)| keep(key))
                .map(|(key, n)| (key.clone(), n))
                .collect();
        };
        let mut groups: HashMap<K, i64> = HashMap::new();
        for (_, counts) in self.by_period.range(periods) {
            for (key, n) in counts.iter().filter(|(key, _)| keep(key)) {
                *groups.entry(key.at(level)).or_default() += n;
            }
        }
        sorted(groups)
    }
}
