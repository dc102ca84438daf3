//! Durable writes per second with the default `fsync` durability: one
//! writer at a time (every write pays its own flush and fsync), 64
//! concurrent writers (group commit shares them), and the storage limit:
//! a raw sled loop that inserts, flushes and fsyncs once per write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zgc_proto::registry::v1::Company;
use zgc_proto::types::v1::Location;
use zgc_store::{Store, StoreConfig, Write};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn company() -> Company {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Company {
        name: format!("companies/c{n}"),
        uid: format!("u{n}"),
        display_name: format!("Company {n}"),
        location: Some(Location {
            province: "Hebei".into(),
            city: "Baoding".into(),
            district: String::new(),
        }),
        employees: 10,
        ..Default::default()
    }
}

async fn write_one(store: &Store) {
    store
        .write(Write::CreateCompanies {
            companies: vec![company()],
            request: None,
        })
        .await
        .unwrap();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(async { Store::open(StoreConfig::new(dir.path())).unwrap() });
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function("create, 1 writer", |b| {
        b.to_async(&runtime).iter(|| write_one(&store))
    });

    const WRITERS: u64 = 64;
    group.throughput(Throughput::Elements(WRITERS));
    group.bench_function("create, 64 writers (group commit)", |b| {
        b.to_async(&runtime).iter(|| async {
            let tasks: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move { write_one(&store).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });

    // The storage limit: what sled and the disk do for one durable write.
    let raw_dir = tempfile::tempdir().unwrap();
    let db = sled::open(raw_dir.path()).unwrap();
    let tree = db.open_tree("companies").unwrap();
    let log = File::open(raw_dir.path().join("db")).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw sled: insert, flush, fsync", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let c = company();
                tree.insert(c.name.as_bytes(), prost::Message::encode_to_vec(&c))
                    .unwrap();
                db.flush().unwrap();
                log.sync_data().unwrap();
            }
            start.elapsed()
        })
    });
    group.finish();
    runtime.block_on(store.close()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
