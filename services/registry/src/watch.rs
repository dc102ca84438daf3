//! `WatchChanges`: a snapshot or a replay from the change log, then live
//! changes, with progress marks while idle.
//!
//! Each watcher is its own task reading the change log at its own pace and
//! sending into a small bounded channel: a slow watcher only slows itself.
//! Writers never wait for watchers; they publish the durable revision on a
//! `watch` channel, which holds one value whatever the number of watchers.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use zgc_proto::registry::v1::{ChangeEvent, ChangeType, Entity, WatchChangesResponse, entity};
use zgc_store::{Store, StoreError};

use crate::error::ApiError;

/// The stream type of WatchChanges.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<WatchChangesResponse, Status>> + Send>>;

/// Watch tuning.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// How often an idle stream sends a progress mark.
    pub progress_interval: Duration,
    /// The most events in one response.
    pub max_events: usize,
    /// The most streams open at once.
    pub max_watchers: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            progress_interval: Duration::from_secs(3),
            max_events: 500,
            max_watchers: 1024,
        }
    }
}

/// Responses buffered per watcher before its task waits for the client.
const BUFFER: usize = 4;

/// Checks the start revision and starts the watcher's task.
pub fn start(
    store: Store,
    start_revision: u64,
    config: WatchConfig,
    shutdown: CancellationToken,
    permit: OwnedSemaphorePermit,
) -> Result<ChangeStream, ApiError> {
    if start_revision > 0 && start_revision <= store.compact_revision() {
        return Err(ApiError::Compacted {
            compact_revision: store.compact_revision(),
        });
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        // The stream counts against the watcher limit until its task ends.
        let _permit = permit;
        let result = tokio::select! {
            r = run(&store, start_revision, &config, &tx) => r,
            _ = shutdown.cancelled() => Err(ApiError::Unavailable("the registry is shutting down; resume from the last revision".into())),
            // The client went away: free its place at once.
            _ = tx.closed() => Ok(()),
        };
        if let Err(e) = result {
            // The client may be gone already; nothing more to do then.
            let _ = tx.send(Err(e.into())).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// `Ok(())` when the client went away.
async fn run(
    store: &Store,
    start_revision: u64,
    config: &WatchConfig,
    tx: &mpsc::Sender<Result<WatchChangesResponse, Status>>,
) -> Result<(), ApiError> {
    let mut durable = store.subscribe();
    let mut cursor = if start_revision == 0 {
        let Some(revision) = snapshot(store, config, tx).await? else {
            return Ok(());
        };
        (revision + 1, 0)
    } else {
        (start_revision, 0)
    };
    let mut last_sent = cursor.0.saturating_sub(1).min(store.revision());
    loop {
        durable.borrow_and_update();
        let reader = store.clone();
        let max = config.max_events;
        let from = cursor;
        let batch = tokio::task::spawn_blocking(move || reader.read_changes(from, max))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Compacted { compact_revision } => {
                    ApiError::Compacted { compact_revision }
                }
                other => ApiError::from(other),
            })?;
        cursor = batch.next;
        if !batch.events.is_empty() {
            last_sent = batch.complete_through;
            let response = WatchChangesResponse {
                events: batch.events,
                revision: batch.complete_through,
            };
            if tx.send(Ok(response)).await.is_err() {
                return Ok(());
            }
            continue;
        }
        last_sent = last_sent.max(batch.complete_through);
        tokio::select! {
            changed = durable.changed() => {
                if changed.is_err() {
                    return Err(ApiError::Unavailable("the registry is shutting down".into()));
                }
            }
            _ = tokio::time::sleep(config.progress_interval) => {
                let mark = WatchChangesResponse { events: Vec::new(), revision: last_sent };
                if tx.send(Ok(mark)).await.is_err() {
                    return Ok(());
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}

fn revision_of(e: &Entity) -> u64 {
    match &e.kind {
        Some(entity::Kind::Park(p)) => p.revision,
        Some(entity::Kind::Company(c)) => c.revision,
        None => 0,
    }
}

/// Sends the snapshot and its completion mark; `None` if the client left.
async fn snapshot(
    store: &Store,
    config: &WatchConfig,
    tx: &mpsc::Sender<Result<WatchChangesResponse, Status>>,
) -> Result<Option<u64>, ApiError> {
    let mut snap = store.snapshot();
    let revision = snap.revision();
    let max = config.max_events;
    loop {
        let (back, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = snap.next_chunk(max);
            (snap, chunk)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        snap = back;
        let chunk = chunk.map_err(|e| match e {
            StoreError::Compacted { compact_revision } => ApiError::Compacted { compact_revision },
            other => ApiError::from(other),
        })?;
        let Some(entities) = chunk else { break };
        if entities.is_empty() {
            continue;
        }
        let events = entities
            .into_iter()
            .map(|e| ChangeEvent {
                revision: revision_of(&e),
                r#type: ChangeType::Created as i32,
                before: None,
                after: Some(e),
            })
            .collect();
        if tx
            .send(Ok(WatchChangesResponse {
                events,
                revision: 0,
            }))
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
    let mark = WatchChangesResponse {
        events: Vec::new(),
        revision,
    };
    if tx.send(Ok(mark)).await.is_err() {
        return Ok(None);
    }
    Ok(Some(revision))
}
