//! The replica: a local store that holds exactly what etcd holds under
//! the registry's prefix, revision for revision. It is loaded from a range
//! read at one revision, then fed by a watch from the next, each etcd
//! revision stored as one local revision with the same number (the
//! writer's [`Work::Mirror`](crate::Work)). Every read the registry serves
//! (by ID, listings, snapshots, the change log) is the local store's,
//! unchanged.

use std::sync::Weak;

use prost::Message;
use tokio::sync::{mpsc, oneshot};
use zgc_etcd::pb::etcdserverpb::RangeRequest;
use zgc_etcd::pb::mvccpb::event::EventType;
use zgc_etcd::pb::mvccpb::{Event, KeyValue};
use zgc_etcd::{Client, EtcdError, WatchOptions, prefix_end};

use zgc_proto::registry::v1::{Company, Park};

use super::keys::{Entry, Keys};
use crate::rules::Change;
use crate::{Inner, Job, Mirrored, Msg, StoreError, StoreStatus, Work, codec};

/// Keys read per range request while loading.
const LOAD_PAGE: i64 = 1000;

/// Where the mirror sends what it stores, and what it needs to follow.
#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) jobs: mpsc::Sender<Msg>,
    /// Weak, so the mirror does not keep the store open.
    pub(crate) inner: Weak<Inner>,
}

impl Sink {
    fn fail(&self, why: String) {
        tracing::error!("{why}");
        if let Some(inner) = self.inner.upgrade() {
            inner.status.send_replace(StoreStatus::Recovering(why));
        }
    }

    async fn store(&self, mirrored: Mirrored) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Write(Box::new(Job {
                work: Work::Mirror(mirrored),
                reply,
            })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?.map(|_| ())
    }
}

/// `bytes` of an entity changed at `revision`, with its `revision` and
/// `etag` set from it, as every replica stores it.
pub(crate) fn restamp_park(bytes: &[u8], revision: u64) -> Result<(Park, Vec<u8>), StoreError> {
    let mut park = codec::decode_park(bytes)?;
    park.revision = revision;
    park.etag = revision.to_string();
    let bytes = park.encode_to_vec();
    Ok((park, bytes))
}

/// The same for a company.
pub(crate) fn restamp_company(
    bytes: &[u8],
    revision: u64,
) -> Result<(Company, Vec<u8>), StoreError> {
    let mut company = codec::decode_company(bytes)?;
    company.revision = revision;
    company.etag = revision.to_string();
    let bytes = company.encode_to_vec();
    Ok((company, bytes))
}

fn revision_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Adds what `kv` (or its deletion) is to `mirrored`.
fn take(
    keys: &Keys,
    mirrored: &mut Mirrored,
    kv: &KeyValue,
    deleted: bool,
) -> Result<(), StoreError> {
    let revision = revision_of(kv.mod_revision);
    match keys.entry(&kv.key) {
        Some(Entry::Park(id)) => mirrored.changes.push(Change::Park {
            id: id.to_string(),
            before: None,
            after: if deleted {
                None
            } else {
                Some(restamp_park(&kv.value, revision)?)
            },
        }),
        Some(Entry::Company(id)) => mirrored.changes.push(Change::Company {
            id: id.to_string(),
            before: None,
            after: if deleted {
                None
            } else {
                Some(restamp_company(&kv.value, revision)?)
            },
        }),
        Some(Entry::Request(id)) if deleted => mirrored.forgotten.push(id.to_string()),
        Some(Entry::Request(id)) => {
            let record = codec::decode_request(&kv.value)?;
            mirrored.requests.push((id.to_string(), record));
        }
        None => {}
    }
    Ok(())
}

fn empty(revision: u64, events: bool) -> Mirrored {
    Mirrored {
        revision,
        changes: Vec::new(),
        requests: Vec::new(),
        forgotten: Vec::new(),
        events,
        compact_to: None,
    }
}

fn unavailable(e: EtcdError) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

/// Loads everything under the prefix as of one revision into the local
/// store; that revision.
pub(crate) async fn load(client: &Client, keys: &Keys, sink: &Sink) -> Result<u64, StoreError> {
    let start = keys.entities();
    let end = prefix_end(&start);
    let mut from = start;
    let mut at = 0i64;
    loop {
        let page = client
            .range(RangeRequest {
                key: from.clone(),
                range_end: end.clone(),
                limit: LOAD_PAGE,
                revision: at,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        if at == 0 {
            at = page.header.as_ref().map_or(0, |h| h.revision);
        }
        let revision = revision_of(at);
        let mut mirrored = empty(revision, false);
        for kv in &page.kvs {
            take(keys, &mut mirrored, kv, false)?;
        }
        let last = page.kvs.last().map(|kv| kv.key.clone());
        let done = !page.more || last.is_none();
        if done {
            mirrored.compact_to = Some(revision);
        }
        sink.store(mirrored).await?;
        if done {
            return Ok(revision);
        }
        if let Some(mut key) = last {
            key.push(0);
            from = key;
        }
    }
}

/// Stores the events of whole revisions, one local revision each.
async fn store_events(keys: &Keys, sink: &Sink, events: Vec<Event>) -> Result<(), StoreError> {
    let mut current: Option<Mirrored> = None;
    for event in events {
        let Some(kv) = event.kv else { continue };
        let revision = revision_of(kv.mod_revision);
        if current.as_ref().is_some_and(|m| m.revision != revision)
            && let Some(done) = current.take()
        {
            sink.store(done).await?;
        }
        let mirrored = current.get_or_insert_with(|| empty(revision, true));
        take(
            keys,
            mirrored,
            &kv,
            event.r#type == EventType::Delete as i32,
        )?;
    }
    if let Some(done) = current {
        sink.store(done).await?;
    }
    Ok(())
}

/// Follows etcd from `after + 1` until the store closes.
pub(crate) async fn follow(client: Client, keys: Keys, sink: Sink, after: u64) {
    let prefix = keys.entities();
    let mut watch = client.watch(WatchOptions {
        range_end: prefix_end(&prefix),
        key: prefix,
        start_revision: i64::try_from(after + 1).unwrap_or(i64::MAX),
        prev_kv: false,
    });
    let mut stored = after;
    loop {
        let result = match watch.next().await {
            // Progress reports are not trusted (see `Backend::sync`).
            Ok(batch) if batch.events.is_empty() => Ok(stored),
            Ok(batch) => {
                let revision = revision_of(batch.revision);
                store_events(&keys, &sink, batch.events)
                    .await
                    .map(|()| revision)
            }
            Err(EtcdError::Compacted {
                compact_revision, ..
            }) => {
                sink.fail(format!(
                    "etcd compacted its history to revision {compact_revision} before this \
                     replica read it (it had {stored}); restart the replica to load it again"
                ));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the etcd watch is failing; trying again");
                continue;
            }
        };
        match result {
            Ok(revision) => stored = revision,
            Err(StoreError::Closed) => return,
            Err(e) => {
                sink.fail(format!("storing etcd's changes in the replica failed: {e}"));
                return;
            }
        }
    }
}
