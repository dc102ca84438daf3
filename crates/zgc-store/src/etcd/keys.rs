//! Where the registry's data lives in etcd, under one prefix `P`:
//!
//! - `P e/p/<id>`: a park, encoded (`revision` and `etag` as the writer
//!   guessed them; a reader takes both from the key's `mod_revision`).
//! - `P e/c/<id>`: a company, the same way.
//! - `P e/r/<request_id>`: an idempotency record (its revision is the
//!   key's `mod_revision`).
//! - `P e/m/last`: put by every write, so its `mod_revision` is the
//!   newest write's revision, deletes included (what a consistent read
//!   waits for).
//! - `P i/<tag><target>\0<source>`: a reference index entry, as in sled's
//!   `index` tree; kept only so that a transaction can compare a range
//!   ("no company is in this park"), never read by a replica.
//! - `P m/secret`: the page-token secret, made by the first replica.
//!
//! Replicas watch `P e/` only.

use crate::keys::index_key;

/// The keys of one registry in etcd.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: Vec<u8>,
}

/// What a key under `P e/` holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    Park(&'a str),
    Company(&'a str),
    Request(&'a str),
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.as_bytes().to_vec(),
        }
    }

    fn key(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut key = self.prefix.clone();
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// The prefix every replica watches.
    pub(crate) fn entities(&self) -> Vec<u8> {
        self.key(&[b"e/"])
    }

    pub(crate) fn park(&self, id: &str) -> Vec<u8> {
        self.key(&[b"e/p/", id.as_bytes()])
    }

    pub(crate) fn company(&self, id: &str) -> Vec<u8> {
        self.key(&[b"e/c/", id.as_bytes()])
    }

    pub(crate) fn request(&self, request_id: &str) -> Vec<u8> {
        self.key(&[b"e/r/", request_id.as_bytes()])
    }

    pub(crate) fn index(&self, tag: u8, target: &str, source: &str) -> Vec<u8> {
        self.key(&[b"i/", &index_key(tag, target, source)])
    }

    /// The prefix of every index entry of `tag` pointing at `target`.
    pub(crate) fn index_prefix(&self, tag: u8, target: &str) -> Vec<u8> {
        self.key(&[b"i/", &crate::keys::index_prefix(tag, target)])
    }

    pub(crate) fn last_write(&self) -> Vec<u8> {
        self.key(&[b"e/m/last"])
    }

    pub(crate) fn secret(&self) -> Vec<u8> {
        self.key(&[b"m/secret"])
    }

    /// What `key` (under [`Self::entities`]) holds, if it is one of ours.
    pub(crate) fn entry<'a>(&self, key: &'a [u8]) -> Option<Entry<'a>> {
        let rest = key
            .strip_prefix(self.prefix.as_slice())?
            .strip_prefix(b"e/")?;
        let (kind, id) = (rest.get(..2)?, rest.get(2..)?);
        let id = std::str::from_utf8(id).ok()?;
        match kind {
            b"p/" => Some(Entry::Park(id)),
            b"c/" => Some(Entry::Company(id)),
            b"r/" => Some(Entry::Request(id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_are_read_back_and_nothing_else_is_taken_for_one() {
        let keys = Keys::new("zgc/");
        assert_eq!(keys.entry(&keys.park("zgc")), Some(Entry::Park("zgc")));
        assert_eq!(keys.entry(&keys.company("a")), Some(Entry::Company("a")));
        assert_eq!(
            keys.entry(&keys.request("r-1")),
            Some(Entry::Request("r-1"))
        );
        assert_eq!(keys.entry(&keys.secret()), None);
        assert_eq!(keys.entry(&keys.last_write()), None);
        assert!(keys.last_write().starts_with(&keys.entities()));
        assert_eq!(keys.entry(&keys.index(b'C', "zgc", "a")), None);
        assert_eq!(keys.entry(b"other/e/p/zgc"), None);
        assert!(keys.park("x").starts_with(&keys.entities()));
        assert!(
            keys.index(b'C', "zgc", "a")
                .starts_with(&keys.index_prefix(b'C', "zgc"))
        );
    }
}
