//! Keeps the engine fed from the registry's `WatchChanges` stream.
//!
//! States:
//! - **Loading** (no position): watch from 0 and build a fresh engine from
//!   the snapshot, off to the side; readers keep the old view (or wait, on
//!   the very first load). When the snapshot's completion mark arrives the
//!   fresh engine is swapped in, and health turns SERVING the first time.
//! - **Following** (a position): apply each message's events under the
//!   write lock, then publish the revision.
//! - **Reconnecting**: after any error or end of stream, wait with
//!   exponential backoff and jitter, then resume from the position:
//!   `start_revision` is the first revision not applied. A revision split
//!   over several messages is applied only once its last part arrives, so
//!   the position is always a whole revision: nothing is missed or counted
//!   twice, and readers never see half a write.
//! - **Rebuilding**: on `REVISION_COMPACTED`, or when the registry's store
//!   id differs from the one the position belongs to, drop the position and
//!   load again (still serving the old view until the swap).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::{ChangeEvent, WatchChangesRequest, WatchChangesResponse};
use zgc_proto::wire::{self, reason};
use zgc_server::health::Health;
use zgc_stats_engine::Engine;

use crate::metrics::FollowerMetrics;
use crate::state::State;

/// Seconds of silence after which a registry stream is taken for dead and
/// reconnected, by default: well past the registry's progress marks (every
/// few seconds on an idle stream), so only a dead peer trips it.
pub const DEFAULT_STALL_SECS: u64 = 30;

/// The longest pause between reconnect attempts by default, in
/// milliseconds.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 5000;

/// How the follower connects and waits.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The registry's gRPC endpoint, e.g. `http://127.0.0.1:50051`.
    pub registry_addr: String,
    /// The first reconnect delay.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// A stream silent for this long is considered dead (the registry sends
    /// progress marks every few seconds).
    pub stall_timeout: Duration,
    /// Largest registry message accepted.
    pub max_message_bytes: usize,
    /// TLS to the registry (used for `https://` addresses or when a CA or
    /// client certificate is given).
    pub tls: zgc_client::ClientTls,
}

impl FollowerConfig {
    /// Defaults for `registry_addr`.
    pub fn new(registry_addr: impl Into<String>) -> Self {
        Self {
            registry_addr: registry_addr.into(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(DEFAULT_BACKOFF_MAX_MS),
            stall_timeout: Duration::from_secs(DEFAULT_STALL_SECS),
            max_message_bytes: 64 * 1024 * 1024,
            tls: zgc_client::ClientTls::default(),
        }
    }
}

/// Where the follower is in the registry's history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    store_id: String,
    /// Every revision up to this one is applied; nothing after it is.
    complete: u64,
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("the registry no longer has the history we need")]
    Compacted,
    #[error("the registry's store changed from {old} to {new}")]
    StoreChanged { old: String, new: String },
    #[error("cannot reach the registry: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the watch failed: {0}")]
    Stream(Status),
    #[error("the watch went silent for {0:?}")]
    Stalled(Duration),
    #[error("the watch ended")]
    Ended,
    #[error("{0}")]
    Setup(String),
    #[error("the figures no longer match the registry: {0}")]
    Diverged(#[from] zgc_stats_engine::ApplyError),
}

impl From<Status> for FollowError {
    fn from(s: Status) -> Self {
        let compacted = s.code() == Code::OutOfRange
            && s.get_details_error_info()
                .is_some_and(|i| i.reason == reason::REVISION_COMPACTED);
        if compacted {
            Self::Compacted
        } else {
            Self::Stream(s)
        }
    }
}

/// Runs until `shutdown` fires.
pub async fn run(
    state: Arc<State>,
    config: FollowerConfig,
    health: Health,
    metrics: FollowerMetrics,
    shutdown: CancellationToken,
) {
    // Dead connections are noticed by the registry's progress marks (the
    // stall timeout); pings are only a backstop, rare enough never to trip
    // a proxy's or server's `too_many_pings` limit (gRPC's default minimum
    // is 5 minutes).
    let endpoint = match zgc_client::endpoint(&config.registry_addr, &config.tls) {
        Ok(e) => e
            .http2_keep_alive_interval(Duration::from_secs(300))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(false),
        Err(e) => {
            tracing::error!(addr = %config.registry_addr, error = %e, "cannot follow the registry");
            return;
        }
    };
    let mut position: Option<Position> = None;
    let mut delay = config.backoff_min;
    loop {
        let before = position.clone();
        let result = tokio::select! {
            r = tracing::Instrument::instrument(
                follow(&state, &endpoint, &config, &mut position, &health, &metrics),
                tracing::info_span!("follow_registry", registry = %config.registry_addr),
            ) => r,
            _ = shutdown.cancelled() => return,
        };
        if position != before {
            delay = config.backoff_min;
        }
        match result {
            Err(FollowError::Compacted) => {
                tracing::warn!(
                    "change history compacted past our position; rebuilding from a snapshot"
                );
                metrics.rebuilds.inc();
                position = None;
                continue;
            }
            Err(e @ FollowError::Diverged(_)) => {
                // A registry that keeps sending such events would otherwise
                // have us reload snapshots back to back: this one waits.
                tracing::error!(error = %e, retry_in = ?delay, "rebuilding from a snapshot");
                metrics.rebuilds.inc();
                position = None;
            }
            Err(e @ FollowError::StoreChanged { .. }) => {
                tracing::warn!(error = %e, "rebuilding from a snapshot");
                metrics.rebuilds.inc();
                position = None;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "registry watch interrupted");
                metrics.reconnects.inc();
            }
            Ok(()) => {}
        }
        // Full jitter over [delay/2, delay].
        let jittered = delay.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::select! {
            _ = tokio::time::sleep(jittered) => {}
            _ = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(config.backoff_max);
    }
}

/// One connection's worth of following.
async fn follow(
    state: &State,
    endpoint: &Endpoint,
    config: &FollowerConfig,
    position: &mut Option<Position>,
    health: &Health,
    metrics: &FollowerMetrics,
) -> Result<(), FollowError> {
    let heard = |revision: u64| {
        let revision = i64::try_from(revision).unwrap_or(i64::MAX);
        if revision > metrics.registry_revision.get() {
            metrics.registry_revision.set(revision);
        }
    };
    // Connecting and opening the stream are bounded too: a peer that
    // accepts and then says nothing must not hold the follower forever.
    let stall = config.stall_timeout;
    let channel: Channel = tokio::time::timeout(stall, endpoint.connect())
        .await
        .map_err(|_| FollowError::Stalled(stall))??;
    // Each connection's calls carry a request ID and the follower's trace
    // context, so the registry's logs and traces tie them to this span.
    let headers = zgc_client::headers(None, None).map_err(|e| FollowError::Setup(e.to_string()))?;
    let channel = zgc_client::Outgoing::new(channel, headers, zgc_server::telemetry::propagator());
    let mut client =
        RegistryServiceClient::new(channel).max_decoding_message_size(config.max_message_bytes);
    let start = position.as_ref().map_or(0, |p| p.complete + 1);
    let request = WatchChangesRequest {
        start_revision: start,
    };
    let response =
        tokio::time::timeout(stall, client.watch_changes(zgc_client::idempotent(request)))
            .await
            .map_err(|_| FollowError::Stalled(stall))??;
    let store_id = response
        .metadata()
        .get(wire::STORE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(p) = position.as_ref()
        && p.store_id != store_id
    {
        return Err(FollowError::StoreChanged {
            old: p.store_id.clone(),
            new: store_id,
        });
    }
    let mut stream = response.into_inner();

    if position.is_none() {
        tracing::info!(store_id, "loading a snapshot from the registry");
        let mut fresh = Engine::new();
        let revision = loop {
            let msg = next_message(&mut stream, config.stall_timeout).await?;
            heard(msg.revision);
            if msg.events.is_empty() {
                break msg.revision;
            }
            for event in &msg.events {
                fresh.apply(event)?;
            }
        };
        fresh.set_revision(revision);
        let entities = fresh.entity_count();
        let old = state.swap(fresh);
        drop(old);
        *position = Some(Position {
            store_id: store_id.clone(),
            complete: revision,
        });
        health.serving().await;
        tracing::info!(revision, entities, "snapshot loaded");
    }

    // Events of a revision split over several messages wait here until it
    // is complete, so readers never see half a write.
    let mut pending: Vec<ChangeEvent> = Vec::new();
    loop {
        let msg = next_message(&mut stream, config.stall_timeout).await?;
        heard(msg.revision);
        let Some(pos) = position.as_mut() else {
            return Ok(());
        };
        pending.extend(msg.events.into_iter().filter(|e| e.revision > pos.complete));
        if msg.revision <= pos.complete {
            continue;
        }
        let split = pending.partition_point(|e| e.revision <= msg.revision);
        {
            let mut engine = state.write();
            for event in pending.drain(..split) {
                // Refused only if an event was lost or doubled: the run
                // loop then rebuilds from a snapshot.
                engine.apply(&event)?;
            }
            engine.set_revision(msg.revision);
        }
        pos.complete = msg.revision;
        state.publish(pos.complete);
    }
}

/// The next message, or why there is none.
async fn next_message(
    stream: &mut tonic::Streaming<WatchChangesResponse>,
    stall: Duration,
) -> Result<WatchChangesResponse, FollowError> {
    match tokio::time::timeout(stall, stream.message()).await {
        Err(_) => Err(FollowError::Stalled(stall)),
        Ok(Err(status)) => Err(status.into()),
        Ok(Ok(None)) => Err(FollowError::Ended),
        Ok(Ok(Some(msg))) => Ok(msg),
    }
}
