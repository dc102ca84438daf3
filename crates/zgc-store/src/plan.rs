//! Turns one [`Write`] into the complete set of tree changes it makes,
//! checking it against the current state: existence, references, cycles,
//! expected revisions, idempotency keys.
//!
//! Only the writer thread calls this. It plans each write of a group
//! against a [`View`]: the committed trees with the group's earlier writes
//! on top, exactly the state the plan will commit on top of.

use std::collections::HashSet;

use prost::Message;
use prost_types::Timestamp;
use zgc_proto::registry::v1::{ChangeEvent, ChangeType, Company, Entity, Park, entity};

use crate::codec::{self, MAX_ENTITY_BYTES, RequestRecord};
use crate::keys::{self, id_of};
use crate::log;
use crate::pending::{View, WriteSet};
use crate::{RequestKey, StoreError, Write, WriteOutcome};

/// The longest parent chain walked when checking for cycles; the store
/// never holds a cycle, so only corruption could reach it.
const MAX_CHAIN: usize = 100_000;

/// What to do with a write.
pub enum Plan {
    /// Commit these changes, then answer with the outcome.
    Commit(Box<WriteSet>, WriteOutcome),
    /// A retried request: answer with its original outcome, write nothing.
    Replay(WriteOutcome),
}

struct Builder<'a> {
    view: View<'a>,
    revision: u64,
    now: Timestamp,
    set: WriteSet,
    /// This revision's events, each with the ID of the company its `after`
    /// is when it is stored as a pointer (see [`crate::log`]).
    events: Vec<(ChangeEvent, Option<String>)>,
}

pub fn plan(
    view: View<'_>,
    write: Write,
    revision: u64,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let request = match &write {
        Write::CreatePark { request, .. } | Write::CreateCompanies { request, .. } => {
            request.clone()
        }
        _ => None,
    };
    if let Some(request) = &request
        && let Some(outcome) = replay(view, request)?
    {
        return Ok(Plan::Replay(outcome));
    }
    let mut b = Builder {
        view,
        revision,
        now,
        set: WriteSet::default(),
        events: Vec::new(),
    };
    let entities = match write {
        Write::CreatePark { park, .. } => vec![b.create_park(park)?],
        Write::UpdatePark {
            park,
            expected_revision,
        } => vec![b.update_park(park, expected_revision)?],
        Write::DeletePark {
            name,
            expected_revision,
        } => {
            b.delete_park(&name, expected_revision)?;
            vec![]
        }
        Write::CreateCompanies { companies, .. } => b.create_companies(companies)?,
        Write::UpdateCompany {
            company,
            expected_revision,
        } => {
            vec![b.update_company(company, expected_revision)?]
        }
        Write::DeleteCompany {
            name,
            expected_revision,
        } => {
            b.delete_company(&name, expected_revision)?;
            vec![]
        }
    };
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

/// The original outcome of a retried request, or `None` for a new one.
fn replay(view: View<'_>, request: &RequestKey) -> Result<Option<WriteOutcome>, StoreError> {
    let Some(bytes) = view
        .requests()
        .get(keys::request_key(&request.request_id))?
    else {
        return Ok(None);
    };
    let record = codec::decode_request(&bytes)?;
    if record.fingerprint != request.fingerprint {
        return Err(StoreError::RequestIdReused {
            request_id: request.request_id.clone(),
        });
    }
    let mut entities = Vec::new();
    let start = keys::change_key(record.revision, 0);
    let end = keys::change_key(record.revision + 1, 0);
    for item in view.changes().range(&start, &end)? {
        let (key, value) = item?;
        let event = log::read(&view, None, &key, &value)?;
        entities.extend(event.after);
    }
    Ok(Some(WriteOutcome {
        revision: record.revision,
        entities,
        replayed: true,
    }))
}

fn park_entity(p: Park) -> Entity {
    Entity {
        kind: Some(entity::Kind::Park(p)),
    }
}

fn company_entity(c: Company) -> Entity {
    Entity {
        kind: Some(entity::Kind::Company(c)),
    }
}

impl Builder<'_> {
    fn get_park(&self, id: &str) -> Result<Option<Park>, StoreError> {
        self.view
            .parks()
            .get(id)?
            .map(|v| codec::decode_park(&v))
            .transpose()
    }

    fn get_company(&self, id: &str) -> Result<Option<Company>, StoreError> {
        self.view
            .companies()
            .get(id)?
            .map(|v| codec::decode_company(&v))
            .transpose()
    }

    fn park_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(match id_of(name, "parks") {
            Some(id) => self.view.parks().contains_key(id)?,
            None => false,
        })
    }

    fn stamp(&self, etag: &mut String, revision: &mut u64, update_time: &mut Option<Timestamp>) {
        *revision = self.revision;
        *etag = self.revision.to_string();
        *update_time = Some(self.now);
    }

    fn event(&mut self, kind: ChangeType, before: Option<Entity>, after: Option<Entity>) {
        self.push_event(kind, before, after, None);
    }

    /// An event whose `after` is the company `id` as this revision stores
    /// it: the change log keeps a pointer to it instead of a copy.
    fn company_event(&mut self, kind: ChangeType, before: Option<Entity>, after: Entity, id: &str) {
        self.push_event(kind, before, Some(after), Some(id.to_string()));
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

    fn encode_checked<M: Message>(entry: usize, m: &M) -> Result<Vec<u8>, StoreError> {
        let bytes = m.encode_to_vec();
        if bytes.len() > MAX_ENTITY_BYTES {
            return Err(StoreError::TooLarge {
                entry,
                bytes: bytes.len(),
                limit: MAX_ENTITY_BYTES,
            });
        }
        Ok(bytes)
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

    fn first_referrer(&self, tag: u8, target: &str) -> Result<Option<String>, StoreError> {
        let prefix = keys::index_prefix(tag, target);
        Ok(self
            .view
            .index()
            .first_key_with_prefix(&prefix)?
            .map(|key| String::from_utf8_lossy(&key[prefix.len()..]).into_owned()))
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

    // ------------------------------------------------------------- parks

    fn check_park_parent(&self, park_id: &str, parent: &str) -> Result<(), StoreError> {
        if parent.is_empty() {
            return Ok(());
        }
        let missing = || StoreError::MissingReference {
            entry: 0,
            field: "parent_park",
            target: parent.to_string(),
        };
        let mut next = id_of(parent, "parks").ok_or_else(missing)?.to_string();
        if !self.view.parks().contains_key(&next)? {
            return Err(missing());
        }
        for _ in 0..MAX_CHAIN {
            if next == park_id {
                return Err(StoreError::Cycle {
                    field: "parent_park",
                    name: format!("parks/{park_id}"),
                    target: parent.to_string(),
                });
            }
            let Some(p) = self.get_park(&next)? else {
                return Ok(());
            };
            match id_of(&p.parent_park, "parks") {
                Some(id) => next = id.to_string(),
                None => return Ok(()),
            }
        }
        Err(StoreError::Corrupt("parent_park chain too long".into()))
    }

    fn create_park(&mut self, mut park: Park) -> Result<Entity, StoreError> {
        let id = id_of(&park.name, "parks")
            .ok_or_else(|| StoreError::NotFound {
                name: park.name.clone(),
            })?
            .to_string();
        if self.view.parks().contains_key(&id)? {
            return Err(StoreError::AlreadyExists {
                entry: 0,
                name: park.name,
            });
        }
        self.check_park_parent(&id, &park.parent_park)?;
        park.create_time = Some(self.now);
        self.stamp(&mut park.etag, &mut park.revision, &mut park.update_time);
        let bytes = Self::encode_checked(0, &park)?;
        self.set.parks.insert(id.as_bytes(), bytes);
        self.set_index(
            keys::IDX_PARK_BY_PARENT,
            id_of(&park.parent_park, "parks"),
            &id,
            true,
        );
        self.adjust_count(keys::META_PARK_COUNT, 1)?;
        let entity = park_entity(park);
        self.event(ChangeType::Created, None, Some(entity.clone()));
        Ok(entity)
    }

    fn update_park(&mut self, mut park: Park, expected: u64) -> Result<Entity, StoreError> {
        let id = id_of(&park.name, "parks")
            .ok_or_else(|| StoreError::NotFound {
                name: park.name.clone(),
            })?
            .to_string();
        let current = self.get_park(&id)?.ok_or_else(|| StoreError::NotFound {
            name: park.name.clone(),
        })?;
        if current.revision != expected {
            return Err(StoreError::RevisionMismatch {
                name: park.name,
                expected,
                current: current.revision,
            });
        }
        if park.parent_park != current.parent_park {
            self.check_park_parent(&id, &park.parent_park)?;
        }
        park.uid = current.uid.clone();
        park.create_time = current.create_time;
        self.stamp(&mut park.etag, &mut park.revision, &mut park.update_time);
        let bytes = Self::encode_checked(0, &park)?;
        self.set.parks.insert(id.as_bytes(), bytes);
        if park.parent_park != current.parent_park {
            self.set_index(
                keys::IDX_PARK_BY_PARENT,
                id_of(&current.parent_park, "parks"),
                &id,
                false,
            );
            self.set_index(
                keys::IDX_PARK_BY_PARENT,
                id_of(&park.parent_park, "parks"),
                &id,
                true,
            );
        }
        let after = park_entity(park);
        self.event(
            ChangeType::Updated,
            Some(park_entity(current)),
            Some(after.clone()),
        );
        Ok(after)
    }

    fn delete_park(&mut self, name: &str, expected: Option<u64>) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            name: name.to_string(),
        };
        let id = id_of(name, "parks").ok_or_else(not_found)?.to_string();
        let current = self.get_park(&id)?.ok_or_else(not_found)?;
        if let Some(expected) = expected.filter(|e| *e != current.revision) {
            return Err(StoreError::RevisionMismatch {
                name: name.to_string(),
                expected,
                current: current.revision,
            });
        }
        if let Some(company) = self.first_referrer(keys::IDX_COMPANY_BY_PARK, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("companies/{company}"),
            });
        }
        if let Some(child) = self.first_referrer(keys::IDX_PARK_BY_PARENT, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("parks/{child}"),
            });
        }
        self.set.parks.remove(id.as_bytes());
        self.set_index(
            keys::IDX_PARK_BY_PARENT,
            id_of(&current.parent_park, "parks"),
            &id,
            false,
        );
        self.adjust_count(keys::META_PARK_COUNT, -1)?;
        self.event(ChangeType::Deleted, Some(park_entity(current)), None);
        Ok(())
    }

    // --------------------------------------------------------- companies

    /// The ID of the company `parent` names (`None` when empty), which
    /// must exist: stored, or created earlier in the batch (`pending`).
    fn check_parent_exists(
        &self,
        entry: usize,
        parent: &str,
        pending: &HashSet<String>,
    ) -> Result<Option<String>, StoreError> {
        if parent.is_empty() {
            return Ok(None);
        }
        let missing = || StoreError::MissingReference {
            entry,
            field: "parent_company",
            target: parent.to_string(),
        };
        let id = id_of(parent, "companies").ok_or_else(missing)?;
        if !pending.contains(id) && !self.view.companies().contains_key(id)? {
            return Err(missing());
        }
        Ok(Some(id.to_string()))
    }

    /// An existing company `company_id` may take `parent` only if it
    /// exists and `company_id` is not among its ancestors.
    fn check_company_parent(
        &self,
        entry: usize,
        company_id: &str,
        parent: &str,
    ) -> Result<(), StoreError> {
        let Some(mut next) = self.check_parent_exists(entry, parent, &HashSet::new())? else {
            return Ok(());
        };
        for _ in 0..MAX_CHAIN {
            if next == company_id {
                return Err(StoreError::Cycle {
                    field: "parent_company",
                    name: format!("companies/{company_id}"),
                    target: parent.to_string(),
                });
            }
            let grandparent = match self.get_company(&next)? {
                Some(c) => c.parent_company,
                None => return Ok(()),
            };
            match id_of(&grandparent, "companies") {
                Some(id) => next = id.to_string(),
                None => return Ok(()),
            }
        }
        Err(StoreError::Corrupt("parent_company chain too long".into()))
    }

    fn check_company_park(&self, entry: usize, park: &str) -> Result<(), StoreError> {
        if park.is_empty() || self.park_exists(park)? {
            Ok(())
        } else {
            Err(StoreError::MissingReference {
                entry,
                field: "park",
                target: park.to_string(),
            })
        }
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

    fn create_companies(&mut self, companies: Vec<Company>) -> Result<Vec<Entity>, StoreError> {
        // The IDs of the batch's entries so far.
        let mut pending: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(companies.len());
        for (entry, mut company) in companies.into_iter().enumerate() {
            let id = id_of(&company.name, "companies")
                .ok_or_else(|| StoreError::NotFound {
                    name: company.name.clone(),
                })?
                .to_string();
            if pending.contains(&id) || self.view.companies().contains_key(&id)? {
                return Err(StoreError::AlreadyExists {
                    entry,
                    name: company.name,
                });
            }
            self.check_company_park(entry, &company.park)?;
            // A new company cannot close a cycle, so its parent's ancestors
            // are not walked: no company refers to an ID that does not
            // exist yet (a parent must exist when named, and a company
            // with branches cannot be deleted).
            self.check_parent_exists(entry, &company.parent_company, &pending)?;
            company.create_time = Some(self.now);
            self.stamp(
                &mut company.etag,
                &mut company.revision,
                &mut company.update_time,
            );
            let bytes = Self::encode_checked(entry, &company)?;
            self.set.companies.insert(id.as_bytes(), bytes);
            self.index_company(&company, &id, true);
            let entity = company_entity(company);
            self.company_event(ChangeType::Created, None, entity.clone(), &id);
            pending.insert(id);
            out.push(entity);
        }
        self.adjust_count(keys::META_COMPANY_COUNT, out.len() as i64)?;
        Ok(out)
    }

    fn update_company(
        &mut self,
        mut company: Company,
        expected: u64,
    ) -> Result<Entity, StoreError> {
        let id = id_of(&company.name, "companies")
            .ok_or_else(|| StoreError::NotFound {
                name: company.name.clone(),
            })?
            .to_string();
        let current = self.get_company(&id)?.ok_or_else(|| StoreError::NotFound {
            name: company.name.clone(),
        })?;
        if current.revision != expected {
            return Err(StoreError::RevisionMismatch {
                name: company.name,
                expected,
                current: current.revision,
            });
        }
        self.check_company_park(0, &company.park)?;
        if company.parent_company != current.parent_company {
            self.check_company_parent(0, &id, &company.parent_company)?;
        }
        company.uid = current.uid.clone();
        company.create_time = current.create_time;
        self.stamp(
            &mut company.etag,
            &mut company.revision,
            &mut company.update_time,
        );
        let bytes = Self::encode_checked(0, &company)?;
        self.set.companies.insert(id.as_bytes(), bytes);
        self.index_company(&current, &id, false);
        self.index_company(&company, &id, true);
        self.write_out_pointer(&id, &current)?;
        let after = company_entity(company);
        self.company_event(
            ChangeType::Updated,
            Some(company_entity(current)),
            after.clone(),
            &id,
        );
        Ok(after)
    }

    fn delete_company(&mut self, name: &str, expected: Option<u64>) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            name: name.to_string(),
        };
        let id = id_of(name, "companies").ok_or_else(not_found)?.to_string();
        let current = self.get_company(&id)?.ok_or_else(not_found)?;
        if let Some(expected) = expected.filter(|e| *e != current.revision) {
            return Err(StoreError::RevisionMismatch {
                name: name.to_string(),
                expected,
                current: current.revision,
            });
        }
        if let Some(branch) = self.first_referrer(keys::IDX_BRANCH_BY_PARENT, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("companies/{branch}"),
            });
        }
        self.set.companies.remove(id.as_bytes());
        self.index_company(&current, &id, false);
        self.adjust_count(keys::META_COMPANY_COUNT, -1)?;
        self.write_out_pointer(&id, &current)?;
        self.event(ChangeType::Deleted, Some(company_entity(current)), None);
        Ok(())
    }

    // ------------------------------------------------------------ finish

    fn finish(&mut self, request: Option<&RequestKey>) -> Result<(), StoreError> {
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
                revision: self.revision,
            };
            self.set.requests.insert(
                keys::request_key(&request.request_id),
                record.encode_to_vec(),
            );
            self.set.requests.insert(
                &keys::request_by_revision_key(self.revision)[..],
                request.request_id.as_bytes(),
            );
        }
        self.set
            .meta
            .insert(keys::META_REVISION, &self.revision.to_be_bytes());
        Ok(())
    }
}
