//! Tree names and key formats. Keys sort the way scans need them:
//! integers are big-endian, IDs never contain `\0`.

/// Tree of parks: park ID -> encoded `Park`.
pub const PARKS: &str = "parks";
/// Tree of companies: company ID -> encoded `Company`.
pub const COMPANIES: &str = "companies";
/// Tree of reference indexes: `tag, target ID, \0, source ID` -> empty.
pub const INDEX: &str = "index";
/// Tree of the change log: `revision (u64 BE), event number (u32 BE)` ->
/// encoded `ChangeEvent`, or a pointer to the stored company (`log.rs`).
pub const CHANGES: &str = "changes";
/// Tree of idempotency keys: `q` + request ID -> encoded record, and `r` +
/// revision (u64 BE) -> request ID (to forget it with its revision).
pub const REQUESTS: &str = "requests";
/// Tree of metadata: fixed keys below.
pub const META: &str = "meta";

/// Index tag: companies by park (`park`).
pub const IDX_COMPANY_BY_PARK: u8 = b'C';
/// Index tag: companies by parent company (`parent_company`).
pub const IDX_BRANCH_BY_PARENT: u8 = b'B';
/// Index tag: parks by parent park (`parent_park`).
pub const IDX_PARK_BY_PARENT: u8 = b'P';

/// Meta: the last committed revision (u64 BE).
pub const META_REVISION: &[u8] = b"revision";
/// Meta: every revision <= this one has left the change log (u64 BE).
pub const META_COMPACT_REVISION: &[u8] = b"compact_revision";
/// Meta: the store's UUID.
pub const META_STORE_ID: &[u8] = b"store_id";
/// Meta: the page-token secret (32 bytes).
pub const META_PAGE_TOKEN_SECRET: &[u8] = b"page_token_secret";
/// Meta: the number of parks (u64 BE).
pub const META_PARK_COUNT: &[u8] = b"count/parks";
/// Meta: the number of companies (u64 BE).
pub const META_COMPANY_COUNT: &[u8] = b"count/companies";
/// Meta: `open:<durability>` while running, `clean` after a clean shutdown.
pub const META_STATE: &[u8] = b"state";
/// Meta: the on-disk format version (u64 BE).
pub const META_FORMAT: &[u8] = b"format";
/// The format this code writes: 2 stores company change-log entries as
/// pointers to the stored company (see `log.rs`).
pub const FORMAT_VERSION: u64 = 2;
/// Formats this code reads, and upgrades to [`FORMAT_VERSION`] on open: 1
/// stored every change-log entry in full, which format 2 still reads.
pub const FORMAT_UPGRADES_FROM: &[u64] = &[1];

/// An index entry key.
pub fn index_key(tag: u8, target: &str, source: &str) -> Vec<u8> {
    let mut k = index_prefix(tag, target);
    k.extend_from_slice(source.as_bytes());
    k
}

/// The prefix of every index entry of `tag` pointing at `target`.
pub fn index_prefix(tag: u8, target: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(target.len() + 2);
    k.push(tag);
    k.extend_from_slice(target.as_bytes());
    k.push(0);
    k
}

/// A change-log key.
pub fn change_key(revision: u64, event: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&revision.to_be_bytes());
    k[8..].copy_from_slice(&event.to_be_bytes());
    k
}

/// Splits a change-log key.
pub fn parse_change_key(key: &[u8]) -> Option<(u64, u32)> {
    let rev = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let event = u32::from_be_bytes(key.get(8..12)?.try_into().ok()?);
    Some((rev, event))
}

/// The idempotency record key of a request ID.
pub fn request_key(request_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(request_id.len() + 1);
    k.push(b'q');
    k.extend_from_slice(request_id.as_bytes());
    k
}

/// The key that remembers which request ID a revision answered.
pub fn request_by_revision_key(revision: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'r';
    k[1..].copy_from_slice(&revision.to_be_bytes());
    k
}

/// Decodes a big-endian u64 value.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The resource ID of a name such as `parks/x`, if it has that prefix.
pub fn id_of<'a>(name: &'a str, collection: &str) -> Option<&'a str> {
    name.strip_prefix(collection)?.strip_prefix('/')
}
