//! The engine's cost per query, on the scenario's parks and 100,000
//! generated companies: what the stats service spends inside its read lock
//! per call, apart from gRPC. `zgc-bench` compares whole calls with the
//! transport (BENCHMARKS.md); this finds where a query's own time goes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use zgc_proto::registry::v1::{ChangeEvent, ChangeType};
use zgc_proto::stats::v1::{
    GetBranchFootprintRequest, GetBranchFootprintResponse, GetRelocationFlowsRequest,
    GetRelocationFlowsResponse, GetTimeSeriesRequest, GetTimeSeriesResponse, Granularity,
    RegionLevel, Scope, SeriesMetric, scope,
};
use zgc_proto::types::v1::Date;
use zgc_stats_engine::Engine;

const COMPANIES: u64 = 100_000;

fn engine() -> Engine {
    let mut engine = Engine::new();
    for (i, e) in zgc_dataset::generate(COMPANIES, 7).enumerate() {
        let event = ChangeEvent {
            revision: i as u64 + 1,
            r#type: ChangeType::Created as i32,
            before: None,
            after: Some(e),
        };
        engine.apply(&event).expect("applies");
    }
    engine.set_revision(COMPANIES);
    engine
}

fn everything() -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    })
}

fn bench(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("query");

    let flows = GetRelocationFlowsRequest {
        level: RegionLevel::City as i32,
        ..Default::default()
    };
    group.bench_function("relocation flows by city", |b| {
        b.iter(|| engine.relocation_flows(&flows).unwrap())
    });
    group.bench_function("relocation flows by city, encoded", |b| {
        b.iter(|| {
            GetRelocationFlowsResponse {
                flows: engine.relocation_flows(&flows).unwrap(),
                as_of_revision: 1,
            }
            .encode_to_vec()
        })
    });

    let footprint = GetBranchFootprintRequest {
        parent_scope: everything(),
        level: RegionLevel::City as i32,
        ..Default::default()
    };
    group.bench_function("branch footprint by city", |b| {
        b.iter(|| engine.branch_footprint(&footprint).unwrap())
    });
    group.bench_function("branch footprint by city, encoded", |b| {
        b.iter(|| {
            GetBranchFootprintResponse {
                regions: engine.branch_footprint(&footprint).unwrap(),
                as_of_revision: 1,
            }
            .encode_to_vec()
        })
    });

    let date = |year, month, day| Some(Date { year, month, day });
    let series = GetTimeSeriesRequest {
        scope: everything(),
        metric: SeriesMetric::CompaniesFounded as i32,
        granularity: Granularity::Month as i32,
        start: date(2000, 1, 1),
        end: date(2025, 12, 31),
        min_revision: 0,
    };
    group.bench_function("monthly series, 26 years", |b| {
        b.iter(|| engine.time_series(&series).unwrap())
    });
    group.bench_function("monthly series, 26 years, encoded", |b| {
        b.iter(|| {
            GetTimeSeriesResponse {
                points: engine.time_series(&series).unwrap(),
                as_of_revision: 1,
            }
            .encode_to_vec()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
