//! `zgc stats …`: every stats RPC, as tables and terminal charts or JSON.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use zgc_proto::json;
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::Location;

use crate::args;
use crate::charts::{bars, line, number};
use crate::cli::{self, Global, Output};
use crate::connect;
use crate::error::CliError;

fn print_json<M: json::Named>(m: &M) -> Result<(), CliError> {
    let v = json::to_value(m).map_err(|e| CliError::Input(e.to_string()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| CliError::Input(e.to_string()))?
    );
    Ok(())
}

fn region(l: &Option<Location>) -> String {
    match l {
        Some(l) if l.city.is_empty() => l.province.clone(),
        Some(l) => format!("{}/{}", l.province, l.city),
        None => String::new(),
    }
}

fn level(l: cli::Level) -> i32 {
    match l {
        cli::Level::Province => RegionLevel::Province as i32,
        cli::Level::City => RegionLevel::City as i32,
    }
}

/// Renders a summary for people.
pub fn render_summary(s: &Summary) -> String {
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
    let top = |items: Vec<(String, f64)>| items.into_iter().take(15).collect::<Vec<_>>();
    out.push_str(&bars(
        "Companies by sector",
        &top(s
            .sectors
            .iter()
            .map(|x| (x.sector.clone(), x.company_count as f64))
            .collect()),
    ));
    out.push('\n');
    out.push_str(&bars(
        "Relocated in from",
        &top(s
            .relocation_origins
            .iter()
            .map(|x| (x.province.clone(), x.company_count as f64))
            .collect()),
    ));
    if !s.figures_by_year.is_empty() {
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
        out.push_str(&format!("\nAnnual figures\n{f}\n"));
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
    out.push_str(&format!("\nas of registry revision {}\n", s.as_of_revision));
    out
}

/// Runs a stats subcommand.
pub async fn run(command: cli::Stats, g: &Global) -> Result<(), CliError> {
    let mut s = connect::stats(&g.stats, &g.connection).await?;
    match command {
        cli::Stats::Summary {
            scope,
            affiliates,
            fresh,
        } => {
            let scope = args::scope(&scope, affiliates)?;
            let summary = s
                .get_summary(GetSummaryRequest {
                    scope: Some(scope),
                    min_revision: fresh.min_revision,
                })
                .await?
                .into_inner();
            match g.output {
                Output::Json => print_json(&summary),
                Output::Table => {
                    print!("{}", render_summary(&summary));
                    Ok(())
                }
            }
        }
        cli::Stats::Rank {
            metric,
            year,
            province,
            limit,
            fresh,
        } => {
            let metric = match metric {
                cli::RankMetric::CompanyCount => ParkMetric::CompanyCount,
                cli::RankMetric::Employees => ParkMetric::Employees,
                cli::RankMetric::Investment => ParkMetric::Investment,
                cli::RankMetric::Revenue => ParkMetric::Revenue,
                cli::RankMetric::RevenueGrowth => ParkMetric::RevenueGrowth,
            };
            let resp = s
                .rank_parks(RankParksRequest {
                    metric: metric as i32,
                    year,
                    province: province.unwrap_or_default(),
                    limit,
                    min_revision: fresh.min_revision,
                })
                .await?
                .into_inner();
            match g.output {
                Output::Json => print_json(&resp),
                Output::Table => {
                    let rows: Vec<(String, f64)> = resp
                        .entries
                        .iter()
                        .map(|e| (e.display_name.clone(), e.value))
                        .collect();
                    print!(
                        "{}",
                        bars(
                            &format!(
                                "Parks by {}",
                                metric
                                    .as_str_name()
                                    .trim_start_matches("PARK_METRIC_")
                                    .to_lowercase()
                                    .replace('_', " ")
                            ),
                            &rows
                        )
                    );
                    println!("as of registry revision {}", resp.as_of_revision);
                    Ok(())
                }
            }
        }
        cli::Stats::Flows {
            from,
            to,
            start_year,
            end_year,
            level: l,
            fresh,
        } => {
            let resp = s
                .get_relocation_flows(GetRelocationFlowsRequest {
                    from_province: from.unwrap_or_default(),
                    to_province: to.unwrap_or_default(),
                    start_year,
                    end_year,
                    level: level(l),
                    min_revision: fresh.min_revision,
                })
                .await?
                .into_inner();
            match g.output {
                Output::Json => print_json(&resp),
                Output::Table => {
                    let rows: Vec<(String, f64)> = resp
                        .flows
                        .iter()
                        .map(|f| {
                            (
                                format!("{} → {}", region(&f.from), region(&f.to)),
                                f.count as f64,
                            )
                        })
                        .collect();
                    print!("{}", bars("Relocations", &rows));
                    println!("as of registry revision {}", resp.as_of_revision);
                    Ok(())
                }
            }
        }
        cli::Stats::Footprint {
            scope,
            affiliates,
            start,
            end,
            level: l,
            fresh,
        } => {
            let resp = s
                .get_branch_footprint(GetBranchFootprintRequest {
                    parent_scope: Some(args::scope(&scope, affiliates)?),
                    start: args::opt_date(start.as_deref())?,
                    end: args::opt_date(end.as_deref())?,
                    level: level(l),
                    min_revision: fresh.min_revision,
                })
                .await?
                .into_inner();
            match g.output {
                Output::Json => print_json(&resp),
                Output::Table => {
                    let rows: Vec<(String, f64)> = resp
                        .regions
                        .iter()
                        .map(|r| (region(&r.location), r.branch_count as f64))
                        .collect();
                    let total: f64 = rows.iter().map(|r| r.1).sum();
                    print!("{}", bars("Branches by region", &rows));
                    println!(
                        "{} branches; as of registry revision {}",
                        number(total),
                        resp.as_of_revision
                    );
                    Ok(())
                }
            }
        }
        cli::Stats::Series {
            scope,
            affiliates,
            metric,
            granularity,
            start,
            end,
            fresh,
        } => {
            let metric = match metric {
                cli::SeriesMetric::Founded => SeriesMetric::CompaniesFounded,
                cli::SeriesMetric::Branches => SeriesMetric::BranchesOpened,
                cli::SeriesMetric::Relocations => SeriesMetric::RelocationsIn,
                cli::SeriesMetric::Revenue => SeriesMetric::Revenue,
                cli::SeriesMetric::OutputValue => SeriesMetric::OutputValue,
            };
            let granularity = match granularity {
                cli::Granularity::Year => Granularity::Year,
                cli::Granularity::Month => Granularity::Month,
            };
            let resp = s
                .get_time_series(GetTimeSeriesRequest {
                    scope: Some(args::scope(&scope, affiliates)?),
                    metric: metric as i32,
                    granularity: granularity as i32,
                    start: args::opt_date(start.as_deref())?,
                    end: args::opt_date(end.as_deref())?,
                    min_revision: fresh.min_revision,
                })
                .await?
                .into_inner();
            match g.output {
                Output::Json => print_json(&resp),
                Output::Table => {
                    let label = |d: &Option<zgc_proto::types::v1::Date>| match d {
                        Some(d) if d.month > 0 => format!("{}-{:02}", d.year, d.month),
                        Some(d) => d.year.to_string(),
                        None => String::new(),
                    };
                    let labels: Vec<String> =
                        resp.points.iter().map(|p| label(&p.period)).collect();
                    let values: Vec<f64> = resp.points.iter().map(|p| p.value).collect();
                    let title = metric
                        .as_str_name()
                        .trim_start_matches("SERIES_METRIC_")
                        .to_lowercase()
                        .replace('_', " ");
                    print!("{}", line(&title, &labels, &values));
                    let rows: Vec<(String, f64)> = labels.into_iter().zip(values).collect();
                    print!("{}", bars("", &rows));
                    println!(
                        "total {}; as of registry revision {}",
                        number(rows.iter().map(|r| r.1).sum()),
                        resp.as_of_revision
                    );
                    Ok(())
                }
            }
        }
        cli::Stats::Watch {
            scope,
            affiliates,
            interval_ms,
            limit,
        } => {
            let interval = prost_types::Duration {
                seconds: i64::try_from(interval_ms / 1000).unwrap_or(i64::MAX),
                nanos: i32::try_from((interval_ms % 1000) * 1_000_000).unwrap_or(0),
            };
            let mut stream = s
                .watch_summary(WatchSummaryRequest {
                    scope: Some(args::scope(&scope, affiliates)?),
                    min_interval: Some(interval),
                    min_revision: 0,
                })
                .await?
                .into_inner();
            let mut n = 0;
            while let Some(summary) = stream.message().await? {
                match g.output {
                    Output::Json => println!(
                        "{}",
                        json::to_string(&summary).map_err(|e| CliError::Input(e.to_string()))?
                    ),
                    Output::Table => println!(
                        "revision {}: {} companies, {} parks, {} employees, {} branches",
                        summary.as_of_revision,
                        number(summary.company_count as f64),
                        number(summary.park_count as f64),
                        number(summary.employees as f64),
                        number(summary.branch_count as f64)
                    ),
                }
                n += 1;
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
            }
            Ok(())
        }
    }
}
