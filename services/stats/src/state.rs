//! The engine shared between the follower (one writer) and the handlers
//! (many readers).
//!
//! Readers take the read side of a `RwLock` for the length of one query,
//! whose cost depends on the size of its answer. The follower takes the
//! write side for one stream message at a time (at most a few hundred
//! events), and swaps in a rebuilt engine with a single move. Neither side
//! holds the lock across an await. The applied revision is published on a
//! `watch` channel that `min_revision` waits and `WatchSummary` streams
//! follow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;
use zgc_stats_engine::Engine;

/// The service's state.
pub struct State {
    engine: RwLock<Engine>,
    applied: watch::Sender<u64>,
    ready: AtomicBool,
}

/// Why a read could not be served in time.
#[derive(Debug)]
pub struct NotYet {
    /// The revision asked for.
    pub wanted: u64,
    /// The revision applied.
    pub applied: u64,
    /// Whether the first snapshot is still loading.
    pub loading: bool,
}

impl State {
    /// An empty, not-yet-ready state.
    pub fn new() -> Self {
        Self {
            engine: RwLock::new(Engine::new()),
            applied: watch::channel(0).0,
            ready: AtomicBool::new(false),
        }
    }

    /// Reads the engine. A poisoned lock (a panic while applying) is still
    /// readable: the engine is only ever changed by whole events.
    pub fn read(&self) -> RwLockReadGuard<'_, Engine> {
        self.engine.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Engine> {
        self.engine.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the engine with a rebuilt one and returns the old one, to
    /// be dropped outside the lock.
    pub(crate) fn swap(&self, fresh: Engine) -> Engine {
        let revision = fresh.revision();
        let old = std::mem::replace(&mut *self.write(), fresh);
        self.ready.store(true, Ordering::Release);
        self.applied.send_replace(revision);
        old
    }

    /// Publishes the applied revision.
    pub(crate) fn publish(&self, revision: u64) {
        self.applied.send_if_modified(|r| {
            let changed = revision != *r;
            *r = revision;
            changed
        });
    }

    /// Whether the first snapshot has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The applied revision.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Follows the applied revision.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Waits until the engine is ready and has applied `min_revision`, for
    /// at most `budget`.
    pub async fn wait_for(&self, min_revision: u64, budget: Duration) -> Result<(), NotYet> {
        let mut rx = self.subscribe();
        let done = |r: &u64| self.is_ready() && *r >= min_revision;
        if done(&rx.borrow()) {
            return Ok(());
        }
        let waited = tokio::time::timeout(budget, rx.wait_for(done)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotYet {
                wanted: min_revision,
                applied: self.applied(),
                loading: !self.is_ready(),
            }),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
