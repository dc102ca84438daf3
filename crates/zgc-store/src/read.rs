//! Reads: entities by ID, ordered scans, reference lookups, counters and
//! the change log. Reads take no lock; each sees committed state.

use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use zgc_proto::registry::v1::{ChangeEvent, Company, Park};

use crate::keys::{self, decode_u64};
use crate::{Store, StoreError};
use crate::{codec, log};

/// Decodes stored entities of one kind as a scan goes.
pub struct EntityIter<T> {
    inner: Result<sled::Iter, Option<StoreError>>,
    decode: fn(&[u8]) -> Result<T, StoreError>,
    _kind: PhantomData<T>,
}

impl<T> Iterator for EntityIter<T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match &mut self.inner {
            Ok(iter) => iter.next()?,
            // The store was unavailable: say so once, then end.
            Err(e) => return e.take().map(Err),
        };
        Some(
            item.map_err(StoreError::from)
                .and_then(|(_, v)| (self.decode)(&v)),
        )
    }
}

/// A stretch of the change log.
#[derive(Debug, Clone, Default)]
pub struct ChangeBatch {
    /// The events, in order.
    pub events: Vec<ChangeEvent>,
    /// Every revision up to this one has been delivered in full (by this
    /// batch or before it).
    pub complete_through: u64,
    /// Where the next read starts: `(revision, event number)`.
    pub next: (u64, u32),
}

/// A company's encoding as the store holds it, in sled or in memory.
enum StoredCompany {
    Sled(sled::IVec),
    Resident(Bytes),
}

impl StoredCompany {
    /// As `Bytes`, without copying.
    fn into_bytes(self) -> Bytes {
        match self {
            Self::Sled(v) => Bytes::from_owner(v),
            Self::Resident(b) => b,
        }
    }
}

impl std::ops::Deref for StoredCompany {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Sled(v) => v,
            Self::Resident(b) => b,
        }
    }
}

fn after(id: Option<&str>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    match id {
        Some(id) => (Bound::Excluded(id.as_bytes().to_vec()), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

impl Store {
    /// The park with this ID.
    pub fn get_park(&self, id: &str) -> Result<Option<Park>, StoreError> {
        self.generation()?
            .trees
            .parks
            .get(id)?
            .map(|v| codec::decode_park(&v))
            .transpose()
    }

    /// The company with this ID.
    pub fn get_company(&self, id: &str) -> Result<Option<Company>, StoreError> {
        self.stored_company(id)?
            .map(|v| codec::decode_company(&v))
            .transpose()
    }

    /// The company with this ID as it is stored: its protobuf encoding,
    /// for answers that pass it on without decoding it.
    pub fn get_company_encoded(&self, id: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.stored_company(id)?.map(StoredCompany::into_bytes))
    }

    /// The company's stored bytes: from memory when every company is held
    /// there or this one is, else sled's own (not copied).
    fn stored_company(&self, id: &str) -> Result<Option<StoredCompany>, StoreError> {
        let generation = self.generation()?;
        if let Some(resident) = &generation.resident {
            // Read before looking: a miss means "none" only if every
            // company was already held when the look began.
            let loaded = resident.is_loaded();
            if let Some(company) = resident.get(id.as_bytes())? {
                return Ok(Some(StoredCompany::Resident(company)));
            }
            if loaded {
                return Ok(None);
            }
        }
        Ok(generation.trees.companies.get(id)?.map(StoredCompany::Sled))
    }

    /// Parks in ID order, starting after `after_id`.
    pub fn parks_after(&self, after_id: Option<&str>) -> EntityIter<Park> {
        EntityIter {
            inner: self
                .generation()
                .map(|s| s.trees.parks.range(after(after_id)))
                .map_err(Some),
            decode: codec::decode_park,
            _kind: PhantomData,
        }
    }

    /// Companies in ID order, starting after `after_id`.
    pub fn companies_after(&self, after_id: Option<&str>) -> EntityIter<Company> {
        EntityIter {
            inner: self
                .generation()
                .map(|s| s.trees.companies.range(after(after_id)))
                .map_err(Some),
            decode: codec::decode_company,
            _kind: PhantomData,
        }
    }

    fn referrers(
        &self,
        tag: u8,
        target: &str,
    ) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
        let prefix = keys::index_prefix(tag, target);
        let skip = prefix.len();
        let (found, unavailable) = match self.generation() {
            Ok(s) => (Some(s.trees.index.scan_prefix(prefix).keys()), None),
            Err(e) => (None, Some(Err(e))),
        };
        found
            .into_iter()
            .flatten()
            .map(move |k| {
                let k = k?;
                Ok(String::from_utf8_lossy(&k[skip..]).into_owned())
            })
            .chain(unavailable)
    }

    /// IDs of the companies whose `park` is `parks/{park_id}`, in ID order.
    pub fn company_ids_in_park(
        &self,
        park_id: &str,
    ) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
        self.referrers(keys::IDX_COMPANY_BY_PARK, park_id)
    }

    /// IDs of the branches of `companies/{company_id}`, in ID order.
    pub fn branch_ids(
        &self,
        company_id: &str,
    ) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
        self.referrers(keys::IDX_BRANCH_BY_PARENT, company_id)
    }

    /// IDs of the parks whose `parent_park` is `parks/{park_id}`.
    pub fn child_park_ids(
        &self,
        park_id: &str,
    ) -> impl Iterator<Item = Result<String, StoreError>> + use<> {
        self.referrers(keys::IDX_PARK_BY_PARENT, park_id)
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .generation()?
            .trees
            .meta
            .get(key)?
            .and_then(|v| decode_u64(&v))
            .unwrap_or(0))
    }

    /// The number of parks.
    pub fn park_count(&self) -> Result<u64, StoreError> {
        self.counter(keys::META_PARK_COUNT)
    }

    /// The number of companies.
    pub fn company_count(&self) -> Result<u64, StoreError> {
        self.counter(keys::META_COMPANY_COUNT)
    }

    /// Reads durable change-log events from `from` = `(revision, event)`,
    /// at most `max_events` of them (a revision may be split across
    /// batches). Fails with [`StoreError::Compacted`] when `from` is no
    /// longer retained.
    pub fn read_changes(
        &self,
        from: (u64, u32),
        max_events: usize,
    ) -> Result<ChangeBatch, StoreError> {
        let durable = self.revision();
        let (rev, event) = from;
        let mut batch = ChangeBatch {
            events: Vec::new(),
            complete_through: rev.saturating_sub(1),
            next: from,
        };
        if rev > durable {
            batch.complete_through = durable;
            return Ok(batch);
        }
        let compacted = |s: &Self| StoreError::Compacted {
            compact_revision: s.compact_revision(),
        };
        if rev <= self.compact_revision() {
            return Err(compacted(self));
        }
        let range = keys::change_key(rev, event)..keys::change_key(durable + 1, 0);
        let mut expected = (rev, event);
        // A sled store gives every revision events; an etcd replica's
        // revisions are etcd's, with gaps where other keys changed.
        let dense = self.dense_history();
        let generation = self.generation()?;
        for item in generation.trees.changes.range(range) {
            let (key, value) = item?;
            let Some(at) = keys::parse_change_key(&key) else {
                return Err(StoreError::Corrupt("malformed change-log key".into()));
            };
            // Events are numbered from 0 within a revision and, on sled,
            // revisions are dense: anything else means compaction removed
            // what we were about to read.
            let moves_on = if dense {
                at == (expected.0 + 1, 0) && expected.1 > 0
            } else {
                at.0 > expected.0 && at.1 == 0
            };
            if at != expected && !moves_on {
                return Err(compacted(self));
            }
            if moves_on {
                batch.complete_through = at.0 - 1;
            }
            if batch.events.len() >= max_events {
                batch.next = at;
                return Ok(batch);
            }
            batch.events.push(log::read(
                &generation.trees,
                Some(&generation.apply_lock),
                &key,
                &value,
            )?);
            expected = (at.0, at.1 + 1);
        }
        if !dense {
            // Gaps are no evidence there: what a compaction removed while
            // this read is told by the compaction revision.
            if self.compact_revision() >= rev {
                return Err(compacted(self));
            }
        } else if batch.events.is_empty() && (event == 0 || rev < durable) {
            // Nothing at all where durable history should be.
            if self.compact_revision() >= rev {
                return Err(compacted(self));
            }
            return Err(StoreError::Corrupt(format!(
                "change log has no revision {rev}"
            )));
        }
        batch.complete_through = durable;
        batch.next = (durable + 1, 0);
        Ok(batch)
    }

    /// The last revision applied: committed, and visible to reads, though
    /// perhaps not yet durable.
    pub fn last_applied(&self) -> Result<u64, StoreError> {
        Ok(self.generation()?.applied.load(Ordering::Acquire))
    }
}
