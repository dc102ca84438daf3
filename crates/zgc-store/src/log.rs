//! How change-log entries are stored, and read back as whole events.
//!
//! A company event's `after` is the company as stored by that revision, so
//! while the company stays as it is, the entry does not keep a second copy
//! of it: it is stored as a *pointer*, the event without its `after` plus
//! the company's ID, and readers take the `after` from the `companies`
//! tree. The invariant that makes this exact: **an entry is a pointer only
//! while the company's stored revision is the entry's revision.** The
//! writer keeps it by writing the entry in full (its `after` being the
//! company as still stored) in the same transaction as the company's next
//! update or delete. Every other entry (parks, deletes, anything written
//! before pointers existed) is stored in full.
//!
//! A pointer's value starts with a zero byte, which no encoded
//! `ChangeEvent` starts with (field number 0 does not exist, and an event
//! always has a revision, so it is never empty); then the ID's length as a
//! varint, the ID, and the encoded event without its `after`.

use std::sync::RwLock;

use prost::Message;
use zgc_proto::registry::v1::{ChangeEvent, Entity, entity};

use crate::codec;
use crate::pending::View;
use crate::{StoreError, Trees};

/// Where pointers are resolved from: the committed trees (readers), or
/// the writer's view of them with its group's pending writes on top.
pub(crate) trait Source {
    /// The stored company `id`.
    fn company(&self, id: &str) -> Result<Option<sled::IVec>, StoreError>;
    /// The change-log entry at `key`.
    fn change(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError>;
}

impl Source for Trees {
    fn company(&self, id: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.companies.get(id.as_bytes())?)
    }

    fn change(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.changes.get(key)?)
    }
}

impl Source for View<'_> {
    fn company(&self, id: &str) -> Result<Option<sled::IVec>, StoreError> {
        self.companies().get(id.as_bytes())
    }

    fn change(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.changes().get(key)
    }
}

/// The first byte of a pointer entry.
const POINTER: u8 = 0;

/// A change-log entry as stored.
#[derive(Debug, PartialEq)]
pub(crate) enum Stored {
    /// The whole event.
    Full(ChangeEvent),
    /// The event without its `after`, which is the company `id` as stored.
    Pointer { id: String, event: ChangeEvent },
}

/// The stored form of `event`, whose `after` is the company `id` as this
/// revision stores it.
pub(crate) fn encode_pointer(id: &str, event: &ChangeEvent) -> Vec<u8> {
    let without_after = ChangeEvent {
        revision: event.revision,
        r#type: event.r#type,
        before: event.before.clone(),
        after: None,
    };
    let mut out = Vec::with_capacity(1 + 10 + id.len() + without_after.encoded_len());
    out.push(POINTER);
    prost::encoding::encode_varint(id.len() as u64, &mut out);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&without_after.encode_to_vec());
    out
}

/// Decodes a stored entry.
pub(crate) fn decode(bytes: &[u8]) -> Result<Stored, StoreError> {
    match split_pointer(bytes)? {
        None => codec::decode_event(bytes).map(Stored::Full),
        Some((id, event)) => Ok(Stored::Pointer {
            id: id.to_string(),
            event: codec::decode_event(event)?,
        }),
    }
}

/// A pointer entry's company ID and encoded event (without its `after`);
/// `None` for an entry stored in full. Cheap: nothing is decoded.
pub(crate) fn split_pointer(bytes: &[u8]) -> Result<Option<(&str, &[u8])>, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("change-log entry: {what}"));
    let Some((&POINTER, mut rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let len = prost::encoding::decode_varint(&mut rest).map_err(|e| corrupt(e.to_string()))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= rest.len())
        .ok_or_else(|| corrupt("pointer ID longer than the entry".into()))?;
    let (id, event) = rest.split_at(len);
    let id = std::str::from_utf8(id).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some((id, event)))
}

/// The whole event of the entry at `key`, read as `value`.
///
/// A pointer is resolved under `lock` (the lock the writer holds while a
/// transaction applies), so the company and the entry are read from the
/// same state; the writer itself passes `None`, as nothing changes under
/// it.
pub(crate) fn read(
    source: &impl Source,
    lock: Option<&RwLock<()>>,
    key: &[u8],
    value: &[u8],
) -> Result<ChangeEvent, StoreError> {
    let (id, mut event) = match decode(value)? {
        Stored::Full(event) => return Ok(event),
        Stored::Pointer { id, event } => (id, event),
    };
    let _guard = lock
        .map(|l| l.read())
        .transpose()
        .map_err(|_| StoreError::Corrupt("apply lock poisoned".into()))?;
    if let Some(bytes) = source.company(&id)? {
        let company = codec::decode_company(&bytes)?;
        if company.revision == event.revision {
            event.after = Some(Entity {
                kind: Some(entity::Kind::Company(company)),
            });
            return Ok(event);
        }
    }
    // The company changed since this entry was read, and that change wrote
    // the entry in full.
    match source.change(key)?.map(|v| decode(&v)).transpose()? {
        Some(Stored::Full(event)) => Ok(event),
        _ => Err(StoreError::Corrupt(format!(
            "change-log entry of revision {} points at companies/{id}, which no longer has that revision",
            event.revision
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zgc_proto::registry::v1::{ChangeType, Company};

    fn event(revision: u64, name: &str) -> ChangeEvent {
        ChangeEvent {
            revision,
            r#type: ChangeType::Created as i32,
            before: None,
            after: Some(Entity {
                kind: Some(entity::Kind::Company(Company {
                    name: name.into(),
                    ..Default::default()
                })),
            }),
        }
    }

    #[test]
    fn a_pointer_decodes_as_the_event_without_its_after() {
        let e = event(7, "companies/a");
        let stored = encode_pointer("a", &e);
        assert_eq!(stored[0], POINTER);
        let without_after = ChangeEvent {
            after: None,
            ..e.clone()
        };
        assert_eq!(
            decode(&stored).unwrap(),
            Stored::Pointer {
                id: "a".into(),
                event: without_after
            }
        );
        assert_eq!(
            decode(&e.encode_to_vec()).unwrap(),
            Stored::Full(e),
            "a full event never starts with the pointer byte"
        );
    }

    #[test]
    fn damaged_pointers_are_corrupt_not_a_panic() {
        for bad in [
            vec![POINTER],
            vec![POINTER, 0xff],
            vec![POINTER, 5, b'a'],
            vec![POINTER, 1, 0xff, 0x08, 0x01],
            vec![POINTER, 1, b'a', 0xff],
        ] {
            assert!(
                matches!(decode(&bad), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
