//! Relocation records by origin and destination.

use std::ops::Bound;

use crate::leveled::Leveled;
use crate::model::{Level, Region};

type Pair = (Region, Region);

/// Relocation records by (origin, destination) city and year
/// ([`Leveled`]): over all years the answer is a ranking kept at both
/// levels, read in order (a province filter skips entries, it never
/// sorts); over a span of years, the years in it are read and ranked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flows(Leveled<Pair, i32>);

/// Which flows an answer counts.
#[derive(Debug, Clone, Copy)]
pub struct FlowQuery<'a> {
    pub level: Level,
    /// Normalised origin province, empty for any.
    pub from_province: &'a str,
    /// Normalised destination province, empty for any.
    pub to_province: &'a str,
    /// First and last year counted, 0 for open; with either set, records
    /// of unknown year do not count.
    pub start_year: i32,
    pub end_year: i32,
}

impl Flows {
    /// Adds `n` records (negative to subtract) from city `from` to city
    /// `to`, in `year`.
    pub fn add(&mut self, from: &Region, to: &Region, year: Option<i32>, n: i64) {
        self.0.add(&(from.clone(), to.clone()), year, n);
    }

    /// The counts `q` asks for, the largest first, ties by origin then
    /// destination.
    pub fn flows(&self, q: &FlowQuery<'_>) -> Vec<(Pair, i64)> {
        let wanted = |(from, to): &Pair| {
            (q.from_province.is_empty() || *from.province == *q.from_province)
                && (q.to_province.is_empty() || *to.province == *q.to_province)
        };
        let bound = |y: i32| {
            if y == 0 {
                Bound::Unbounded
            } else {
                Bound::Included(y)
            }
        };
        let years = (q.start_year != 0 || q.end_year != 0)
            .then(|| (bound(q.start_year), bound(q.end_year)));
        self.0.counts(years, q.level, wanted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn city(province: &str, city: &str) -> Region {
        Region {
            province: Arc::from(province),
            city: Arc::from(city),
        }
    }

    fn query(
        level: Level,
        from: &'static str,
        start_year: i32,
        end_year: i32,
    ) -> FlowQuery<'static> {
        FlowQuery {
            level,
            from_province: from,
            to_province: "",
            start_year,
            end_year,
        }
    }

    #[test]
    fn flows_are_counted_by_level_province_and_year() {
        let (beijing, baoding, tianjin) = (
            city("beijing", "beijing"),
            city("hebei", "baoding"),
            city("tianjin", "tianjin"),
        );
        let mut f = Flows::default();
        f.add(&beijing, &baoding, Some(2016), 2);
        f.add(&beijing, &tianjin, Some(2017), 3);
        f.add(&tianjin, &baoding, None, 1);
        let pair = |a: &Region, b: &Region| (a.clone(), b.clone());
        assert_eq!(
            f.flows(&query(Level::City, "", 0, 0)),
            [
                (pair(&beijing, &tianjin), 3),
                (pair(&beijing, &baoding), 2),
                (pair(&tianjin, &baoding), 1)
            ]
        );
        assert_eq!(
            f.flows(&query(Level::City, "beijing", 0, 2016)),
            [(pair(&beijing, &baoding), 2)]
        );
        assert_eq!(
            f.flows(&query(Level::Province, "", 2016, 0)),
            [
                ((beijing.province_level(), tianjin.province_level()), 3),
                ((beijing.province_level(), baoding.province_level()), 2)
            ]
        );
        f.add(&beijing, &tianjin, Some(2017), -3);
        assert_eq!(f.flows(&query(Level::City, "", 2017, 2017)), []);
        assert_eq!(f, {
            let mut only = Flows::default();
            only.add(&beijing, &baoding, Some(2016), 2);
            only.add(&tianjin, &baoding, None, 1);
            only
        });
    }
}
