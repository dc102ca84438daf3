//! The listing indexes (`zgc-index`) of one generation: kept by the
//! writer in step with what it commits, filled in the background by the
//! loader, and read as of any revision the change log still reaches.
//!
//! - **Upkeep**: the writer decodes a group's changed parks and companies,
//!   and reads the state each index holds for them, before it takes the
//!   apply lock; under the lock, right after the transaction, it replaces
//!   those states and sets the revision. An index therefore always holds
//!   the state of exactly the last applied revision.
//! - **Loading**: when a generation opens, the loader inserts what was
//!   stored before, a step at a time under the apply lock's read side,
//!   never replacing a record a write put there first (as it fills the
//!   companies held in memory). Until it has finished the indexes answer
//!   nothing and listings read the store as before.
//! - **Reading**: a listing is of a revision `R` (its first page's), and
//!   may be read while later ones are applied. Under the apply lock's
//!   read side the index holds revision `I >= R`; the change log's events
//!   after `R` up to `I` name every record changed since and hold its
//!   state as of `R` (the `before` of its first change), and the index
//!   answers the rest (`Index::list_as_of`). The page's records are read
//!   under the same lock, so all of it is the state as of `R`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use bytes::Bytes;
use prost::Message;
use tokio::sync::watch;

use zgc_index::records::{CompanyRecord, ParkRecord, Resource};
use zgc_index::{Index, Listing};
use zgc_proto::registry::v1::{ChangeEvent, Company, Park, entity};

use crate::log::{self, Stored};
use crate::pending::WriteSet;
use crate::{Generation, Store, StoreError, Trees, codec, keys};

/// Change-log events a listing merges at most; a listing of a revision
/// further behind reads a snapshot instead.
const MAX_MERGED_EVENTS: usize = 10_000;

/// The indexes of parks and companies.
pub(crate) struct Indexes {
    companies: RwLock<Index<CompanyRecord>>,
    parks: RwLock<Index<ParkRecord>>,
    /// Whether every stored record is indexed (the loader finished).
    loaded: watch::Sender<bool>,
}

/// A group's changes to the indexes, prepared before the apply lock.
#[derive(Default)]
pub(crate) struct Update {
    companies: Vec<(Option<CompanyRecord>, Option<CompanyRecord>)>,
    parks: Vec<(Option<ParkRecord>, Option<ParkRecord>)>,
}

/// What [`Store::indexes`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Companies indexed.
    pub companies: u64,
    /// Parks indexed.
    pub parks: u64,
    /// Bytes of memory the indexes take, about.
    pub bytes: u64,
    /// Whether every stored record is indexed (the loader finished).
    pub loaded: bool,
}

/// One page of a listing read from the indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedPage<T> {
    /// The page's records, in order, as of the listing's revision.
    pub items: Vec<T>,
    /// How many records match, as of the listing's revision.
    pub total: u64,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Indexes {
    /// Empty indexes of a generation opened at `revision`.
    pub(crate) fn new(revision: u64) -> Self {
        let mut companies = Index::new();
        companies.set_revision(revision);
        let mut parks = Index::new();
        parks.set_revision(revision);
        Self {
            companies: RwLock::new(companies),
            parks: RwLock::new(parks),
            loaded: watch::channel(false).0,
        }
    }

    /// Decodes a group's changes, with the states the indexes hold for
    /// the same names (read from the trees, which hold exactly those
    /// until the group applies). Called by the writer before the apply
    /// lock.
    pub(crate) fn prepare(&self, trees: &Trees, set: &WriteSet) -> Result<Update, StoreError> {
        let companies = read(&self.companies);
        let parks = read(&self.parks);
        let mut update = Update::default();
        for (id, value) in set.companies.iter() {
            let new = value.map(|v| codec::decode_company(v)).transpose()?;
            let id = String::from_utf8_lossy(id);
            let old = if companies.contains(&format!("{}/{id}", keys::COMPANIES)) {
                trees
                    .companies
                    .get(id.as_bytes())?
                    .map(|v| codec::decode_company(&v))
                    .transpose()?
            } else {
                None
            };
            update
                .companies
                .push((old.map(CompanyRecord), new.map(CompanyRecord)));
        }
        for (id, value) in set.parks.iter() {
            let new = value.map(|v| codec::decode_park(v)).transpose()?;
            let id = String::from_utf8_lossy(id);
            let old = if parks.contains(&format!("{}/{id}", keys::PARKS)) {
                trees
                    .parks
                    .get(id.as_bytes())?
                    .map(|v| codec::decode_park(&v))
                    .transpose()?
            } else {
                None
            };
            update
                .parks
                .push((old.map(ParkRecord), new.map(ParkRecord)));
        }
        Ok(update)
    }

    /// Applies a prepared update as of `revision`. Called by the writer
    /// under the apply lock, right after the transaction.
    pub(crate) fn apply(&self, update: Update, revision: u64) {
        let mut companies = write(&self.companies);
        for (old, new) in &update.companies {
            companies.replace(old.as_ref(), new.as_ref());
        }
        companies.set_revision(revision);
        drop(companies);
        let mut parks = write(&self.parks);
        for (old, new) in &update.parks {
            parks.replace(old.as_ref(), new.as_ref());
        }
        parks.set_revision(revision);
    }

    /// Inserts stored companies (the loader), never replacing one held.
    pub(crate) fn fill_companies(&self, companies: impl IntoIterator<Item = Company>) {
        let mut index = write(&self.companies);
        for c in companies {
            index.insert(&CompanyRecord(c));
        }
    }

    /// Inserts stored parks (the loader), never replacing one held.
    pub(crate) fn fill_parks(&self, parks: impl IntoIterator<Item = Park>) {
        let mut index = write(&self.parks);
        for p in parks {
            index.insert(&ParkRecord(p));
        }
    }

    /// Marks every stored record indexed; called by the loader.
    pub(crate) fn set_loaded(&self) {
        self.loaded.send_replace(true);
    }

    fn stats(&self) -> IndexStats {
        let companies = read(&self.companies);
        let parks = read(&self.parks);
        IndexStats {
            companies: companies.len(),
            parks: parks.len(),
            bytes: (companies.bytes() + parks.bytes()) as u64,
            loaded: *self.loaded.borrow(),
        }
    }
}

/// A resource the indexes list.
trait Indexed: Resource {
    const COLLECTION: &'static str;
    fn index(indexes: &Indexes) -> &RwLock<Index<Self>>;
    fn of(entity: zgc_proto::registry::v1::Entity) -> Option<Self>;
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError>;
}

impl Indexed for CompanyRecord {
    const COLLECTION: &'static str = keys::COMPANIES;
    fn index(indexes: &Indexes) -> &RwLock<Index<Self>> {
        &indexes.companies
    }
    fn of(entity: zgc_proto::registry::v1::Entity) -> Option<Self> {
        match entity.kind? {
            entity::Kind::Company(c) => Some(Self(c)),
            entity::Kind::Park(_) => None,
        }
    }
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(store.get_company(id)?.map(Self))
    }
}

impl Indexed for ParkRecord {
    const COLLECTION: &'static str = keys::PARKS;
    fn index(indexes: &Indexes) -> &RwLock<Index<Self>> {
        &indexes.parks
    }
    fn of(entity: zgc_proto::registry::v1::Entity) -> Option<Self> {
        match entity.kind? {
            entity::Kind::Park(p) => Some(Self(p)),
            entity::Kind::Company(_) => None,
        }
    }
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(store.get_park(id)?.map(Self))
    }
}

/// The name an event is about, if it is about a `R`, and that record's
/// state before it.
fn change_of<R: Indexed>(stored: Stored) -> Option<(String, Option<R>)> {
    let (name, event): (String, ChangeEvent) = match stored {
        Stored::Pointer { id, event } => (format!("{}/{id}", keys::COMPANIES), event),
        Stored::Full(event) => {
            let entity = event.before.as_ref().or(event.after.as_ref())?;
            let name = match entity.kind.as_ref()? {
                entity::Kind::Company(c) => c.name.clone(),
                entity::Kind::Park(p) => p.name.clone(),
            };
            (name, event)
        }
    };
    // Only events about this collection.
    keys::id_of(&name, R::COLLECTION)?;
    Some((name, event.before.and_then(R::of)))
}

impl Store {
    /// The indexes: how many records they hold, their memory, and whether
    /// they are loaded. `None` when off or while the store is reopening.
    pub fn indexes(&self) -> Option<IndexStats> {
        let generation = self.generation().ok()?;
        Some(generation.indexes.as_ref()?.stats())
    }

    /// Waits until the indexes hold every stored record; returns at once
    /// when they are off or the store is reopening (nothing to wait for).
    pub async fn indexes_loaded(&self) {
        let Ok(generation) = self.generation() else {
            return;
        };
        let Some(indexes) = &generation.indexes else {
            return;
        };
        let mut loaded = indexes.loaded.subscribe();
        // Not held while waiting: a generation keeps the database open.
        drop(generation);
        // An error means the generation ended: nothing more to wait for.
        let _ = loaded.wait_for(|l| *l).await;
    }

    /// A page of companies listed from the indexes as of `revision`, or
    /// `None` when they cannot answer (off, still loading, or `revision`
    /// further behind than they merge): then read a snapshot.
    pub fn list_companies(
        &self,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<IndexedPage<Company>>, StoreError> {
        Ok(self
            .list::<CompanyRecord>(listing, revision)?
            .map(|page| IndexedPage {
                items: page.items.into_iter().map(|r| r.0).collect(),
                total: page.total,
            }))
    }

    /// A page of parks listed from the indexes; as
    /// [`Store::list_companies`].
    pub fn list_parks(
        &self,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<IndexedPage<Park>>, StoreError> {
        Ok(self
            .list::<ParkRecord>(listing, revision)?
            .map(|page| IndexedPage {
                items: page.items.into_iter().map(|r| r.0).collect(),
                total: page.total,
            }))
    }

    /// A page of companies listed from the indexes as of `revision`, each
    /// as its stored encoding, to be sent as it is; as
    /// [`Store::list_companies`].
    pub fn list_companies_encoded(
        &self,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<IndexedPage<Bytes>>, StoreError> {
        self.list_items::<CompanyRecord, Bytes>(
            listing,
            revision,
            |store, id| store.get_company_encoded(id),
            |r| Bytes::from(r.0.encode_to_vec()),
        )
    }

    fn list<R: Indexed>(
        &self,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<IndexedPage<R>>, StoreError> {
        self.list_items::<R, R>(listing, revision, R::get, R::clone)
    }

    /// A page listed from the indexes, its records read by `by_id` (by ID,
    /// for those unchanged since `revision`) or made by `earlier` (from
    /// their state as of `revision`, for those changed since).
    fn list_items<R: Indexed, T>(
        &self,
        listing: &Listing<'_>,
        revision: u64,
        by_id: impl Fn(&Store, &str) -> Result<Option<T>, StoreError>,
        earlier: impl Fn(&R) -> T,
    ) -> Result<Option<IndexedPage<T>>, StoreError> {
        let generation = self.generation()?;
        let Some(indexes) = &generation.indexes else {
            return Ok(None);
        };
        if !*indexes.loaded.borrow() {
            return Ok(None);
        }
        let _state = generation
            .apply_lock
            .read()
            .map_err(|_| StoreError::Corrupt("apply lock poisoned".into()))?;
        let index = read(R::index(indexes));
        let held = index.revision();
        if revision > held {
            // Not applied yet: nothing can be listed as of it.
            return Ok(None);
        }
        let compact = self.compact_revision();
        if revision < compact {
            return Err(StoreError::Compacted {
                compact_revision: compact,
            });
        }
        let Some(changed) = changed_since::<R>(&generation, revision, held)? else {
            return Ok(None);
        };
        let listed = index.list_as_of(listing, &changed);
        drop(index);
        let before: BTreeMap<&str, &R> = changed
            .iter()
            .filter_map(|(name, r)| Some((name.as_str(), r.as_ref()?)))
            .collect();
        let mut items = Vec::with_capacity(listed.names.len());
        for name in &listed.names {
            let item = match before.get(name.as_str()) {
                Some(r) => Some(earlier(r)),
                None => match keys::id_of(name, R::COLLECTION) {
                    Some(id) => by_id(self, id)?,
                    None => None,
                },
            };
            let Some(item) = item else {
                return Err(StoreError::Corrupt(format!(
                    "the listing index holds {name}, which is not stored"
                )));
            };
            items.push(item);
        }
        Ok(Some(IndexedPage {
            items,
            total: listed.total,
        }))
    }
}

/// Every `R` changed after `revision` up to `held`, with its state as of
/// `revision`; `None` if that is more than a listing merges. The caller
/// holds the apply lock.
#[allow(clippy::type_complexity)]
fn changed_since<R: Indexed>(
    generation: &Generation,
    revision: u64,
    held: u64,
) -> Result<Option<Vec<(String, Option<R>)>>, StoreError> {
    let mut changed: BTreeMap<String, Option<R>> = BTreeMap::new();
    if revision == held {
        return Ok(Some(Vec::new()));
    }
    let range = keys::change_key(revision + 1, 0)..keys::change_key(held + 1, 0);
    for (n, item) in generation.trees.changes.range(range).enumerate() {
        if n >= MAX_MERGED_EVENTS {
            return Ok(None);
        }
        let (_, value) = item?;
        if let Some((name, before)) = change_of::<R>(log::decode(&value)?) {
            changed.entry(name).or_insert(before);
        }
    }
    Ok(Some(changed.into_iter().collect()))
}
