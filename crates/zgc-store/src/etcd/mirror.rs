//! The replica: a local store that holds exactly what etcd holds under
//! the registry's prefix, revision for revision. It is loaded from a range
//! read at one revision, then fed by a watch from the next, each etcd
//! revision stored as one local revision with the same number (the
//! writer's [`Work::Mirror`](crate::Work)). Every read the registry serves
//! (by ID, listings, snapshots, the change log) is the local store's,
//! unchanged.
//!
//! A replica that falls more than etcd's retained history behind (its
//! watch finds the next revision it needs compacted away) loads again,
//! over what it holds, and serves nothing until it has: its change log
//! then starts after the new load, as a compaction's would.

use std::sync::Weak;

use prost::Message;
use tokio::sync::{mpsc, oneshot};
use zgc_etcd::pb::etcdserverpb::RangeRequest;
use zgc_etcd::pb::mvccpb::event::EventType;
use zgc_etcd::pb::mvccpb::{Event, KeyValue};
use zgc_etcd::{Client, EtcdError, WatchOptions, prefix_end};

use zgc_proto::registry::v1::{Company, Park};

use super::keys::{Entry, Keys};
use crate::rules::{Change, etag_of};
use crate::{Inner, Job, Mirrored, Msg, StoreError, StoreStatus, Work, codec};

/// Keys read per range request while loading, and local entries checked
/// per range request when a load sweeps away what etcd no longer has.
const LOAD_PAGE: i64 = 1000;

/// What the replica keeps of each key it mirrors.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Park,
    Company,
    Request,
}

impl Kind {
    fn key(self, keys: &Keys, id: &str) -> Vec<u8> {
        match self {
            Kind::Park => keys.park(id),
            Kind::Company => keys.company(id),
            Kind::Request => keys.request(id),
        }
    }
}

/// Where the mirror sends what it stores, and what it needs to follow.
#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) jobs: mpsc::Sender<Msg>,
    /// Weak, so the mirror does not keep the store open.
    pub(crate) inner: Weak<Inner>,
}

/// Stored changes not yet confirmed, at most this many: the writer groups
/// them, as it groups clients' writes.
const IN_FLIGHT: usize = 64;

/// Changes sent to the local store, confirmed in order.
#[derive(Default)]
struct Pending(
    std::collections::VecDeque<oneshot::Receiver<Result<crate::WriteOutcome, StoreError>>>,
);

impl Pending {
    /// Waits for the oldest confirmation.
    /// Cancel-safe: a confirmation waited for stays queued until it
    /// arrives.
    async fn confirm_one(&mut self) -> Result<(), StoreError> {
        let Some(front) = self.0.front_mut() else {
            return Ok(());
        };
        let answer = front.await;
        self.0.pop_front();
        answer.map_err(|_| StoreError::Closed)?.map(|_| ())
    }

    /// Waits for every confirmation.
    async fn confirm_all(&mut self) -> Result<(), StoreError> {
        while !self.0.is_empty() {
            self.confirm_one().await?;
        }
        Ok(())
    }
}

impl Sink {
    /// Sends `mirrored` to the local store, waiting for older ones only
    /// when too many are unconfirmed.
    async fn send(&self, pending: &mut Pending, mirrored: Mirrored) -> Result<(), StoreError> {
        if pending.0.len() >= IN_FLIGHT {
            pending.confirm_one().await?;
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Write(Box::new(Job {
                work: Work::Mirror(mirrored),
                reply,
            })))
            .await
            .map_err(|_| StoreError::Closed)?;
        pending.0.push_back(answer);
        Ok(())
    }

    fn fail(&self, why: String) {
        tracing::error!("{why}");
        self.set_status(StoreStatus::Recovering(why));
    }

    fn set_status(&self, status: StoreStatus) {
        if let Some(inner) = self.inner.upgrade() {
            inner.status.send_replace(status);
        }
    }

    /// The local store's revision.
    fn revision(&self) -> Result<u64, StoreError> {
        let inner = self.inner.upgrade().ok_or(StoreError::Closed)?;
        Ok(inner
            .durable_revision
            .load(std::sync::atomic::Ordering::Acquire))
    }

    /// Up to `max` IDs of `kind` the local store holds, in order, after
    /// `after`.
    fn local_ids(&self, kind: Kind, after: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let inner = self.inner.upgrade().ok_or(StoreError::Closed)?;
        let generation = inner.generation()?;
        let trees = &generation.trees;
        let (tree, tag): (&sled::Tree, &[u8]) = match kind {
            Kind::Park => (&trees.parks, b""),
            Kind::Company => (&trees.companies, b""),
            Kind::Request => (&trees.requests, b"q"),
        };
        let mut from = tag.to_vec();
        from.extend_from_slice(after.as_bytes());
        // Strictly after `after`: the least key above it.
        from.push(0);
        let mut ids = Vec::with_capacity(max);
        for key in tree.range(from..).keys() {
            let key = key?;
            let Some(id) = key.strip_prefix(tag) else {
                break;
            };
            let id = std::str::from_utf8(id)
                .map_err(|_| StoreError::Corrupt("a local key that is not UTF-8".into()))?;
            ids.push(id.to_string());
            if ids.len() >= max {
                break;
            }
        }
        Ok(ids)
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
    park.etag = etag_of(revision);
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
    company.etag = etag_of(revision);
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

/// Whether etcd has compacted revision `revision` away.
async fn compacted(client: &Client, keys: &Keys, revision: i64) -> Result<bool, StoreError> {
    let read = client
        .range(RangeRequest {
            key: keys.last_write(),
            revision,
            keys_only: true,
            ..Default::default()
        })
        .await;
    match read {
        Ok(_) => Ok(false),
        Err(EtcdError::Refused(status))
            if status
                .message()
                .contains("required revision has been compacted") =>
        {
            Ok(true)
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// etcd's current revision.
async fn current(client: &Client, keys: &Keys) -> Result<i64, StoreError> {
    Ok(client
        .range(RangeRequest {
            key: keys.last_write(),
            keys_only: true,
            ..Default::default()
        })
        .await
        .map_err(unavailable)?
        .header
        .map_or(1, |h| h.revision.max(1)))
}

/// The oldest revision etcd still has, found by bisection (etcd 3.4 does
/// not say it otherwise), given its `current` one.
async fn oldest_kept(client: &Client, keys: &Keys, current: i64) -> Result<i64, StoreError> {
    if !compacted(client, keys, 1).await? {
        return Ok(1);
    }
    // Compacted at `low`, kept at `high`.
    let (mut low, mut high) = (1, current);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if compacted(client, keys, mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(high)
}

/// The revision a replica loads: the oldest etcd keeps, so that following
/// etcd from there gives the replica's change log every revision etcd
/// keeps, but no older than half the `retention` behind `current`. Every
/// replica compacts etcd's history to `retention` behind the newest
/// revision, so the oldest kept revision can be compacted away while the
/// load reads it; half the retention of headroom keeps the load's revision
/// until that many more revisions are written.
fn load_revision(oldest: i64, current: i64, retention: u64) -> i64 {
    let headroom = i64::try_from(retention / 2).unwrap_or(i64::MAX);
    oldest.max(current.saturating_sub(headroom)).min(current)
}

/// Makes the local store hold what etcd holds under the prefix as of
/// [`load_revision`], over whatever it held; that revision.
///
/// The state is staged at the store's own revision, page by page, without
/// change-log events, then whatever the store holds that etcd does not is
/// removed; only the last commit moves the store to the loaded revision,
/// with its change log starting after it. So no reader of the log sees a
/// revision it cannot read whole: one that followed the store before
/// finds its next revision compacted away, and loads a snapshot.
pub(crate) async fn load(
    client: &Client,
    keys: &Keys,
    sink: &Sink,
    retention: u64,
) -> Result<u64, StoreError> {
    let current = current(client, keys).await?;
    let at = load_revision(
        oldest_kept(client, keys, current).await?,
        current,
        retention,
    );
    let revision = revision_of(at);
    let staged = sink.revision()?;
    if revision < staged {
        return Err(StoreError::Corrupt(format!(
            "etcd's revision {revision} is behind the replica's {staged}"
        )));
    }
    let start = keys.entities();
    let end = prefix_end(&start);
    let mut from = start;
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
        let mut mirrored = empty(staged, false);
        for kv in &page.kvs {
            take(keys, &mut mirrored, kv, false)?;
        }
        sink.store(mirrored).await?;
        match page.kvs.last() {
            Some(kv) if page.more => {
                from = kv.key.clone();
                from.push(0);
            }
            _ => break,
        }
    }
    for kind in [Kind::Company, Kind::Park, Kind::Request] {
        sweep(client, keys, sink, kind, at, staged).await?;
    }
    // The change log starts after the state loaded; etcd's first
    // revision holds no change, so from it the log misses nothing.
    let mut last = empty(revision, false);
    last.compact_to = Some(if revision == 1 { 0 } else { revision });
    sink.store(last).await?;
    Ok(revision)
}

/// Removes from the local store the entries of `kind` etcd does not have
/// at revision `at`, staged at revision `staged`. Run after a load has
/// stored everything etcd has, so each chunk of local IDs is a superset
/// of etcd's keys in its span, and one bounded range read tells which of
/// them etcd lacks.
async fn sweep(
    client: &Client,
    keys: &Keys,
    sink: &Sink,
    kind: Kind,
    at: i64,
    staged: u64,
) -> Result<(), StoreError> {
    let chunk = usize::try_from(LOAD_PAGE).unwrap_or(1000);
    let mut after = String::new();
    loop {
        let ids = sink.local_ids(kind, &after, chunk)?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(());
        };
        let mut range_end = kind.key(keys, last);
        range_end.push(0);
        let held = client
            .range(RangeRequest {
                key: kind.key(keys, first),
                range_end,
                revision: at,
                keys_only: true,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let held: std::collections::HashSet<Vec<u8>> =
            held.kvs.into_iter().map(|kv| kv.key).collect();
        let mut mirrored = empty(staged, false);
        for id in &ids {
            if held.contains(&kind.key(keys, id)) {
                continue;
            }
            let id = id.clone();
            match kind {
                Kind::Park => mirrored.changes.push(Change::Park {
                    id,
                    before: None,
                    after: None,
                }),
                Kind::Company => mirrored.changes.push(Change::Company {
                    id,
                    before: None,
                    after: None,
                }),
                Kind::Request => mirrored.forgotten.push(id),
            }
        }
        if !mirrored.changes.is_empty() || !mirrored.forgotten.is_empty() {
            sink.store(mirrored).await?;
        }
        if ids.len() < chunk {
            return Ok(());
        }
        after = last.clone();
    }
}

/// Stores the events of whole revisions, one local revision each.
async fn store_events(
    keys: &Keys,
    sink: &Sink,
    pending: &mut Pending,
    events: Vec<Event>,
) -> Result<(), StoreError> {
    let mut current: Option<Mirrored> = None;
    for event in events {
        let Some(kv) = event.kv else { continue };
        let revision = revision_of(kv.mod_revision);
        if current.as_ref().is_some_and(|m| m.revision != revision)
            && let Some(done) = current.take()
        {
            sink.send(pending, done).await?;
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
        sink.send(pending, done).await?;
    }
    Ok(())
}

/// Follows etcd from `after + 1` until the store closes; when etcd has
/// compacted away a revision the replica still needs, loads again (see
/// the module's documentation) and follows from there.
pub(crate) async fn follow(client: Client, keys: Keys, sink: Sink, after: u64, retention: u64) {
    let mut after = after;
    loop {
        let compacted = match follow_from(&client, &keys, &sink, after).await {
            Followed::Stopped => return,
            Followed::Compacted { stored, to } => (stored, to),
        };
        sink.fail(format!(
            "etcd compacted its history to revision {} while this replica was at {}: \
             loading etcd's state again",
            compacted.1, compacted.0
        ));
        match reload(&client, &keys, &sink, retention).await {
            Some(revision) => after = revision,
            None => return,
        }
    }
}

/// Loads etcd's state again, retrying until it is done; the revision
/// loaded, or `None` once the store has closed.
async fn reload(client: &Client, keys: &Keys, sink: &Sink, retention: u64) -> Option<u64> {
    let mut pause = RELOAD_PAUSE;
    loop {
        match load(client, keys, sink, retention).await {
            Ok(revision) => {
                tracing::info!(revision, "the replica loaded etcd's state again; serving");
                sink.set_status(StoreStatus::Ready);
                return Some(revision);
            }
            Err(StoreError::Closed) => return None,
            Err(e) => {
                sink.fail(format!(
                    "loading etcd's state again failed ({e}); trying again in {pause:?}"
                ));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RELOAD_PAUSE_MAX);
            }
        }
    }
}

/// The first pause between failed reloads, and the longest.
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
const RELOAD_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// How following etcd ended.
enum Followed {
    /// The store closed, or storing failed (the store's status says so).
    Stopped,
    /// etcd no longer has the revision after `stored`: it compacted its
    /// history to `to`.
    Compacted { stored: u64, to: i64 },
}

/// Follows etcd from `after + 1` until the store closes or etcd has
/// compacted away the next revision the replica needs.
async fn follow_from(client: &Client, keys: &Keys, sink: &Sink, after: u64) -> Followed {
    let prefix = keys.entities();
    let mut watch = client.watch(WatchOptions {
        range_end: prefix_end(&prefix),
        key: prefix,
        start_revision: i64::try_from(after + 1).unwrap_or(i64::MAX),
        prev_kv: false,
    });
    let mut stored = after;
    let mut pending = Pending::default();
    loop {
        // Confirms what was sent once the watch has nothing more at hand.
        let next = tokio::select! {
            biased;
            next = watch.next() => next,
            confirmed = pending.confirm_all(), if !pending.0.is_empty() => {
                if let Err(e) = confirmed {
                    if !matches!(e, StoreError::Closed) {
                        sink.fail(format!("storing etcd's changes in the replica failed: {e}"));
                    }
                    return Followed::Stopped;
                }
                continue;
            }
        };
        let result = match next {
            // Progress reports are not trusted (see `Backend::sync`).
            Ok(batch) if batch.events.is_empty() => Ok(stored),
            Ok(batch) => {
                let revision = revision_of(batch.revision);
                store_events(keys, sink, &mut pending, batch.events)
                    .await
                    .map(|()| revision)
            }
            Err(EtcdError::Compacted {
                compact_revision, ..
            }) => {
                // What was sent is stored before the load goes over it.
                return match pending.confirm_all().await {
                    Ok(()) => Followed::Compacted {
                        stored,
                        to: compact_revision,
                    },
                    Err(StoreError::Closed) => Followed::Stopped,
                    Err(e) => {
                        sink.fail(format!("storing etcd's changes in the replica failed: {e}"));
                        Followed::Stopped
                    }
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "the etcd watch is failing; trying again");
                continue;
            }
        };
        match result {
            Ok(revision) => stored = revision,
            Err(StoreError::Closed) => return Followed::Stopped,
            Err(e) => {
                sink.fail(format!("storing etcd's changes in the replica failed: {e}"));
                return Followed::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_reads_the_oldest_revision_kept_within_half_the_retention() {
        // A history shorter than half the retention: all of it.
        assert_eq!(load_revision(1, 400, 1000), 1);
        // A longer one: half the retention behind the current revision,
        // so compactions to the retention leave it while the load reads.
        assert_eq!(load_revision(9_000, 10_000, 2_000), 9_000);
        assert_eq!(load_revision(7_000, 10_000, 2_000), 9_000);
        assert_eq!(load_revision(1, 10_000, 1), 10_000);
        assert_eq!(load_revision(1, 10_000, u64::MAX), 1);
    }
}
