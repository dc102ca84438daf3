//! The stats service's own metrics, besides the RPC metrics every server
//! records.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use zgc_server::metrics::Metrics;

use crate::state::State;

/// What the follower records.
#[derive(Clone, Default)]
pub struct FollowerMetrics {
    /// Times the registry stream was re-opened after an interruption.
    pub reconnects: Counter,
    /// Times the aggregates were rebuilt from a fresh snapshot.
    pub rebuilds: Counter,
    /// The newest registry revision the follower has heard of.
    pub registry_revision: Gauge,
}

/// What the summary cache records.
#[derive(Clone, Default)]
pub struct CacheMetrics {
    /// GetSummary calls answered from the cache.
    pub hits: Counter,
    /// GetSummary calls that built their summary.
    pub misses: Counter,
}

/// The stats service's metrics, by who records them.
pub struct StatsMetrics {
    /// The follower's.
    pub follower: FollowerMetrics,
    /// The summary cache's.
    pub summaries: CacheMetrics,
}

/// Registers the stats metrics into `metrics`.
pub fn register(metrics: &Metrics, state: Arc<State>) -> StatsMetrics {
    let follower = FollowerMetrics::default();
    let summaries = CacheMetrics::default();
    metrics.register(
        "zgc_stats_summary_cache_hits",
        "GetSummary calls answered from the cache of encoded summaries",
        summaries.hits.clone(),
    );
    metrics.register(
        "zgc_stats_summary_cache_misses",
        "GetSummary calls that built their summary (first call for the scope, or changes applied since)",
        summaries.misses.clone(),
    );
    let applied: Gauge = Gauge::default();
    let lag: Gauge = Gauge::default();
    metrics.register(
        "zgc_stats_applied_revision",
        "The registry revision the figures reflect",
        applied.clone(),
    );
    metrics.register(
        "zgc_stats_registry_revision",
        "The newest registry revision the follower has heard of",
        follower.registry_revision.clone(),
    );
    metrics.register(
        "zgc_stats_lag_revisions",
        "Revisions the figures are behind the newest registry revision heard of",
        lag.clone(),
    );
    metrics.register(
        "zgc_stats_watch_reconnects",
        "Times the registry change stream was re-opened after an interruption",
        follower.reconnects.clone(),
    );
    metrics.register(
        "zgc_stats_rebuilds",
        "Times the aggregates were rebuilt from a fresh registry snapshot",
        follower.rebuilds.clone(),
    );
    let heard = follower.registry_revision.clone();
    metrics.on_scrape(move || {
        let now = i64::try_from(state.applied()).unwrap_or(i64::MAX);
        applied.set(now);
        lag.set(heard.get().saturating_sub(now).max(0));
    });
    StatsMetrics {
        follower,
        summaries,
    }
}
