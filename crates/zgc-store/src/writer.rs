//! Opening the store and the single writer thread: plan each write of a
//! group on top of the ones before it, commit the group in one sled
//! transaction, make it durable, acknowledge, compact.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::SystemTime;

use prost_types::Timestamp;
use rand::RngCore;
use sled::Transactional;
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::keys::{self, decode_u64};
use crate::pending::{View, WriteSet};
use crate::plan::{self, Plan};
use crate::resident::{Entry, Resident};
use crate::{
    Durability, Generation, Inner, Job, Msg, StoreConfig, StoreError, StoreStatus, Trees, Work,
    WriteOutcome,
};

/// The most writes committed and made durable together.
const MAX_GROUP: usize = 512;
/// A group takes no further write once it holds this many entities (a
/// batch counts its companies): bounds the memory its pending changes
/// hold until the group commits.
const MAX_GROUP_ENTITIES: usize = 4096;
/// The most change-log revisions dropped by one compaction step.
const COMPACT_STEP: u64 = 256;

/// zstd's level for sled's log when it is compressed: the fastest, as each
/// group commit compresses every page it writes on the writer's thread.
const COMPRESSION_LEVEL: i32 = 1;

/// How much larger a compressed store's pages are in sled's cache than
/// sled counts them: it counts a page at its size in the log, compressed.
/// The cache is given its capacity divided by this, so that
/// `cache_capacity` takes about the same memory either way (measured at
/// scale: BENCHMARKS.md).
const CACHED_PAGE_GROWTH: u64 = 2;

/// Whether sled compresses this store's log. sled records the choice when
/// it creates a database (the `use_compression` line of its `conf` file)
/// and refuses to open it with the other: a store keeps what it was
/// created with, and only a new one takes `config.compression`.
fn compressed(config: &StoreConfig) -> Result<bool, StoreError> {
    // Text lines, then a 4-byte checksum. sled takes a file of 8 bytes or
    // less for one its creation did not finish writing (a full disk), and
    // writes it anew: so does this.
    let conf = match std::fs::read(config.path.join("conf")) {
        Ok(conf) if conf.len() <= 8 => return Ok(config.compression),
        Ok(conf) => String::from_utf8_lossy(&conf).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(config.compression),
        Err(e) => return Err(e.into()),
    };
    conf.lines()
        .find_map(|line| line.strip_prefix("use_compression:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} does not say whether the store is compressed",
                config.path.join("conf").display()
            ))
        })
}

/// A freshly opened generation and what it read from disk.
pub(crate) struct Opened {
    pub(crate) generation: Generation,
    pub(crate) log_file: File,
    pub(crate) revision: u64,
    pub(crate) compact_revision: u64,
    pub(crate) store_id: String,
    pub(crate) page_token_secret: [u8; 32],
    pub(crate) compressed: bool,
}

pub(crate) fn open(config: &StoreConfig, number: u64) -> Result<Opened, StoreError> {
    open_generation(config, number).map_err(|e| match e {
        e @ (StoreError::Locked { .. } | StoreError::Corrupt(_)) => e,
        other => StoreError::Open {
            path: config.path.display().to_string(),
            source: Box::new(other),
        },
    })
}

fn open_generation(config: &StoreConfig, number: u64) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(&config.path)?;
    let compressed = compressed(config)?;
    let db = sled::Config::new()
        .path(&config.path)
        .cache_capacity(if compressed {
            config.cache_capacity / CACHED_PAGE_GROWTH
        } else {
            config.cache_capacity
        })
        .use_compression(compressed)
        .compression_factor(COMPRESSION_LEVEL)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked {
                    path: config.path.display().to_string(),
                }
            }
            other => StoreError::from(other),
        })?;
    let trees = Trees {
        parks: db.open_tree(keys::PARKS)?,
        companies: db.open_tree(keys::COMPANIES)?,
        index: db.open_tree(keys::INDEX)?,
        changes: db.open_tree(keys::CHANGES)?,
        requests: db.open_tree(keys::REQUESTS)?,
        meta: db.open_tree(keys::META)?,
        db,
    };
    let meta = &trees.meta;
    match meta.get(keys::META_FORMAT)?.and_then(|v| decode_u64(&v)) {
        None => {
            meta.insert(keys::META_FORMAT, &keys::FORMAT_VERSION.to_be_bytes())?;
        }
        Some(keys::FORMAT_VERSION) => {}
        Some(old) if keys::FORMAT_UPGRADES_FROM.contains(&old) => {
            tracing::info!(
                from = old,
                to = keys::FORMAT_VERSION,
                "upgrading the store's format"
            );
            meta.insert(keys::META_FORMAT, &keys::FORMAT_VERSION.to_be_bytes())?;
        }
        Some(other) => {
            return Err(StoreError::Corrupt(format!(
                "the data directory has format {other}; this build reads formats up to {}",
                keys::FORMAT_VERSION
            )));
        }
    }
    // An unclean stop of a run that acknowledged writes before they were
    // durable may have lost some, whose revisions would then be reused:
    // give the store a new identity so followers rebuild.
    let previous_state = meta.get(keys::META_STATE)?;
    let lossy_crash = previous_state.as_deref() == Some(state_value(Durability::None).as_bytes());
    let store_id = match meta.get(keys::META_STORE_ID)? {
        Some(id) if !lossy_crash => String::from_utf8_lossy(&id).into_owned(),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            meta.insert(keys::META_STORE_ID, id.as_bytes())?;
            id
        }
    };
    let secret = match meta.get(keys::META_PAGE_TOKEN_SECRET)? {
        Some(s) if s.len() == 32 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&s);
            out
        }
        _ => {
            let mut out = [0u8; 32];
            rand::rng().fill_bytes(&mut out);
            meta.insert(keys::META_PAGE_TOKEN_SECRET, &out[..])?;
            out
        }
    };
    meta.insert(keys::META_STATE, state_value(config.durability).as_bytes())?;
    trees.db.flush()?;
    sync_dir(&config.path)?;
    // sled keeps its whole log in this one file; fsyncing it after a flush
    // makes the flushed log survive power loss.
    let log_file = File::open(config.path.join("db"))?;

    let revision = meta
        .get(keys::META_REVISION)?
        .and_then(|v| decode_u64(&v))
        .unwrap_or(0);
    let compact_revision = meta
        .get(keys::META_COMPACT_REVISION)?
        .and_then(|v| decode_u64(&v))
        .unwrap_or(0);
    Ok(Opened {
        generation: Generation {
            trees,
            number,
            apply_lock: RwLock::new(()),
            applied: AtomicU64::new(revision),
            resident: config.companies_in_memory.then(Resident::new),
            indexes: config
                .listing_indexes
                .then(|| crate::indexes::Indexes::new(revision)),
        },
        log_file,
        revision,
        compact_revision,
        store_id,
        page_token_secret: secret,
        compressed,
    })
}

fn state_value(durability: Durability) -> String {
    format!("open:{durability:?}")
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)?.sync_all()?;
    Ok(())
}

pub(crate) fn spawn(
    inner: Arc<Inner>,
    opened: Opened,
    rx: mpsc::Receiver<Msg>,
    config: StoreConfig,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let current = WriterGeneration::install(&inner, opened);
    let writer = Writer {
        inner,
        retention: config.retention.max(1),
        config,
    };
    Ok(std::thread::Builder::new()
        .name("zgc-store-writer".into())
        .spawn(move || writer.run(current, rx))?)
}

/// The first pause between attempts to reopen a failed store.
const REOPEN_BACKOFF_MIN: Duration = Duration::from_millis(20);
/// The longest pause between attempts to reopen a failed store.
const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(1);

struct Writer {
    inner: Arc<Inner>,
    retention: u64,
    config: StoreConfig,
}

/// The writer's hold on the open generation: the generation every handle
/// reads (and the writer writes), the log file it fsyncs, and the loader
/// filling the companies held in memory.
struct WriterGeneration {
    generation: Arc<Generation>,
    log_file: File,
    /// Loads the companies stored before into memory; stopped and joined
    /// when the generation ends.
    _loader: Option<Loader>,
}

impl WriterGeneration {
    /// Makes `opened` the generation every handle reads from.
    fn install(inner: &Inner, opened: Opened) -> Self {
        let generation = Arc::new(opened.generation);
        inner.install(Some(generation.clone()));
        let loader = (generation.resident.is_some() || generation.indexes.is_some())
            .then(|| Loader::spawn(generation.clone()))
            .flatten();
        Self {
            generation,
            log_file: opened.log_file,
            _loader: loader,
        }
    }
}

/// Records read from sled per step of the loader.
const LOAD_STEP: usize = 1024;

/// The thread that puts what a generation opened with into memory: the
/// companies held for reads by ID ([`Resident`]) and the listing indexes
/// ([`crate::indexes`]), a step at a time, each under the apply lock's
/// read side: a step sees the records of exactly one revision, and a
/// write, which updates memory itself under the write side, applies
/// between steps. A record a write put there first is never replaced.
struct Loader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loader {
    fn spawn(generation: Arc<Generation>) -> Option<Self> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("zgc-store-loader".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match load(&generation, &flag) {
                    Ok(true) => tracing::info!(
                        companies = generation.resident.as_ref().map_or(0, Resident::len),
                        indexed = generation.indexes.is_some(),
                        took = ?started.elapsed(),
                        "every company is held in memory and indexed"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(
                        error = %e,
                        "loading the store into memory failed; reads by ID go to disk and listings scan"
                    ),
                }
            });
        match spawned {
            Ok(thread) => Some(Self {
                stop,
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::error!(error = %e, "could not start loading the store into memory; reads by ID go to disk and listings scan");
                None
            }
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Loads every stored company (into memory and the indexes) and park
/// (into the indexes); `Ok(false)` if told to stop first.
fn load(generation: &Generation, stop: &std::sync::atomic::AtomicBool) -> Result<bool, StoreError> {
    let resident = generation.resident.as_ref();
    let indexes = generation.indexes.as_ref();
    let companies = load_tree(generation, &generation.trees.companies, stop, |step| {
        if let Some(resident) = resident {
            let entries: Vec<(&[u8], Entry)> = step
                .iter()
                .map(|(id, company)| (id.as_ref(), resident.entry(id, company)))
                .collect();
            resident.fill(entries);
        }
        if let Some(indexes) = indexes {
            let decoded = step
                .iter()
                .map(|(_, c)| codec::decode_company(c))
                .collect::<Result<Vec<_>, _>>()?;
            indexes.fill_companies(decoded);
        }
        Ok(())
    })?;
    if !companies {
        return Ok(false);
    }
    if let Some(resident) = resident {
        resident.set_loaded();
    }
    let Some(indexes) = indexes else {
        return Ok(true);
    };
    let parks = load_tree(generation, &generation.trees.parks, stop, |step| {
        let decoded = step
            .iter()
            .map(|(_, p)| codec::decode_park(p))
            .collect::<Result<Vec<_>, _>>()?;
        indexes.fill_parks(decoded);
        Ok(())
    })?;
    if parks {
        indexes.set_loaded();
    }
    Ok(parks)
}

/// Reads `tree` in steps, each under the apply lock's read side, and
/// hands each step to `fill` under the same lock; `Ok(false)` if told to
/// stop first.
fn load_tree(
    generation: &Generation,
    tree: &sled::Tree,
    stop: &std::sync::atomic::AtomicBool,
    mut fill: impl FnMut(&[(sled::IVec, sled::IVec)]) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    let mut after: Option<sled::IVec> = None;
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        let step_lock = generation
            .apply_lock
            .read()
            .map_err(|_| StoreError::Corrupt("apply lock poisoned".into()))?;
        let iter = match &after {
            None => tree.iter(),
            Some(key) => tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(key.as_ref()),
                std::ops::Bound::Unbounded,
            )),
        };
        let step = iter.take(LOAD_STEP).collect::<Result<Vec<_>, _>>()?;
        fill(&step)?;
        if step.len() < LOAD_STEP {
            return Ok(true);
        }
        after = step.last().map(|(id, _)| id.clone());
        drop(step_lock);
        if let Some(resident) = &generation.resident {
            resident.maybe_train();
        }
    }
}

/// Why the writer stopped writing to its generation.
enum Interrupt {
    /// A clean stop was asked for.
    Stop(oneshot::Sender<Result<(), StoreError>>),
    /// The queue closed: every handle is gone.
    Gone,
    /// Making writes durable failed; the generation is unusable.
    Failed(StoreError),
}

impl Writer {
    fn run(self, mut current: WriterGeneration, mut rx: mpsc::Receiver<Msg>) {
        loop {
            match self.serve(&current, &mut rx) {
                Interrupt::Stop(reply) => {
                    refuse_queued(&mut rx);
                    let _ = reply.send(mark_clean(&current.generation));
                    return;
                }
                Interrupt::Gone => return,
                Interrupt::Failed(error) => {
                    let next = current.generation.number + 1;
                    // Let go of the failed generation: its database closes
                    // (and its lock is released) once the last read still
                    // holding it ends.
                    drop(current);
                    match self.recover(&mut rx, &error, next) {
                        Ok(reopened) => current = reopened,
                        Err(stop) => {
                            // Nothing to mark clean: no generation is open.
                            refuse_queued(&mut rx);
                            let _ = stop.send(Ok(()));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Commits groups of writes until stopped or failed.
    fn serve(&self, current: &WriterGeneration, rx: &mut mpsc::Receiver<Msg>) -> Interrupt {
        loop {
            let Some(first) = rx.blocking_recv() else {
                return Interrupt::Gone;
            };
            let mut group = Vec::new();
            let mut entities = 0;
            let mut stop = None;
            match first {
                Msg::Write(job) => {
                    entities += job.work.entities();
                    group.push(*job);
                }
                Msg::Stop(reply) => stop = Some(reply),
            }
            while stop.is_none() && group.len() < MAX_GROUP && entities < MAX_GROUP_ENTITIES {
                match rx.try_recv() {
                    Ok(Msg::Write(job)) => {
                        entities += job.work.entities();
                        group.push(*job);
                    }
                    Ok(Msg::Stop(reply)) => stop = Some(reply),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit_group(current, group) {
                // A stop asked for in the same breath still gets its
                // answer: after the recovery.
                if let Some(reply) = stop {
                    let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
                return Interrupt::Failed(e);
            }
            if let Some(reply) = stop {
                return Interrupt::Stop(reply);
            }
            if let Err(e) = self.compact(&current.generation) {
                tracing::warn!(error = %e, "change-log compaction failed; will retry");
            }
        }
    }

    /// Ends the failed generation and opens the next one from what is
    /// durable on disk, retrying with backoff. Writes that arrive meanwhile
    /// fail at once. Returns a stop request if one came first.
    fn recover(
        &self,
        rx: &mut mpsc::Receiver<Msg>,
        error: &StoreError,
        number: u64,
    ) -> Result<WriterGeneration, oneshot::Sender<Result<(), StoreError>>> {
        let reason = format!("{error}; the registry is reopening its store");
        self.inner
            .status
            .send_replace(StoreStatus::Recovering(reason.clone()));
        self.inner.install(None);
        let mut backoff = REOPEN_BACKOFF_MIN;
        loop {
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Write(job) => {
                        let _ = job.reply.send(Err(StoreError::Unavailable(reason.clone())));
                    }
                    Msg::Stop(reply) => return Err(reply),
                }
            }
            match open(&self.config, number) {
                Ok(opened) => {
                    let durable_before = *self.inner.durable.borrow();
                    if opened.revision < durable_before {
                        tracing::error!(
                            on_disk = opened.revision,
                            acknowledged = durable_before,
                            "the reopened store is behind what was acknowledged durable"
                        );
                    }
                    self.inner
                        .compact_revision
                        .store(opened.compact_revision, Ordering::Release);
                    let revision = opened.revision;
                    let reopened = WriterGeneration::install(&self.inner, opened);
                    self.inner.publish_durable(revision);
                    self.inner.status.send_replace(StoreStatus::Ready);
                    tracing::info!(
                        generation = number,
                        revision,
                        "store reopened after a storage failure"
                    );
                    return Ok(reopened);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "reopening the store failed");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(REOPEN_BACKOFF_MAX);
                }
            }
        }
    }

    /// Plans the group's writes one after the other, each on top of the
    /// ones before it, commits them all in one sled transaction, makes
    /// them durable, then answers each.
    fn commit_group(&self, current: &WriterGeneration, group: Vec<Job>) -> Result<(), StoreError> {
        if group.is_empty() {
            return Ok(());
        }
        type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;
        let generation = &current.generation;
        let base = generation.applied.load(Ordering::Acquire);
        let mut revision = base;
        let mut wrote = false;
        let mut compact_to = None;
        let mut pending = WriteSet::default();
        let mut answers: Vec<(Reply, Result<WriteOutcome, StoreError>)> =
            Vec::with_capacity(group.len());
        for Job { work, reply } in group {
            let view = View {
                trees: &generation.trees,
                pending: &pending,
            };
            let planned = match work {
                Work::Client(write) => plan::plan(view, *write, revision + 1, now()),
                Work::Mirror(mirrored) => {
                    compact_to = mirrored.compact_to.or(compact_to);
                    plan::mirror(view, mirrored, revision)
                }
            };
            let result = match planned {
                Ok(Plan::Replay(outcome)) => Ok(outcome),
                Ok(Plan::Commit(set, outcome)) => {
                    pending.absorb(*set);
                    revision = outcome.revision;
                    wrote = true;
                    Ok(outcome)
                }
                Err(e) => Err(e),
            };
            answers.push((reply, result));
        }
        // A read that failed in storage (not a write's own logic) means
        // sled has stopped working: the generation is over.
        let failed_in_storage = answers.iter().find_map(|(_, r)| match r {
            Err(e) if e.is_storage_failure() => Some(e.to_string()),
            _ => None,
        });
        let flush_started = std::time::Instant::now();
        // Every answer, errors included, waits for durability: an error may
        // stem from a write earlier in this group, which must not be
        // reported before it is durable.
        let durable = match failed_in_storage {
            Some(e) => Err(StoreError::Io(std::io::Error::other(e))),
            None if wrote => self
                .apply(generation, &pending, revision)
                .and_then(|()| self.make_durable(current)),
            None => self.make_durable(current),
        };
        if let (Ok(()), Some(hook)) = (&durable, &self.config.on_commit) {
            (hook.0)(answers.len(), flush_started.elapsed());
        }
        match durable {
            Ok(()) => {
                if let Some(compact_to) = compact_to {
                    self.inner
                        .compact_revision
                        .fetch_max(compact_to, Ordering::AcqRel);
                }
                if wrote {
                    self.inner.publish_durable(revision);
                }
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "committing or making writes durable failed");
                // No read may see the group's writes once any of them is
                // answered: they may or may not survive the reopen.
                self.inner.install(None);
                // Every answer says so, errors included: an error may stem
                // from an earlier write of the group that may not be stored.
                let message = format!(
                    "making the write durable failed ({e}); it may or may not have been stored: retry with the same request_id"
                );
                for (reply, _) in answers {
                    let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                }
                Err(e)
            }
        }
    }

    /// Applies a group's changes, up to `revision`, in one transaction.
    fn apply(
        &self,
        generation: &Generation,
        set: &WriteSet,
        revision: u64,
    ) -> Result<(), StoreError> {
        let trees = &generation.trees;
        let parks = set.parks.to_batch();
        let companies = set.companies.to_batch();
        let index = set.index.to_batch();
        let changes = set.changes.to_batch();
        let requests = set.requests.to_batch();
        let meta = set.meta.to_batch();
        // Compressed and decoded before the lock is taken: reads wait for
        // none of it.
        let index_update = generation
            .indexes
            .as_ref()
            .map(|indexes| indexes.prepare(trees, set))
            .transpose()?;
        let in_memory: Option<Vec<(&[u8], Option<Entry>)>> =
            generation.resident.as_ref().map(|resident| {
                set.companies
                    .iter()
                    .map(|(id, company)| (id, company.map(|c| resident.entry(id, c))))
                    .collect()
            });
        let guard = generation
            .apply_lock
            .write()
            .map_err(|_| StoreError::Corrupt("apply lock poisoned".into()))?;
        (
            &trees.parks,
            &trees.companies,
            &trees.index,
            &trees.changes,
            &trees.requests,
            &trees.meta,
        )
            .transaction(|(p, c, i, ch, r, m)| {
                p.apply_batch(&parks)?;
                c.apply_batch(&companies)?;
                i.apply_batch(&index)?;
                ch.apply_batch(&changes)?;
                r.apply_batch(&requests)?;
                m.apply_batch(&meta)?;
                Ok(())
            })
            .map_err(transaction_error)?;
        // Still under the apply lock, so no loader step in between.
        if let (Some(resident), Some(changes)) = (&generation.resident, in_memory) {
            resident.apply(changes);
        }
        if let (Some(indexes), Some(update)) = (&generation.indexes, index_update) {
            indexes.apply(update, revision);
        }
        generation.applied.store(revision, Ordering::Release);
        drop(guard);
        if let Some(resident) = &generation.resident {
            resident.maybe_train();
        }
        Ok(())
    }

    fn make_durable(&self, current: &WriterGeneration) -> Result<(), StoreError> {
        match self.config.durability {
            Durability::None => Ok(()),
            Durability::Flush => {
                current.generation.trees.db.flush()?;
                Ok(())
            }
            Durability::Fsync => {
                current.generation.trees.db.flush()?;
                current.log_file.sync_data()?;
                Ok(())
            }
        }
    }

    /// Drops the oldest change-log revisions beyond the retention, and the
    /// request IDs they answered, a bounded step at a time.
    fn compact(&self, generation: &Generation) -> Result<(), StoreError> {
        let trees = &generation.trees;
        let applied = generation.applied.load(Ordering::Acquire);
        let compact = self.inner.compact_revision.load(Ordering::Acquire);
        let target = applied.saturating_sub(self.retention);
        if target <= compact {
            return Ok(());
        }
        let upto = target.min(compact + COMPACT_STEP);
        let mut changes = sled::Batch::default();
        for key in trees
            .changes
            .range(keys::change_key(compact + 1, 0)..keys::change_key(upto + 1, 0))
            .keys()
        {
            changes.remove(key?);
        }
        let mut requests = sled::Batch::default();
        for item in trees.requests.range(
            keys::request_by_revision_key(compact + 1)..keys::request_by_revision_key(upto + 1),
        ) {
            let (key, request_id) = item?;
            requests.remove(key);
            let mut q = vec![b'q'];
            q.extend_from_slice(&request_id);
            requests.remove(q);
        }
        (&trees.changes, &trees.requests, &trees.meta)
            .transaction(|(ch, r, m)| {
                ch.apply_batch(&changes)?;
                r.apply_batch(&requests)?;
                m.insert(keys::META_COMPACT_REVISION, &upto.to_be_bytes())?;
                Ok(())
            })
            .map_err(transaction_error)?;
        self.inner.compact_revision.store(upto, Ordering::Release);
        Ok(())
    }
}

/// Our transactions never abort themselves, so only storage errors occur.
fn transaction_error(e: sled::transaction::TransactionError<()>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Storage(s) => StoreError::from(s),
        sled::transaction::TransactionError::Abort(()) => {
            StoreError::Corrupt("transaction aborted".into())
        }
    }
}

pub(crate) fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn mark_clean(generation: &Generation) -> Result<(), StoreError> {
    generation
        .trees
        .meta
        .insert(keys::META_STATE, b"clean".as_slice())?;
    generation.trees.db.flush()?;
    Ok(())
}

/// Answers every write still queued after the writer stopped.
fn refuse_queued(rx: &mut mpsc::Receiver<Msg>) {
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Write(job) => {
                let _ = job.reply.send(Err(StoreError::Closed));
            }
            Msg::Stop(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}
