//! One bucket's aggregates and how a company's contribution moves them.

use std::collections::{BTreeMap, HashMap};

use crate::dated::Dated;
use crate::footprint::Footprint;
use crate::model::CompanyInfo;

/// A set of parks and companies that summaries are kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BucketId {
    /// Everything.
    All,
    /// One park (by name) and the companies registered in it.
    Park(String),
    /// A province (normalised).
    Province(String),
    /// A city (normalised province, city).
    City(String, String),
    /// A sector slug.
    Sector(String),
    /// A park and every park whose `parent_park` chain leads to it (its
    /// affiliates), with their companies. Kept only for parks that have
    /// affiliates; derived from the `Park` buckets.
    ParkTree(String),
}

/// Sums of one year's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct YearSum {
    pub revenue: i128,
    pub output: i128,
    /// How many companies list the year.
    pub companies: i64,
}

/// The aggregates of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agg {
    pub parks: i64,
    pub companies: i64,
    pub branches: i64,
    pub employees: i128,
    pub investment: i128,
    pub high_tech: i64,
    pub listed: i64,
    pub relocated_in: i64,
    /// Companies anywhere whose last relocation left this region (province
    /// and city buckets only).
    pub relocated_out: i64,
    /// Origin province of the last relocation -> companies.
    pub origins: HashMap<String, i64>,
    pub sectors: HashMap<String, i64>,
    /// Companies by founding date (known years only).
    pub founded: Dated,
    /// Branches by founding date (known years only).
    pub branches_founded: Dated,
    /// Relocation records by date (known years only).
    pub relocations: Dated,
    pub figures: BTreeMap<i32, YearSum>,
    /// Branches whose parent is in this bucket, by the branch's city and
    /// founding date.
    pub footprint: Footprint,
}

fn bump_hash(map: &mut HashMap<String, i64>, key: &str, sign: i64) {
    let v = map.entry(key.to_string()).or_default();
    *v += sign;
    if *v == 0 {
        map.remove(key);
    }
}

impl Agg {
    /// Adds (`sign` 1) or removes (-1) a company's contribution.
    pub fn add_company(&mut self, c: &CompanyInfo, sign: i64) {
        let wide = i128::from(sign);
        self.companies += sign;
        self.employees += wide * i128::from(c.employees);
        self.investment += wide * i128::from(c.investment);
        if !c.place.parent.is_empty() {
            self.branches += sign;
            if let Some(d) = c.place.founded {
                self.branches_founded.add(d, sign);
            }
        }
        if c.high_tech {
            self.high_tech += sign;
        }
        if c.listed {
            self.listed += sign;
        }
        if let Some(last) = c.relocations.last() {
            self.relocated_in += sign;
            bump_hash(&mut self.origins, &last.from.province, sign);
        }
        for s in &c.place.sectors {
            bump_hash(&mut self.sectors, s, sign);
        }
        if let Some(d) = c.place.founded {
            self.founded.add(d, sign);
        }
        for r in &c.relocations {
            if let Some(d) = r.date {
                self.relocations.add(d, sign);
            }
        }
        for (year, revenue, output) in &c.figures {
            let sum = self.figures.entry(*year).or_default();
            sum.revenue += wide * i128::from(*revenue);
            sum.output += wide * i128::from(*output);
            sum.companies += sign;
            if sum.companies == 0 {
                self.figures.remove(year);
            }
        }
    }

    /// Adds another bucket's aggregates into this one.
    pub fn merge(&mut self, o: &Agg) {
        self.parks += o.parks;
        self.companies += o.companies;
        self.branches += o.branches;
        self.employees += o.employees;
        self.investment += o.investment;
        self.high_tech += o.high_tech;
        self.listed += o.listed;
        self.relocated_in += o.relocated_in;
        self.relocated_out += o.relocated_out;
        for (k, v) in &o.origins {
            *self.origins.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.sectors {
            *self.sectors.entry(k.clone()).or_default() += v;
        }
        self.founded.merge(&o.founded);
        self.branches_founded.merge(&o.branches_founded);
        self.relocations.merge(&o.relocations);
        for (k, v) in &o.figures {
            let s = self.figures.entry(*k).or_default();
            s.revenue += v.revenue;
            s.output += v.output;
            s.companies += v.companies;
        }
        self.footprint.merge(&o.footprint);
    }
}

#[cfg(test)]
mod tests {
    use zgc_proto::registry::v1::{AnnualFigure, Company};

    use super::*;
    use crate::model::Names;

    fn reporting(name: &str, years: &[i32]) -> CompanyInfo {
        let company = Company {
            name: name.into(),
            annual_figures: years
                .iter()
                .map(|&year| AnnualFigure {
                    year,
                    revenue_cny: 100,
                    output_value_cny: 10,
                })
                .collect(),
            ..Default::default()
        };
        CompanyInfo::from_proto(&company, &mut Names::default())
    }

    /// A year's entry counts the companies listing it, and goes when the
    /// last of them does.
    #[test]
    fn a_year_counts_the_companies_that_list_it() {
        let (a, b) = (
            reporting("companies/a", &[2023, 2024]),
            reporting("companies/b", &[2023]),
        );
        let mut agg = Agg::default();
        agg.add_company(&a, 1);
        agg.add_company(&b, 1);
        assert_eq!(agg.figures[&2023].companies, 2);
        assert_eq!(agg.figures[&2023].revenue, 200);
        assert_eq!(agg.figures[&2024].companies, 1);
        agg.add_company(&a, -1);
        assert_eq!(agg.figures[&2023].companies, 1);
        assert!(!agg.figures.contains_key(&2024));
    }

    /// Merging two buckets gives what one bucket holding both sides'
    /// companies holds, the relocations out of a region included.
    #[test]
    fn a_merge_adds_up_both_sides() {
        let (a, b) = (
            reporting("companies/a", &[2023, 2024]),
            reporting("companies/b", &[2023]),
        );
        let mut left = Agg::default();
        left.add_company(&a, 1);
        left.relocated_out = 3;
        let mut right = Agg::default();
        right.add_company(&b, 1);
        right.relocated_out = 2;
        let mut both = Agg::default();
        both.add_company(&a, 1);
        both.add_company(&b, 1);
        both.relocated_out = 5;
        left.merge(&right);
        assert_eq!(left, both);
    }
}
