//! Every company held in memory, compressed, so reading one by ID never
//! walks sled's page cache, which was most of what a GetCompany cost at
//! scale (BENCHMARKS.md has the figures).
//!
//! Companies are small (about 180 bytes encoded) and alike, so each is
//! compressed on its own with a zstd dictionary trained on the companies
//! held, which is cheap next to a call. A general-purpose cache would
//! spend more on its own bookkeeping than a company takes; here entries
//! sit back to back in 1 MiB chunks and a hash table holds one 8-byte
//! location per company, so all of them take less than their encodings
//! (BENCHMARKS.md).
//!
//! - **Dictionaries** are trained when the number of companies held first
//!   reaches 4,096, then each time it grows sixteenfold, from a sample
//!   spread over all of them; new entries use the newest, older entries
//!   keep theirs. Entries written before the first are held raw.
//! - **Space** of replaced and deleted entries is reclaimed a chunk at a
//!   time: once half of a chunk is dead, its live entries move to the
//!   newest chunk and the chunk is freed.
//! - **Consistency** with the companies tree is the caller's: the writer
//!   applies every change here under the apply lock, right after the
//!   transaction that made it; the loader ([`crate::writer`]) fills in
//!   what was stored before, under the same lock, never replacing an
//!   entry. Once it has, [`Resident::is_loaded`] says this holds every
//!   stored company and a miss means there is none.
//!
//! Pure memory: no I/O.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};
use prost::encoding::{decode_varint, encode_varint};
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

use crate::StoreError;

/// Bytes per chunk of entries.
const CHUNK: usize = 1 << 20;
/// Companies held when the first dictionary is trained; each next one is
/// trained at sixteen times the previous.
const FIRST_TRAINING: u64 = 4096;
/// How much the number of companies held grows between trainings.
const TRAINING_GROWTH: u64 = 16;
/// Companies sampled to train a dictionary.
const SAMPLES: usize = 4096;
/// The size of a trained dictionary.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// zstd's level for compressing with a dictionary.
const LEVEL: i32 = 3;
/// Dictionaries a store keeps at most (the entry's one-byte dictionary
/// number; 0 is "raw").
const MAX_DICTIONARIES: usize = 255;
/// The largest company a decompression may produce: far above what the
/// store accepts, a bound on what a corrupt entry can make it allocate.
const MAX_COMPANY_BYTES: u64 = 1 << 20;
/// Chunks compacted at most after one write.
const COMPACT_PER_WRITE: usize = 2;

/// A company, compressed and framed for the arena, before it goes in.
pub(crate) struct Entry(Vec<u8>);

/// A dictionary new entries are compressed with.
struct Dictionary {
    /// Its number in entries (1-based).
    number: u8,
    cdict: CDict<'static>,
}

/// Companies by ID, compressed.
pub(crate) struct Resident {
    arena: RwLock<Arena>,
    /// The dictionary new entries use, if one was trained.
    current: RwLock<Option<Arc<Dictionary>>>,
    /// Held by whoever trains, so one does at a time.
    training: Mutex<()>,
    /// The number of companies held at which the next dictionary is
    /// trained.
    next_training: AtomicU64,
    loaded: AtomicBool,
}

thread_local! {
    static CCTX: RefCell<Option<CCtx<'static>>> = RefCell::new(CCtx::try_create());
    static DCTX: RefCell<Option<DCtx<'static>>> = RefCell::new(DCtx::try_create());
}

impl Resident {
    pub(crate) fn new() -> Self {
        Self {
            arena: RwLock::new(Arena::new()),
            current: RwLock::new(None),
            training: Mutex::new(()),
            next_training: AtomicU64::new(FIRST_TRAINING),
            loaded: AtomicBool::new(false),
        }
    }

    /// Whether every stored company is held (the loader finished).
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Marks every stored company held; called by the loader, under the
    /// apply lock, after its last insert.
    pub(crate) fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// Compresses a company (its stored protobuf encoding) for [`Self::apply`].
    pub(crate) fn entry(&self, id: &[u8], company: &[u8]) -> Entry {
        let dictionary = self.current.read().map_or(None, |d| d.clone());
        let compressed = dictionary
            .as_ref()
            .and_then(|d| compress(company, &d.cdict).map(|c| (d.number, c)))
            .filter(|(_, c)| c.len() < company.len());
        let (number, stored) = match &compressed {
            Some((n, c)) => (*n, c.as_slice()),
            None => (0, company),
        };
        let mut out = Vec::with_capacity(id.len() + stored.len() + 8);
        encode_varint(id.len() as u64, &mut out);
        encode_varint(stored.len() as u64, &mut out);
        out.push(number);
        out.extend_from_slice(id);
        out.extend_from_slice(stored);
        Entry(out)
    }

    /// Sets what is stored under each ID: `Some` entry, or `None` for a
    /// deleted company; then reclaims a little dead space.
    pub(crate) fn apply<'a>(&self, changes: impl IntoIterator<Item = (&'a [u8], Option<Entry>)>) {
        let mut arena = match self.arena.write() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (id, entry) in changes {
            match entry {
                Some(entry) => arena.insert(id, &entry.0),
                None => arena.remove(id),
            }
        }
        arena.compact(COMPACT_PER_WRITE);
    }

    /// Adds entries for IDs not held yet (the loader's fill: an entry held
    /// was put there by a write, and is as new as the store's).
    pub(crate) fn fill<'a>(&self, entries: impl IntoIterator<Item = (&'a [u8], Entry)>) {
        let mut arena = match self.arena.write() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (id, entry) in entries {
            if !arena.contains(id) {
                arena.insert(id, &entry.0);
            }
        }
    }

    /// The company stored under `id`, if held.
    pub(crate) fn get(&self, id: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let arena = match self.arena.read() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(parts) = arena.find(id) else {
            return Ok(None);
        };
        arena.company(parts).map(Some)
    }

    /// How many companies are held.
    pub(crate) fn len(&self) -> u64 {
        self.arena.read().map_or(0, |a| a.table.len() as u64)
    }

    /// Bytes of memory held: chunks and the table.
    pub(crate) fn bytes(&self) -> u64 {
        self.arena.read().map_or(0, |a| a.bytes())
    }

    /// Trains the next dictionary if the companies held have grown enough
    /// since the last. Takes a while (tens of milliseconds); reads go on.
    pub(crate) fn maybe_train(&self) {
        if self.len() < self.next_training.load(Ordering::Acquire) {
            return;
        }
        let Ok(_training) = self.training.try_lock() else {
            return;
        };
        let held = self.len();
        let due = self.next_training.load(Ordering::Acquire);
        if held < due {
            return;
        }
        self.next_training
            .store(due.saturating_mul(TRAINING_GROWTH), Ordering::Release);
        let samples = match self.arena.read() {
            Ok(a) => a.sample(SAMPLES),
            Err(_) => return,
        };
        let samples = match samples {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not sample the companies held in memory");
                return;
            }
        };
        let trained = zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|dict| {
                let cdict = CDict::try_create(&dict, LEVEL).ok_or("zstd could not load it")?;
                let ddict = DDict::try_create(&dict).ok_or("zstd could not load it")?;
                Ok((dict.len(), cdict, ddict))
            });
        let (size, cdict, ddict) = match trained {
            Ok(t) => t,
            Err(e) => {
                // Entries go on with the previous dictionary, or raw.
                tracing::warn!(error = %e, held, "training a company dictionary failed");
                return;
            }
        };
        let number = {
            let mut arena = match self.arena.write() {
                Ok(a) => a,
                Err(poisoned) => poisoned.into_inner(),
            };
            if arena.ddicts.len() >= MAX_DICTIONARIES {
                return;
            }
            arena.ddicts.push(ddict);
            arena.ddicts.len() as u8
        };
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(Dictionary { number, cdict }));
        }
        tracing::debug!(held, number, size, "trained a company dictionary");
    }
}

/// `company` compressed with `cdict`, or `None` if zstd failed.
fn compress(company: &[u8], cdict: &CDict<'static>) -> Option<Vec<u8>> {
    CCTX.with(|cctx| {
        let mut cctx = cctx.borrow_mut();
        let cctx = cctx.as_mut()?;
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(company.len()));
        cctx.compress_using_cdict(&mut out, company, cdict).ok()?;
        Some(out)
    })
}

/// Where an entry is: its chunk (high 32 bits) and offset in it.
type Location = u64;

fn location(chunk: usize, offset: usize) -> Location {
    ((chunk as u64) << 32) | offset as u64
}

/// An entry's parts, as found in its chunk.
#[derive(Clone, Copy)]
struct Parts<'a> {
    key: &'a [u8],
    stored: &'a [u8],
    dictionary: u8,
    /// The whole entry's length.
    len: usize,
}

/// Parses the entry starting at `bytes`.
fn parse(mut bytes: &[u8]) -> Option<Parts<'_>> {
    let start = bytes.len();
    let key_len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
    let stored_len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
    let (&dictionary, rest) = bytes.split_first()?;
    let key = rest.get(..key_len)?;
    let stored = rest.get(key_len..key_len.checked_add(stored_len)?)?;
    let header = start - rest.len();
    Some(Parts {
        key,
        stored,
        dictionary,
        len: header + key_len + stored_len,
    })
}

struct Chunk {
    data: Vec<u8>,
    /// Bytes of entries replaced or deleted.
    dead: usize,
}

struct Arena {
    hasher: DefaultHashBuilder,
    table: HashTable<Location>,
    chunks: Vec<Chunk>,
    /// Chunks whose memory was released, to reuse.
    free: Vec<usize>,
    /// The chunk new entries go to.
    tail: usize,
    /// Chunks at least half dead, to compact.
    compactable: Vec<usize>,
    /// Dictionaries by number - 1.
    ddicts: Vec<DDict<'static>>,
}

fn parts_at(chunks: &[Chunk], at: Location) -> Option<Parts<'_>> {
    let chunk = chunks.get(usize::try_from(at >> 32).ok()?)?;
    parse(chunk.data.get(usize::try_from(at & 0xffff_ffff).ok()?..)?)
}

fn key_at(chunks: &[Chunk], at: Location) -> &[u8] {
    parts_at(chunks, at).map_or(&[], |p| p.key)
}

impl Arena {
    fn new() -> Self {
        Self {
            hasher: DefaultHashBuilder::default(),
            table: HashTable::new(),
            chunks: vec![Chunk {
                data: Vec::with_capacity(CHUNK),
                dead: 0,
            }],
            free: Vec::new(),
            tail: 0,
            compactable: Vec::new(),
            ddicts: Vec::new(),
        }
    }

    fn contains(&self, id: &[u8]) -> bool {
        self.find(id).is_some()
    }

    fn find(&self, id: &[u8]) -> Option<Parts<'_>> {
        let hash = self.hasher.hash_one(id);
        let at = self
            .table
            .find(hash, |&at| key_at(&self.chunks, at) == id)?;
        parts_at(&self.chunks, *at)
    }

    /// The company an entry holds, decompressed.
    fn company(&self, parts: Parts<'_>) -> Result<Bytes, StoreError> {
        if parts.dictionary == 0 {
            return Ok(Bytes::copy_from_slice(parts.stored));
        }
        let corrupt = |why: &str| {
            StoreError::Corrupt(format!(
                "the in-memory copy of company {}: {why}",
                String::from_utf8_lossy(parts.key)
            ))
        };
        let ddict = self
            .ddicts
            .get(usize::from(parts.dictionary) - 1)
            .ok_or_else(|| corrupt("unknown dictionary"))?;
        let size = zstd_safe::get_frame_content_size(parts.stored)
            .ok()
            .flatten()
            .filter(|&n| n <= MAX_COMPANY_BYTES)
            .ok_or_else(|| corrupt("no size"))?;
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        DCTX.with(|dctx| {
            let mut dctx = dctx.borrow_mut();
            let dctx = dctx.as_mut().ok_or_else(|| corrupt("no zstd context"))?;
            dctx.decompress_using_ddict(&mut out, parts.stored, ddict)
                .map_err(|code| corrupt(zstd_safe::get_error_name(code)))
        })?;
        Ok(Bytes::from(out))
    }

    fn insert(&mut self, id: &[u8], entry: &[u8]) {
        let at = self.append(entry);
        let hash = self.hasher.hash_one(id);
        let Arena {
            table,
            chunks,
            hasher,
            ..
        } = self;
        let replaced = match table.find_entry(hash, |&old| key_at(chunks, old) == id) {
            Ok(mut found) => Some(std::mem::replace(found.get_mut(), at)),
            Err(absent) => {
                absent
                    .into_table()
                    .insert_unique(hash, at, |&l| hasher.hash_one(key_at(chunks, l)));
                None
            }
        };
        if let Some(old) = replaced {
            self.kill(old);
        }
    }

    fn remove(&mut self, id: &[u8]) {
        let hash = self.hasher.hash_one(id);
        let chunks = &self.chunks;
        if let Ok(found) = self.table.find_entry(hash, |&at| key_at(chunks, at) == id) {
            let (old, _) = found.remove();
            self.kill(old);
        }
    }

    /// Appends an entry to the tail chunk (a new one when it is full).
    fn append(&mut self, entry: &[u8]) -> Location {
        let tail = &self.chunks[self.tail];
        if tail.data.len() + entry.len() > tail.data.capacity() {
            let previous = self.tail;
            let data = Vec::with_capacity(CHUNK.max(entry.len()));
            self.tail = match self.free.pop() {
                Some(i) => {
                    self.chunks[i] = Chunk { data, dead: 0 };
                    i
                }
                None => {
                    self.chunks.push(Chunk { data, dead: 0 });
                    self.chunks.len() - 1
                }
            };
            self.mark_if_compactable(previous);
        }
        let chunk = &mut self.chunks[self.tail];
        let at = location(self.tail, chunk.data.len());
        chunk.data.extend_from_slice(entry);
        at
    }

    /// Counts the entry at `at` as dead space.
    fn kill(&mut self, at: Location) {
        let Some(len) = parts_at(&self.chunks, at).map(|p| p.len) else {
            return;
        };
        let chunk = (at >> 32) as usize;
        if let Some(c) = self.chunks.get_mut(chunk) {
            c.dead += len;
        }
        self.mark_if_compactable(chunk);
    }

    fn mark_if_compactable(&mut self, chunk: usize) {
        if chunk == self.tail || self.compactable.contains(&chunk) {
            return;
        }
        if let Some(c) = self.chunks.get(chunk)
            && c.dead > 0
            && c.dead * 2 >= c.data.len()
        {
            self.compactable.push(chunk);
        }
    }

    /// Moves the live entries of up to `limit` half-dead chunks to the
    /// tail, and frees those chunks.
    fn compact(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(chunk) = self.compactable.pop() else {
                return;
            };
            if chunk == self.tail {
                continue;
            }
            let data = std::mem::take(&mut self.chunks[chunk].data);
            let mut offset = 0;
            while let Some(parts) = data.get(offset..).and_then(parse) {
                let old = location(chunk, offset);
                let hash = self.hasher.hash_one(parts.key);
                // Live if the table still points here.
                if self.table.find(hash, |&at| at == old).is_some() {
                    let new = self.append(&data[offset..offset + parts.len]);
                    if let Some(at) = self.table.find_mut(hash, |&at| at == old) {
                        *at = new;
                    }
                }
                offset += parts.len;
            }
            self.chunks[chunk].dead = 0;
            self.free.push(chunk);
        }
    }

    /// Up to `n` companies, decompressed, spread over all held.
    fn sample(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let step = (self.table.len() / n.max(1)).max(1);
        self.table
            .iter()
            .step_by(step)
            .take(n)
            .filter_map(|&at| parts_at(&self.chunks, at))
            .map(|parts| self.company(parts).map(|b| b.to_vec()))
            .collect()
    }

    fn bytes(&self) -> u64 {
        let chunks: usize = self.chunks.iter().map(|c| c.data.capacity()).sum();
        let table = self.table.capacity() * (std::mem::size_of::<Location>() + 1);
        (chunks + table) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A company-like encoding: alike in shape, different in content.
    fn company(i: u32, version: u32) -> Vec<u8> {
        format!(
            "\n\x1acompanies/gen-{i:08}\x12\x18Generated Company {i:08}\x1a\x05Hebei\
             \"\x08Langfang*\x0fnew-materials0{}8{version}@\x01J\x10source=synthetic",
            i % 2000
        )
        .into_bytes()
    }

    fn id(i: u32) -> Vec<u8> {
        format!("gen-{i:08}").into_bytes()
    }

    fn put(r: &Resident, i: u32, version: u32) {
        let (id, c) = (id(i), company(i, version));
        let entry = r.entry(&id, &c);
        r.apply([(id.as_slice(), Some(entry))]);
        r.maybe_train();
    }

    fn get(r: &Resident, i: u32) -> Option<Vec<u8>> {
        r.get(&id(i)).unwrap().map(|b| b.to_vec())
    }

    #[test]
    fn it_holds_what_it_is_told_and_forgets_deletions() {
        let r = Resident::new();
        assert_eq!(get(&r, 1), None);
        put(&r, 1, 1);
        assert_eq!(get(&r, 1), Some(company(1, 1)));
        put(&r, 1, 2);
        assert_eq!(get(&r, 1), Some(company(1, 2)));
        assert_eq!(r.len(), 1);
        r.apply([(id(1).as_slice(), None)]);
        assert_eq!(get(&r, 1), None);
        assert_eq!(r.len(), 0);
        assert!(!r.is_loaded());
    }

    #[test]
    fn past_the_first_training_companies_are_held_compressed_and_read_back_exactly() {
        let r = Resident::new();
        let n = 20_000;
        for i in 0..n {
            put(&r, i, 1);
        }
        assert_eq!(r.len(), u64::from(n));
        let arena = r.arena.read().unwrap();
        assert!(!arena.ddicts.is_empty(), "a dictionary was trained");
        let raw: usize = (0..n).map(|i| company(i, 1).len() + id(i).len()).sum();
        let held: usize = arena.chunks.iter().map(|c| c.data.len()).sum();
        assert!(held * 3 < raw * 2, "held {held} bytes for {raw} raw");
        drop(arena);
        for i in (0..n).step_by(7) {
            assert_eq!(get(&r, i), Some(company(i, 1)), "{i}");
        }
        assert_eq!(get(&r, n), None);
    }

    #[test]
    fn space_of_replaced_entries_is_reclaimed() {
        let r = Resident::new();
        let n = 5_000;
        for version in 0..40 {
            for i in 0..n {
                put(&r, i, version);
            }
        }
        for i in 0..n {
            assert_eq!(get(&r, i), Some(company(i, 39)), "{i}");
        }
        // 200,000 entries written, 5,000 live: the live ones take well
        // under a chunk; what is held stays within a few chunks.
        let arena = r.arena.read().unwrap();
        let held: usize = arena.chunks.iter().map(|c| c.data.capacity()).sum();
        assert!(held <= 6 * CHUNK, "{held} bytes held");
        assert!(arena.chunks.len() < 20, "{} chunks", arena.chunks.len());
    }

    #[test]
    fn the_loader_fill_never_replaces_an_entry_a_write_put_there() {
        let r = Resident::new();
        put(&r, 1, 2);
        let (id1, old) = (id(1), company(1, 1));
        let (id2, new) = (id(2), company(2, 1));
        r.fill([
            (id1.as_slice(), r.entry(&id1, &old)),
            (id2.as_slice(), r.entry(&id2, &new)),
        ]);
        assert_eq!(get(&r, 1), Some(company(1, 2)));
        assert_eq!(get(&r, 2), Some(company(2, 1)));
    }

    #[test]
    fn a_corrupt_entry_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x05",
            b"\x01\x09\x01k",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(parse(bytes).is_none());
        }
        let r = Resident::new();
        // Dictionary 1 does not exist: reading it fails cleanly.
        let mut entry = Vec::new();
        encode_varint(1, &mut entry);
        encode_varint(3, &mut entry);
        entry.extend_from_slice(b"\x01kabc");
        r.apply([(&b"k"[..], Some(Entry(entry)))]);
        assert!(matches!(r.get(b"k"), Err(StoreError::Corrupt(_))));
    }
}
