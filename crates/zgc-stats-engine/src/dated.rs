//! Counts by date, with their sums by month and by year kept beside them,
//! so a time series reads as many entries as it has periods.

use std::collections::BTreeMap;

use crate::Ymd;
use crate::dates::Window;

/// Counts by (partial) date. A series by year or by month whose window
/// admits whole periods reads the year or month sums; any other window
/// reads the dates in its range. Either way, what is read is bounded by
/// the window, never by every date held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dated {
    days: BTreeMap<Ymd, i64>,
    /// The dates with a known month, summed by `(year, month)`.
    months: BTreeMap<(i32, i32), i64>,
    years: BTreeMap<i32, i64>,
}

fn add<K: Ord + Copy>(map: &mut BTreeMap<K, i64>, key: K, n: i64) {
    let count = map.entry(key).or_default();
    *count += n;
    if *count == 0 {
        map.remove(&key);
    }
}

impl Dated {
    /// Adds `n` (negative to subtract) at date `d`.
    pub fn add(&mut self, d: Ymd, n: i64) {
        add(&mut self.days, d, n);
        if d.month != 0 {
            add(&mut self.months, (d.year, d.month), n);
        }
        add(&mut self.years, d.year, n);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (d, n) in &other.days {
            self.add(*d, *n);
        }
    }

    /// The counts by year.
    pub fn years(&self) -> &BTreeMap<i32, i64> {
        &self.years
    }

    /// The counts of the dates `window` admits, summed by `(year, month)`
    /// (dates of unknown month left out) or, not `monthly`, by
    /// `(year, 0)`, in period order. Periods with nothing are absent.
    pub fn by_period(&self, window: &Window, monthly: bool) -> Vec<((i32, i32), i128)> {
        // Every source is read in date order, so periods come in order
        // and a period's dates are adjacent.
        let mut out: Vec<((i32, i32), i128)> = Vec::new();
        let mut put = |period, n: i64| match out.last_mut() {
            Some((last, sum)) if *last == period => *sum += i128::from(n),
            _ => out.push((period, i128::from(n))),
        };
        match (monthly, window.whole_months(), window.whole_years()) {
            (true, Some(span), _) => {
                for (period, n) in self.months.range(span) {
                    put(*period, *n);
                }
            }
            (false, _, Some(span)) => {
                for (year, n) in self.years.range(span) {
                    put((*year, 0), *n);
                }
            }
            _ => {
                for (d, n) in self.days.range(window.dates()) {
                    match (monthly, d.month) {
                        (true, 0) => {}
                        (true, month) => put((d.year, month), *n),
                        (false, _) => put((d.year, 0), *n),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use zgc_proto::types::v1::Date;

    use super::*;

    fn ymd(year: i32, month: i32, day: i32) -> Ymd {
        Ymd { year, month, day }
    }

    fn window(start: (i32, i32, i32), end: (i32, i32, i32)) -> Window {
        let date = |(year, month, day)| Date { year, month, day };
        Window::parse(Some(&date(start)), Some(&date(end)), "s", "e").unwrap()
    }

    fn sample() -> Dated {
        let mut d = Dated::default();
        for (date, n) in [
            (ymd(2016, 0, 0), 1),
            (ymd(2016, 1, 0), 2),
            (ymd(2016, 1, 15), 4),
            (ymd(2016, 2, 29), 8),
            (ymd(2017, 3, 1), 16),
        ] {
            d.add(date, n);
        }
        d
    }

    /// Whole months and years read the sums, a cut window reads dates,
    /// and both give what the dates inside add up to.
    #[test]
    fn periods_sum_the_dates_the_window_admits() {
        let d = sample();
        let all = Window::default();
        assert_eq!(
            d.by_period(&all, false),
            Vec::from([((2016, 0), 15), ((2017, 0), 16)])
        );
        assert_eq!(
            d.by_period(&all, true),
            Vec::from([((2016, 1), 6), ((2016, 2), 8), ((2017, 3), 16)])
        );
        // Whole months.
        assert_eq!(
            d.by_period(&window((2016, 2, 1), (2017, 3, 31)), true),
            Vec::from([((2016, 2), 8), ((2017, 3), 16)])
        );
        // A cut month: from the 2nd of January, the 15th counts, and the
        // January of unknown day (the 1st) does not.
        assert_eq!(
            d.by_period(&window((2016, 1, 2), (2016, 12, 31)), true),
            Vec::from([((2016, 1), 4), ((2016, 2), 8)])
        );
        assert_eq!(
            d.by_period(&window((2016, 1, 2), (2016, 12, 31)), false),
            Vec::from([((2016, 0), 12)])
        );
        // Whole years, and a year cut at its end.
        assert_eq!(
            d.by_period(&window((2016, 0, 0), (2016, 0, 0)), false),
            Vec::from([((2016, 0), 15)])
        );
        assert_eq!(
            d.by_period(&window((2016, 0, 0), (2016, 2, 28)), false),
            Vec::from([((2016, 0), 7)])
        );
    }

    #[test]
    fn counts_that_fall_to_zero_leave_every_sum() {
        let mut d = sample();
        for (date, n) in [
            (ymd(2016, 0, 0), 1),
            (ymd(2016, 1, 0), 2),
            (ymd(2016, 1, 15), 4),
            (ymd(2016, 2, 29), 8),
        ] {
            d.add(date, -n);
        }
        let mut only = Dated::default();
        only.add(ymd(2017, 3, 1), 16);
        assert_eq!(d, only);
        let mut merged = Dated::default();
        merged.merge(&only);
        assert_eq!(merged, only);
    }
}
