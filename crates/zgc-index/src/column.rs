//! Values by slot: the sort values the ordering indexes compare, and the
//! resource names.

use std::cmp::Ordering;

use zgc_query::SortValue;

/// Bits of a packed span that hold the length; the rest hold the offset.
const LEN_BITS: u32 = 24;
/// The longest string a column holds; longer ones are cut at a character
/// boundary (the store's validation keeps every indexed string far
/// shorter).
const MAX_LEN: usize = (1 << LEN_BITS) - 1;

/// Strings by slot, back to back in one buffer: a string costs its bytes
/// and eight more, where a `String` per slot would cost 24 more and an
/// allocation.
#[derive(Default)]
pub(crate) struct StrColumn {
    bytes: Vec<u8>,
    /// Per slot, the offset (high bits) and length (low bits) in `bytes`.
    spans: Vec<u64>,
    /// Bytes no slot points at any more.
    dead: usize,
}

impl StrColumn {
    pub(crate) fn get(&self, slot: u32) -> &[u8] {
        let Some(&span) = self.spans.get(slot as usize) else {
            return &[];
        };
        let (start, len) = unpack(span);
        self.bytes.get(start..start + len).unwrap_or(&[])
    }

    /// The string at `slot`.
    pub(crate) fn get_str(&self, slot: u32) -> &str {
        // Only whole strings go in, so this never fails.
        std::str::from_utf8(self.get(slot)).unwrap_or_default()
    }

    pub(crate) fn set(&mut self, slot: u32, value: &str) {
        let slot = slot as usize;
        grow_to(&mut self.spans, slot + 1);
        self.clear(slot as u32);
        let mut end = value.len().min(MAX_LEN);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let start = self.bytes.len();
        reserve(&mut self.bytes, end);
        self.bytes.extend_from_slice(&value.as_bytes()[..end]);
        self.spans[slot] = pack(start, end);
    }

    pub(crate) fn clear(&mut self, slot: u32) {
        if let Some(span) = self.spans.get_mut(slot as usize) {
            self.dead += unpack(*span).1;
            *span = 0;
        }
        // Rewrites the buffer once most of it is dead, so replaced values
        // never take more than the live ones.
        if self.dead > 1 << 16 && self.dead * 2 > self.bytes.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
        for span in &mut self.spans {
            let (start, len) = unpack(*span);
            let at = bytes.len();
            bytes.extend_from_slice(self.bytes.get(start..start + len).unwrap_or(&[]));
            *span = pack(at, len);
        }
        self.bytes = bytes;
        self.dead = 0;
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * 8
    }
}

/// Makes room for `more` elements, growing by an eighth at a time rather
/// than doubling: columns are the indexes' bulk, and a doubled buffer
/// would leave up to half of it unused.
fn reserve<T>(v: &mut Vec<T>, more: usize) {
    if v.len() + more > v.capacity() {
        v.reserve_exact(more.max(v.capacity() / 8).max(1024));
    }
}

/// Lengthens `v` to `len` (with default values), if it is shorter.
fn grow_to<T: Default + Clone>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        reserve(v, len - v.len());
        v.resize(len, T::default());
    }
}

fn pack(start: usize, len: usize) -> u64 {
    ((start as u64) << LEN_BITS) | len as u64
}

fn unpack(span: u64) -> (usize, usize) {
    (
        (span >> LEN_BITS) as usize,
        (span & ((1 << LEN_BITS) - 1)) as usize,
    )
}

/// The sort values of one order field, by slot.
pub(crate) enum Column {
    Int(Vec<i64>),
    Str(StrColumn),
}

impl Column {
    /// A column for the values `sample` is like.
    pub(crate) fn like(sample: &SortValue) -> Self {
        match sample {
            SortValue::Int(_) => Column::Int(Vec::new()),
            SortValue::Str(_) => Column::Str(StrColumn::default()),
        }
    }

    /// Whether `value` is of the column's type.
    pub(crate) fn accepts(&self, value: &SortValue) -> bool {
        matches!(
            (self, value),
            (Column::Int(_), SortValue::Int(_)) | (Column::Str(_), SortValue::Str(_))
        )
    }

    pub(crate) fn set(&mut self, slot: u32, value: &SortValue) {
        match (self, value) {
            (Column::Int(v), SortValue::Int(x)) => {
                let slot = slot as usize;
                grow_to(v, slot + 1);
                if let Some(at) = v.get_mut(slot) {
                    *at = *x;
                }
            }
            (Column::Str(c), SortValue::Str(s)) => c.set(slot, s),
            // A resource gives one type per field (records.rs); a column
            // keeps its type.
            (Column::Int(_), SortValue::Str(_)) | (Column::Str(_), SortValue::Int(_)) => {}
        }
    }

    /// The integer at `slot`, for an integer column.
    pub(crate) fn int(&self, slot: u32) -> Option<i64> {
        match self {
            Column::Int(v) => Some(v.get(slot as usize).copied().unwrap_or_default()),
            Column::Str(_) => None,
        }
    }

    /// The value at `slot`.
    pub(crate) fn value(&self, slot: u32) -> SortValue {
        match self {
            Column::Int(v) => SortValue::Int(v.get(slot as usize).copied().unwrap_or_default()),
            Column::Str(c) => SortValue::Str(c.get_str(slot).to_string()),
        }
    }

    pub(crate) fn clear(&mut self, slot: u32) {
        if let Column::Str(c) = self {
            c.clear(slot);
        }
    }

    /// Compares the values at two slots.
    pub(crate) fn cmp(&self, a: u32, b: u32) -> Ordering {
        match self {
            Column::Int(v) => v.get(a as usize).cmp(&v.get(b as usize)),
            Column::Str(c) => c.get(a).cmp(c.get(b)),
        }
    }

    /// Compares the value at `slot` with `value`, as `SortValue`'s order
    /// does (every string before every integer).
    pub(crate) fn cmp_value(&self, slot: u32, value: &SortValue) -> Ordering {
        match (self, value) {
            (Column::Int(v), SortValue::Int(x)) => {
                v.get(slot as usize).copied().unwrap_or_default().cmp(x)
            }
            (Column::Str(c), SortValue::Str(s)) => c.get(slot).cmp(s.as_bytes()),
            (Column::Int(_), SortValue::Str(_)) => Ordering::Greater,
            (Column::Str(_), SortValue::Int(_)) => Ordering::Less,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        match self {
            Column::Int(v) => v.capacity() * 8,
            Column::Str(c) => c.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_survive_replacement_and_compaction() {
        let mut c = StrColumn::default();
        for round in 0..50u32 {
            for slot in 0..1000u32 {
                c.set(slot, &format!("value {slot} of round {round}"));
            }
        }
        for slot in 0..1000u32 {
            assert_eq!(c.get_str(slot), format!("value {slot} of round 49"));
        }
        assert!(c.bytes.len() < 2 * 1000 * 30, "dead bytes were reclaimed");
        c.clear(7);
        assert_eq!(c.get_str(7), "");
        assert_eq!(c.get_str(5000), "", "a slot never set reads empty");
    }

    #[test]
    fn a_too_long_string_is_cut_at_a_character_boundary() {
        let mut c = StrColumn::default();
        let long = "é".repeat(MAX_LEN);
        c.set(0, &long);
        assert!(c.get_str(0).len() <= MAX_LEN);
        assert!(long.starts_with(c.get_str(0)));
    }

    #[test]
    fn values_compare_as_sort_values_do() {
        let mut ints = Column::like(&SortValue::Int(0));
        ints.set(0, &SortValue::Int(-5));
        ints.set(1, &SortValue::Int(7));
        assert_eq!(ints.cmp(0, 1), Ordering::Less);
        assert_eq!(ints.cmp_value(1, &SortValue::Int(7)), Ordering::Equal);
        assert_eq!(
            ints.cmp_value(0, &SortValue::Str("z".into())),
            SortValue::Int(-5).cmp(&SortValue::Str("z".into()))
        );
        let mut strs = Column::like(&SortValue::Str(String::new()));
        strs.set(0, &SortValue::Str("b".into()));
        assert_eq!(
            strs.cmp_value(0, &SortValue::Str("a".into())),
            Ordering::Greater
        );
        assert_eq!(
            strs.cmp_value(0, &SortValue::Int(1)),
            SortValue::Str("b".into()).cmp(&SortValue::Int(1))
        );
    }
}
