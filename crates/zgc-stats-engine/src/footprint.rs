//! Where the branches of a bucket's companies are.

use crate::Ymd;
use crate::dates::Window;
use crate::leveled::Leveled;
use crate::model::{Level, Region};

/// Branch counts by the branch's city and founding date ([`Leveled`]):
/// without a window the answer is a ranking kept at both levels, read in
/// order; with one, the dates in the window are read and ranked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint(Leveled<Region, Ymd>);

impl Footprint {
    /// Adds `n` branches (negative to subtract) in city `region`, founded
    /// on `founded`.
    pub fn add(&mut self, region: &Region, founded: Option<Ymd>, n: i64) {
        self.0.add(region, founded, n);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        self.0.merge(&other.0);
    }

    /// Whether there is no branch.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Branch counts by region at `level`, of the branches `window`
    /// admits: the largest first, ties by region.
    pub fn regions(&self, window: &Window, level: Level) -> Vec<(Region, i64)> {
        let dates = window.is_set().then(|| window.dates());
        self.0.counts(dates, level, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zgc_proto::types::v1::Date;

    use super::*;

    fn city(province: &str, city: &str) -> Region {
        Region {
            province: Arc::from(province),
            city: Arc::from(city),
        }
    }

    fn in_2016() -> Window {
        let year = Date {
            year: 2016,
            month: 0,
            day: 0,
        };
        Window::parse(Some(&year), Some(&year), "start", "end").unwrap()
    }

    #[test]
    fn branches_are_counted_by_city_or_province_with_or_without_a_window() {
        let (baoding, langfang, tianjin) = (
            city("hebei", "baoding"),
            city("hebei", "langfang"),
            city("tianjin", "tianjin"),
        );
        let d2016 = Some(Ymd {
            year: 2016,
            month: 5,
            day: 0,
        });
        let mut f = Footprint::default();
        f.add(&baoding, d2016, 2);
        f.add(&langfang, None, 1);
        f.add(&tianjin, d2016, 2);
        f.add(&tianjin, None, 1);
        assert_eq!(
            f.regions(&Window::default(), Level::City),
            [(tianjin.clone(), 3), (baoding.clone(), 2), (langfang, 1)]
        );
        assert_eq!(
            f.regions(&Window::default(), Level::Province),
            [(baoding.province_level(), 3), (tianjin.province_level(), 3)]
        );
        assert_eq!(
            f.regions(&in_2016(), Level::Province),
            [(baoding.province_level(), 2), (tianjin.province_level(), 2)]
        );
        f.add(&baoding, d2016, -2);
        assert_eq!(f.regions(&in_2016(), Level::City), [(tianjin, 2)]);
    }

    #[test]
    fn a_merge_holds_both_sides_branches() {
        let (baoding, tianjin) = (city("hebei", "baoding"), city("tianjin", "tianjin"));
        let d = Some(Ymd {
            year: 2016,
            month: 0,
            day: 0,
        });
        let (mut left, mut right, mut both) = (
            Footprint::default(),
            Footprint::default(),
            Footprint::default(),
        );
        left.add(&baoding, d, 1);
        right.add(&baoding, d, 2);
        right.add(&tianjin, None, 1);
        for (r, founded, n) in [(&baoding, d, 1), (&baoding, d, 2), (&tianjin, None, 1)] {
            both.add(r, founded, n);
        }
        left.merge(&right);
        assert_eq!(left, both);
        assert!(!left.is_empty() && Footprint::default().is_empty());
    }
}
