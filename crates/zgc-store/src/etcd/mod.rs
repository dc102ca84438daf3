//! The etcd backend: the registry's parks and companies in an etcd
//! cluster, so that several registry replicas serve one registry.
//!
//! Each replica keeps a local store (sled, in a scratch directory) that
//! mirrors etcd's keys under the registry's prefix revision for revision
//! (`mirror.rs`), and serves every read from it exactly as a sled-backed
//! registry does: by ID, listings, snapshots, the change log. A store
//! revision is an etcd revision.
//!
//! A write is decided by the same rules as on sled (`rules.rs`), against
//! the replica's state as it is, and committed as one etcd transaction
//! (`txn.rs`): one revision per write, as the contract says. Everything
//! the rules read is compared in the transaction, so a write decided on a
//! state etcd has left (another replica's write, or one of this replica's
//! not stored yet) is decided again once the replica has caught up; a
//! refusal stands only once decided on a replica that has caught up with
//! etcd since the call came. A write is
//! acknowledged once etcd has committed it (durable on a quorum), as the
//! Kubernetes API server does, without waiting for the replica to store
//! it: every read first waits until the replica has etcd's newest write,
//! so the writer reads its own write on any replica. When etcd
//! cannot say whether a transaction applied (the member failed after it
//! was sent), the replica reads to find out before answering or trying
//! again: an idempotency record, or the entity the write made.

mod barrier;
mod compactor;
mod keys;
mod mirror;
mod scratch;
mod txn;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use zgc_etcd::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use zgc_etcd::pb::etcdserverpb::request_op::Request;
use zgc_etcd::pb::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use zgc_etcd::{Client, EtcdError};
use zgc_proto::registry::v1::Entity;

use self::keys::Keys;
use self::mirror::Sink;
use crate::pending::{View, WriteSet};
use crate::rules::{self, Change, Decision, State, company_entity, etag_of, park_entity};
use crate::{
    Durability, RequestKey, Store, StoreConfig, StoreError, StoreStatus, Write, WriteOutcome,
};

/// Times a write is decided again after conflicting with other writes
/// before it fails.
const MAX_ATTEMPTS: usize = 32;

/// How to open a store on etcd.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// The cluster.
    pub client: zgc_etcd::Config,
    /// The prefix of the registry's keys: registries sharing a cluster use
    /// different ones. Printable ASCII without spaces.
    pub prefix: String,
    /// The local replica's settings. Its `path` is the directory the
    /// replica is made in (a fresh subdirectory, removed on close); its
    /// durability and compression are ignored: etcd keeps the data.
    pub local: StoreConfig,
}

/// What a replica needs besides its local store.
pub(crate) struct Backend {
    client: Client,
    keys: Keys,
    /// The tasks that follow etcd and compact its history.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The quorum read consistent reads share.
    barrier: barrier::Barrier,
    retry_for: Duration,
    _scratch: scratch::Scratch,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn unavailable(e: EtcdError) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

fn revision_of(header: Option<&zgc_etcd::pb::etcdserverpb::ResponseHeader>) -> u64 {
    header.map_or(0, |h| u64::try_from(h.revision).unwrap_or(0))
}

/// The page-token secret every replica of the registry shares: made by
/// the first, read by the others.
async fn secret(client: &Client, keys: &Keys) -> Result<[u8; 32], StoreError> {
    let mine: [u8; 32] = rand::random();
    let key = keys.secret();
    let response = client
        .txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: key.clone(),
                target_union: Some(TargetUnion::CreateRevision(0)),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: key.clone(),
                    value: mine.to_vec(),
                    ..Default::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(Request::RequestRange(RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                })),
            }],
        })
        .await;
    let response = match response {
        Ok(response) => response,
        // Whether it applied or not, the key holds the secret now.
        Err(EtcdError::Ambiguous(_)) => {
            let read = client
                .range(RangeRequest {
                    key,
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?;
            let value = read
                .kvs
                .first()
                .map(|kv| kv.value.clone())
                .unwrap_or_default();
            return value
                .try_into()
                .map_err(|_| StoreError::Corrupt("the page-token secret in etcd".into()));
        }
        Err(e) => return Err(unavailable(e)),
    };
    if response.succeeded {
        return Ok(mine);
    }
    let stored = response
        .responses
        .into_iter()
        .find_map(|r| match r.response {
            Some(zgc_etcd::pb::etcdserverpb::response_op::Response::ResponseRange(range)) => {
                range.kvs.into_iter().next()
            }
            _ => None,
        })
        .map(|kv| kv.value)
        .unwrap_or_default();
    stored
        .try_into()
        .map_err(|_| StoreError::Corrupt("the page-token secret in etcd".into()))
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_graphic())
}

/// Opens a replica of the registry kept in etcd under `config.prefix`.
pub(crate) async fn open(config: EtcdConfig) -> Result<Store, StoreError> {
    if !valid_prefix(&config.prefix) {
        return Err(StoreError::Config(format!(
            "the etcd prefix {:?} must be printable ASCII without spaces",
            config.prefix
        )));
    }
    let client = Client::new(config.client.clone()).map_err(unavailable)?;
    let keys = Keys::new(&config.prefix);
    let status = client.status().await.map_err(unavailable)?;
    let cluster = status.header.as_ref().map_or(0, |h| h.cluster_id);
    let store_id = format!("etcd-{cluster:016x}-{}", config.prefix);
    let secret = secret(&client, &keys).await?;

    let scratch = scratch::Scratch::create(&config.local.path)?;
    let mut local = config.local.clone();
    local.path = scratch.path().join("replica");
    local.durability = Durability::None;
    local.compression = false;
    let mut store = Store::open_local(local, Some((store_id, secret)))?;

    let sink = Sink {
        jobs: store.jobs.clone(),
        inner: Arc::downgrade(&store.inner),
    };
    let revision = mirror::load(&client, &keys, &sink, config.local.retention.max(1)).await?;
    tracing::info!(
        revision,
        prefix = %config.prefix,
        "loaded the registry's state from etcd; following its history"
    );
    let follower = tokio::spawn(mirror::follow(
        client.clone(),
        keys.clone(),
        sink,
        revision,
        config.local.retention.max(1),
    ));
    let compactor = tokio::spawn(compactor::run(
        client.clone(),
        keys.clone(),
        store.subscribe(),
        config.local.retention.max(1),
    ));
    let backend = Arc::new(Backend {
        retry_for: config.client.retry_for,
        client,
        keys,
        tasks: Mutex::new(vec![follower, compactor]),
        barrier: barrier::Barrier::new(),
        _scratch: scratch,
    });
    backend.catch_up(&store).await?;
    store.etcd = Some(backend);
    Ok(store)
}

/// Whether `e` is a rule's refusal of a write (as opposed to a failure to
/// decide it).
fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::AlreadyExists { .. }
            | StoreError::NotFound { .. }
            | StoreError::MissingReference { .. }
            | StoreError::InUse { .. }
            | StoreError::Cycle { .. }
            | StoreError::RevisionMismatch { .. }
            | StoreError::RequestIdReused { .. }
    )
}

/// A write decided against the replica.
enum Decided {
    /// A retried request, answered from the replica's change log.
    Replay(WriteOutcome),
    /// A retried request older than the replica's change log: its
    /// entities (`p/<id>`, `c/<id>`) as of `revision`, from etcd.
    ReplayFromEtcd {
        revision: u64,
        entities: Vec<String>,
    },
    /// A write to commit, if the compares hold.
    Apply(Vec<Change>, Vec<Compare>),
}

/// The outcome of `changes` committed at `revision`: the entities after
/// them, stamped as every replica stores them.
fn outcome(changes: Vec<Change>, revision: u64) -> WriteOutcome {
    let entities: Vec<Entity> = changes
        .into_iter()
        .filter_map(|change| match change {
            Change::Park { after, .. } => after.map(|(mut park, _)| {
                park.revision = revision;
                park.etag = etag_of(revision);
                park_entity(park)
            }),
            Change::Company { after, .. } => after.map(|(mut company, _)| {
                company.revision = revision;
                company.etag = etag_of(revision);
                company_entity(company)
            }),
        })
        .collect();
    WriteOutcome {
        revision,
        entities,
        replayed: false,
    }
}

/// The revision of the newest write, from a quorum read of `last_write`,
/// the key every write puts (0 before the first).
async fn newest_write(client: &Client, last_write: Vec<u8>) -> Result<u64, EtcdError> {
    let read = client
        .range(RangeRequest {
            key: last_write,
            keys_only: true,
            ..Default::default()
        })
        .await?;
    Ok(read
        .kvs
        .first()
        .map_or(0, |kv| u64::try_from(kv.mod_revision).unwrap_or(u64::MAX)))
}

impl Backend {
    /// Stops following etcd and compacting it.
    pub(crate) fn stop(&self) {
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            task.abort();
        }
    }

    /// Waits until the replica holds every write committed before the
    /// call: KEP-2340's consistent read. A quorum read of the key every
    /// write puts gives the newest write's revision; the replica waits
    /// until it has stored it (its watch delivers in order), and then
    /// holds etcd's current state under the prefix. The replica's
    /// revision.
    ///
    /// (Watch progress reports would also tell when the replica is up to
    /// date, but etcd 3.4 before 3.4.25 may send one ahead of events it
    /// has not delivered yet, etcd issue 15220, so none is used.)
    ///
    /// Concurrent calls share the quorum read (`barrier.rs`).
    pub(crate) async fn sync(&self, local: &Store) -> Result<u64, StoreError> {
        let (client, key) = (self.client.clone(), self.keys.last_write());
        let newest = self
            .barrier
            .read(
                move || async move { newest_write(&client, key).await.map_err(|e| e.to_string()) },
            )
            .await
            .map_err(|e| StoreError::Unavailable(format!("etcd: {e}")))?;
        self.wait_for(local, newest).await
    }

    /// The revision of the newest write (see [`newest_write`]).
    async fn newest_write(&self) -> Result<u64, EtcdError> {
        newest_write(&self.client, self.keys.last_write()).await
    }

    /// Waits, however long it takes, until the replica has replayed etcd's
    /// history up to its newest write (a replica serves nothing before).
    async fn catch_up(&self, local: &Store) -> Result<(), StoreError> {
        let target = self.newest_write().await.map_err(unavailable)?;
        let mut revisions = local.subscribe();
        loop {
            if *revisions.borrow_and_update() >= target {
                tracing::info!(revision = target, "the replica has caught up with etcd");
                return Ok(());
            }
            if let StoreStatus::Recovering(why) = &*local.inner.status.borrow() {
                return Err(StoreError::Unavailable(why.clone()));
            }
            if revisions.changed().await.is_err() {
                return Err(StoreError::Closed);
            }
        }
    }

    /// Waits until the replica has stored `target`.
    async fn wait_for(&self, local: &Store, target: u64) -> Result<u64, StoreError> {
        let mut revisions = local.subscribe();
        let stalled = async {
            loop {
                let stored = *revisions.borrow_and_update();
                if stored >= target {
                    return Ok(stored);
                }
                if let StoreStatus::Recovering(why) = &*local.inner.status.borrow() {
                    return Err(StoreError::Unavailable(why.clone()));
                }
                if revisions.changed().await.is_err() {
                    return Err(StoreError::Closed);
                }
            }
        };
        tokio::time::timeout(self.retry_for, stalled)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "the replica has not caught up with etcd's revision {target} (it has {})",
                    local.revision()
                )))
            })
    }

    /// Decides `write` against the replica as it is.
    fn decide(&self, local: &Store, write: &Write, base: u64) -> Result<Decided, StoreError> {
        let generation = local.generation()?;
        let pending = WriteSet::default();
        let view = View {
            trees: &generation.trees,
            pending: &pending,
        };
        let recorder = txn::Recorder::new(&view, &self.keys);
        match rules::decide(&recorder, write.clone(), base + 1, crate::writer::now())? {
            // The local change log has it, unless it starts after it (the
            // replica was loaded later): then etcd's history does.
            Decision::Replay { revision } if revision > local.compact_revision() => {
                Ok(Decided::Replay(crate::plan::replay(view, revision)?))
            }
            Decision::Replay { revision } => {
                let entities = rules::request_of(write)
                    .map(|request| view.request(&request.request_id))
                    .transpose()?
                    .flatten()
                    .map(|record| record.entities)
                    .unwrap_or_default();
                Ok(Decided::ReplayFromEtcd { revision, entities })
            }
            Decision::Apply(changes) => Ok(Decided::Apply(changes, recorder.compares())),
        }
    }

    /// Applies a write: see the module's documentation.
    pub(crate) async fn write(
        &self,
        local: &Store,
        write: Write,
    ) -> Result<WriteOutcome, StoreError> {
        let request = rules::request_of(&write).cloned();
        // Whether the replica has caught up with etcd since the call came.
        let mut synced = false;
        for attempt in 0..MAX_ATTEMPTS {
            // A replica loading etcd's state again holds part of it: no
            // write is decided on it (it serves nothing until loaded).
            if let StoreStatus::Recovering(why) = &*local.inner.status.borrow() {
                return Err(StoreError::Unavailable(why.clone()));
            }
            // Decided on the replica as it is: the compares catch anything
            // newer in etcd, so writes in flight do not wait for each other
            // to reach the replica. A refusal, though, may come from a state
            // etcd has left, so it stands only once decided on a replica
            // that has caught up.
            let decided = match self.decide(local, &write, local.revision()) {
                Err(e) if !synced && is_refusal(&e) => {
                    self.sync(local).await?;
                    synced = true;
                    continue;
                }
                decided => decided?,
            };
            let (changes, compares) = match decided {
                Decided::Replay(outcome) => return Ok(outcome),
                Decided::ReplayFromEtcd { revision, entities } => {
                    return self.replay_from_etcd(revision, &entities).await;
                }
                Decided::Apply(changes, compares) => (changes, compares),
            };
            let txn = txn::build(&self.keys, compares, &changes, request.as_ref());
            match self.client.txn(txn).await {
                Ok(response) => {
                    let revision = revision_of(response.header.as_ref());
                    // Committed is durable, on a quorum. The replica need
                    // not have stored it yet: every read waits for etcd's
                    // newest write first (`sync`), and a write decided on a
                    // replica without it is refused only after a sync.
                    if response.succeeded {
                        return Ok(outcome(changes, revision));
                    }
                    tracing::debug!(
                        attempt,
                        revision,
                        "an etcd write conflicted; deciding it again"
                    );
                    // Decide again on a replica that has what the compares
                    // saw.
                    self.sync(local).await?;
                    synced = true;
                }
                Err(EtcdError::Ambiguous(why)) => {
                    tracing::warn!(%why, "an etcd write may or may not have applied; reading to find out");
                    if let Some(outcome) = self.resolve(local, changes, request.as_ref()).await? {
                        return Ok(outcome);
                    }
                }
                // Sending it again would not help: etcd is set up for less
                // than the write needs (deploy/README.md).
                Err(EtcdError::Refused(status)) => {
                    return Err(StoreError::Config(format!(
                        "etcd refused the write: {} (etcd needs --max-txn-ops 4096 and \
                         --max-request-bytes 16777216 for batches of 1,000 companies)",
                        status.message()
                    )));
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the write conflicted with other writes {MAX_ATTEMPTS} times; try again"
        )))
    }

    /// The outcome of the request `revision` answered, read from etcd's
    /// history.
    async fn replay_from_etcd(
        &self,
        revision: u64,
        entities: &[String],
    ) -> Result<WriteOutcome, StoreError> {
        let mut out = Vec::with_capacity(entities.len());
        for entity in entities {
            let key = match entity.split_at_checked(2) {
                Some(("p/", id)) => self.keys.park(id),
                Some(("c/", id)) => self.keys.company(id),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "request record entity {entity:?}"
                    )));
                }
            };
            let read = self
                .client
                .range(RangeRequest {
                    key,
                    revision: i64::try_from(revision).unwrap_or(i64::MAX),
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?;
            let Some(kv) = read.kvs.first() else {
                return Err(StoreError::Corrupt(format!(
                    "{entity} is not in etcd at revision {revision}, which made it"
                )));
            };
            let at = u64::try_from(kv.mod_revision).unwrap_or(0);
            out.push(if entity.starts_with("p/") {
                park_entity(mirror::restamp_park(&kv.value, at)?.0)
            } else {
                company_entity(mirror::restamp_company(&kv.value, at)?.0)
            });
        }
        Ok(WriteOutcome {
            revision,
            entities: out,
            replayed: true,
        })
    }

    /// After a transaction etcd could not confirm: its outcome if it was
    /// applied, `None` if it was not.
    async fn resolve(
        &self,
        local: &Store,
        changes: Vec<Change>,
        request: Option<&RequestKey>,
    ) -> Result<Option<WriteOutcome>, StoreError> {
        let now = self.sync(local).await?;
        let generation = local.generation()?;
        let pending = WriteSet::default();
        let view = View {
            trees: &generation.trees,
            pending: &pending,
        };
        if let Some(request) = request {
            return match view.request(&request.request_id)? {
                Some(record) => Ok(Some(crate::plan::replay(view, record.revision)?)),
                None => Ok(None),
            };
        }
        // A write is all or nothing: its first change tells.
        let applied_at = match changes.first() {
            Some(Change::Park {
                id,
                after: Some((ours, _)),
                ..
            }) => view
                .park(id)?
                .filter(|held| held.uid == ours.uid && held.update_time == ours.update_time)
                .map(|held| held.revision),
            Some(Change::Company {
                id,
                after: Some((ours, _)),
                ..
            }) => view
                .company(id)?
                .filter(|held| held.uid == ours.uid && held.update_time == ours.update_time)
                .map(|held| held.revision),
            // Gone is what a delete wanted, whoever deleted it.
            Some(Change::Park {
                id, after: None, ..
            }) => (!view.has_park(id)?).then_some(now),
            Some(Change::Company {
                id, after: None, ..
            }) => (!view.has_company(id)?).then_some(now),
            None => None,
        };
        Ok(applied_at.map(|revision| outcome(changes, revision)))
    }
}
