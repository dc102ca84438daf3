//! Partial dates and the window rules of the contract.

use std::ops::Bound;

use zgc_proto::types::v1::Date;

use crate::QueryError;

/// A date with a known year; month and day may be 0 (unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ymd {
    /// The year.
    pub year: i32,
    /// The month, 0 if unknown.
    pub month: i32,
    /// The day, 0 if unknown.
    pub day: i32,
}

impl Ymd {
    /// The date, if its year is known.
    pub fn from_proto(d: Option<&Date>) -> Option<Self> {
        let d = d?;
        (d.year != 0).then_some(Self {
            year: d.year,
            month: d.month,
            day: d.day,
        })
    }

    /// The earliest day it can mean, as `yyyymmdd` (unknown month: January,
    /// unknown day: the 1st).
    pub fn earliest(self) -> i64 {
        self.first_day().number()
    }

    /// The latest day it can mean, as `yyyymmdd` (unknown month: December,
    /// unknown day: the month's last).
    pub fn latest(self) -> i64 {
        self.last_day().number()
    }

    /// The earliest day it can mean.
    fn first_day(self) -> Self {
        Self {
            year: self.year,
            month: self.month.max(1),
            day: self.day.max(1),
        }
    }

    /// The latest day it can mean.
    fn last_day(self) -> Self {
        let month = if self.month == 0 { 12 } else { self.month };
        let day = if self.day == 0 {
            days_in_month(self.year, month)
        } else {
            self.day
        };
        Self {
            year: self.year,
            month,
            day,
        }
    }

    fn number(self) -> i64 {
        i64::from(self.year) * 10_000 + i64::from(self.month) * 100 + i64::from(self.day)
    }
}

/// A range of keys, either end open.
pub type Span<K> = (Bound<K>, Bound<K>);

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A date window `[start, end]`, either end optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    start: Option<Ymd>,
    end: Option<Ymd>,
}

impl Window {
    /// Parses and validates the window of a request.
    pub fn parse(
        start: Option<&Date>,
        end: Option<&Date>,
        start_field: &str,
        end_field: &str,
    ) -> Result<Self, QueryError> {
        let start = checked(start, start_field)?;
        let end = checked(end, end_field)?;
        if let (Some(s), Some(e)) = (start, end)
            && s.earliest() > e.latest()
        {
            return Err(QueryError::invalid(end_field, "is before start"));
        }
        Ok(Self { start, end })
    }

    /// Whether the window has either end.
    pub fn is_set(&self) -> bool {
        self.start.is_some() || self.end.is_some()
    }

    /// Both ends, when both are set.
    pub fn bounds(&self) -> Option<(Ymd, Ymd)> {
        Some((self.start?, self.end?))
    }

    /// The dates the window admits, as a range of [`Ymd`] keys: dates
    /// order by year, month, day with 0 (unknown) first, so a date's
    /// earliest day never decreases along that order, and the dates whose
    /// earliest day is inside the window are one range of it. Unknown
    /// dates are never in it: with a window they do not count, and
    /// without one the caller counts them apart.
    pub fn dates(&self) -> Span<Ymd> {
        let start = self.start.map_or(Bound::Unbounded, |s| {
            // The first date whose earliest day is not before the start's:
            // a date with unknown day (or month) starts on the 1st (or in
            // January), so it is in from the 1st of its month (or year).
            let first = s.first_day();
            Bound::Included(match (first.month, first.day) {
                (1, 1) => Ymd {
                    month: 0,
                    day: 0,
                    ..first
                },
                (_, 1) => Ymd { day: 0, ..first },
                _ => first,
            })
        });
        let end = self
            .end
            .map_or(Bound::Unbounded, |e| Bound::Included(e.last_day()));
        (start, end)
    }

    /// The months the window admits whole, as `(year, month)` keys, if
    /// it admits every month it touches whole (starts on a 1st and ends
    /// on a month's last day, or is open at that end).
    pub fn whole_months(&self) -> Option<Span<(i32, i32)>> {
        let start = match self.start.map(Ymd::first_day) {
            None => Bound::Unbounded,
            Some(s) if s.day == 1 => Bound::Included((s.year, s.month)),
            Some(_) => return None,
        };
        let end = match self.end.map(Ymd::last_day) {
            None => Bound::Unbounded,
            Some(e) if e.day == days_in_month(e.year, e.month) => {
                Bound::Included((e.year, e.month))
            }
            Some(_) => return None,
        };
        Some((start, end))
    }

    /// The years the window admits whole, if it admits every year it
    /// touches whole (starts on January 1st and ends on December 31st,
    /// or is open at that end).
    pub fn whole_years(&self) -> Option<Span<i32>> {
        let start = match self.start.map(Ymd::first_day) {
            None => Bound::Unbounded,
            Some(s) if (s.month, s.day) == (1, 1) => Bound::Included(s.year),
            Some(_) => return None,
        };
        let end = match self.end.map(Ymd::last_day) {
            None => Bound::Unbounded,
            Some(e) if (e.month, e.day) == (12, 31) => Bound::Included(e.year),
            Some(_) => return None,
        };
        Some((start, end))
    }

    /// Whether an entity's date counts: without a window every date does
    /// (even unknown ones); with one, only dates with a year whose earliest
    /// day falls inside.
    pub fn admits(&self, date: Option<Ymd>) -> bool {
        if !self.is_set() {
            return true;
        }
        let Some(d) = date else { return false };
        let day = d.earliest();
        self.start.is_none_or(|s| day >= s.earliest()) && self.end.is_none_or(|e| day <= e.latest())
    }
}

/// Validates a request date; all-zero or absent means none.
fn checked(date: Option<&Date>, field: &str) -> Result<Option<Ymd>, QueryError> {
    let Some(d) = date else { return Ok(None) };
    if d.year == 0 && d.month == 0 && d.day == 0 {
        return Ok(None);
    }
    if !(1800..=2200).contains(&d.year) {
        return Err(QueryError::invalid(
            format!("{field}.year"),
            "must be between 1800 and 2200",
        ));
    }
    if !(0..=12).contains(&d.month) {
        return Err(QueryError::invalid(
            format!("{field}.month"),
            "must be between 1 and 12, or 0",
        ));
    }
    if d.day != 0 && (d.month == 0 || !(1..=days_in_month(d.year, d.month)).contains(&d.day)) {
        return Err(QueryError::invalid(
            format!("{field}.day"),
            "is not a day of that month",
        ));
    }
    Ok(Some(Ymd {
        year: d.year,
        month: d.month,
        day: d.day,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(year: i32, month: i32, day: i32) -> Option<Ymd> {
        Some(Ymd { year, month, day })
    }

    #[test]
    fn windows_use_earliest_and_latest_days() {
        let w = Window::parse(
            Some(&Date {
                year: 2016,
                month: 1,
                day: 0,
            }),
            Some(&Date {
                year: 2016,
                month: 7,
                day: 0,
            }),
            "start",
            "end",
        )
        .unwrap();
        assert!(w.admits(ymd(2016, 7, 31)));
        assert!(w.admits(ymd(2016, 1, 1)));
        assert!(w.admits(ymd(2016, 0, 0)), "an unknown month is January");
        assert!(!w.admits(ymd(2016, 8, 1)));
        assert!(!w.admits(ymd(2015, 12, 31)));
        assert!(!w.admits(None));
        assert!(Window::default().admits(None));
        assert_eq!(ymd(2024, 2, 0).unwrap().latest(), 20240229);
    }

    /// Every date from 2014 to 2018, unknown months and days included.
    fn every_date() -> Vec<Ymd> {
        let mut out = Vec::new();
        for year in 2014..=2018 {
            out.push(Ymd {
                year,
                month: 0,
                day: 0,
            });
            for month in 1..=12 {
                for day in 0..=days_in_month(year, month) {
                    out.push(Ymd { year, month, day });
                }
            }
        }
        out
    }

    fn every_window() -> Vec<Window> {
        let ends: Vec<Option<Date>> = [
            (0, 0, 0),
            (2016, 0, 0),
            (2016, 1, 0),
            (2016, 1, 1),
            (2016, 1, 2),
            (2016, 2, 0),
            (2016, 2, 28),
            (2016, 2, 29),
            (2016, 3, 1),
            (2016, 12, 0),
            (2016, 12, 30),
            (2016, 12, 31),
            (2017, 6, 15),
        ]
        .into_iter()
        .map(|(year, month, day)| Some(Date { year, month, day }))
        .collect();
        let mut out = Vec::new();
        for start in &ends {
            for end in &ends {
                if let Ok(w) = Window::parse(start.as_ref(), end.as_ref(), "s", "e") {
                    out.push(w);
                }
            }
        }
        out
    }

    fn within<K: Ord>(span: &Span<K>, key: &K) -> bool {
        use std::ops::RangeBounds;
        (span.0.as_ref(), span.1.as_ref()).contains(key)
    }

    /// The ranges a window reads from kept counts admit exactly the dates
    /// `admits` does: by date always, by month and by year when the window
    /// admits them whole.
    #[test]
    fn a_window_s_ranges_admit_what_it_admits() {
        let (mut by_month, mut by_year) = (0, 0);
        for w in every_window() {
            let dates = w.dates();
            let months = w.whole_months();
            let years = w.whole_years();
            by_month += usize::from(months.is_some());
            by_year += usize::from(years.is_some());
            for d in every_date() {
                let admitted = w.admits(Some(d));
                assert_eq!(within(&dates, &d), admitted, "{w:?} {d:?}");
                if let Some(months) = &months
                    && d.month != 0
                {
                    assert_eq!(within(months, &(d.year, d.month)), admitted, "{w:?} {d:?}");
                }
                if let Some(years) = &years {
                    assert_eq!(within(years, &d.year), admitted, "{w:?} {d:?}");
                }
            }
        }
        // The cases that read months and years are tried, not only the
        // ones that fall back to dates.
        assert!(by_month > 20 && by_year > 10, "{by_month} {by_year}");
    }

    #[test]
    fn a_window_that_cuts_a_month_or_a_year_reads_dates() {
        let d = |year, month, day| Date { year, month, day };
        let w = |s: Date, e: Date| Window::parse(Some(&s), Some(&e), "s", "e").unwrap();
        assert!(w(d(2016, 1, 2), d(2016, 3, 0)).whole_months().is_none());
        assert!(w(d(2016, 1, 1), d(2016, 2, 28)).whole_months().is_none());
        assert!(w(d(2016, 1, 1), d(2016, 2, 29)).whole_months().is_some());
        assert!(w(d(2016, 2, 0), d(2016, 12, 0)).whole_years().is_none());
        assert!(w(d(2016, 1, 0), d(2016, 12, 31)).whole_years().is_some());
    }

    #[test]
    fn bad_windows_are_rejected() {
        let d = |y, m, dd| Date {
            year: y,
            month: m,
            day: dd,
        };
        assert!(Window::parse(Some(&d(2017, 1, 1)), Some(&d(2016, 1, 1)), "s", "e").is_err());
        assert!(Window::parse(Some(&d(2017, 2, 30)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(2017, 0, 3)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(1700, 0, 0)), None, "s", "e").is_err());
    }

    #[test]
    fn months_have_the_calendar_s_days_and_leap_years_follow_the_gregorian_rule() {
        let days: Vec<i32> = (1..=12).map(|m| days_in_month(2023, m)).collect();
        assert_eq!(days, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
        for (year, february) in [(2024, 29), (2023, 28), (2000, 29), (1900, 28), (2100, 28)] {
            assert_eq!(days_in_month(year, 2), february, "February {year}");
        }
    }

    #[test]
    fn a_date_is_none_only_when_all_zero_and_each_part_is_checked() {
        let d = |y, m, dd| Date {
            year: y,
            month: m,
            day: dd,
        };
        let none = Window::parse(Some(&d(0, 0, 0)), None, "s", "e").unwrap();
        assert!(!none.is_set());
        assert!(Window::parse(Some(&d(0, 0, 5)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(0, 3, 0)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(2017, 1, -1)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(2017, 4, 31)), None, "s", "e").is_err());
        assert!(Window::parse(Some(&d(2016, 2, 29)), None, "s", "e").is_ok());
        // A window of one day is a window.
        let day = Window::parse(Some(&d(2016, 7, 1)), Some(&d(2016, 7, 1)), "s", "e").unwrap();
        assert!(day.admits(Some(Ymd {
            year: 2016,
            month: 7,
            day: 1
        })));
    }
}
