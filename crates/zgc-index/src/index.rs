//! The indexes of one resource type: every record's slot, its sort values
//! in columns, an ordering index per order field (and by name), and
//! posting lists for every other filter field.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use hashbrown::{DefaultHashBuilder, HashTable};
use roaring::RoaringBitmap;
use zgc_query::{FieldType, Value};

use crate::column::{Column, StrColumn};
use crate::ordered::Ordered;
use crate::records::Resource;
use crate::terms::{Term, Terms};

/// A filter field answered by posting lists.
pub(crate) enum Field {
    /// One value (string, enum, integer, boolean), or none.
    Scalar(Terms),
    /// A repeated string: a posting list per element.
    List(Terms),
    /// A string map: a posting list per key, and per key one per value.
    Map {
        keys: Terms,
        values: HashMap<Box<str>, Terms>,
    },
}

/// Every record of one resource type, indexed; see the crate docs.
pub struct Index<R: Resource> {
    /// Slots by name (hashes of `names`).
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    pub(crate) names: StrColumn,
    pub(crate) by_name: Ordered,
    /// Per order field of the schema, its values by slot (`None` until
    /// the first record).
    pub(crate) columns: Vec<Option<Column>>,
    /// Per order field of the schema, the slots in its order.
    pub(crate) orders: Vec<Ordered>,
    /// Per filter field not in `R::RANGED`, its posting lists.
    pub(crate) fields: Vec<(&'static str, Field)>,
    pub(crate) alive: RoaringBitmap,
    free: Vec<u32>,
    next_slot: u32,
    revision: u64,
    resource: PhantomData<fn() -> R>,
}

impl<R: Resource> Default for Index<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Resource> Index<R> {
    /// An empty index.
    pub fn new() -> Self {
        let fields = R::SCHEMA
            .filter_fields
            .iter()
            .filter(|(path, _)| !R::RANGED.contains(path))
            .map(|&(path, kind)| {
                let field = match kind {
                    FieldType::StringList => Field::List(Terms::default()),
                    FieldType::StringMap => Field::Map {
                        keys: Terms::default(),
                        values: HashMap::new(),
                    },
                    FieldType::String | FieldType::Int | FieldType::Bool | FieldType::Enum(_) => {
                        Field::Scalar(Terms::default())
                    }
                };
                (path, field)
            })
            .collect();
        let orders = R::SCHEMA.order_fields.len();
        Self {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            names: StrColumn::default(),
            by_name: Ordered::default(),
            columns: (0..orders).map(|_| None).collect(),
            orders: (0..orders).map(|_| Ordered::default()).collect(),
            fields,
            alive: RoaringBitmap::new(),
            free: Vec::new(),
            next_slot: 0,
            revision: 0,
            resource: PhantomData,
        }
    }

    /// How many records it holds.
    pub fn len(&self) -> u64 {
        self.alive.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.alive.is_empty()
    }

    /// The revision whose state it holds (set by its keeper).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Records that it holds the state as of `revision`.
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Whether it holds a record named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.slot(name).is_some()
    }

    pub(crate) fn slot(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name.as_bytes());
        self.table
            .find(hash, |&s| self.names.get(s) == name.as_bytes())
            .copied()
    }

    /// The name at a slot.
    pub(crate) fn name(&self, slot: u32) -> &str {
        self.names.get_str(slot)
    }

    /// Adds `record`, unless one of its name is held already (then
    /// nothing changes and the answer is `false`).
    pub fn insert(&mut self, record: &R) -> bool {
        let name = record.name();
        if self.contains(name) {
            return false;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        });
        self.names.set(slot, name);
        let hash = self.hasher.hash_one(name.as_bytes());
        let (names, hasher) = (&self.names, &self.hasher);
        self.table
            .insert_unique(hash, slot, |&s| hasher.hash_one(names.get(s)));
        let Self {
            names,
            by_name,
            columns,
            orders,
            ..
        } = self;
        by_name.insert(slot, |o| names.get(o).cmp(names.get(slot)));
        for (i, field) in R::SCHEMA.order_fields.iter().enumerate() {
            let value = record.sort_value(field);
            let column = columns[i].get_or_insert_with(|| Column::like(&value));
            column.set(slot, &value);
            let column = &*column;
            orders[i].insert(slot, |o| in_order(column, names, o, slot));
        }
        for (path, field) in &mut self.fields {
            index_field(field, path, record, slot, true);
        }
        self.alive.insert(slot);
        true
    }

    /// Removes the record named as `record` is, whose indexed values are
    /// `record`'s (the state it was inserted with); whether it was held.
    pub fn remove(&mut self, record: &R) -> bool {
        let name = record.name();
        let Some(slot) = self.slot(name) else {
            return false;
        };
        let Self {
            names,
            by_name,
            columns,
            orders,
            ..
        } = self;
        by_name.remove(slot, |o| names.get(o).cmp(names.get(slot)));
        for (i, order) in orders.iter_mut().enumerate() {
            if let Some(column) = &columns[i] {
                order.remove(slot, |o| in_order(column, names, o, slot));
            }
        }
        for column in self.columns.iter_mut().flatten() {
            column.clear(slot);
        }
        for (path, field) in &mut self.fields {
            index_field(field, path, record, slot, false);
        }
        self.alive.remove(slot);
        let hash = self.hasher.hash_one(name.as_bytes());
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.names.clear(slot);
        self.free.push(slot);
        true
    }

    /// Replaces what is held under a name: `old` is the state held (or
    /// `None`), `new` the state to hold (or `None` for a deletion).
    pub fn replace(&mut self, old: Option<&R>, new: Option<&R>) {
        if let Some(old) = old {
            self.remove(old);
        }
        if let Some(new) = new {
            self.insert(new);
        }
    }

    /// The bytes of memory it takes, about.
    pub fn bytes(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(_, f)| match f {
                Field::Scalar(t) | Field::List(t) => t.bytes(),
                Field::Map { keys, values } => {
                    keys.bytes()
                        + values
                            .iter()
                            .map(|(k, t)| k.len() + t.bytes())
                            .sum::<usize>()
                }
            })
            .sum();
        self.table.capacity() * 5
            + self.names.bytes()
            + self.by_name.bytes()
            + self
                .columns
                .iter()
                .flatten()
                .map(Column::bytes)
                .sum::<usize>()
            + self.orders.iter().map(Ordered::bytes).sum::<usize>()
            + fields
            + self.alive.serialized_size()
            + self.free.capacity() * 4
    }

    /// Compares two slots by name.
    pub(crate) fn cmp_names(&self, a: u32, b: u32) -> Ordering {
        self.names.get(a).cmp(self.names.get(b))
    }
}

/// How slot `a` stands to slot `b` in an ordering index on `column`:
/// by value, then by name.
fn in_order(column: &Column, names: &StrColumn, a: u32, b: u32) -> Ordering {
    column
        .cmp(a, b)
        .then_with(|| names.get(a).cmp(names.get(b)))
}

/// Adds (`add`) or removes `slot` under the values `record` has for the
/// filter field `path`.
fn index_field<R: Resource>(field: &mut Field, path: &str, record: &R, slot: u32, add: bool) {
    let put = |terms: &mut Terms, term: Term| {
        if add {
            terms.add(term, slot);
        } else {
            terms.remove(&term, slot);
        }
    };
    let present = |terms: &mut Terms| {
        if add {
            terms.mark_present(slot);
        } else {
            terms.unmark_present(slot);
        }
    };
    match field {
        Field::Scalar(terms) => {
            let term = match record.value(path, None) {
                Some(Value::Str(s)) => Term::Str(s.into()),
                Some(Value::Int(i)) => Term::Int(i),
                Some(Value::Bool(b)) => Term::Bool(b),
                _ => return,
            };
            put(terms, term);
            present(terms);
        }
        Field::List(terms) => {
            if let Some(Value::List(items)) = record.value(path, None) {
                for item in items {
                    put(terms, Term::Str(item.as_str().into()));
                }
                if !items.is_empty() {
                    present(terms);
                }
            }
        }
        Field::Map { keys, values } => {
            let Some(Value::MapKeys(map_keys)) = record.value(path, None) else {
                return;
            };
            for key in &map_keys {
                put(keys, Term::Str((*key).into()));
                let Some(Value::MapEntry(Some(value))) = record.value(path, Some(key)) else {
                    continue;
                };
                let terms = values.entry((*key).into()).or_default();
                put(terms, Term::Str(value.into()));
                present(terms);
                if terms.is_empty() {
                    values.remove(*key);
                }
            }
            if !map_keys.is_empty() {
                present(keys);
            }
        }
    }
}
