//! The contract's rules for writes, apart from any storage: existence,
//! references, cycles, expected revisions, idempotency keys, size limits.
//!
//! [`decide`] checks one [`Write`] against a [`State`] (what the store
//! holds, as the write will commit on top of it) and says what it changes,
//! entity by entity, with each entity stamped as it will be stored. How
//! the changes are stored (sled's trees with their reference indexes,
//! counters and change log: `plan.rs`) is the caller's. No I/O here
//! beyond what `State` does.

use std::collections::HashSet;

use prost::Message;
use prost_types::Timestamp;
use zgc_proto::registry::v1::{ChangeType, Company, Entity, Park, entity};

use crate::codec::{MAX_ENTITY_BYTES, RequestRecord};
use crate::keys::{self, id_of};
use crate::{RequestKey, StoreError, Write};

/// The longest parent chain walked when checking for cycles; the store
/// never holds a cycle, so only corruption could reach it.
const MAX_CHAIN: usize = 100_000;

/// What the rules read.
pub(crate) trait State {
    /// The park with ID `id`.
    fn park(&self, id: &str) -> Result<Option<Park>, StoreError>;
    /// Whether a park with ID `id` exists.
    fn has_park(&self, id: &str) -> Result<bool, StoreError>;
    /// The company with ID `id`.
    fn company(&self, id: &str) -> Result<Option<Company>, StoreError>;
    /// Whether a company with ID `id` exists.
    fn has_company(&self, id: &str) -> Result<bool, StoreError>;
    /// The ID of one entity that refers to `target` through the reference
    /// index `tag` (`keys::IDX_*`), if any does.
    fn first_referrer(&self, tag: u8, target: &str) -> Result<Option<String>, StoreError>;
    /// The idempotency record of `request_id`, if one is kept.
    fn request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError>;
}

/// One entity a write changes, as it is before and after (`None`: absent).
pub(crate) enum Change {
    Park {
        id: String,
        before: Option<Park>,
        /// The park as stored, and its encoding.
        after: Option<(Park, Vec<u8>)>,
    },
    Company {
        id: String,
        before: Option<Company>,
        after: Option<(Company, Vec<u8>)>,
    },
}

impl Change {
    /// Whether it changes nothing: absent before and after.
    pub(crate) fn is_noop(&self) -> bool {
        match self {
            Change::Park { before, after, .. } => before.is_none() && after.is_none(),
            Change::Company { before, after, .. } => before.is_none() && after.is_none(),
        }
    }

    /// What kind of change it is.
    pub(crate) fn kind(&self) -> ChangeType {
        let (before, after) = match self {
            Change::Park { before, after, .. } => (before.is_some(), after.is_some()),
            Change::Company { before, after, .. } => (before.is_some(), after.is_some()),
        };
        match (before, after) {
            (false, _) => ChangeType::Created,
            (true, true) => ChangeType::Updated,
            (true, false) => ChangeType::Deleted,
        }
    }
}

/// What a write does.
pub(crate) enum Decision {
    /// Makes these changes, in this order (the order of its change
    /// events), and answers with the entities after them (none for a
    /// delete).
    Apply(Vec<Change>),
    /// Answers a retried request with the outcome of the revision that
    /// answered it first, and changes nothing.
    Replay { revision: u64 },
}

/// The request key a write carries, if any.
pub(crate) fn request_of(write: &Write) -> Option<&RequestKey> {
    match write {
        Write::CreatePark { request, .. } | Write::CreateCompanies { request, .. } => {
            request.as_ref()
        }
        _ => None,
    }
}

/// Checks `write` against `state` and says what it changes, stamping the
/// entities it stores with `revision` and `now`.
pub(crate) fn decide(
    state: &impl State,
    write: Write,
    revision: u64,
    now: Timestamp,
) -> Result<Decision, StoreError> {
    if let Some(request) = request_of(&write)
        && let Some(record) = state.request(&request.request_id)?
    {
        if record.fingerprint != request.fingerprint {
            return Err(StoreError::RequestIdReused {
                request_id: request.request_id.clone(),
            });
        }
        return Ok(Decision::Replay {
            revision: record.revision,
        });
    }
    let mut d = Decider {
        state,
        revision,
        now,
        changes: Vec::new(),
    };
    match write {
        Write::CreatePark { park, .. } => d.create_park(park)?,
        Write::UpdatePark {
            park,
            expected_revision,
        } => d.update_park(park, expected_revision)?,
        Write::DeletePark {
            name,
            expected_revision,
        } => d.delete_park(&name, expected_revision)?,
        Write::CreateCompanies { companies, .. } => d.create_companies(companies)?,
        Write::UpdateCompany {
            company,
            expected_revision,
        } => d.update_company(company, expected_revision)?,
        Write::DeleteCompany {
            name,
            expected_revision,
        } => d.delete_company(&name, expected_revision)?,
    }
    Ok(Decision::Apply(d.changes))
}

/// The etag of an entity last changed at `revision`: the revision itself,
/// so an etag check is a revision check.
pub(crate) fn etag_of(revision: u64) -> String {
    revision.to_string()
}

pub(crate) fn park_entity(p: Park) -> Entity {
    Entity {
        kind: Some(entity::Kind::Park(p)),
    }
}

pub(crate) fn company_entity(c: Company) -> Entity {
    Entity {
        kind: Some(entity::Kind::Company(c)),
    }
}

struct Decider<'a, S> {
    state: &'a S,
    revision: u64,
    now: Timestamp,
    changes: Vec<Change>,
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

impl<S: State> Decider<'_, S> {
    fn park_exists(&self, name: &str) -> Result<bool, StoreError> {
        match id_of(name, "parks") {
            Some(id) => self.state.has_park(id),
            None => Ok(false),
        }
    }

    fn stamp(&self, etag: &mut String, revision: &mut u64, update_time: &mut Option<Timestamp>) {
        *revision = self.revision;
        *etag = etag_of(self.revision);
        *update_time = Some(self.now);
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
        if !self.state.has_park(&next)? {
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
            let Some(p) = self.state.park(&next)? else {
                return Ok(());
            };
            match id_of(&p.parent_park, "parks") {
                Some(id) => next = id.to_string(),
                None => return Ok(()),
            }
        }
        Err(StoreError::Corrupt("parent_park chain too long".into()))
    }

    fn create_park(&mut self, mut park: Park) -> Result<(), StoreError> {
        let id = id_of(&park.name, "parks")
            .ok_or_else(|| StoreError::NotFound {
                name: park.name.clone(),
            })?
            .to_string();
        if self.state.has_park(&id)? {
            return Err(StoreError::AlreadyExists {
                entry: 0,
                name: park.name,
            });
        }
        self.check_park_parent(&id, &park.parent_park)?;
        park.create_time = Some(self.now);
        self.stamp(&mut park.etag, &mut park.revision, &mut park.update_time);
        let bytes = encode_checked(0, &park)?;
        self.changes.push(Change::Park {
            id,
            before: None,
            after: Some((park, bytes)),
        });
        Ok(())
    }

    fn update_park(&mut self, mut park: Park, expected: u64) -> Result<(), StoreError> {
        let id = id_of(&park.name, "parks")
            .ok_or_else(|| StoreError::NotFound {
                name: park.name.clone(),
            })?
            .to_string();
        let current = self.state.park(&id)?.ok_or_else(|| StoreError::NotFound {
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
        let bytes = encode_checked(0, &park)?;
        self.changes.push(Change::Park {
            id,
            before: Some(current),
            after: Some((park, bytes)),
        });
        Ok(())
    }

    fn delete_park(&mut self, name: &str, expected: Option<u64>) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            name: name.to_string(),
        };
        let id = id_of(name, "parks").ok_or_else(not_found)?.to_string();
        let current = self.state.park(&id)?.ok_or_else(not_found)?;
        if let Some(expected) = expected.filter(|e| *e != current.revision) {
            return Err(StoreError::RevisionMismatch {
                name: name.to_string(),
                expected,
                current: current.revision,
            });
        }
        if let Some(company) = self.state.first_referrer(keys::IDX_COMPANY_BY_PARK, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("companies/{company}"),
            });
        }
        if let Some(child) = self.state.first_referrer(keys::IDX_PARK_BY_PARENT, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("parks/{child}"),
            });
        }
        self.changes.push(Change::Park {
            id,
            before: Some(current),
            after: None,
        });
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
        if !pending.contains(id) && !self.state.has_company(id)? {
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
            let grandparent = match self.state.company(&next)? {
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

    fn create_companies(&mut self, companies: Vec<Company>) -> Result<(), StoreError> {
        // The IDs of the batch's entries so far.
        let mut pending: HashSet<String> = HashSet::new();
        for (entry, mut company) in companies.into_iter().enumerate() {
            let id = id_of(&company.name, "companies")
                .ok_or_else(|| StoreError::NotFound {
                    name: company.name.clone(),
                })?
                .to_string();
            if pending.contains(&id) || self.state.has_company(&id)? {
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
            let bytes = encode_checked(entry, &company)?;
            pending.insert(id.clone());
            self.changes.push(Change::Company {
                id,
                before: None,
                after: Some((company, bytes)),
            });
        }
        Ok(())
    }

    fn update_company(&mut self, mut company: Company, expected: u64) -> Result<(), StoreError> {
        let id = id_of(&company.name, "companies")
            .ok_or_else(|| StoreError::NotFound {
                name: company.name.clone(),
            })?
            .to_string();
        let current = self
            .state
            .company(&id)?
            .ok_or_else(|| StoreError::NotFound {
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
        let bytes = encode_checked(0, &company)?;
        self.changes.push(Change::Company {
            id,
            before: Some(current),
            after: Some((company, bytes)),
        });
        Ok(())
    }

    fn delete_company(&mut self, name: &str, expected: Option<u64>) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            name: name.to_string(),
        };
        let id = id_of(name, "companies").ok_or_else(not_found)?.to_string();
        let current = self.state.company(&id)?.ok_or_else(not_found)?;
        if let Some(expected) = expected.filter(|e| *e != current.revision) {
            return Err(StoreError::RevisionMismatch {
                name: name.to_string(),
                expected,
                current: current.revision,
            });
        }
        if let Some(branch) = self.state.first_referrer(keys::IDX_BRANCH_BY_PARENT, &id)? {
            return Err(StoreError::InUse {
                name: name.to_string(),
                by: format!("companies/{branch}"),
            });
        }
        self.changes.push(Change::Company {
            id,
            before: Some(current),
            after: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_names_the_revision_it_was_issued_at() {
        // The registry reads an etag back as the revision it names (its
        // `parse_etag`): they must round-trip, and differ per revision.
        for revision in [1, 9, 10, 1_000_000_007, u64::MAX] {
            assert_eq!(etag_of(revision).parse::<u64>(), Ok(revision));
        }
        assert_ne!(etag_of(1), etag_of(2));
    }
}
