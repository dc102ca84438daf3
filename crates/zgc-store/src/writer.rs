//! Opening the store and the single writer thread: plan, apply (one sled
//! transaction per write), make the group durable, acknowledge, compact.

use std::fs::File;
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use prost_types::Timestamp;
use rand::RngCore;
use sled::Transactional;
use tokio::sync::{mpsc, oneshot, watch};

use crate::keys::{self, decode_u64};
use crate::plan::{self, Plan, WriteSet};
use crate::{Durability, Job, Msg, Shared, StoreConfig, StoreError, Trees, WriteOutcome};

/// The most writes made durable by one flush.
const MAX_GROUP: usize = 512;
/// The most change-log revisions dropped by one compaction step.
const COMPACT_STEP: u64 = 256;

pub(crate) fn open(config: &StoreConfig) -> Result<(Shared, Durability), StoreError> {
    std::fs::create_dir_all(&config.path)?;
    let db = sled::Config::new()
        .path(&config.path)
        .cache_capacity(config.cache_capacity)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked {
                    path: config.path.display().to_string(),
                }
            }
            other => StoreError::Storage(other),
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
        Some(other) => {
            return Err(StoreError::Corrupt(format!(
                "the data directory has format {other}; this build reads format {}",
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

    let revision = meta
        .get(keys::META_REVISION)?
        .and_then(|v| decode_u64(&v))
        .unwrap_or(0);
    let compact = meta
        .get(keys::META_COMPACT_REVISION)?
        .and_then(|v| decode_u64(&v))
        .unwrap_or(0);
    let (durable, _) = watch::channel(revision);
    Ok((
        Shared {
            trees,
            apply_lock: RwLock::new(()),
            applied: AtomicU64::new(revision),
            durable,
            compact_revision: AtomicU64::new(compact),
            store_id,
            page_token_secret: secret,
        },
        config.durability,
    ))
}

fn state_value(durability: Durability) -> String {
    format!("open:{durability:?}")
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)?.sync_all()?;
    Ok(())
}

pub(crate) fn spawn(
    shared: std::sync::Arc<Shared>,
    rx: mpsc::Receiver<Msg>,
    durability: Durability,
    retention: u64,
    path: &Path,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    // sled keeps its whole log in this one file; fsyncing it after a flush
    // makes the flushed log survive power loss.
    let log_file = File::open(path.join("db"))?;
    let writer = Writer {
        shared,
        durability,
        retention,
        log_file,
    };
    Ok(std::thread::Builder::new()
        .name("zgc-store-writer".into())
        .spawn(move || writer.run(rx))?)
}

struct Writer {
    shared: std::sync::Arc<Shared>,
    durability: Durability,
    retention: u64,
    log_file: File,
}

impl Writer {
    fn run(self, mut rx: mpsc::Receiver<Msg>) {
        let mut stop: Option<oneshot::Sender<Result<(), StoreError>>> = None;
        while stop.is_none() {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut group = Vec::new();
            match first {
                Msg::Write(job) => group.push(*job),
                Msg::Stop(reply) => stop = Some(reply),
            }
            while stop.is_none() && group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Msg::Write(job)) => group.push(*job),
                    Ok(Msg::Stop(reply)) => stop = Some(reply),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "change-log compaction failed; will retry");
            }
        }
        // Refuse anything queued after the stop.
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
        if let Some(reply) = stop {
            let _ = reply.send(mark_clean(&self.shared));
        }
    }

    fn commit_group(&self, group: Vec<Job>) {
        if group.is_empty() {
            return;
        }
        type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;
        let mut answers: Vec<(Reply, Result<WriteOutcome, StoreError>)> =
            Vec::with_capacity(group.len());
        let mut wrote = false;
        for Job { write, reply } in group {
            let result = self.apply(write);
            wrote |= matches!(&result, Ok(o) if !o.replayed);
            answers.push((reply, result));
        }
        // Every answer, errors included, waits for durability: an error may
        // stem from a write earlier in this group, which must not be
        // reported before it is durable.
        let durable = self.make_durable();
        match durable {
            Ok(()) => {
                let applied = self.shared.applied.load(Ordering::Acquire);
                if wrote {
                    self.shared.durable.send_replace(applied);
                }
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "making writes durable failed");
                for (reply, result) in answers {
                    let answer = match result {
                        Ok(_) => Err(StoreError::Io(std::io::Error::other(format!(
                            "the write may not be durable: {e}"
                        )))),
                        Err(err) => Err(err),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn apply(&self, write: crate::Write) -> Result<WriteOutcome, StoreError> {
        let trees = &self.shared.trees;
        let revision = self.shared.applied.load(Ordering::Acquire) + 1;
        let plan = plan::plan(trees, write, revision, now())?;
        let (set, outcome) = match plan {
            Plan::Replay(outcome) => return Ok(outcome),
            Plan::Commit(set, outcome) => (set, outcome),
        };
        let WriteSet {
            parks,
            companies,
            index,
            changes,
            requests,
            meta,
        } = *set;
        let _guard = self
            .shared
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
        self.shared.applied.store(revision, Ordering::Release);
        Ok(outcome)
    }

    fn make_durable(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::None => Ok(()),
            Durability::Flush => {
                self.shared.trees.db.flush()?;
                Ok(())
            }
            Durability::Fsync => {
                self.shared.trees.db.flush()?;
                self.log_file.sync_data()?;
                Ok(())
            }
        }
    }

    /// Drops the oldest change-log revisions beyond the retention, and the
    /// request IDs they answered, a bounded step at a time.
    fn compact(&self) -> Result<(), StoreError> {
        let trees = &self.shared.trees;
        let applied = self.shared.applied.load(Ordering::Acquire);
        let compact = self.shared.compact_revision.load(Ordering::Acquire);
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
        self.shared.compact_revision.store(upto, Ordering::Release);
        Ok(())
    }
}

/// Our transactions never abort themselves, so only storage errors occur.
fn transaction_error(e: sled::transaction::TransactionError<()>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Storage(s) => StoreError::Storage(s),
        sled::transaction::TransactionError::Abort(()) => {
            StoreError::Corrupt("transaction aborted".into())
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn mark_clean(shared: &Shared) -> Result<(), StoreError> {
    shared
        .trees
        .meta
        .insert(keys::META_STATE, b"clean".as_slice())?;
    shared.trees.db.flush()?;
    Ok(())
}
