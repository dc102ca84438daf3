//! `zgc stats …`: every stats RPC, as tables and terminal charts or JSON.
//! One function per subcommand builds its request and prints the answer;
//! [`render`] turns answers into text (pure, tested).

pub mod render;

use zgc_proto::json;
use zgc_proto::stats::v1::*;

use crate::args;
use crate::cli::{self, Global, Output};
use crate::connect::{self, Stats};
use crate::error::CliError;
use crate::output::emit;

/// Runs a stats subcommand.
pub async fn run(command: cli::Stats, g: &Global) -> Result<(), CliError> {
    let mut client = connect::stats(&g.stats, &g.connection).await?;
    match command {
        cli::Stats::Summary(a) => summary(&mut client, a, g.output).await,
        cli::Stats::Rank(a) => rank(&mut client, a, g.output).await,
        cli::Stats::Flows(a) => flows(&mut client, a, g.output).await,
        cli::Stats::Footprint(a) => footprint(&mut client, a, g.output).await,
        cli::Stats::Series(a) => series(&mut client, a, g.output).await,
        cli::Stats::Watch(a) => watch(&mut client, a, g.output).await,
    }
}

async fn summary(client: &mut Stats, a: cli::SummaryArgs, output: Output) -> Result<(), CliError> {
    let request = GetSummaryRequest {
        scope: Some(args::scope(&a.scope, a.affiliates)?),
        min_revision: a.fresh.min_revision,
    };
    let summary = client
        .get_summary(zgc_client::idempotent(request))
        .await?
        .into_inner();
    emit(output, &summary, render::summary)
}

async fn rank(client: &mut Stats, a: cli::RankArgs, output: Output) -> Result<(), CliError> {
    let metric = park_metric(a.metric);
    let request = RankParksRequest {
        metric: metric as i32,
        year: a.year,
        province: a.province.unwrap_or_default(),
        limit: a.limit,
        min_revision: a.fresh.min_revision,
    };
    let ranking = client
        .rank_parks(zgc_client::idempotent(request))
        .await?
        .into_inner();
    emit(output, &ranking, |r| render::ranking(metric, r))
}

async fn flows(client: &mut Stats, a: cli::FlowsArgs, output: Output) -> Result<(), CliError> {
    let request = GetRelocationFlowsRequest {
        from_province: a.from.unwrap_or_default(),
        to_province: a.to.unwrap_or_default(),
        start_year: a.start_year,
        end_year: a.end_year,
        level: region_level(a.level) as i32,
        min_revision: a.fresh.min_revision,
    };
    let flows = client
        .get_relocation_flows(zgc_client::idempotent(request))
        .await?
        .into_inner();
    emit(output, &flows, render::flows)
}

async fn footprint(
    client: &mut Stats,
    a: cli::FootprintArgs,
    output: Output,
) -> Result<(), CliError> {
    let request = GetBranchFootprintRequest {
        parent_scope: Some(args::scope(&a.scope, a.affiliates)?),
        start: args::opt_date(a.start.as_deref())?,
        end: args::opt_date(a.end.as_deref())?,
        level: region_level(a.level) as i32,
        min_revision: a.fresh.min_revision,
    };
    let footprint = client
        .get_branch_footprint(zgc_client::idempotent(request))
        .await?
        .into_inner();
    emit(output, &footprint, render::footprint)
}

async fn series(client: &mut Stats, a: cli::SeriesArgs, output: Output) -> Result<(), CliError> {
    let metric = series_metric(a.metric);
    let granularity = match a.granularity {
        cli::Granularity::Year => Granularity::Year,
        cli::Granularity::Month => Granularity::Month,
    };
    let request = GetTimeSeriesRequest {
        scope: Some(args::scope(&a.scope, a.affiliates)?),
        metric: metric as i32,
        granularity: granularity as i32,
        start: args::opt_date(a.start.as_deref())?,
        end: args::opt_date(a.end.as_deref())?,
        min_revision: a.fresh.min_revision,
    };
    let series = client
        .get_time_series(zgc_client::idempotent(request))
        .await?
        .into_inner();
    emit(output, &series, |s| render::series(metric, s))
}

async fn watch(
    client: &mut Stats,
    a: cli::WatchSummaryArgs,
    output: Output,
) -> Result<(), CliError> {
    let request = WatchSummaryRequest {
        scope: Some(args::scope(&a.scope, a.affiliates)?),
        min_interval: Some(interval(a.interval_ms)),
        min_revision: 0,
    };
    let mut stream = client
        .watch_summary(zgc_client::idempotent(request))
        .await?
        .into_inner();
    let mut seen = 0;
    while let Some(summary) = stream.message().await? {
        match output {
            // One line per summary, so the stream can be piped.
            Output::Json => println!(
                "{}",
                json::to_string(&summary).map_err(|e| CliError::Input(e.to_string()))?
            ),
            Output::Table => println!("{}", render::summary_line(&summary)),
        }
        seen += 1;
        if a.limit.is_some_and(|limit| seen >= limit) {
            break;
        }
    }
    Ok(())
}

fn park_metric(m: cli::RankMetric) -> ParkMetric {
    match m {
        cli::RankMetric::CompanyCount => ParkMetric::CompanyCount,
        cli::RankMetric::Employees => ParkMetric::Employees,
        cli::RankMetric::Investment => ParkMetric::Investment,
        cli::RankMetric::Revenue => ParkMetric::Revenue,
        cli::RankMetric::RevenueGrowth => ParkMetric::RevenueGrowth,
    }
}

fn series_metric(m: cli::SeriesMetric) -> SeriesMetric {
    match m {
        cli::SeriesMetric::Founded => SeriesMetric::CompaniesFounded,
        cli::SeriesMetric::Branches => SeriesMetric::BranchesOpened,
        cli::SeriesMetric::Relocations => SeriesMetric::RelocationsIn,
        cli::SeriesMetric::Revenue => SeriesMetric::Revenue,
        cli::SeriesMetric::OutputValue => SeriesMetric::OutputValue,
    }
}

fn region_level(l: cli::Level) -> RegionLevel {
    match l {
        cli::Level::Province => RegionLevel::Province,
        cli::Level::City => RegionLevel::City,
    }
}

/// `--interval-ms` as a protobuf duration.
fn interval(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_keep_seconds_and_milliseconds() {
        assert_eq!(
            interval(1500),
            prost_types::Duration {
                seconds: 1,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            interval(999),
            prost_types::Duration {
                seconds: 0,
                nanos: 999_000_000
            }
        );
        assert_eq!(
            interval(u64::MAX).seconds,
            i64::try_from(u64::MAX / 1000).unwrap()
        );
    }
}
