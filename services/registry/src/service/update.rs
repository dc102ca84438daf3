//! AIP-134 updates, written once for parks and companies: read, check the
//! etag, merge the masked fields, validate, and write conditionally on the
//! revision read.

use zgc_proto::registry::v1::{Company, Entity, Park, entity};
use zgc_store::{Store, StoreError, Write};

use super::{Registry, Result, ensure_valid, with_revision};
use crate::error::ApiError;
use crate::mask;
use crate::validate::{self, Violations};

/// How often an update re-reads and retries after a concurrent change when
/// the client sent no etag.
const UPDATE_ATTEMPTS: usize = 8;

/// The revision an etag names; `None` for no etag.
pub(super) fn parse_etag(etag: &str) -> Option<u64> {
    if etag.is_empty() {
        None
    } else {
        // An etag we never issued matches no revision.
        Some(etag.parse().unwrap_or(u64::MAX))
    }
}

/// What an update needs to know about a resource type.
pub(super) trait Updatable: Clone + Send + Sync + Sized + 'static {
    /// The request field holding it, e.g. `park`.
    const FIELD: &'static str;
    /// Its collection, e.g. `parks`.
    const COLLECTION: &'static str;
    /// The fields an update mask may name.
    const WRITABLE: &'static [&'static str];
    fn name(&self) -> &str;
    fn etag(&self) -> &str;
    fn revision(&self) -> u64;
    fn is_set(&self, field: &str) -> bool;
    fn apply(&mut self, patch: &Self, fields: &[&str]);
    fn validate(&mut self, v: &mut Violations);
    fn load(store: &Store, id: &str) -> std::result::Result<Option<Self>, StoreError>;
    fn into_write(self, expected_revision: u64) -> Write;
    fn from_entity(e: Entity) -> Option<Self>;
}

impl Updatable for Park {
    const FIELD: &'static str = "park";
    const COLLECTION: &'static str = "parks";
    const WRITABLE: &'static [&'static str] = mask::PARK_FIELDS;
    fn name(&self) -> &str {
        &self.name
    }
    fn etag(&self) -> &str {
        &self.etag
    }
    fn revision(&self) -> u64 {
        self.revision
    }
    fn is_set(&self, field: &str) -> bool {
        mask::park_is_set(self, field)
    }
    fn apply(&mut self, patch: &Self, fields: &[&str]) {
        mask::apply_park(self, patch, fields);
    }
    fn validate(&mut self, v: &mut Violations) {
        validate::park(v, Self::FIELD, self);
    }
    fn load(store: &Store, id: &str) -> std::result::Result<Option<Self>, StoreError> {
        store.get_park(id)
    }
    fn into_write(self, expected_revision: u64) -> Write {
        Write::UpdatePark {
            park: self,
            expected_revision,
        }
    }
    fn from_entity(e: Entity) -> Option<Self> {
        match e.kind {
            Some(entity::Kind::Park(p)) => Some(p),
            _ => None,
        }
    }
}

impl Updatable for Company {
    const FIELD: &'static str = "company";
    const COLLECTION: &'static str = "companies";
    const WRITABLE: &'static [&'static str] = mask::COMPANY_FIELDS;
    fn name(&self) -> &str {
        &self.name
    }
    fn etag(&self) -> &str {
        &self.etag
    }
    fn revision(&self) -> u64 {
        self.revision
    }
    fn is_set(&self, field: &str) -> bool {
        mask::company_is_set(self, field)
    }
    fn apply(&mut self, patch: &Self, fields: &[&str]) {
        mask::apply_company(self, patch, fields);
    }
    fn validate(&mut self, v: &mut Violations) {
        validate::company(v, Self::FIELD, self);
    }
    fn load(store: &Store, id: &str) -> std::result::Result<Option<Self>, StoreError> {
        store.get_company(id)
    }
    fn into_write(self, expected_revision: u64) -> Write {
        Write::UpdateCompany {
            company: self,
            expected_revision,
        }
    }
    fn from_entity(e: Entity) -> Option<Self> {
        match e.kind {
            Some(entity::Kind::Company(c)) => Some(c),
            _ => None,
        }
    }
}

impl Registry {
    /// AIP-134 update: read, check the etag, merge the masked fields,
    /// validate, and write conditionally on the revision read. Without a
    /// client etag a concurrent change is retried on the fresh state.
    pub(super) async fn update<T: Updatable>(
        &self,
        patch: Option<T>,
        update_mask: Option<&prost_types::FieldMask>,
    ) -> Result<T> {
        let Some(patch) = patch else {
            return Err(ApiError::invalid(T::FIELD, "is required").into());
        };
        let Some(id) = validate::parse_name(patch.name(), T::COLLECTION).map(str::to_owned) else {
            return Err(ApiError::invalid(
                format!("{}.name", T::FIELD),
                format!("must be `{}/{{id}}`", T::COLLECTION),
            )
            .into());
        };
        let fields = mask::resolve(update_mask, T::WRITABLE, |f| patch.is_set(f))
            .map_err(|(field, msg)| ApiError::invalid(field, msg))?;
        let client_etag = parse_etag(patch.etag());
        let changed =
            || ApiError::EtagMismatch(format!("{} changed since the etag was read", patch.name()));
        for _ in 0..UPDATE_ATTEMPTS {
            self.sync().await?;
            let current = T::load(&self.store, &id)
                .map_err(ApiError::from)?
                .ok_or_else(|| ApiError::NotFound(patch.name().to_string()))?;
            if client_etag.is_some_and(|e| e != current.revision()) {
                return Err(changed().into());
            }
            let mut merged = current.clone();
            merged.apply(&patch, &fields);
            let mut v = Violations::default();
            merged.validate(&mut v);
            ensure_valid(v)?;
            let mut write = merged.into_write(current.revision());
            if let Write::UpdateCompany { company, .. } = &mut write {
                self.fill_location(company)?;
            }
            match self.store.write(write).await {
                Ok(outcome) => {
                    let revision = outcome.revision;
                    let updated = outcome
                        .entities
                        .into_iter()
                        .next()
                        .and_then(T::from_entity)
                        .ok_or_else(|| ApiError::Internal("an update returned no entity".into()))?;
                    return Ok(with_revision(updated, revision));
                }
                Err(StoreError::RevisionMismatch { .. }) if client_etag.is_none() => continue,
                Err(StoreError::RevisionMismatch { .. }) => return Err(changed().into()),
                Err(e) => return Err(ApiError::from_store(e, &|_| T::FIELD.into()).into()),
            }
        }
        Err(ApiError::EtagMismatch(format!("{} is changing too often; retry", patch.name())).into())
    }
}
