//! The planner: a listing answered from the indexes, in time that grows
//! with the answer, not with the records held.
//!
//! A filter compiles into a tree of [`Node`]s whose leaves come from the
//! indexes: a posting-list leaf is a bitmap (the union of the postings its
//! comparison selects); a leaf on a field with an ordering index
//! (`Resource::RANGED`) is a span of that index, counted without being
//! read. The matches are then:
//!
//! - every record, for no filter: counted, never listed;
//! - one span (or its complement): counted from the index, and tested
//!   slot by slot on its column as the page is found;
//! - otherwise a bitmap: `OR` unions, `NOT` complements, and `AND`
//!   starts from its most selective side and either intersects each other
//!   side's bitmap or, when that side is a large span, tests the few
//!   slots left on the span's column instead of reading the span.
//!
//! The page is found whichever way is cheaper: walking the order's index
//! from the page token's position and keeping matches (about `limit`
//! times the records over the matches steps), or selecting the smallest
//! matches from all of them (about the number of matches). A walk that
//! finds the matches sparser than expected stops at a budget and selects
//! instead, so no order of the data makes a page cost more than both.

use std::cmp::Ordering;
use std::ops::Bound;

use roaring::RoaringBitmap;
use zgc_query::filter::{CmpOp, Expr, FieldRef, HasArg, Literal};
use zgc_query::{Filter, OrderBy, SortKey, SortValue};

use crate::column::Column;
use crate::index::{Field, Index};
use crate::ordered::{Ordered, Pos};
use crate::records::Resource;
use crate::terms::Term;

/// A listing request, validated: the filter, the order, where the page
/// starts, and how many names it wants.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// Which records match.
    pub filter: &'a Filter,
    /// Their order.
    pub order: &'a OrderBy,
    /// The page starts strictly after this sort key (a page token's).
    pub after: Option<&'a SortKey>,
    /// The most names to return (a page and one more says whether there
    /// is a next page).
    pub limit: usize,
}

/// The answer to a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The names of the first `limit` matches after `after`, in order.
    pub names: Vec<String>,
    /// How many records match in all (`after` aside).
    pub total: u64,
}

/// A compiled filter.
enum Node {
    All,
    Nothing,
    Bits(RoaringBitmap),
    /// The slots of ordering index `order` from `from` up to `to`: those
    /// whose value lies within `lo` and `hi`.
    Span {
        order: usize,
        from: Pos,
        to: Pos,
        lo: Bound<SortValue>,
        hi: Bound<SortValue>,
        /// The same bounds, inclusive, for an integer column: a slot is
        /// tested with two comparisons.
        ints: Option<(i64, i64)>,
        count: u64,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

/// The matches of a whole filter.
enum Matches {
    All,
    /// Tested slot by slot (a span or its complement), but for the slots
    /// in `except`.
    Test {
        node: Node,
        except: RoaringBitmap,
    },
    Set(RoaringBitmap),
}

/// Steps a walk may take per match it could instead select from, before
/// it gives up and selects.
const WALK_BUDGET_PER_MATCH: u64 = 4;

impl<R: Resource> Index<R> {
    /// The page `listing` asks for, and the number of matches, in the
    /// state the index holds.
    pub fn list(&self, listing: &Listing<'_>) -> Listed {
        self.list_as_of(listing, &[])
    }

    /// The page `listing` asks for, and the number of matches, as of an
    /// earlier state: `changed` names every record changed since, with
    /// its state then (`None`: it did not exist). The index answers for
    /// the records not changed; those changed are filtered and ordered
    /// one by one and merged in, so the cost grows with the changes.
    pub fn list_as_of(&self, listing: &Listing<'_>, changed: &[(String, Option<R>)]) -> Listed {
        let except: RoaringBitmap = changed
            .iter()
            .filter_map(|(name, _)| self.slot(name))
            .collect();
        let node = listing
            .filter
            .expr()
            .map_or(Node::All, |expr| self.compile(expr));
        let (matches, total) = match node {
            Node::All if except.is_empty() => (Matches::All, self.len()),
            Node::All => {
                let set = &self.alive - &except;
                let total = set.len();
                (Matches::Set(set), total)
            }
            Node::Nothing => (Matches::Set(RoaringBitmap::new()), 0),
            Node::Bits(b) => {
                let set = b - &except;
                let total = set.len();
                (Matches::Set(set), total)
            }
            span @ Node::Span { .. } => self.tested(span, except),
            Node::Not(inner) if matches!(*inner, Node::Span { .. }) => {
                self.tested(Node::Not(inner), except)
            }
            other => {
                let set = self.materialize(other) - &except;
                let total = set.len();
                (Matches::Set(set), total)
            }
        };
        let order = self.resolve(listing.order);
        let mut names: Vec<String> = if total == 0 || listing.limit == 0 {
            Vec::new()
        } else {
            let page = self.page(&matches, total, &order, listing);
            page.into_iter().map(|s| self.name(s).to_string()).collect()
        };
        // The changed records as they were: those that matched, after
        // the page's start, merged into the page in order.
        let earlier: Vec<(SortKey, &str)> = changed
            .iter()
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| listing.filter.matches(*r))
            .map(|r| (r.sort_key(listing.order), r.name()))
            .collect();
        let total = total + earlier.len() as u64;
        let mut earlier: Vec<(SortKey, &str)> = earlier
            .into_iter()
            .filter(|(k, _)| {
                listing
                    .after
                    .is_none_or(|a| listing.order.compare(k, a).is_gt())
            })
            .collect();
        if !earlier.is_empty() {
            earlier.sort_by(|a, b| listing.order.compare(&a.0, &b.0));
            let held: Vec<(SortKey, String)> = names
                .into_iter()
                .filter_map(|n| Some((self.sort_key(&order, self.slot(&n)?), n)))
                .collect();
            names = merge(held, earlier, listing.order, listing.limit);
        }
        Listed { names, total }
    }

    /// Matches tested slot by slot, but for the slots in `except`.
    fn tested(&self, node: Node, except: RoaringBitmap) -> (Matches, u64) {
        let all = match &node {
            Node::Not(inner) => self.len() - self.estimate(inner),
            span => self.estimate(span),
        };
        let excepted = except.iter().filter(|&s| self.test(&node, s)).count() as u64;
        (Matches::Test { node, except }, all - excepted)
    }

    /// The sort key of the record at `slot`.
    fn sort_key(&self, order: &[(usize, bool)], slot: u32) -> SortKey {
        SortKey {
            values: order
                .iter()
                .map(|&(i, _)| self.column(i).map_or(SortValue::Int(0), |c| c.value(slot)))
                .collect(),
            name: self.name(slot).to_string(),
        }
    }

    // ------------------------------------------------------------ filter

    fn compile(&self, expr: &Expr) -> Node {
        match expr {
            Expr::And(items) => Node::And(items.iter().map(|e| self.compile(e)).collect()),
            Expr::Or(items) => Node::Or(items.iter().map(|e| self.compile(e)).collect()),
            Expr::Not(inner) => Node::Not(Box::new(self.compile(inner))),
            Expr::Compare { field, op, value } => self.compare(field, *op, value),
            Expr::Has { field, arg } => self.has(field, arg),
        }
    }

    fn field(&self, path: &str) -> Option<&Field> {
        self.fields.iter().find(|(p, _)| *p == path).map(|(_, f)| f)
    }

    fn order_of(&self, field: &str) -> Option<usize> {
        R::SCHEMA.order_fields.iter().position(|f| *f == field)
    }

    /// `field op value`, as `zgc_query`'s evaluation reads it: a missing
    /// value or a literal of another type matches nothing.
    fn compare(&self, field: &FieldRef, op: CmpOp, value: &Literal) -> Node {
        if R::RANGED.contains(&field.path.as_str()) {
            return self.range(&field.path, op, value);
        }
        let terms = match (self.field(&field.path), &field.key) {
            (Some(Field::Scalar(terms)), _) => terms,
            (Some(Field::Map { values, .. }), Some(key)) => match values.get(key.as_str()) {
                Some(terms) => terms,
                None => return Node::Nothing,
            },
            _ => return Node::Nothing,
        };
        Node::Bits(terms.compare(op, value))
    }

    /// A comparison on a field with an ordering index: a span of it.
    fn range(&self, path: &str, op: CmpOp, value: &Literal) -> Node {
        let value = match value {
            Literal::Str(s) => SortValue::Str(s.clone()),
            Literal::Int(i) => SortValue::Int(*i),
            Literal::Bool(_) => return Node::Nothing,
        };
        let Some(order) = self.order_of(path) else {
            return Node::Nothing;
        };
        let Some(column) = &self.columns[order] else {
            return Node::Nothing;
        };
        if !column.accepts(&value) {
            // Only a literal of the field's own type compares with it.
            return Node::Nothing;
        }
        let (lo, hi) = match op {
            CmpOp::Eq | CmpOp::Ne => (Bound::Included(value.clone()), Bound::Included(value)),
            CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(value)),
            CmpOp::Le => (Bound::Unbounded, Bound::Included(value)),
            CmpOp::Gt => (Bound::Excluded(value), Bound::Unbounded),
            CmpOp::Ge => (Bound::Included(value), Bound::Unbounded),
        };
        let index = &self.orders[order];
        let from = match &lo {
            Bound::Unbounded => index.start(),
            Bound::Included(v) => index.partition_point(|s| column.cmp_value(s, v).is_lt()),
            Bound::Excluded(v) => index.partition_point(|s| column.cmp_value(s, v).is_le()),
        };
        let to = match &hi {
            Bound::Unbounded => index.end(),
            Bound::Included(v) => index.partition_point(|s| column.cmp_value(s, v).is_le()),
            Bound::Excluded(v) => index.partition_point(|s| column.cmp_value(s, v).is_lt()),
        };
        let ints = int_bounds(&lo, &hi);
        let span = Node::Span {
            order,
            from,
            to,
            lo,
            hi,
            ints,
            count: index.count(from, to) as u64,
        };
        if op == CmpOp::Ne {
            Node::Not(Box::new(span))
        } else {
            span
        }
    }

    /// `field:arg`.
    fn has(&self, field: &FieldRef, arg: &HasArg) -> Node {
        let terms = match (self.field(&field.path), &field.key) {
            (Some(Field::List(terms)), _) => terms,
            (Some(Field::Map { keys, .. }), None) => keys,
            (Some(Field::Map { values, .. }), Some(key)) => match values.get(key.as_str()) {
                Some(terms) => terms,
                None => return Node::Nothing,
            },
            _ => return Node::Nothing,
        };
        Node::Bits(match arg {
            HasArg::Any => terms.present().clone(),
            HasArg::Value(v) => terms
                .get(&Term::Str(v.as_str().into()))
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// About how many slots `node` matches (exact for leaves).
    fn estimate(&self, node: &Node) -> u64 {
        match node {
            Node::All => self.len(),
            Node::Nothing => 0,
            Node::Bits(b) => b.len(),
            Node::Span { count, .. } => *count,
            Node::And(items) => items.iter().map(|n| self.estimate(n)).min().unwrap_or(0),
            Node::Or(items) => items
                .iter()
                .map(|n| self.estimate(n))
                .sum::<u64>()
                .min(self.len()),
            Node::Not(inner) => self.len().saturating_sub(self.estimate(inner)),
        }
    }

    /// Whether making `node` a bitmap costs bitmap operations only (no
    /// span to read slot by slot).
    fn cheap(node: &Node) -> bool {
        match node {
            Node::All | Node::Nothing | Node::Bits(_) => true,
            Node::Span { count, .. } => *count == 0,
            Node::And(items) | Node::Or(items) => items.iter().all(Self::cheap),
            Node::Not(inner) => Self::cheap(inner),
        }
    }

    /// The slots `node` matches.
    fn materialize(&self, node: Node) -> RoaringBitmap {
        match node {
            Node::All => self.alive.clone(),
            Node::Nothing => RoaringBitmap::new(),
            Node::Bits(b) => b,
            Node::Span {
                order, from, to, ..
            } => self.orders[order].range(from, to).collect(),
            Node::Or(items) => {
                let mut out = RoaringBitmap::new();
                for item in items {
                    out |= self.materialize(item);
                }
                out
            }
            Node::Not(inner) => &self.alive - self.materialize(*inner),
            Node::And(mut items) => {
                items.sort_by_cached_key(|n| self.estimate(n));
                let mut items = items.into_iter();
                let Some(first) = items.next() else {
                    return self.alive.clone();
                };
                let mut out = self.materialize(first);
                for item in items {
                    if out.is_empty() {
                        break;
                    }
                    if Self::cheap(&item) || self.estimate(&item) <= out.len() {
                        out &= self.materialize(item);
                    } else {
                        out = sorted(out.iter().filter(|&s| self.test(&item, s)));
                    }
                }
                out
            }
        }
    }

    /// Whether the slot (of a held record) matches `node`.
    fn test(&self, node: &Node, slot: u32) -> bool {
        match node {
            Node::All => true,
            Node::Nothing => false,
            Node::Bits(b) => b.contains(slot),
            Node::Span {
                order,
                lo,
                hi,
                ints,
                ..
            } => {
                let Some(column) = &self.columns[*order] else {
                    return false;
                };
                if let (Some((lo, hi)), Some(v)) = (ints, column.int(slot)) {
                    return *lo <= v && v <= *hi;
                }
                let above = match lo {
                    Bound::Unbounded => true,
                    Bound::Included(v) => column.cmp_value(slot, v).is_ge(),
                    Bound::Excluded(v) => column.cmp_value(slot, v).is_gt(),
                };
                above
                    && match hi {
                        Bound::Unbounded => true,
                        Bound::Included(v) => column.cmp_value(slot, v).is_le(),
                        Bound::Excluded(v) => column.cmp_value(slot, v).is_lt(),
                    }
            }
            Node::And(items) => items.iter().all(|n| self.test(n, slot)),
            Node::Or(items) => items.iter().any(|n| self.test(n, slot)),
            Node::Not(inner) => !self.test(inner, slot),
        }
    }

    // -------------------------------------------------------------- page

    /// The order's fields as (column, descending).
    fn resolve(&self, order: &OrderBy) -> Vec<(usize, bool)> {
        order
            .fields()
            .iter()
            .filter_map(|(f, desc)| Some((self.order_of(f)?, *desc)))
            .collect()
    }

    fn column(&self, order: usize) -> Option<&Column> {
        self.columns.get(order).and_then(Option::as_ref)
    }

    /// Compares two slots in the listing's order.
    fn cmp_slots(&self, order: &[(usize, bool)], a: u32, b: u32) -> Ordering {
        for &(i, desc) in order {
            let ord = self.column(i).map_or(Ordering::Equal, |c| c.cmp(a, b));
            let ord = if desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.cmp_names(a, b)
    }

    /// Compares a slot with a sort key, as `OrderBy::compare` would
    /// compare the slot's own key with it.
    fn cmp_key(&self, order: &[(usize, bool)], slot: u32, key: &SortKey) -> Ordering {
        for (j, &(i, desc)) in order.iter().enumerate() {
            let ord = match (self.column(i), key.values.get(j)) {
                (Some(c), Some(v)) => c.cmp_value(slot, v),
                (_, None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Equal,
            };
            let ord = if desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.names.get(slot).cmp(key.name.as_bytes())
    }

    fn member(&self, matches: &Matches, slot: u32) -> bool {
        match matches {
            Matches::All => true,
            Matches::Test { node, except } => self.test(node, slot) && !except.contains(slot),
            Matches::Set(set) => set.contains(slot),
        }
    }

    /// The first `listing.limit` matches after `listing.after`.
    fn page(
        &self,
        matches: &Matches,
        total: u64,
        order: &[(usize, bool)],
        listing: &Listing<'_>,
    ) -> Vec<u32> {
        let limit = listing.limit as u64;
        // Expected steps of a walk against the matches a selection reads.
        let walk = limit.saturating_mul(self.len()) / total.max(1);
        let select = self.selection_cost(matches, total);
        if walk <= select.saturating_mul(WALK_BUDGET_PER_MATCH) {
            let budget = select
                .saturating_mul(WALK_BUDGET_PER_MATCH)
                .saturating_add(limit);
            if let Some(page) = self.walk(matches, order, listing, budget) {
                return page;
            }
        }
        self.select(matches, order, listing)
    }

    /// The slots a selection reads.
    fn selection_cost(&self, matches: &Matches, total: u64) -> u64 {
        match matches {
            Matches::Test {
                node: Node::Not(_), ..
            }
            | Matches::All => self.len(),
            Matches::Test { .. } | Matches::Set(_) => total,
        }
    }

    /// The page found by walking the order's index from the token's
    /// position, or `None` once it takes more than `budget` steps.
    fn walk(
        &self,
        matches: &Matches,
        order: &[(usize, bool)],
        listing: &Listing<'_>,
        budget: u64,
    ) -> Option<Vec<u32>> {
        let after = listing.after;
        let mut steps: u64 = 0;
        let mut page = Vec::with_capacity(listing.limit.min(1024));
        let Some(&(primary, desc)) = order.first() else {
            // By name: names are unique, so every step is in order.
            let from = after.map_or(self.by_name.start(), |k| {
                self.by_name
                    .partition_point(|s| self.names.get(s) <= k.name.as_bytes())
            });
            for slot in self.by_name.forward(from) {
                steps += 1;
                if steps > budget {
                    return None;
                }
                if self.member(matches, slot) {
                    page.push(slot);
                    if page.len() == listing.limit {
                        break;
                    }
                }
            }
            return Some(page);
        };
        let column = self.column(primary)?;
        let index: &Ordered = &self.orders[primary];
        let first = after.and_then(|k| k.values.first());
        let slots: Box<dyn Iterator<Item = u32> + '_> = if desc {
            let to = first.map_or(index.end(), |v| {
                index.partition_point(|s| column.cmp_value(s, v).is_le())
            });
            Box::new(index.backward(to))
        } else {
            let from = first.map_or(index.start(), |v| {
                index.partition_point(|s| column.cmp_value(s, v).is_lt())
            });
            Box::new(index.forward(from))
        };
        // Slots come in runs of one primary value; within a run the rest
        // of the order decides, so each run is sorted before it is kept.
        let mut run: Vec<u32> = Vec::new();
        let mut run_head: Option<u32> = None;
        let flush = |run: &mut Vec<u32>, page: &mut Vec<u32>| {
            run.sort_by(|&a, &b| self.cmp_slots(order, a, b));
            let room = listing.limit - page.len();
            page.extend(run.drain(..).take(room));
        };
        for slot in slots {
            steps += 1;
            if steps > budget {
                return None;
            }
            if run_head.is_some_and(|head| column.cmp(head, slot) != Ordering::Equal) {
                flush(&mut run, &mut page);
                if page.len() == listing.limit {
                    return Some(page);
                }
            }
            run_head = Some(slot);
            if self.member(matches, slot)
                && after.is_none_or(|k| self.cmp_key(order, slot, k).is_gt())
            {
                run.push(slot);
            }
        }
        flush(&mut run, &mut page);
        Some(page)
    }

    /// The page found by selecting the smallest matches after the token
    /// from all of them.
    fn select(
        &self,
        matches: &Matches,
        order: &[(usize, bool)],
        listing: &Listing<'_>,
    ) -> Vec<u32> {
        let candidates: Box<dyn Iterator<Item = u32> + '_> = match matches {
            Matches::All => Box::new(self.alive.iter()),
            Matches::Set(set) => Box::new(set.iter()),
            Matches::Test {
                node: Node::Span {
                    order: i, from, to, ..
                },
                except,
            } => Box::new(
                self.orders[*i]
                    .range(*from, *to)
                    .filter(move |&s| !except.contains(s)),
            ),
            Matches::Test { .. } => {
                Box::new(self.alive.iter().filter(move |&s| self.member(matches, s)))
            }
        };
        let mut found: Vec<u32> = match listing.after {
            Some(k) => candidates
                .filter(|&s| self.cmp_key(order, s, k).is_gt())
                .collect(),
            None => candidates.collect(),
        };
        let cmp = |a: &u32, b: &u32| self.cmp_slots(order, *a, *b);
        if found.len() > listing.limit {
            found.select_nth_unstable_by(listing.limit, cmp);
            found.truncate(listing.limit);
        }
        found.sort_by(cmp);
        found
    }
}

/// The first `limit` of two lists sorted in `order`, merged.
fn merge(
    held: Vec<(SortKey, String)>,
    earlier: Vec<(SortKey, &str)>,
    order: &OrderBy,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::with_capacity(limit);
    let mut held = held.into_iter().peekable();
    let mut earlier = earlier.into_iter().peekable();
    while out.len() < limit {
        let take_held = match (held.peek(), earlier.peek()) {
            (Some(h), Some(e)) => order.compare(&h.0, &e.0).is_lt(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let name = if take_held {
            held.next().map(|(_, n)| n)
        } else {
            earlier.next().map(|(_, n)| n.to_string())
        };
        out.extend(name);
    }
    out
}

/// A bitmap of slots that come in ascending order (as a bitmap's do),
/// built without searching for each one's place.
fn sorted(slots: impl Iterator<Item = u32>) -> RoaringBitmap {
    let slots: Vec<u32> = slots.collect();
    RoaringBitmap::from_sorted_iter(slots.iter().copied())
        .unwrap_or_else(|_| slots.into_iter().collect())
}

/// Integer bounds as one inclusive range (`i64::MAX` to `i64::MIN`, which
/// holds nothing, when an exclusive bound leaves nothing); `None` unless
/// both are integers or open.
fn int_bounds(lo: &Bound<SortValue>, hi: &Bound<SortValue>) -> Option<(i64, i64)> {
    let lo = match lo {
        Bound::Unbounded => i64::MIN,
        Bound::Included(SortValue::Int(v)) => *v,
        Bound::Excluded(SortValue::Int(v)) => match v.checked_add(1) {
            Some(v) => v,
            None => return Some((i64::MAX, i64::MIN)),
        },
        _ => return None,
    };
    let hi = match hi {
        Bound::Unbounded => i64::MAX,
        Bound::Included(SortValue::Int(v)) => *v,
        Bound::Excluded(SortValue::Int(v)) => match v.checked_sub(1) {
            Some(v) => v,
            None => return Some((i64::MAX, i64::MIN)),
        },
        _ => return None,
    };
    Some((lo, hi))
}
