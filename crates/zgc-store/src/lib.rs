//! The registry's storage engine: parks and companies in sled.
//!
//! One [`Store`] owns a sled database with six trees (see `ARCHITECTURE.md`
//! for the key formats): `parks`, `companies`, `index` (reference indexes),
//! `changes` (the change log, by revision), `requests` (idempotency keys)
//! and `meta` (revision counter, store id, counters, secrets).
//!
//! Every [`Write`] goes through one writer thread. It takes the queued
//! writes as a group, plans each on top of the ones before it, applies the
//! group as ONE multi-tree sled transaction (entities, indexes, counters,
//! change log, idempotency records and revision move together or not at
//! all), then makes it durable with one flush (and fsync) before any of
//! them is acknowledged: group commit.
//!
//! This crate knows nothing of gRPC; it speaks in protobuf messages from
//! `zgc-proto` and typed [`StoreError`]s.

mod codec;
mod error;
mod etcd;
mod indexes;
mod keys;
mod log;
mod pending;
mod plan;
mod read;
mod resident;
mod rules;
mod snapshot;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

pub use error::StoreError;
pub use etcd::EtcdConfig;
pub use indexes::{IndexStats, IndexedPage};
pub use read::{ChangeBatch, EntityIter};
pub use snapshot::{Snapshot, SnapshotOf};

use zgc_proto::registry::v1::{Company, Entity, Park};

/// How a write is made durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// sled flush, then fsync of its files: survives power loss. The
    /// default.
    #[default]
    Fsync,
    /// sled flush only (Linux `sync_file_range`): survives a process crash,
    /// not necessarily a power loss.
    Flush,
    /// No flush before acknowledging (sled flushes in the background every
    /// 500 ms): a crash may lose acknowledged writes. For tests and
    /// benchmarks only; the store id changes after an unclean restart so
    /// followers rebuild.
    None,
}

/// Called after each group commit with the number of writes in the group
/// and how long making them durable took (for metrics).
#[derive(Clone)]
pub struct CommitHook(pub Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>);

impl std::fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

/// How many revisions of change history a store keeps by default.
pub const DEFAULT_RETENTION: u64 = 1_000_000;

/// sled's page cache by default, in MiB. With every company held in memory
/// (the default), reads by ID never touch it: it serves the writer's reads,
/// list scans of the index and the change log, and a small cache keeps the
/// registry's memory within its target at 1,000,000 companies
/// (BENCHMARKS.md). A store without the companies in memory wants more.
pub const DEFAULT_CACHE_MB: u64 = 32;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The directory of the sled database (created if missing).
    pub path: PathBuf,
    /// How writes are made durable.
    pub durability: Durability,
    /// How many revisions of change history to keep (at least 1).
    pub retention: u64,
    /// sled's page cache size in bytes.
    pub cache_capacity: u64,
    /// Hold every company in memory, compressed, for reads by ID
    /// (`resident.rs`); loaded in the background when the store opens.
    pub companies_in_memory: bool,
    /// Keep listing indexes of every park and company in memory
    /// (`indexes.rs`), loaded in the background when the store opens, so
    /// that `list_parks` and `list_companies` answer without a scan.
    pub listing_indexes: bool,
    /// Compress sled's log with zstd when this opening creates the store
    /// (a store keeps what it was created with: sled cannot change it).
    /// About half the disk, for CPU on every write and on every page read
    /// back from the file.
    pub compression: bool,
    /// Told about every group commit.
    pub on_commit: Option<CommitHook>,
}

impl StoreConfig {
    /// A configuration with the defaults for `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Fsync,
            retention: DEFAULT_RETENTION,
            cache_capacity: DEFAULT_CACHE_MB * 1024 * 1024,
            companies_in_memory: true,
            listing_indexes: true,
            compression: true,
            on_commit: None,
        }
    }
}

/// An idempotency key: the client's `request_id` and a fingerprint of the
/// whole request, so a reuse with a different request is told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The client's request ID.
    pub request_id: String,
    /// A digest of the request it came with.
    pub fingerprint: Vec<u8>,
}

/// One write RPC's change. Entities carry their resource `name`; the store
/// stamps `revision`, `etag`, `create_time` and `update_time`.
#[derive(Debug, Clone)]
pub enum Write {
    /// Creates a park.
    CreatePark {
        /// The park, with `name` and `uid` set.
        park: Park,
        /// The idempotency key, if any.
        request: Option<RequestKey>,
    },
    /// Replaces a park if its stored revision is still `expected_revision`.
    UpdatePark {
        /// The new park state, with `name` set.
        park: Park,
        /// The revision the update was computed from.
        expected_revision: u64,
    },
    /// Deletes a park, if given only at `expected_revision`.
    DeletePark {
        /// The park's resource name.
        name: String,
        /// The revision the client saw (from its etag), if any.
        expected_revision: Option<u64>,
    },
    /// Creates companies atomically, in order (one for CreateCompany).
    CreateCompanies {
        /// The companies, with `name` and `uid` set.
        companies: Vec<Company>,
        /// The idempotency key, if any.
        request: Option<RequestKey>,
    },
    /// Replaces a company if its stored revision is still
    /// `expected_revision`.
    UpdateCompany {
        /// The new company state, with `name` set.
        company: Company,
        /// The revision the update was computed from.
        expected_revision: u64,
    },
    /// Deletes a company, if given only at `expected_revision`.
    DeleteCompany {
        /// The company's resource name.
        name: String,
        /// The revision the client saw (from its etag), if any.
        expected_revision: Option<u64>,
    },
}

/// What a committed (or replayed) write produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// The write's revision.
    pub revision: u64,
    /// The entities as stored (empty for deletes).
    pub entities: Vec<Entity>,
    /// Whether this answers a retried `request_id` (nothing was written).
    pub replayed: bool,
}

pub(crate) struct Job {
    work: Work,
    reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// What the writer is asked to store.
pub(crate) enum Work {
    /// A client's write, checked by the rules and given the next revision.
    Client(Box<Write>),
    /// Changes another store already committed at their own revision (the
    /// etcd backend's mirror, `etcd/mirror.rs`), stored as they are.
    Mirror(Mirrored),
}

impl Work {
    /// How many entities the work creates or changes.
    pub(crate) fn entities(&self) -> usize {
        match self {
            Work::Client(write) => write.entities(),
            Work::Mirror(mirrored) => mirrored.changes.len().max(1),
        }
    }
}

/// Changes committed elsewhere at `revision`, to store as they are.
pub(crate) struct Mirrored {
    /// The revision they were committed at: at least the store's.
    pub(crate) revision: u64,
    /// The parks and companies changed, in order, stamped with the
    /// revision each was last changed at.
    pub(crate) changes: Vec<rules::Change>,
    /// Idempotency records committed with them, by request ID.
    pub(crate) requests: Vec<(String, codec::RequestRecord)>,
    /// Request IDs forgotten.
    pub(crate) forgotten: Vec<String>,
    /// Whether the changes go to the change log (not when loading a
    /// snapshot of the state).
    pub(crate) events: bool,
    /// Every revision up to this one has left the change log (set when a
    /// load completes: the log starts after the loaded state).
    pub(crate) compact_to: Option<u64>,
}

pub(crate) enum Msg {
    Write(Box<Job>),
    /// Finish the queued writes, flush, mark a clean shutdown, and stop.
    Stop(oneshot::Sender<Result<(), StoreError>>),
}

pub(crate) struct Trees {
    db: sled::Db,
    parks: sled::Tree,
    companies: sled::Tree,
    index: sled::Tree,
    changes: sled::Tree,
    requests: sled::Tree,
    meta: sled::Tree,
}

/// One opening of the sled database: a *generation*. A storage failure
/// ends it; the writer then opens the next one (see [`StoreStatus`]).
pub(crate) struct Generation {
    trees: Trees,
    /// Counts openings of the database in this process: the first is 1.
    number: u64,
    /// Held for writing while a transaction applies, for reading by a
    /// snapshot chunk: a chunk sees the state of exactly one revision.
    apply_lock: RwLock<()>,
    /// The last revision applied (committed in memory, maybe not durable).
    applied: AtomicU64,
    /// Every company, compressed, for reads by ID (`None` when off).
    resident: Option<resident::Resident>,
    /// The listing indexes (`None` when off).
    indexes: Option<indexes::Indexes>,
}

impl Write {
    /// How many entities the write creates or changes.
    pub(crate) fn entities(&self) -> usize {
        match self {
            Write::CreateCompanies { companies, .. } => companies.len(),
            _ => 1,
        }
    }
}

/// Whether the store can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreStatus {
    /// Open: reads and writes work.
    Ready,
    /// Making writes durable failed (disk full, I/O error). Every call
    /// fails with [`StoreError::Unavailable`] while the writer reopens the
    /// database from what is durable on disk, retrying with backoff until
    /// the disk takes writes again. The text says why.
    Recovering(String),
}

/// What every handle and the writer share, across generations.
pub(crate) struct Inner {
    /// The open generation; `None` while recovering.
    current: RwLock<Option<Arc<Generation>>>,
    /// The last durable revision; watchers follow it.
    durable: watch::Sender<u64>,
    /// The same, for readers that only need its value (every response
    /// carries it): a load, where the watch's borrow takes a lock.
    durable_revision: AtomicU64,
    status: watch::Sender<StoreStatus>,
    compact_revision: AtomicU64,
    store_id: String,
    page_token_secret: [u8; 32],
    compressed: bool,
    /// Whether every revision has change-log events, so that a gap means
    /// compaction removed them. True for a store of its own; false for an
    /// etcd replica, whose revisions are etcd's (with gaps where other
    /// keys changed).
    dense: bool,
}

impl Inner {
    /// The open generation, or [`StoreError::Unavailable`] (saying why)
    /// while the store recovers.
    pub(crate) fn generation(&self) -> Result<Arc<Generation>, StoreError> {
        let current = match self.current.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match current.as_ref() {
            Some(generation) => Ok(generation.clone()),
            None => Err(StoreError::Unavailable(match &*self.status.borrow() {
                StoreStatus::Recovering(why) => why.clone(),
                StoreStatus::Ready => "the store is reopening".into(),
            })),
        }
    }

    pub(crate) fn install(&self, generation: Option<Arc<Generation>>) {
        let mut current = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = generation;
    }

    /// Publishes `revision` as the last durable one.
    pub(crate) fn publish_durable(&self, revision: u64) {
        self.durable_revision.store(revision, Ordering::Release);
        self.durable.send_replace(revision);
    }
}

/// What [`Store::companies_in_memory`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InMemory {
    /// Companies held.
    pub companies: u64,
    /// Bytes of memory they take.
    pub bytes: u64,
    /// Whether every stored company is held.
    pub loaded: bool,
}

/// A handle to the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    jobs: mpsc::Sender<Msg>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// On etcd: the cluster, and the mirror that keeps this store a
    /// replica of it (`etcd/`). `None` for a store of its own on sled.
    etcd: Option<Arc<etcd::Backend>>,
}

/// How many writes may queue for the writer before callers wait.
const QUEUE_DEPTH: usize = 1024;

impl Store {
    /// Opens (or creates) the store. Fails when another process holds it.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        Self::open_local(config, None)
    }

    /// Opens a replica of the registry kept in an etcd cluster (see
    /// [`EtcdConfig`]): loads it, then follows it. Reads are served from
    /// the replica, writes go to etcd.
    pub async fn open_etcd(config: EtcdConfig) -> Result<Self, StoreError> {
        etcd::open(config).await
    }

    /// Opens the sled store at `config.path`; with `identity`, it takes
    /// that store id and page-token secret instead of its own (an etcd
    /// replica's are the cluster's), and its revisions may have gaps.
    pub(crate) fn open_local(
        config: StoreConfig,
        identity: Option<(String, [u8; 32])>,
    ) -> Result<Self, StoreError> {
        let mut opened = writer::open(&config, 1)?;
        let identity_given = identity.as_ref().map(|_| ());
        if let Some((store_id, secret)) = identity {
            opened.store_id = store_id;
            opened.page_token_secret = secret;
        }

        let inner = Arc::new(Inner {
            current: RwLock::new(None),
            durable: watch::channel(opened.revision).0,
            durable_revision: AtomicU64::new(opened.revision),
            status: watch::channel(StoreStatus::Ready).0,
            compact_revision: AtomicU64::new(opened.compact_revision),
            store_id: opened.store_id.clone(),
            page_token_secret: opened.page_token_secret,
            compressed: opened.compressed,
            dense: identity_given.is_none(),
        });
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = writer::spawn(inner.clone(), opened, rx, config)?;
        Ok(Self {
            inner,
            jobs,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            etcd: None,
        })
    }

    /// The open generation, or [`StoreError::Unavailable`] while the store
    /// recovers from a storage failure.
    pub(crate) fn generation(&self) -> Result<Arc<Generation>, StoreError> {
        self.inner.generation()
    }

    /// The open generation if it is still the one numbered `number`.
    pub(crate) fn generation_numbered(&self, number: u64) -> Result<Arc<Generation>, StoreError> {
        let generation = self.generation()?;
        if generation.number != number {
            return Err(StoreError::Unavailable(
                "the store was reopened after a storage failure; start again".into(),
            ));
        }
        Ok(generation)
    }

    /// Applies a write; returns once it is durable (per the configured
    /// durability) or has failed.
    pub async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        if let Some(etcd) = &self.etcd {
            return etcd.write(self, write).await;
        }
        self.submit(Work::Client(Box::new(write))).await
    }

    /// Queues `work` for the writer and waits for its outcome.
    async fn submit(&self, work: Work) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Write(Box::new(Job { work, reply })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores `mirrored` as the etcd backend's mirror does (its tests
    /// drive the writer's mirror path without an etcd).
    #[cfg(test)]
    pub(crate) async fn mirror(&self, mirrored: Mirrored) -> Result<WriteOutcome, StoreError> {
        self.submit(Work::Mirror(mirrored)).await
    }

    /// Waits until this store holds every write committed before the call
    /// (on etcd: etcd's current revision, read from a quorum; a sled store
    /// always does); the revision it holds.
    pub async fn sync(&self) -> Result<u64, StoreError> {
        match &self.etcd {
            Some(etcd) => etcd.sync(self).await,
            None => Ok(self.revision()),
        }
    }

    /// Whether every revision has change-log events (see `Inner::dense`).
    pub(crate) fn dense_history(&self) -> bool {
        self.inner.dense
    }

    /// The last durable revision.
    pub fn revision(&self) -> u64 {
        self.inner.durable_revision.load(Ordering::Acquire)
    }

    /// Follows the durable revision.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }

    /// Follows whether the store can serve.
    pub fn status(&self) -> watch::Receiver<StoreStatus> {
        self.inner.status.subscribe()
    }

    /// Every revision up to and including this one has left the change log.
    pub fn compact_revision(&self) -> u64 {
        self.inner.compact_revision.load(Ordering::Acquire)
    }

    /// The store's identity, new for every fresh data directory.
    pub fn store_id(&self) -> &str {
        &self.inner.store_id
    }

    /// The secret page tokens are signed with (kept in the store, so tokens
    /// survive restarts).
    pub fn page_token_secret(&self) -> [u8; 32] {
        self.inner.page_token_secret
    }

    /// Whether sled compresses the store's log: what the store was created
    /// with (see [`StoreConfig::compression`]).
    pub fn compressed(&self) -> bool {
        self.inner.compressed
    }

    /// The size of the database files.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.generation()?.trees.db.size_on_disk()?)
    }

    /// The companies held in memory: how many, the bytes of memory they
    /// take, and whether every stored company is among them yet (the
    /// loader finished). `None` when off or while the store is reopening.
    pub fn companies_in_memory(&self) -> Option<InMemory> {
        let generation = self.generation().ok()?;
        let resident = generation.resident.as_ref()?;
        Some(InMemory {
            companies: resident.len(),
            bytes: resident.bytes(),
            loaded: resident.is_loaded(),
        })
    }

    /// Waits (up to `timeout`) until this is the last handle to the store,
    /// so that dropping it closes the database and releases the data
    /// directory's lock. Handles may outlive a server briefly in tasks that
    /// are finishing; returns whether they all went.
    pub async fn wait_until_last(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while Arc::strong_count(&self.inner) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// Stops the writer after the writes queued before it, flushes, and
    /// marks a clean shutdown. Later writes fail with [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        if let Some(etcd) = &self.etcd {
            etcd.stop();
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Msg::Stop(reply)).await.is_err() {
            return Ok(()); // already stopped
        }
        let result = answer.await.map_err(|_| StoreError::Closed)?;
        let handle = self.writer.lock().map_err(|_| StoreError::Closed)?.take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|_| StoreError::Closed)?
                .map_err(|_| StoreError::Corrupt("the writer thread panicked".into()))?;
        }
        result
    }
}
