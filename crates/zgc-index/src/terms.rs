//! Posting lists: for one field, the slots holding each value.

use std::collections::BTreeMap;
use std::ops::Bound;

use roaring::RoaringBitmap;
use zgc_query::filter::{CmpOp, Literal};

/// An indexed value. One field's values are all of one variant (its
/// schema type); a literal of another type matches nothing, as in the
/// filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Term {
    Str(Box<str>),
    Int(i64),
    Bool(bool),
}

impl Term {
    pub(crate) fn of(literal: &Literal) -> Self {
        match literal {
            Literal::Str(s) => Term::Str(s.as_str().into()),
            Literal::Int(i) => Term::Int(*i),
            Literal::Bool(b) => Term::Bool(*b),
        }
    }

    fn same_type(&self, other: &Term) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// One field's posting lists, and which slots have the field at all.
#[derive(Default)]
pub(crate) struct Terms {
    postings: BTreeMap<Term, RoaringBitmap>,
    /// Slots with a value (for a list or a map: a non-empty one).
    present: RoaringBitmap,
    /// The type of the values, once there is one.
    kind: Option<Term>,
}

impl Terms {
    pub(crate) fn add(&mut self, term: Term, slot: u32) {
        if self.kind.is_none() {
            self.kind = Some(match &term {
                Term::Str(_) => Term::Str("".into()),
                Term::Int(_) => Term::Int(0),
                Term::Bool(_) => Term::Bool(false),
            });
        }
        self.postings.entry(term).or_default().insert(slot);
    }

    pub(crate) fn mark_present(&mut self, slot: u32) {
        self.present.insert(slot);
    }

    pub(crate) fn remove(&mut self, term: &Term, slot: u32) {
        if let Some(posting) = self.postings.get_mut(term) {
            posting.remove(slot);
            if posting.is_empty() {
                self.postings.remove(term);
            }
        }
    }

    pub(crate) fn unmark_present(&mut self, slot: u32) {
        self.present.remove(slot);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.present.is_empty() && self.postings.is_empty()
    }

    pub(crate) fn present(&self) -> &RoaringBitmap {
        &self.present
    }

    /// The slots holding `term`.
    pub(crate) fn get(&self, term: &Term) -> Option<&RoaringBitmap> {
        self.postings.get(term)
    }

    /// The slots whose value `v` satisfies `v op literal`.
    pub(crate) fn compare(&self, op: CmpOp, literal: &Literal) -> RoaringBitmap {
        let term = Term::of(literal);
        if self.kind.as_ref().is_some_and(|k| !k.same_type(&term)) {
            return RoaringBitmap::new();
        }
        let union = |range: (Bound<&Term>, Bound<&Term>)| {
            let mut out = RoaringBitmap::new();
            for (_, posting) in self.postings.range::<Term, _>(range) {
                out |= posting;
            }
            out
        };
        match op {
            CmpOp::Eq => self.get(&term).cloned().unwrap_or_default(),
            CmpOp::Ne => match self.get(&term) {
                Some(eq) => &self.present - eq,
                None => self.present.clone(),
            },
            CmpOp::Lt => union((Bound::Unbounded, Bound::Excluded(&term))),
            CmpOp::Le => union((Bound::Unbounded, Bound::Included(&term))),
            CmpOp::Gt => union((Bound::Excluded(&term), Bound::Unbounded)),
            CmpOp::Ge => union((Bound::Included(&term), Bound::Unbounded)),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        // A B-tree entry's own size, its key's heap and its bitmap.
        let entry = std::mem::size_of::<(Term, RoaringBitmap)>() * 3 / 2;
        self.present.serialized_size()
            + self
                .postings
                .iter()
                .map(|(t, p)| {
                    entry
                        + p.serialized_size()
                        + match t {
                            Term::Str(s) => s.len(),
                            _ => 0,
                        }
                })
                .sum::<usize>()
    }
}
