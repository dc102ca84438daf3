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

/// Registers the stats metrics into `metrics`; returns the follower's.
pub fn register(metrics: &Metrics, state: Arc<State>) -> FollowerMetrics {
    let follower = FollowerMetrics::default();
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
    follower
}
