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

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;
use zgc_stats_engine::Engine;

/// The service's state.
pub struct State {
    engine: RwLock<Engine>,
    /// Bumped under the write lock every time the engine may change.
    generation: AtomicU64,
    applied: watch::Sender<u64>,
    ready: AtomicBool,
}

/// The engine, read-locked.
pub struct Reading<'a> {
    engine: RwLockReadGuard<'a, Engine>,
    generation: u64,
}

impl Reading<'_> {
    /// Which state of the engine this is: the same number means the same
    /// aggregates, whatever the revision says (a rebuild from a snapshot
    /// may land on the revision it replaces).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Deref for Reading<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
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
            generation: AtomicU64::new(0),
            applied: watch::channel(0).0,
            ready: AtomicBool::new(false),
        }
    }

    /// Reads the engine. A poisoned lock (a panic while applying) is still
    /// readable: the engine is only ever changed by whole events.
    pub fn read(&self) -> Reading<'_> {
        let engine = self.engine.read().unwrap_or_else(|e| e.into_inner());
        // Only changed under the write lock, so stable while we hold this.
        let generation = self.generation.load(Ordering::Acquire);
        Reading { engine, generation }
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Engine> {
        let engine = self.engine.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        engine
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
        let done = |r: &u64| self.is_ready() && *r >= min_revision;
        // Almost every read is already satisfied: no receiver for those.
        if done(&self.applied.borrow()) {
            return Ok(());
        }
        let mut rx = self.subscribe();
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
