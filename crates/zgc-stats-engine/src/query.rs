//! Answers to every query of `zgc.stats.v1`, read from the aggregates.

use std::borrow::Cow;
use std::collections::BTreeMap;

use zgc_proto::stats::v1::{
    BranchRegion, GetBranchFootprintRequest, GetRelocationFlowsRequest, GetTimeSeriesRequest,
    Granularity, ParkMetric, ParkRankEntry, RankParksRequest, RegionLevel, RelocationFlow,
    RelocationOrigin, Scope, SectorCount, SeriesMetric, Summary, TimeSeriesPoint, YearCount,
    YearFigures, scope,
};
use zgc_proto::types::v1::Date;

use crate::agg::{Agg, BucketId, YearSum};
use crate::dates::Window;
use crate::flows::FlowQuery;
use crate::model::{Level, norm};
use crate::{Engine, QueryError, Ymd};

/// The most periods one time series may return.
pub const MAX_PERIODS: usize = 1200;
/// The most entries of one ranking.
pub const MAX_RANK_LIMIT: i32 = 100;

fn sat(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v.is_negative() { i64::MIN } else { i64::MAX })
}

fn percent(current: i128, previous: i128) -> Option<f64> {
    // Sums are far below 2^100, where f64 still has 16 significant digits.
    #[allow(clippy::cast_precision_loss)]
    (previous != 0).then(|| (current - previous) as f64 / previous as f64 * 100.0)
}

#[allow(clippy::cast_precision_loss)]
fn as_f64(v: i128) -> f64 {
    v as f64
}

/// A resolved scope: the buckets to add up, and whether it is a region.
struct Resolved {
    buckets: Vec<BucketId>,
    region: bool,
}

impl Engine {
    fn resolve(&self, scope: Option<&Scope>, field: &str) -> Result<Resolved, QueryError> {
        let selector = scope.and_then(|s| s.selector.as_ref()).ok_or_else(|| {
            QueryError::invalid(
                field,
                "a scope selector is required: all, park, province, city or sector",
            )
        })?;
        let include_affiliates = scope.is_some_and(|s| s.include_affiliates);
        Ok(match selector {
            scope::Selector::All(_) => Resolved {
                buckets: vec![BucketId::All],
                region: false,
            },
            scope::Selector::Park(name) => {
                if !self.parks.contains_key(name) {
                    return Err(QueryError::NotFound(name.clone()));
                }
                let buckets = if !include_affiliates || !self.trees_stale {
                    if include_affiliates && self.trees.contains(name) {
                        vec![BucketId::ParkTree(name.clone())]
                    } else {
                        vec![BucketId::Park(name.clone())]
                    }
                } else {
                    // Between a park change and the end of its batch.
                    self.affiliates(name)
                        .into_iter()
                        .map(|p| BucketId::Park(p.to_string()))
                        .collect()
                };
                Resolved {
                    buckets,
                    region: false,
                }
            }
            scope::Selector::Province(p) => {
                let key = norm(p);
                if key.is_empty() {
                    return Err(QueryError::invalid(
                        format!("{field}.province"),
                        "must not be empty",
                    ));
                }
                Resolved {
                    buckets: vec![BucketId::Province(key)],
                    region: true,
                }
            }
            scope::Selector::City(l) => {
                let (p, c) = (norm(&l.province), norm(&l.city));
                if p.is_empty() || c.is_empty() {
                    return Err(QueryError::invalid(
                        format!("{field}.city"),
                        "needs both province and city",
                    ));
                }
                Resolved {
                    buckets: vec![BucketId::City(p, c)],
                    region: true,
                }
            }
            scope::Selector::Sector(s) => {
                if s.is_empty() {
                    return Err(QueryError::invalid(
                        format!("{field}.sector"),
                        "must not be empty",
                    ));
                }
                Resolved {
                    buckets: vec![BucketId::Sector(s.clone())],
                    region: false,
                }
            }
        })
    }

    fn merged(&self, buckets: &[BucketId]) -> Cow<'_, Agg> {
        static EMPTY: std::sync::OnceLock<Agg> = std::sync::OnceLock::new();
        match buckets {
            [one] => match self.buckets.get(one) {
                Some(agg) => Cow::Borrowed(agg),
                None => Cow::Borrowed(EMPTY.get_or_init(Agg::default)),
            },
            many => {
                let mut out = Agg::default();
                for id in many {
                    if let Some(agg) = self.buckets.get(id) {
                        out.merge(agg);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// The summary of a scope.
    pub fn summary(&self, scope: Option<&Scope>) -> Result<Summary, QueryError> {
        let resolved = self.resolve(scope, "scope")?;
        let agg = self.merged(&resolved.buckets);

        // Counts are never 0 (an entry goes when its count does) nor
        // negative (events apply to what they say was there).
        let mut origins: Vec<RelocationOrigin> = agg
            .origins
            .iter()
            .map(|(k, n)| RelocationOrigin {
                province: self.names.province(k),
                company_count: *n,
            })
            .collect();
        origins.sort_by(|a, b| {
            b.company_count
                .cmp(&a.company_count)
                .then_with(|| a.province.cmp(&b.province))
        });
        let mut sectors: Vec<SectorCount> = agg
            .sectors
            .iter()
            .map(|(s, n)| SectorCount {
                sector: s.clone(),
                company_count: *n,
            })
            .collect();
        sectors.sort_by(|a, b| {
            b.company_count
                .cmp(&a.company_count)
                .then_with(|| a.sector.cmp(&b.sector))
        });
        let founded_by_year = agg
            .founded
            .years()
            .iter()
            .map(|(&year, &count)| YearCount { year, count })
            .collect();
        Ok(Summary {
            scope: scope.cloned(),
            park_count: agg.parks,
            company_count: agg.companies,
            branch_count: agg.branches,
            employees: sat(agg.employees),
            investment_cny: sat(agg.investment),
            high_tech_company_count: agg.high_tech,
            listed_company_count: agg.listed,
            relocated_in_count: agg.relocated_in,
            relocation_origins: origins,
            relocated_out_count: if resolved.region {
                agg.relocated_out
            } else {
                0
            },
            sectors,
            founded_by_year,
            figures_by_year: figures(&agg.figures),
            as_of_revision: self.revision,
        })
    }

    /// Parks ranked by a metric over their own companies.
    pub fn rank_parks(&self, req: &RankParksRequest) -> Result<Vec<ParkRankEntry>, QueryError> {
        let metric = match ParkMetric::try_from(req.metric) {
            Ok(ParkMetric::Unspecified) | Err(_) => {
                return Err(QueryError::invalid(
                    "metric",
                    "must be one of the PARK_METRIC_* values",
                ));
            }
            Ok(m) => m,
        };
        let limit = match req.limit {
            0 => 10,
            n if (1..=MAX_RANK_LIMIT).contains(&n) => n,
            _ => {
                return Err(QueryError::invalid(
                    "limit",
                    format!("must be between 0 and {MAX_RANK_LIMIT}"),
                ));
            }
        };
        let needs_year = matches!(metric, ParkMetric::Revenue | ParkMetric::RevenueGrowth);
        if needs_year && !(1800..=2200).contains(&req.year) {
            return Err(QueryError::invalid(
                "year",
                "is required for revenue metrics (1800..=2200)",
            ));
        }
        let province = norm(&req.province);
        let empty = Agg::default();
        let mut entries: Vec<ParkRankEntry> = Vec::new();
        for (name, park) in &self.parks {
            if !province.is_empty()
                && park
                    .location
                    .as_ref()
                    .is_none_or(|l| *l.province != *province)
            {
                continue;
            }
            let agg = self
                .buckets
                .get(&BucketId::Park(name.clone()))
                .unwrap_or(&empty);
            let year = |y: i32| agg.figures.get(&y).copied();
            let value = match metric {
                ParkMetric::CompanyCount => Some(as_f64(i128::from(agg.companies))),
                ParkMetric::Employees => Some(as_f64(agg.employees)),
                ParkMetric::Investment => Some(as_f64(agg.investment)),
                ParkMetric::Revenue => Some(as_f64(year(req.year).map_or(0, |s| s.revenue))),
                ParkMetric::RevenueGrowth => {
                    match (year(req.year), req.year.checked_sub(1).and_then(year)) {
                        (Some(cur), Some(prev)) => percent(cur.revenue, prev.revenue),
                        _ => None,
                    }
                }
                ParkMetric::Unspecified => None,
            };
            if let Some(value) = value {
                entries.push(ParkRankEntry {
                    park: name.clone(),
                    display_name: park.display_name.clone(),
                    value,
                });
            }
        }
        entries.sort_by(|a, b| {
            b.value
                .total_cmp(&a.value)
                .then_with(|| a.park.cmp(&b.park))
        });
        entries.truncate(usize::try_from(limit).unwrap_or(10));
        Ok(entries)
    }

    /// Relocation records grouped by origin and destination.
    pub fn relocation_flows(
        &self,
        req: &GetRelocationFlowsRequest,
    ) -> Result<Vec<RelocationFlow>, QueryError> {
        let level = level(req.level, "level")?;
        for (field, year) in [("start_year", req.start_year), ("end_year", req.end_year)] {
            if year != 0 && !(1800..=2200).contains(&year) {
                return Err(QueryError::invalid(
                    field,
                    "must be between 1800 and 2200, or 0 for none",
                ));
            }
        }
        if req.end_year != 0 && req.start_year > req.end_year {
            return Err(QueryError::invalid("end_year", "is before start_year"));
        }
        let (from_province, to_province) = (norm(&req.from_province), norm(&req.to_province));
        let flows = self.flows.flows(&FlowQuery {
            level,
            from_province: &from_province,
            to_province: &to_province,
            start_year: req.start_year,
            end_year: req.end_year,
        });
        Ok(flows
            .into_iter()
            .map(|((from, to), count)| RelocationFlow {
                from: Some(self.names.location(&from)),
                to: Some(self.names.location(&to)),
                count,
            })
            .collect())
    }

    /// Where the branches of the companies in a scope are.
    pub fn branch_footprint(
        &self,
        req: &GetBranchFootprintRequest,
    ) -> Result<Vec<BranchRegion>, QueryError> {
        let level = level(req.level, "level")?;
        let window = Window::parse(req.start.as_ref(), req.end.as_ref(), "start", "end")?;
        let resolved = self.resolve(req.parent_scope.as_ref(), "parent_scope")?;
        let agg = self.merged(&resolved.buckets);
        Ok(agg
            .footprint
            .regions(&window, level)
            .into_iter()
            .map(|(r, branch_count)| BranchRegion {
                location: Some(self.names.location(&r)),
                branch_count,
            })
            .collect())
    }

    /// A metric of a scope over time.
    pub fn time_series(
        &self,
        req: &GetTimeSeriesRequest,
    ) -> Result<Vec<TimeSeriesPoint>, QueryError> {
        let metric = match SeriesMetric::try_from(req.metric) {
            Ok(SeriesMetric::Unspecified) | Err(_) => {
                return Err(QueryError::invalid(
                    "metric",
                    "must be one of the SERIES_METRIC_* values",
                ));
            }
            Ok(m) => m,
        };
        let monthly = match Granularity::try_from(req.granularity) {
            Ok(Granularity::Year) => false,
            Ok(Granularity::Month) => true,
            _ => {
                return Err(QueryError::invalid(
                    "granularity",
                    "must be GRANULARITY_YEAR or GRANULARITY_MONTH",
                ));
            }
        };
        let yearly_sums = matches!(metric, SeriesMetric::Revenue | SeriesMetric::OutputValue);
        if monthly && yearly_sums {
            return Err(QueryError::invalid(
                "granularity",
                "revenue and output value are yearly figures",
            ));
        }
        let window = Window::parse(req.start.as_ref(), req.end.as_ref(), "start", "end")?;
        let resolved = self.resolve(req.scope.as_ref(), "scope")?;
        let agg = self.merged(&resolved.buckets);

        let values: Vec<((i32, i32), i128)> = if yearly_sums {
            agg.figures
                .iter()
                .filter(|(year, _)| window_years(&window, **year))
                .map(|(year, sum)| {
                    let YearSum {
                        revenue, output, ..
                    } = *sum;
                    let v = if metric == SeriesMetric::Revenue {
                        revenue
                    } else {
                        output
                    };
                    ((*year, 0), v)
                })
                .collect()
        } else {
            let source = match metric {
                SeriesMetric::CompaniesFounded => &agg.founded,
                SeriesMetric::BranchesOpened => &agg.branches_founded,
                _ => &agg.relocations,
            };
            source.by_period(&window, monthly)
        };
        let points: Vec<((i32, i32), i128)> = match window.bounds() {
            Some((start, end)) => {
                // Both are in period order: one walk fills the gaps.
                let mut values = values.into_iter().peekable();
                periods(start, end, monthly)?
                    .into_iter()
                    .map(|p| {
                        while values.next_if(|(q, _)| *q < p).is_some() {}
                        let value = values.next_if(|(q, _)| *q == p);
                        (p, value.map_or(0, |(_, v)| v))
                    })
                    .collect()
            }
            None => values.into_iter().filter(|(_, v)| *v != 0).collect(),
        };
        Ok(points
            .into_iter()
            .map(|((year, month), v)| TimeSeriesPoint {
                period: Some(Date {
                    year,
                    month,
                    day: 0,
                }),
                value: as_f64(v),
            })
            .collect())
    }
}

/// Whether a year's figures fall in the window: a year is dated by its
/// earliest day, like any partial date.
fn window_years(w: &Window, year: i32) -> bool {
    w.admits(Some(Ymd {
        year,
        month: 0,
        day: 0,
    }))
}

fn periods(start: Ymd, end: Ymd, monthly: bool) -> Result<Vec<(i32, i32)>, QueryError> {
    let too_many = || {
        QueryError::invalid(
            "end",
            format!("the window spans more than {MAX_PERIODS} periods"),
        )
    };
    if monthly {
        let first = i64::from(start.year) * 12 + i64::from(start.month.max(1)) - 1;
        let last =
            i64::from(end.year) * 12 + i64::from(if end.month == 0 { 12 } else { end.month }) - 1;
        let n = usize::try_from(last - first + 1).unwrap_or(0);
        if n > MAX_PERIODS {
            return Err(too_many());
        }
        Ok((first..=last)
            .filter_map(|m| Some((i32::try_from(m / 12).ok()?, i32::try_from(m % 12 + 1).ok()?)))
            .collect())
    } else {
        // Years are within 1800..=2200 (`Window::parse`): far fewer than
        // MAX_PERIODS.
        Ok((start.year..=end.year).map(|y| (y, 0)).collect())
    }
}

fn level(value: i32, field: &str) -> Result<Level, QueryError> {
    match RegionLevel::try_from(value) {
        Ok(RegionLevel::Province) => Ok(Level::Province),
        Ok(RegionLevel::City) => Ok(Level::City),
        _ => Err(QueryError::invalid(
            field,
            "must be REGION_LEVEL_PROVINCE or REGION_LEVEL_CITY",
        )),
    }
}

fn figures(map: &BTreeMap<i32, YearSum>) -> Vec<YearFigures> {
    map.iter()
        .map(|(year, sum)| {
            let prev = year.checked_sub(1).and_then(|y| map.get(&y));
            YearFigures {
                year: *year,
                revenue_cny: sat(sum.revenue),
                output_value_cny: sat(sum.output),
                revenue_yoy_percent: prev.and_then(|p| percent(sum.revenue, p.revenue)),
                output_value_yoy_percent: prev.and_then(|p| percent(sum.output, p.output)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use zgc_proto::registry::v1::{ChangeEvent, ChangeType, Entity, Park, entity};
    use zgc_proto::types::v1::Location;

    use super::*;

    fn park_scope(name: &str, include_affiliates: bool) -> Scope {
        Scope {
            selector: Some(scope::Selector::Park(name.into())),
            include_affiliates,
        }
    }

    fn engine_with_an_affiliate() -> Engine {
        let mut engine = Engine::new();
        for (name, parent) in [("parks/zgc", ""), ("parks/baoding", "parks/zgc")] {
            let event = ChangeEvent {
                revision: 1,
                r#type: ChangeType::Created as i32,
                before: None,
                after: Some(Entity {
                    kind: Some(entity::Kind::Park(Park {
                        name: name.into(),
                        parent_park: parent.into(),
                        ..Default::default()
                    })),
                }),
            };
            engine.apply(&event).unwrap();
        }
        engine
    }

    #[test]
    fn sums_beyond_i64_saturate_towards_their_sign() {
        assert_eq!(sat(i128::MAX), i64::MAX);
        assert_eq!(sat(i128::MIN), i64::MIN);
        assert_eq!(sat(-5), -5);
    }

    /// A park with affiliates is read from its tree bucket once the batch
    /// that made it one has ended, from its affiliates' buckets before,
    /// and from its own bucket alone without `include_affiliates`.
    #[test]
    fn a_park_scope_reads_the_buckets_that_are_up_to_date() {
        let mut engine = engine_with_an_affiliate();
        let affiliates = |e: &Engine| {
            e.resolve(Some(&park_scope("parks/zgc", true)), "scope")
                .unwrap()
                .buckets
        };
        assert_eq!(
            affiliates(&engine),
            vec![
                BucketId::Park("parks/zgc".into()),
                BucketId::Park("parks/baoding".into())
            ]
        );
        engine.set_revision(1);
        assert_eq!(
            affiliates(&engine),
            vec![BucketId::ParkTree("parks/zgc".into())]
        );
        let alone = engine
            .resolve(Some(&park_scope("parks/zgc", false)), "scope")
            .unwrap();
        assert_eq!(alone.buckets, vec![BucketId::Park("parks/zgc".into())]);
        let leaf = engine
            .resolve(Some(&park_scope("parks/baoding", true)), "scope")
            .unwrap();
        assert_eq!(leaf.buckets, vec![BucketId::Park("parks/baoding".into())]);
    }

    #[test]
    fn a_city_scope_needs_both_province_and_city() {
        let engine = Engine::new();
        for (province, city) in [("Hebei", ""), ("", "Baoding")] {
            let scope = Scope {
                selector: Some(scope::Selector::City(Location {
                    province: province.into(),
                    city: city.into(),
                    ..Default::default()
                })),
                include_affiliates: false,
            };
            assert!(
                engine.summary(Some(&scope)).is_err(),
                "{province:?} {city:?}"
            );
        }
    }

    #[test]
    fn flows_take_a_window_of_years_that_does_not_end_before_it_starts() {
        let engine = Engine::new();
        // The window is checked with no flows to count.
        let flows = |start_year, end_year| {
            engine.relocation_flows(&GetRelocationFlowsRequest {
                level: RegionLevel::Province as i32,
                start_year,
                end_year,
                ..Default::default()
            })
        };
        assert!(flows(2017, 2016).is_err());
        assert!(flows(2016, 2016).is_ok());
        assert!(flows(2016, 0).is_ok());
        assert!(flows(0, 2016).is_ok());
    }

    #[test]
    fn a_monthly_series_spans_at_most_max_periods_months() {
        let engine = Engine::new();
        let series = |end: Date| {
            engine.time_series(&GetTimeSeriesRequest {
                scope: Some(Scope {
                    selector: Some(scope::Selector::All(true)),
                    include_affiliates: false,
                }),
                metric: SeriesMetric::CompaniesFounded as i32,
                granularity: Granularity::Month as i32,
                start: Some(Date {
                    year: 1900,
                    month: 1,
                    day: 0,
                }),
                end: Some(end),
                ..Default::default()
            })
        };
        let hundred_years = series(Date {
            year: 1999,
            month: 12,
            day: 0,
        })
        .unwrap();
        assert_eq!(hundred_years.len(), MAX_PERIODS);
        assert!(
            series(Date {
                year: 2000,
                month: 1,
                day: 0,
            })
            .is_err()
        );
    }
}
