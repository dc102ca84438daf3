//! Writes planned but not yet committed, and the view of the store they
//! make: the committed trees with those writes on top.
//!
//! The writer commits a whole group of writes in one sled transaction (a
//! transaction per write costs sled two log-buffer rolls and a wake-up of
//! its I/O threads each, which dominated a durable create). Each write is
//! still planned alone, against a [`View`] that shows the trees as the
//! group's earlier writes leave them, so a plan sees exactly the state it
//! will commit on top of.

use std::collections::BTreeMap;
use std::ops::Bound;

use sled::IVec;

use crate::{StoreError, Trees};

/// One tree's pending changes: a key's new value, or `None` for a removal.
#[derive(Default)]
pub struct Changes(BTreeMap<Vec<u8>, Option<IVec>>);

impl Changes {
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<IVec>) {
        self.0.insert(key.as_ref().to_vec(), Some(value.into()));
    }

    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.0.insert(key.as_ref().to_vec(), None);
    }

    /// Each changed key with its new value (`None`: removed).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&IVec>)> {
        self.0.iter().map(|(k, v)| (k.as_slice(), v.as_ref()))
    }

    /// Takes `later`'s changes on top of these.
    fn absorb(&mut self, later: Changes) {
        self.0.extend(later.0);
    }

    /// The changes as one sled batch, to apply atomically.
    pub fn to_batch(&self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in &self.0 {
            match value {
                Some(v) => batch.insert(key.as_slice(), v.clone()),
                None => batch.remove(key.as_slice()),
            }
        }
        batch
    }
}

/// The changes of one write, or of a group of them, per tree.
#[derive(Default)]
pub struct WriteSet {
    pub parks: Changes,
    pub companies: Changes,
    pub index: Changes,
    pub changes: Changes,
    pub requests: Changes,
    pub meta: Changes,
}

impl WriteSet {
    /// Takes a later write's changes on top of these.
    pub fn absorb(&mut self, later: WriteSet) {
        self.parks.absorb(later.parks);
        self.companies.absorb(later.companies);
        self.index.absorb(later.index);
        self.changes.absorb(later.changes);
        self.requests.absorb(later.requests);
        self.meta.absorb(later.meta);
    }
}

/// The store as committed, with `pending` on top.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub trees: &'a Trees,
    pub pending: &'a WriteSet,
}

impl<'a> View<'a> {
    pub fn parks(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.parks, &self.pending.parks)
    }

    pub fn companies(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.companies, &self.pending.companies)
    }

    pub fn index(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.index, &self.pending.index)
    }

    pub fn changes(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.changes, &self.pending.changes)
    }

    pub fn requests(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.requests, &self.pending.requests)
    }

    pub fn meta(&self) -> TreeView<'a> {
        TreeView::new(&self.trees.meta, &self.pending.meta)
    }
}

/// A range's entries, in key order.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<(IVec, IVec), StoreError>> + 'a>;

/// One tree as committed, with its pending changes on top.
#[derive(Clone, Copy)]
pub struct TreeView<'a> {
    tree: &'a sled::Tree,
    pending: &'a Changes,
}

impl<'a> TreeView<'a> {
    fn new(tree: &'a sled::Tree, pending: &'a Changes) -> Self {
        Self { tree, pending }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, StoreError> {
        let key = key.as_ref();
        match self.pending.0.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => Ok(self.tree.get(key)?),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.get(key)?.is_some())
    }

    /// The entries with keys in `start..end`, in key order. Read lazily
    /// from the tree when nothing in the range is pending (the usual case:
    /// a caller may stop at the first entry it looks for), merged otherwise.
    pub fn range(&self, start: &[u8], end: &[u8]) -> Result<Entries<'a>, StoreError> {
        let bounds = (Bound::Included(start), Bound::Excluded(end));
        let mut pending = self.pending.0.range::<[u8], _>(bounds).peekable();
        if pending.peek().is_none() {
            return Ok(Box::new(
                self.tree
                    .range(start..end)
                    .map(|item| item.map_err(StoreError::from)),
            ));
        }
        let mut merged = BTreeMap::new();
        for item in self.tree.range(start..end) {
            let (key, value) = item?;
            merged.insert(key, Some(value));
        }
        for (key, value) in pending {
            merged.insert(IVec::from(key.as_slice()), value.clone());
        }
        Ok(Box::new(
            merged
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| Ok((k, v)))),
        ))
    }

    /// The smallest key starting with `prefix`, if any.
    pub fn first_key_with_prefix(&self, prefix: &[u8]) -> Result<Option<IVec>, StoreError> {
        // The first committed key that is not pending removal.
        let mut committed = None;
        for key in self.tree.scan_prefix(prefix).keys() {
            let key = key?;
            if !matches!(self.pending.0.get(key.as_ref()), Some(None)) {
                committed = Some(key);
                break;
            }
        }
        let inserted = self
            .pending
            .0
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .find(|(_, v)| v.is_some())
            .map(|(k, _)| IVec::from(k.as_slice()));
        Ok(match (committed, inserted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}
