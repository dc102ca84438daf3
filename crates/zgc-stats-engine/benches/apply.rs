//! Events applied per second by the aggregation engine: the stats
//! service's cost per registry change. Creates of generated companies
//! (the scenario's parks and 10,000 companies), then updates moving them
//! between parks, then deletes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zgc_proto::registry::v1::{ChangeEvent, ChangeType, Entity, entity};
use zgc_stats_engine::Engine;

const COMPANIES: u64 = 10_000;

fn creates() -> Vec<ChangeEvent> {
    zgc_dataset::generate(COMPANIES, 7)
        .enumerate()
        .map(|(i, e)| ChangeEvent {
            revision: i as u64 + 1,
            r#type: ChangeType::Created as i32,
            before: None,
            after: Some(e),
        })
        .collect()
}

fn updates(creates: &[ChangeEvent]) -> Vec<ChangeEvent> {
    let mut revision = creates.len() as u64;
    creates
        .iter()
        .filter_map(|c| match c.after.as_ref()?.kind.as_ref()? {
            entity::Kind::Company(company) => {
                let mut moved = company.clone();
                moved.employees = moved.employees.saturating_add(1);
                moved.location = Some(zgc_proto::types::v1::Location {
                    province: "Tianjin".into(),
                    city: "Tianjin".into(),
                    district: String::new(),
                });
                revision += 1;
                Some(ChangeEvent {
                    revision,
                    r#type: ChangeType::Updated as i32,
                    before: c.after.clone(),
                    after: Some(Entity {
                        kind: Some(entity::Kind::Company(moved)),
                    }),
                })
            }
            entity::Kind::Park(_) => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let creates = creates();
    let updates = updates(&creates);
    let mut group = c.benchmark_group("engine");

    group.throughput(Throughput::Elements(creates.len() as u64));
    group.bench_function("apply creates", |b| {
        b.iter_batched(
            Engine::new,
            |mut engine| {
                for e in &creates {
                    engine.apply(e).expect("applies");
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });

    group.throughput(Throughput::Elements(updates.len() as u64));
    group.bench_function("apply updates", |b| {
        b.iter_batched(
            || {
                let mut engine = Engine::new();
                for e in &creates {
                    engine.apply(e).expect("applies");
                }
                engine
            },
            |mut engine| {
                for e in &updates {
                    engine.apply(e).expect("applies");
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
