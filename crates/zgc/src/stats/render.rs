//! The stats answers as text for people: tables and terminal charts. Pure.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::{Date, Location};

use crate::charts::{bars, line, number};

/// How many sectors and origins a summary charts at most.
const TOP: usize = 15;

/// `province` or `province/city`.
fn region(l: &Option<Location>) -> String {
    match l {
        Some(l) if l.city.is_empty() => l.province.clone(),
        Some(l) => format!("{}/{}", l.province, l.city),
        None => String::new(),
    }
}

/// `YYYY` or `YYYY-MM`.
fn period(d: &Option<Date>) -> String {
    match d {
        Some(d) if d.month > 0 => format!("{}-{:02}", d.year, d.month),
        Some(d) => d.year.to_string(),
        None => String::new(),
    }
}

/// An enum value's name without its prefix, in words:
/// `PARK_METRIC_REVENUE_GROWTH` → `revenue growth`.
fn words(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

fn revision_line(revision: u64) -> String {
    format!("as of registry revision {revision}\n")
}

/// A summary: its figures, sectors and origins as bars, annual figures
/// with their growth, and companies founded per year as a line.
pub fn summary(s: &Summary) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["figure", "value"]);
    let rows: [(&str, i64); 9] = [
        ("parks", s.park_count),
        ("companies", s.company_count),
        ("branches", s.branch_count),
        ("employees", s.employees),
        ("investment (yuan)", s.investment_cny),
        ("high-tech companies", s.high_tech_company_count),
        ("listed companies", s.listed_company_count),
        ("relocated in", s.relocated_in_count),
        ("relocated out", s.relocated_out_count),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), number(v as f64)]);
    }
    let mut out = format!("{t}\n\n");
    let sectors: Vec<(String, f64)> = s
        .sectors
        .iter()
        .take(TOP)
        .map(|x| (x.sector.clone(), x.company_count as f64))
        .collect();
    out.push_str(&bars("Companies by sector", &sectors));
    out.push('\n');
    let origins: Vec<(String, f64)> = s
        .relocation_origins
        .iter()
        .take(TOP)
        .map(|x| (x.province.clone(), x.company_count as f64))
        .collect();
    out.push_str(&bars("Relocated in from", &origins));
    if !s.figures_by_year.is_empty() {
        out.push_str(&format!("\nAnnual figures\n{}\n", annual_figures(s)));
    }
    if !s.founded_by_year.is_empty() {
        let labels: Vec<String> = s
            .founded_by_year
            .iter()
            .map(|y| y.year.to_string())
            .collect();
        let values: Vec<f64> = s.founded_by_year.iter().map(|y| y.count as f64).collect();
        out.push('\n');
        out.push_str(&line("Companies founded per year", &labels, &values));
    }
    out.push('\n');
    out.push_str(&revision_line(s.as_of_revision));
    out
}

fn annual_figures(s: &Summary) -> Table {
    let mut f = Table::new();
    f.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "year",
        "revenue (yuan)",
        "yoy",
        "output value (yuan)",
        "yoy",
    ]);
    let pct = |p: Option<f64>| p.map_or(String::new(), |p| format!("{p:+.1}%"));
    for y in &s.figures_by_year {
        f.add_row(vec![
            y.year.to_string(),
            number(y.revenue_cny as f64),
            pct(y.revenue_yoy_percent),
            number(y.output_value_cny as f64),
            pct(y.output_value_yoy_percent),
        ]);
    }
    f
}

/// One line per summary, for `zgc stats watch`.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "revision {}: {} companies, {} parks, {} employees, {} branches",
        s.as_of_revision,
        number(s.company_count as f64),
        number(s.park_count as f64),
        number(s.employees as f64),
        number(s.branch_count as f64)
    )
}

/// Parks ranked by `metric`, as bars.
pub fn ranking(metric: ParkMetric, r: &RankParksResponse) -> String {
    let rows: Vec<(String, f64)> = r
        .entries
        .iter()
        .map(|e| (e.display_name.clone(), e.value))
        .collect();
    let title = format!("Parks by {}", words(metric.as_str_name(), "PARK_METRIC_"));
    bars(&title, &rows) + &revision_line(r.as_of_revision)
}

/// Relocations from one region to another, as bars.
pub fn flows(f: &GetRelocationFlowsResponse) -> String {
    let rows: Vec<(String, f64)> = f
        .flows
        .iter()
        .map(|f| {
            let label = format!("{} → {}", region(&f.from), region(&f.to));
            (label, f.count as f64)
        })
        .collect();
    bars("Relocations", &rows) + &revision_line(f.as_of_revision)
}

/// Branches by region, as bars, with their total.
pub fn footprint(f: &GetBranchFootprintResponse) -> String {
    let rows: Vec<(String, f64)> = f
        .regions
        .iter()
        .map(|r| (region(&r.location), r.branch_count as f64))
        .collect();
    let total: i64 = f.regions.iter().map(|r| r.branch_count).sum();
    format!(
        "{}{} branches; {}",
        bars("Branches by region", &rows),
        number(total as f64),
        revision_line(f.as_of_revision)
    )
}

/// A time series of `metric`: a line, the points as bars, their total.
pub fn series(metric: SeriesMetric, s: &GetTimeSeriesResponse) -> String {
    let labels: Vec<String> = s.points.iter().map(|p| period(&p.period)).collect();
    let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
    let title = words(metric.as_str_name(), "SERIES_METRIC_");
    let total: f64 = values.iter().sum();
    let rows: Vec<(String, f64)> = labels.iter().cloned().zip(values.iter().copied()).collect();
    format!(
        "{}{}total {}; {}",
        line(&title, &labels, &values),
        bars("", &rows),
        number(total),
        revision_line(s.as_of_revision)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(province: &str, city: &str) -> Option<Location> {
        Some(Location {
            province: province.into(),
            city: city.into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_summary_shows_its_figures_growth_and_revision() {
        let s = Summary {
            park_count: 1,
            company_count: 1060,
            employees: 14071,
            figures_by_year: vec![
                YearFigures {
                    year: 2022,
                    revenue_cny: 63_100_000_000,
                    ..Default::default()
                },
                YearFigures {
                    year: 2023,
                    revenue_cny: 85_121_900_000,
                    revenue_yoy_percent: Some(34.9),
                    ..Default::default()
                },
            ],
            sectors: vec![SectorCount {
                sector: "electronics".into(),
                company_count: 1060,
            }],
            as_of_revision: 33,
            ..Default::default()
        };
        let text = summary(&s);
        assert!(text.contains("│ companies           ┆ 1,060"), "{text}");
        assert!(text.contains("14,071"), "{text}");
        assert!(text.contains("85,121,900,000 ┆ +34.9%"), "{text}");
        assert!(
            text.contains("Companies by sector\n  electronics"),
            "{text}"
        );
        assert!(text.contains("Relocated in from\n  (none)"), "{text}");
        assert!(
            !text.contains("Companies founded per year"),
            "no line without data: {text}"
        );
        assert!(text.ends_with("as of registry revision 33\n"), "{text}");
    }

    #[test]
    fn a_summary_charts_at_most_the_top_sectors() {
        let s = Summary {
            sectors: (0..20)
                .map(|i| SectorCount {
                    sector: format!("sector-{i:02}"),
                    company_count: 100 - i,
                })
                .collect(),
            ..Default::default()
        };
        let text = summary(&s);
        assert!(text.contains("sector-14"), "{text}");
        assert!(!text.contains("sector-15"), "{text}");
    }

    #[test]
    fn a_watched_summary_is_one_line() {
        let s = Summary {
            as_of_revision: 7,
            company_count: 1234,
            park_count: 2,
            employees: 56789,
            branch_count: 3,
            ..Default::default()
        };
        assert_eq!(
            summary_line(&s),
            "revision 7: 1,234 companies, 2 parks, 56,789 employees, 3 branches"
        );
    }

    #[test]
    fn a_ranking_names_its_metric_and_parks() {
        let r = RankParksResponse {
            entries: vec![
                ParkRankEntry {
                    park: "parks/luquan".into(),
                    display_name: "Luquan".into(),
                    value: 34.9,
                },
                ParkRankEntry {
                    park: "parks/zgc".into(),
                    display_name: "Zhongguancun".into(),
                    value: 10.0,
                },
            ],
            as_of_revision: 5,
        };
        let text = ranking(ParkMetric::RevenueGrowth, &r);
        assert!(text.starts_with("Parks by revenue growth\n"), "{text}");
        assert!(text.contains("  Luquan       █"), "{text}");
        assert!(text.contains(" 34.9\n"), "{text}");
        assert!(text.ends_with("as of registry revision 5\n"), "{text}");
    }

    #[test]
    fn flows_go_from_region_to_region() {
        let f = GetRelocationFlowsResponse {
            flows: vec![RelocationFlow {
                from: loc("Beijing", "Beijing"),
                to: loc("Hebei", ""),
                count: 45,
            }],
            as_of_revision: 9,
        };
        let text = flows(&f);
        assert!(text.contains("  Beijing/Beijing → Hebei "), "{text}");
        assert!(text.contains(" 45\n"), "{text}");
        assert!(text.ends_with("as of registry revision 9\n"), "{text}");
    }

    #[test]
    fn a_footprint_totals_its_branches() {
        let f = GetBranchFootprintResponse {
            regions: vec![
                BranchRegion {
                    location: loc("Hebei", ""),
                    branch_count: 458,
                },
                BranchRegion {
                    location: loc("Tianjin", ""),
                    branch_count: 229,
                },
            ],
            as_of_revision: 33,
        };
        let text = footprint(&f);
        assert!(text.contains("  Hebei   "), "{text}");
        assert!(
            text.ends_with("687 branches; as of registry revision 33\n"),
            "{text}"
        );
    }

    #[test]
    fn a_series_labels_its_periods_and_totals_them() {
        let point = |year, month, value| TimeSeriesPoint {
            period: Some(Date {
                year,
                month,
                day: 0,
            }),
            value,
        };
        let s = GetTimeSeriesResponse {
            points: vec![point(2016, 1, 100.0), point(2016, 7, 129.5)],
            as_of_revision: 4,
        };
        let text = series(SeriesMetric::BranchesOpened, &s);
        assert!(text.starts_with("branches opened\n"), "{text}");
        assert!(text.contains("2016-01 … 2016-07"), "{text}");
        assert!(text.contains("  2016-07 "), "{text}");
        assert!(
            text.ends_with("total 229.5; as of registry revision 4\n"),
            "{text}"
        );
        let yearly = GetTimeSeriesResponse {
            points: vec![point(2023, 0, 1.0)],
            as_of_revision: 4,
        };
        assert!(series(SeriesMetric::Revenue, &yearly).contains("  2023 "));
        let empty = series(SeriesMetric::Revenue, &GetTimeSeriesResponse::default());
        assert!(
            empty.contains("(no data)") && empty.contains("total 0;"),
            "{empty}"
        );
    }
}
