//! A consistent snapshot of every entity as of one revision, read in chunks
//! without stopping writers.
//!
//! The snapshot is taken as of `R0`, the durable revision when it starts.
//! Parks, then companies, are scanned in key order a chunk at a time; each
//! chunk is read under the apply lock's read side, so it sees the state of
//! exactly one applied revision `a_k`. An entity the scan finds with a
//! revision <= `R0` is unchanged since `R0` and sent as found; one with a
//! later revision is skipped. Then the change log from `R0 + 1` to the last
//! `a_k` settles the rest: for each entity changed after `R0`, the `before`
//! of its first such change is its state at `R0`, and it still has to be
//! sent exactly when the scan could not have sent it, i.e. when that first
//! change was applied before (at or below `a_k` of) the chunk its key fell
//! in.

use std::collections::BTreeMap;
use std::ops::Bound;

use zgc_proto::registry::v1::{Entity, entity};

use crate::codec;
use crate::keys;
use crate::log::{self, Stored};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Park,
    Company,
}

struct ChunkMark {
    /// The last key the chunk covers; `None` for the rest of the tree.
    end: Option<Vec<u8>>,
    read_at: u64,
}

enum Phase {
    Scan(Kind),
    Patch,
    Done,
}

/// Which entities a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOf {
    /// Parks, then companies.
    Everything,
    /// Parks only.
    Parks,
    /// Companies only.
    Companies,
}

/// A snapshot being read; see the module docs for why it is consistent.
pub struct Snapshot {
    store: Store,
    /// The number of the store generation every chunk must come from:
    /// after a reopen, revisions that were never durable may read
    /// differently.
    generation_number: Result<u64, Option<StoreError>>,
    revision: u64,
    of: SnapshotOf,
    phase: Phase,
    cursor: Option<Vec<u8>>,
    marks: BTreeMap<Kind, Vec<ChunkMark>>,
}

impl Store {
    /// Starts a snapshot as of the current durable revision.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            store: self.clone(),
            generation_number: self.generation().map(|g| g.number).map_err(Some),
            revision: self.revision(),
            of: SnapshotOf::Everything,
            phase: Phase::Scan(Kind::Park),
            cursor: None,
            marks: BTreeMap::new(),
        }
    }

    /// Starts a snapshot of `of` as of an earlier `revision`, which the
    /// change log must still reach back to (else [`StoreError::Compacted`]).
    pub fn snapshot_at(&self, revision: u64, of: SnapshotOf) -> Result<Snapshot, StoreError> {
        let compact = self.compact_revision();
        if revision < compact {
            return Err(StoreError::Compacted {
                compact_revision: compact,
            });
        }
        Ok(Snapshot {
            store: self.clone(),
            generation_number: Ok(self.generation()?.number),
            revision,
            of,
            phase: Phase::Scan(if of == SnapshotOf::Companies {
                Kind::Company
            } else {
                Kind::Park
            }),
            cursor: None,
            marks: BTreeMap::new(),
        })
    }
}

fn entity_id(e: &Entity) -> Option<(Kind, &str)> {
    match e.kind.as_ref()? {
        entity::Kind::Park(p) => Some((Kind::Park, keys::id_of(&p.name, "parks")?)),
        entity::Kind::Company(c) => Some((Kind::Company, keys::id_of(&c.name, "companies")?)),
    }
}

impl Snapshot {
    /// The revision the snapshot is consistent as of.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The next entities (parks before companies), at most about `max`;
    /// `None` once the snapshot is complete.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<Entity>>, StoreError> {
        let max = max.max(1);
        match self.phase {
            Phase::Scan(kind) => self.scan(kind, max).map(Some),
            Phase::Patch => {
                self.phase = Phase::Done;
                self.patch().map(Some)
            }
            Phase::Done => Ok(None),
        }
    }

    fn scan(&mut self, kind: Kind, max: usize) -> Result<Vec<Entity>, StoreError> {
        let generation = self.generation()?;
        let trees = &generation.trees;
        let tree = match kind {
            Kind::Park => &trees.parks,
            Kind::Company => &trees.companies,
        };
        let lower = match self.cursor.take() {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        let mut raw = Vec::with_capacity(max);
        let read_at;
        {
            let _guard = generation
                .apply_lock
                .read()
                .map_err(|_| StoreError::Corrupt("apply lock poisoned".into()))?;
            read_at = generation
                .applied
                .load(std::sync::atomic::Ordering::Acquire);
            for item in tree.range((lower, Bound::Unbounded)).take(max) {
                raw.push(item?);
            }
        }
        let finished = raw.len() < max;
        let end = if finished {
            None
        } else {
            raw.last().map(|(k, _)| k.to_vec())
        };
        self.marks.entry(kind).or_default().push(ChunkMark {
            end: end.clone(),
            read_at,
        });
        self.cursor = end;
        if finished {
            self.phase = match (kind, self.of) {
                (Kind::Park, SnapshotOf::Everything) => Phase::Scan(Kind::Company),
                _ => Phase::Patch,
            };
        }
        let mut out = Vec::with_capacity(raw.len());
        for (_, value) in raw {
            let entity = match kind {
                Kind::Park => {
                    let p = codec::decode_park(&value)?;
                    (p.revision <= self.revision).then_some(Entity {
                        kind: Some(entity::Kind::Park(p)),
                    })
                }
                Kind::Company => {
                    let c = codec::decode_company(&value)?;
                    (c.revision <= self.revision).then_some(Entity {
                        kind: Some(entity::Kind::Company(c)),
                    })
                }
            };
            out.extend(entity);
        }
        Ok(out)
    }

    fn generation(&mut self) -> Result<std::sync::Arc<crate::Generation>, StoreError> {
        match &mut self.generation_number {
            Ok(number) => self.store.generation_numbered(*number),
            Err(e) => Err(e
                .take()
                .unwrap_or_else(|| StoreError::Unavailable("the store was unavailable".into()))),
        }
    }

    fn read_at_for(&self, kind: Kind, key: &[u8]) -> u64 {
        self.marks
            .get(&kind)
            .and_then(|marks| {
                marks
                    .iter()
                    .find(|m| m.end.as_deref().is_none_or(|end| key <= end))
                    .map(|m| m.read_at)
            })
            .unwrap_or(0)
    }

    fn patch(&mut self) -> Result<Vec<Entity>, StoreError> {
        let last = self
            .marks
            .values()
            .flatten()
            .map(|m| m.read_at)
            .max()
            .unwrap_or(self.revision);
        if last <= self.revision {
            return Ok(Vec::new());
        }
        if self.store.compact_revision() > self.revision {
            return Err(StoreError::Compacted {
                compact_revision: self.store.compact_revision(),
            });
        }
        // First change after R0 of each entity: (its revision, its before).
        let mut first: BTreeMap<(Kind, String), (u64, Option<Entity>)> = BTreeMap::new();
        let range = keys::change_key(self.revision + 1, 0)..keys::change_key(last + 1, 0);
        let mut seen_revision = self.revision;
        // On a store of its own every revision has events, so a gap means
        // compaction; an etcd replica's revisions have gaps of their own,
        // and its compaction is told by the compaction revision alone.
        let dense = self.store.dense_history();
        let generation = self.generation()?;
        for item in generation.trees.changes.range(range) {
            let (key, value) = item?;
            let (rev, _) = keys::parse_change_key(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed change-log key".into()))?;
            if dense && rev > seen_revision + 1 {
                return Err(StoreError::Compacted {
                    compact_revision: self.store.compact_revision(),
                });
            }
            seen_revision = rev;
            // Only the subject and its `before` matter here: a pointer's
            // `after` is not read.
            let (subject, before) = match log::decode(&value)? {
                Stored::Full(event) => {
                    let subject = event.before.as_ref().or(event.after.as_ref());
                    let Some((kind, id)) = subject.and_then(entity_id) else {
                        continue;
                    };
                    ((kind, id.to_string()), event.before)
                }
                Stored::Pointer { id, event } => ((Kind::Company, id), event.before),
            };
            first.entry(subject).or_insert((rev, before));
        }
        let compacted = if dense {
            seen_revision < last
        } else {
            self.store.compact_revision() > self.revision
        };
        if compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.store.compact_revision(),
            });
        }
        let mut out = Vec::new();
        let covered = |kind: Kind| match self.of {
            SnapshotOf::Everything => true,
            SnapshotOf::Parks => kind == Kind::Park,
            SnapshotOf::Companies => kind == Kind::Company,
        };
        for ((kind, id), (rev, before)) in first {
            if !covered(kind) {
                continue;
            }
            if let Some(before) = before
                && rev <= self.read_at_for(kind, id.as_bytes())
            {
                out.push(before);
            }
        }
        Ok(out)
    }
}
