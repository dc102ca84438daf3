//! The registry's own metrics, besides the RPC metrics every server
//! records.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Semaphore;
use zgc_server::metrics::{Metrics, duration_histogram, size_histogram};
use zgc_store::{CommitHook, Store};

use crate::listing::ScanLimit;

/// The group-commit metrics, fed by the store's commit hook.
pub fn commit_hook(metrics: &Metrics) -> CommitHook {
    let batch: Histogram = size_histogram();
    let flush: Histogram = duration_histogram();
    metrics.register(
        "zgc_registry_commit_batch_writes",
        "Writes made durable together by one group commit",
        batch.clone(),
    );
    metrics.register(
        "zgc_registry_flush_seconds",
        "Time to make a group of writes durable (flush and fsync)",
        flush.clone(),
    );
    CommitHook(Arc::new(move |writes, took| {
        batch.observe(writes as f64);
        flush.observe(took.as_secs_f64());
    }))
}

/// Gauges read from the store, the watcher limit and the scan limit at
/// each scrape.
pub fn register_gauges(
    metrics: &Metrics,
    store: Store,
    watchers: Arc<Semaphore>,
    max_watchers: usize,
    scans: ScanLimit,
) {
    let revision: Gauge = Gauge::default();
    let bytes: Gauge = Gauge::default();
    let open_watchers: Gauge = Gauge::default();
    let ready: Gauge = Gauge::default();
    let in_memory: Gauge = Gauge::default();
    let in_memory_bytes: Gauge = Gauge::default();
    let in_memory_loaded: Gauge = Gauge::default();
    let indexed: Gauge = Gauge::default();
    let index_bytes: Gauge = Gauge::default();
    let indexes_loaded: Gauge = Gauge::default();
    let scans_running: Gauge = Gauge::default();
    let scans_waiting: Gauge = Gauge::default();
    let scans_limit: Gauge = Gauge::default();
    metrics.register(
        "zgc_registry_revision",
        "The last durable revision",
        revision.clone(),
    );
    metrics.register(
        "zgc_registry_store_bytes",
        "Size of the sled database on disk",
        bytes.clone(),
    );
    metrics.register(
        "zgc_registry_watchers",
        "Open WatchChanges streams",
        open_watchers.clone(),
    );
    metrics.register(
        "zgc_registry_store_ready",
        "1 when the store serves, 0 while it reopens after a storage failure",
        ready.clone(),
    );
    metrics.register(
        "zgc_registry_companies_in_memory",
        "Companies held in memory for reads (0 when off)",
        in_memory.clone(),
    );
    metrics.register(
        "zgc_registry_companies_in_memory_bytes",
        "Memory the companies held take, in bytes (0 when off)",
        in_memory_bytes.clone(),
    );
    metrics.register(
        "zgc_registry_companies_in_memory_loaded",
        "1 once every stored company is held in memory (reads by ID then never go to disk), 0 while loading or when off",
        in_memory_loaded.clone(),
    );
    metrics.register(
        "zgc_registry_listing_indexed",
        "Parks and companies in the listing indexes (0 when off)",
        indexed.clone(),
    );
    metrics.register(
        "zgc_registry_listing_index_bytes",
        "Memory the listing indexes take, in bytes, about (0 when off)",
        index_bytes.clone(),
    );
    metrics.register(
        "zgc_registry_listing_indexes_loaded",
        "1 once every stored park and company is indexed (listings then read the indexes), 0 while loading or when off",
        indexes_loaded.clone(),
    );
    metrics.register(
        "zgc_registry_scans_running",
        "List pages being read from the store now",
        scans_running.clone(),
    );
    metrics.register(
        "zgc_registry_scans_waiting",
        "List pages waiting for the scan limit",
        scans_waiting.clone(),
    );
    metrics.register(
        "zgc_registry_scans_limit",
        "Most list pages read from the store at once",
        scans_limit.clone(),
    );
    metrics.on_scrape(move || {
        revision.set(i64::try_from(store.revision()).unwrap_or(i64::MAX));
        if let Ok(size) = store.size_on_disk() {
            bytes.set(i64::try_from(size).unwrap_or(i64::MAX));
        }
        let open = max_watchers.saturating_sub(watchers.available_permits());
        open_watchers.set(i64::try_from(open).unwrap_or(i64::MAX));
        let is_ready = *store.status().borrow() == zgc_store::StoreStatus::Ready;
        ready.set(i64::from(is_ready));
        let held = store.companies_in_memory().unwrap_or_default();
        in_memory.set(i64::try_from(held.companies).unwrap_or(i64::MAX));
        in_memory_bytes.set(i64::try_from(held.bytes).unwrap_or(i64::MAX));
        in_memory_loaded.set(i64::from(held.loaded));
        let indexes = store.indexes().unwrap_or_default();
        indexed.set(i64::try_from(indexes.companies + indexes.parks).unwrap_or(i64::MAX));
        index_bytes.set(i64::try_from(indexes.bytes).unwrap_or(i64::MAX));
        indexes_loaded.set(i64::from(indexes.loaded));
        scans_running.set(i64::try_from(scans.running()).unwrap_or(i64::MAX));
        scans_waiting.set(i64::try_from(scans.waiting()).unwrap_or(i64::MAX));
        scans_limit.set(i64::try_from(scans.limit()).unwrap_or(i64::MAX));
    });
}
