//! An ordering index: every slot, sorted by a key the caller compares
//! (a column's value, then the name), in blocks.
//!
//! A sorted `Vec` of a million slots would move megabytes on every
//! insert; a `BTreeSet` would spend three times the memory and still not
//! count a range. Blocks of at most [`MAX_BLOCK`] slots keep an insert to
//! a short move, a position to a binary search over blocks then within
//! one, and the number of slots between two positions to a sum over the
//! blocks between them.

use std::cmp::Ordering;

/// The most slots a block holds; a fuller one splits in two.
const MAX_BLOCK: usize = 1024;

/// A place in the index: before the slot at `offset` of block `block`
/// (`offset` may equal the block's length only at the very end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    block: usize,
    offset: usize,
}

/// A block for `slot`, with room for a full block: blocks never grow
/// past it, so none ever holds more than it may need.
fn new_block(slot: u32) -> Vec<u32> {
    let mut block = Vec::with_capacity(MAX_BLOCK);
    block.push(slot);
    block
}

#[derive(Default)]
pub(crate) struct Ordered {
    blocks: Vec<Vec<u32>>,
    len: usize,
}

impl Ordered {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn start(&self) -> Pos {
        Pos {
            block: 0,
            offset: 0,
        }
    }

    pub(crate) fn end(&self) -> Pos {
        Pos {
            block: self.blocks.len(),
            offset: 0,
        }
    }

    /// The first position whose slot is not `before` (the slots for which
    /// `before` holds are a prefix).
    pub(crate) fn partition_point(&self, before: impl Fn(u32) -> bool) -> Pos {
        let block = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|&last| before(last)));
        match self.blocks.get(block) {
            None => self.end(),
            Some(b) => Pos {
                block,
                offset: b.partition_point(|&s| before(s)),
            },
        }
    }

    /// Inserts `slot` where `cmp(other)` (the other slot against it) says.
    ///
    /// A full block splits in two before it takes another slot, so no
    /// block outgrows [`MAX_BLOCK`]; at the very end a full last block
    /// starts a new one instead, so slots inserted in order (names, times
    /// of creation) fill their blocks.
    pub(crate) fn insert(&mut self, slot: u32, cmp: impl Fn(u32) -> Ordering) {
        let at = self.partition_point(|s| cmp(s) == Ordering::Less);
        self.len += 1;
        let Some(last) = self.blocks.len().checked_sub(1) else {
            self.blocks.push(new_block(slot));
            return;
        };
        // At the very end: the last block takes it, or a new one.
        let (block, offset) = if at.block == self.blocks.len() {
            if self.blocks[last].len() >= MAX_BLOCK {
                self.blocks.push(new_block(slot));
                return;
            }
            (last, self.blocks[last].len())
        } else {
            (at.block, at.offset)
        };
        let (block, offset) = if self.blocks[block].len() >= MAX_BLOCK {
            let half = MAX_BLOCK / 2;
            let mut tail = Vec::with_capacity(MAX_BLOCK);
            tail.extend(self.blocks[block].drain(half..));
            self.blocks.insert(block + 1, tail);
            if offset > half {
                (block + 1, offset - half)
            } else {
                (block, offset)
            }
        } else {
            (block, offset)
        };
        self.blocks[block].insert(offset, slot);
    }

    /// Removes `slot`, found where `cmp` says; whether it was there.
    pub(crate) fn remove(&mut self, slot: u32, cmp: impl Fn(u32) -> Ordering) -> bool {
        let at = self.partition_point(|s| cmp(s) == Ordering::Less);
        let Some(b) = self.blocks.get_mut(at.block) else {
            return false;
        };
        if b.get(at.offset) != Some(&slot) {
            return false;
        }
        b.remove(at.offset);
        if b.is_empty() {
            self.blocks.remove(at.block);
        }
        self.len -= 1;
        true
    }

    /// The number of slots from `from` up to `to`.
    pub(crate) fn count(&self, from: Pos, to: Pos) -> usize {
        if to <= from {
            return 0;
        }
        let whole: usize = self
            .blocks
            .get(from.block..to.block)
            .map_or(0, |bs| bs.iter().map(Vec::len).sum());
        whole + to.offset - from.offset
    }

    /// The slots from `from` up to `to`, in order.
    pub(crate) fn range(&self, from: Pos, to: Pos) -> impl Iterator<Item = u32> + '_ {
        self.forward(from).take(self.count(from, to))
    }

    /// The slots from `from` on, in order.
    pub(crate) fn forward(&self, from: Pos) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .blocks
            .get(from.block)
            .map_or(&[][..], |b| b.get(from.offset..).unwrap_or(&[]));
        let rest = self.blocks.get(from.block + 1..).unwrap_or(&[]);
        first.iter().chain(rest.iter().flatten()).copied()
    }

    /// The slots before `to`, last first.
    pub(crate) fn backward(&self, to: Pos) -> impl Iterator<Item = u32> + '_ {
        let (whole, part) = match self.blocks.get(to.block) {
            Some(b) => (to.block, b.get(..to.offset).unwrap_or(&[])),
            None => (self.blocks.len(), &[][..]),
        };
        let before = self.blocks.get(..whole).unwrap_or(&[]);
        part.iter()
            .rev()
            .chain(before.iter().rev().flat_map(|b| b.iter().rev()))
            .copied()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Vec<u32>>()
            + self.blocks.iter().map(|b| b.capacity() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Slots inserted in order fill their blocks, and no block ever
    /// holds room for more than a full one.
    #[test]
    fn in_order_inserts_fill_blocks_and_none_outgrows_its_room() {
        let mut index = Ordered::default();
        for s in 0..5000u32 {
            index.insert(s, |o| o.cmp(&s));
        }
        let full = index.blocks.iter().filter(|b| b.len() == MAX_BLOCK).count();
        assert_eq!(full, 5000 / MAX_BLOCK);
        // Then in reverse, in the middle: every block splits, none grows.
        for s in (0..5000u32).rev() {
            let s = 10_000 + s;
            index.insert(s, |o| (o % 10_000, o).cmp(&(s % 10_000, s)));
        }
        assert!(index.blocks.iter().all(|b| b.capacity() <= MAX_BLOCK));
        assert_eq!(index.len(), 10_000);
        let order: Vec<u32> = index.forward(index.start()).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|&o| (o % 10_000, o));
        assert_eq!(order, sorted);
    }

    proptest! {
        /// Against a sorted `Vec`: inserts and removals in any order keep
        /// the slots sorted, and positions and counts agree.
        #[test]
        fn agrees_with_a_sorted_vec(
            keys in proptest::collection::vec(0u32..500, 0..3000),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..1500),
            probe in 0u32..600,
        ) {
            // Slot i has key keys[i]; ties by slot.
            let key = |s: u32| (keys[s as usize], s);
            let mut index = Ordered::default();
            let mut model: Vec<u32> = Vec::new();
            for s in 0..keys.len() as u32 {
                index.insert(s, |o| key(o).cmp(&key(s)));
                model.push(s);
            }
            model.sort_by_key(|&s| key(s));
            for r in removals {
                if model.is_empty() {
                    break;
                }
                let s = model.remove(r.index(model.len()));
                prop_assert!(index.remove(s, |o| key(o).cmp(&key(s))));
                prop_assert!(!index.remove(s, |o| key(o).cmp(&key(s))), "removed twice");
            }
            prop_assert_eq!(index.len(), model.len());
            prop_assert_eq!(index.forward(index.start()).collect::<Vec<_>>(), model.clone());
            let mut reversed = model.clone();
            reversed.reverse();
            prop_assert_eq!(index.backward(index.end()).collect::<Vec<_>>(), reversed);

            let at = index.partition_point(|s| key(s).0 < probe);
            let below = model.iter().filter(|&&s| key(s).0 < probe).count();
            prop_assert_eq!(index.count(index.start(), at), below);
            prop_assert_eq!(index.count(at, index.end()), model.len() - below);
            prop_assert_eq!(
                index.range(at, index.end()).collect::<Vec<_>>(),
                model[below..].to_vec()
            );
            prop_assert_eq!(
                index.backward(at).collect::<Vec<_>>(),
                model[..below].iter().rev().copied().collect::<Vec<_>>()
            );
        }
    }
}
