//! Turns one [`Write`] into the complete set of sled tree changes it makes.
//! The rules (`rules.rs`) decide what the write changes, checked against a
//! [`View`]; this stores it: entities, reference indexes, counters, the
//! change log and idempotency records.
//!
//! Only the writer thread calls this. It plans each write of a group
//! against a [`View`]: the committed trees with the group's earlier writes
//! on top, exactly the state the plan will commit on top of.

use prost::Message;
use prost_types::Timestamp;
use zgc_proto::registry::v1::{ChangeEvent, ChangeType, Company, Entity, Park};

use crate::codec::{self, RequestRecord};
use crate::keys::{self, id_of};
use crate::log;
use crate::pending::{View, WriteSet};
use crate::rules::{self, Change, Decision, State, company_entity, park_entity};
use crate::{Mirrored, RequestKey, StoreError, Write, WriteOutcome};

/// What to do with a write.
pub enum Plan {
    /// Commit these changes, then answer with the outcome.
    Commit(Box<WriteSet>, WriteOutcome),
    /// A retried request: answer with its original outcome, write nothing.
    Replay(WriteOutcome),
}

/// The state the rules check a write against: the committed trees with
/// the group's earlier writes on top.
impl State for View<'_> {
    fn park(&self, id: &str) -> Result<Option<Park>, StoreError> {
        self.parks()
            .get(id)?
            .map(|v| codec::decode_park(&v))
            .transpose()
    }

    fn has_park(&self, id: &str) -> Result<bool, StoreError> {
        self.parks().contains_key(id)
    }

    fn company(&self, id: &str) -> Result<Option<Company>, StoreError> {
        self.companies()
            .get(id)?
            .map(|v| codec::decode_company(&v))
            .transpose()
    }

    fn has_company(&self, id: &str) -> Result<bool, StoreError> {
        self.companies().contains_key(id)
    }

    fn first_referrer(&self, tag: u8, target: &str) -> Result<Option<String>, StoreError> {
        let prefix = keys::index_prefix(tag, target);
        Ok(self
            .index()
            .first_key_with_prefix(&prefix)?
            .map(|key| String::from_utf8_lossy(&key[prefix.len()..]).into_owned()))
    }

    fn request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.requests()
            .get(keys::request_key(request_id))?
            .map(|bytes| codec::decode_request(&bytes))
            .transpose()
    }
}

struct Builder<'a> {
    view: View<'a>,
    revision: u64,
    set: WriteSet,
    /// This revision's events, each with the ID of the company its `after`
    /// is when it is stored as a pointer (see [`crate::log`]).
    events: Vec<(ChangeEvent, Option<String>)>,
    /// How the numbers of parks and companies change.
    parks: i64,
    companies: i64,
}

pub fn plan(
    view: View<'_>,
    write: Write,
    revision: u64,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let request = rules::request_of(&write).cloned();
    let changes = match rules::decide(&view, write, revision, now)? {
        Decision::Replay { revision } => return Ok(Plan::Replay(replay(view, revision)?)),
        Decision::Apply(changes) => changes,
    };
    let mut b = Builder {
        view,
        revision,
        set: WriteSet::default(),
        events: Vec::with_capacity(changes.len()),
        parks: 0,
        companies: 0,
    };
    let mut entities = Vec::with_capacity(changes.len());
    for change in changes {
        entities.extend(b.store(change)?);
    }
    b.finish(request.as_ref())?;
    Ok(Plan::Commit(
        Box::new(b.set),
        WriteOutcome {
            revision,
            entities,
            replayed: false,
        },
    ))
}

/// Stores changes another store committed at `mirrored.revision` (the etcd
/// backend's mirror): each change's `before` is what this store holds,
/// the rest as for a client's write, with no rule checked (they held where
/// the changes were committed).
pub(crate) fn mirror(view: View<'_>, mirrored: Mirrored, current: u64) -> Result<Plan, StoreError> {
    if mirrored.revision < current {
        return Err(StoreError::Corrupt(format!(
            "mirrored revision {} is behind the store's {current}",
            mirrored.revision
        )));
    }
    let mut b = Builder {
        view,
        revision: mirrored.revision,
        set: WriteSet::default(),
        events: Vec::with_capacity(mirrored.changes.len()),
        parks: 0,
        companies: 0,
    };
    for change in mirrored.changes {
        let change = match change {
            Change::Park { id, after, .. } => Change::Park {
                before: b.view.park(&id)?,
                id,
                after,
            },
            Change::Company { id, after, .. } => Change::Company {
                before: b.view.company(&id)?,
                id,
                after,
            },
        };
        if change.is_noop() {
            continue;
        }
        b.store(change)?;
    }
    if !mirrored.events {
        b.events.clear();
    }
    for (request_id, record) in mirrored.requests {
        b.record_request(&request_id, record);
    }
    for request_id in mirrored.forgotten {
        b.set.requests.remove(keys::request_key(&request_id));
    }
    if let Some(compact_to) = mirrored.compact_to {
        b.set
            .meta
            .insert(keys::META_COMPACT_REVISION, &compact_to.to_be_bytes());
    }
    b.finish(None)?;
    Ok(Plan::Commit(
        Box::new(b.set),
        WriteOutcome {
            revision: mirrored.revision,
            entities: Vec::new(),
            replayed: false,
        },
    ))
}

/// The original outcome of the request `revision` answered.
pub(crate) fn replay(view: View<'_>, revision: u64) -> Result<WriteOutcome, StoreError> {
    let mut entities = Vec::new();
    let start = keys::change_key(revision, 0);
    let end = keys::change_key(revision + 1, 0);
    for item in view.changes().range(&start, &end)? {
        let (key, value) = item?;
        let event = log::read(&view, None, &key, &value)?;
        entities.extend(event.after);
    }
    Ok(WriteOutcome {
        revision,
        entities,
        replayed: true,
    })
}

impl Builder<'_> {
    /// Stores one change; the entity after it, if any.
    fn store(&mut self, change: Change) -> Result<Option<Entity>, StoreError> {
        let kind = change.kind();
        match change {
            Change::Park { id, before, after } => {
                let old_parent = before.as_ref().map(|p| p.parent_park.clone());
                let new_parent = after.as_ref().map(|(p, _)| p.parent_park.clone());
                if old_parent != new_parent {
                    if let Some(parent) = &old_parent {
                        self.set_index(
                            keys::IDX_PARK_BY_PARENT,
                            id_of(parent, "parks"),
                            &id,
                            false,
                        );
                    }
                    if let Some(parent) = &new_parent {
                        self.set_index(keys::IDX_PARK_BY_PARENT, id_of(parent, "parks"), &id, true);
                    }
                }
                let after = match after {
                    Some((park, bytes)) => {
                        self.set.parks.insert(id.as_bytes(), bytes);
                        Some(park_entity(park))
                    }
                    None => {
                        self.set.parks.remove(id.as_bytes());
                        None
                    }
                };
                match kind {
                    ChangeType::Created => self.parks += 1,
                    ChangeType::Deleted => self.parks -= 1,
                    _ => {}
                }
                self.push_event(kind, before.map(park_entity), after.clone(), None);
                Ok(after)
            }
            Change::Company { id, before, after } => {
                if let Some(current) = &before {
                    self.index_company(current, &id, false);
                    self.write_out_pointer(&id, current)?;
                }
                let after = match after {
                    Some((company, bytes)) => {
                        self.set.companies.insert(id.as_bytes(), bytes);
                        self.index_company(&company, &id, true);
                        Some(company_entity(company))
                    }
                    None => {
                        self.set.companies.remove(id.as_bytes());
                        None
                    }
                };
                match kind {
                    ChangeType::Created => self.companies += 1,
                    ChangeType::Deleted => self.companies -= 1,
                    _ => {}
                }
                // A company's event points at the company as stored, while
                // it is stored unchanged (`log.rs`).
                let pointer = after.as_ref().map(|_| id);
                self.push_event(kind, before.map(company_entity), after.clone(), pointer);
                Ok(after)
            }
        }
    }

    /// Keeps the idempotency record of `request_id`, answered by this
    /// revision.
    fn record_request(&mut self, request_id: &str, mut record: RequestRecord) {
        record.revision = self.revision;
        self.set
            .requests
            .insert(keys::request_key(request_id), record.encode_to_vec());
        self.set.requests.insert(
            &keys::request_by_revision_key(self.revision)[..],
            request_id.as_bytes(),
        );
    }

    fn push_event(
        &mut self,
        kind: ChangeType,
        before: Option<Entity>,
        after: Option<Entity>,
        pointer: Option<String>,
    ) {
        let event = ChangeEvent {
            revision: self.revision,
            r#type: kind as i32,
            before,
            after,
        };
        self.events.push((event, pointer));
    }

    fn index_company(&mut self, c: &Company, id: &str, insert: bool) {
        self.set_index(
            keys::IDX_COMPANY_BY_PARK,
            id_of(&c.park, "parks"),
            id,
            insert,
        );
        self.set_index(
            keys::IDX_BRANCH_BY_PARENT,
            id_of(&c.parent_company, "companies"),
            id,
            insert,
        );
    }

    /// Before `current` (company `id`) changes: if the change-log entry of
    /// the revision that stored it is a pointer to it, writes that entry in
    /// full, so it keeps the company as it was.
    fn write_out_pointer(&mut self, id: &str, current: &Company) -> Result<(), StoreError> {
        let start = keys::change_key(current.revision, 0);
        let end = keys::change_key(current.revision + 1, 0);
        for item in self.view.changes().range(&start, &end)? {
            let (key, value) = item?;
            // A batch's revision may hold a thousand entries: only the one
            // pointing here is decoded.
            if let Some((to, event)) = log::split_pointer(&value)?
                && to == id
            {
                let mut event = codec::decode_event(event)?;
                event.after = Some(company_entity(current.clone()));
                self.set.changes.insert(key, event.encode_to_vec());
                break;
            }
        }
        Ok(())
    }

    fn set_index(&mut self, tag: u8, target: Option<&str>, source: &str, insert: bool) {
        if let Some(target) = target {
            let key = keys::index_key(tag, target, source);
            if insert {
                self.set.index.insert(key, &[] as &[u8]);
            } else {
                self.set.index.remove(key);
            }
        }
    }

    fn adjust_count(&mut self, key: &'static [u8], delta: i64) -> Result<(), StoreError> {
        let current = self
            .view
            .meta()
            .get(key)?
            .and_then(|v| keys::decode_u64(&v))
            .unwrap_or(0);
        let next = current.saturating_add_signed(delta);
        self.set.meta.insert(key, &next.to_be_bytes());
        Ok(())
    }

    // ------------------------------------------------------------ finish

    fn finish(&mut self, request: Option<&RequestKey>) -> Result<(), StoreError> {
        if self.parks != 0 {
            self.adjust_count(keys::META_PARK_COUNT, self.parks)?;
        }
        if self.companies != 0 {
            self.adjust_count(keys::META_COMPANY_COUNT, self.companies)?;
        }
        for (i, (event, pointer)) in self.events.iter().enumerate() {
            let n = u32::try_from(i).map_err(|_| StoreError::Corrupt("too many events".into()))?;
            let value = match pointer {
                Some(id) => log::encode_pointer(id, event),
                None => event.encode_to_vec(),
            };
            self.set
                .changes
                .insert(&keys::change_key(self.revision, n)[..], value);
        }
        if let Some(request) = request {
            let record = RequestRecord {
                fingerprint: request.fingerprint.clone(),
                ..Default::default()
            };
            self.record_request(&request.request_id, record);
        }
        self.set
            .meta
            .insert(keys::META_REVISION, &self.revision.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The mirror path ([`mirror`]) through a real store's writer, as the
    //! etcd backend drives it.

    use prost::Message;
    use zgc_proto::registry::v1::{ChangeType, Company, Park};

    use crate::rules::{Change, etag_of};
    use crate::{Mirrored, Store, StoreConfig, StoreError};

    fn company(id: &str, display_name: &str, revision: u64) -> Change {
        let company = Company {
            name: format!("companies/{id}"),
            display_name: display_name.into(),
            revision,
            etag: etag_of(revision),
            ..Default::default()
        };
        let bytes = company.encode_to_vec();
        Change::Company {
            id: id.into(),
            before: None,
            after: Some((company, bytes)),
        }
    }

    fn park(id: &str, revision: u64) -> Change {
        let park = Park {
            name: format!("parks/{id}"),
            display_name: id.into(),
            revision,
            etag: etag_of(revision),
            ..Default::default()
        };
        let bytes = park.encode_to_vec();
        Change::Park {
            id: id.into(),
            before: None,
            after: Some((park, bytes)),
        }
    }

    /// etcd deleting a key this store never held.
    fn gone(company: bool, id: &str) -> Change {
        if company {
            Change::Company {
                id: id.into(),
                before: None,
                after: None,
            }
        } else {
            Change::Park {
                id: id.into(),
                before: None,
                after: None,
            }
        }
    }

    fn mirrored(revision: u64, changes: Vec<Change>, events: bool) -> Mirrored {
        Mirrored {
            revision,
            changes,
            requests: Vec::new(),
            forgotten: Vec::new(),
            events,
            compact_to: None,
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        (dir, store)
    }

    /// A store as an etcd replica opens it: the cluster's identity, and
    /// revisions with gaps.
    fn open_replica() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let identity = Some(("etcd-test".to_string(), [7; 32]));
        let store = Store::open_local(StoreConfig::new(dir.path()), identity).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn mirrored_changes_keep_their_revision_and_take_before_from_the_store() {
        let (_dir, store) = open();
        store
            .mirror(mirrored(5, vec![company("a", "First", 5)], true))
            .await
            .unwrap();
        assert_eq!(store.revision(), 5);
        // The change's own `before` is ignored: the store says what was.
        store
            .mirror(mirrored(6, vec![company("a", "Second", 6)], true))
            .await
            .unwrap();
        let batch = store.read_changes((5, 0), 10).unwrap();
        let kinds: Vec<(u64, i32)> = batch
            .events
            .iter()
            .map(|e| (e.revision, e.r#type))
            .collect();
        assert_eq!(
            kinds,
            [
                (5, ChangeType::Created as i32),
                (6, ChangeType::Updated as i32)
            ]
        );
        let before = batch.events[1]
            .before
            .as_ref()
            .expect("an update has a before");
        assert!(format!("{before:?}").contains("First"), "{before:?}");
    }

    #[tokio::test]
    async fn several_mirrored_jobs_may_share_a_revision_but_never_go_back() {
        let (_dir, store) = open();
        // A load sends the state at one revision in several jobs.
        store
            .mirror(mirrored(7, vec![company("a", "A", 3)], false))
            .await
            .unwrap();
        store
            .mirror(mirrored(7, vec![company("b", "B", 7)], false))
            .await
            .unwrap();
        assert_eq!(store.revision(), 7);
        let behind = store
            .mirror(mirrored(6, vec![company("c", "C", 6)], true))
            .await;
        assert!(matches!(behind, Err(StoreError::Corrupt(_))), "{behind:?}");
    }

    #[tokio::test]
    async fn a_loaded_state_leaves_no_change_log_events_and_later_changes_do() {
        let (_dir, store) = open();
        store
            .mirror(mirrored(4, vec![company("a", "A", 4)], false))
            .await
            .unwrap();
        store
            .mirror(mirrored(5, vec![company("b", "B", 5)], true))
            .await
            .unwrap();
        // Exactly the followed change is in the log.
        let batch = store.read_changes((5, 0), 10).unwrap();
        let names: Vec<String> = batch
            .events
            .iter()
            .map(|e| format!("{} {:?}", e.revision, e.after))
            .collect();
        assert_eq!(batch.events.len(), 1, "{names:?}");
        assert_eq!(batch.events[0].revision, 5);
        assert!(names[0].contains("companies/b"), "{names:?}");
    }

    #[tokio::test]
    async fn a_snapshot_on_a_replica_reads_past_revisions_without_events() {
        let (_dir, store) = open_replica();
        store
            .mirror(mirrored(
                3,
                vec![company("a", "A", 3), company("b", "B", 3)],
                true,
            ))
            .await
            .unwrap();
        let mut snapshot = store.snapshot();
        let mut seen = snapshot.next_chunk(1).unwrap().unwrap();
        // Mid-snapshot, etcd moves on: revision 4 changed no entity (another
        // key), revision 5 is not the registry's, revision 6 updates b.
        store.mirror(mirrored(4, Vec::new(), true)).await.unwrap();
        store
            .mirror(mirrored(6, vec![company("b", "B, renamed", 6)], true))
            .await
            .unwrap();
        while let Some(chunk) = snapshot.next_chunk(1).unwrap() {
            seen.extend(chunk);
        }
        let names: Vec<String> = seen.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(seen.len(), 2, "{names:?}");
        // Everything as of the snapshot's revision.
        assert!(names.iter().any(|n| n.contains("\"B\"")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("renamed")), "{names:?}");
    }

    #[tokio::test]
    async fn deleting_what_the_store_never_held_changes_nothing() {
        let (_dir, store) = open();
        let changes = vec![
            gone(false, "ghost"),
            park("p", 5),
            gone(true, "ghost"),
            company("c", "C", 5),
        ];
        store.mirror(mirrored(5, changes, true)).await.unwrap();
        let batch = store.read_changes((5, 0), 10).unwrap();
        let events: Vec<(i32, String)> = batch
            .events
            .iter()
            .map(|e| (e.r#type, format!("{:?}", e.after)))
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            events
                .iter()
                .all(|(kind, _)| *kind == ChangeType::Created as i32),
            "{events:?}"
        );
        assert!(events[0].1.contains("parks/p"), "{events:?}");
        assert!(events[1].1.contains("companies/c"), "{events:?}");
    }
}
