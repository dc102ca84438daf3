//! What creating parks and companies needs besides the store: names and
//! IDs, the output-only fields cleared, validation, and a company's
//! location taken from its park when it has none.

use zgc_proto::registry::v1::{Company, CreateCompanyRequest, Entity, Park, entity};
use zgc_store::{RequestKey, Write, WriteOutcome};

use super::Registry;
use crate::error::ApiError;
use crate::validate::{self, Violations};

/// A new resource ID: `prefix` and a random UUID's hex digits.
pub(super) fn new_id(prefix: char) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Clears the output-only fields of a new resource and names it.
pub(super) fn prepare_park(mut p: Park, id: &str) -> Park {
    p.name = format!("parks/{id}");
    p.uid = uuid::Uuid::new_v4().to_string();
    p.create_time = None;
    p.update_time = None;
    p.revision = 0;
    p.etag.clear();
    p
}

/// The same for a company.
pub(super) fn prepare_company(mut c: Company, id: &str) -> Company {
    c.name = format!("companies/{id}");
    c.uid = uuid::Uuid::new_v4().to_string();
    c.create_time = None;
    c.update_time = None;
    c.revision = 0;
    c.etag.clear();
    c
}

/// The park a park write stored, and the write's revision.
pub(super) fn one_park(outcome: WriteOutcome) -> std::result::Result<(Park, u64), ApiError> {
    match outcome.entities.into_iter().next().and_then(|e| e.kind) {
        Some(entity::Kind::Park(p)) => Ok((p, outcome.revision)),
        _ => Err(ApiError::Internal("a park write returned no park".into())),
    }
}

/// The companies a company write stored.
fn companies(entities: Vec<Entity>) -> std::result::Result<Vec<Company>, ApiError> {
    entities
        .into_iter()
        .map(|e| match e.kind {
            Some(entity::Kind::Company(c)) => Ok(c),
            _ => Err(ApiError::Internal(
                "a company write returned another entity".into(),
            )),
        })
        .collect()
}

impl Registry {
    /// Copies the park's location into a company that has none.
    pub(super) fn fill_location(&self, c: &mut Company) -> std::result::Result<(), ApiError> {
        if c.location.is_some() || c.park.is_empty() {
            return Ok(());
        }
        if let Some(id) = validate::parse_name(&c.park, "parks") {
            // A missing park is reported by the store (or answered by an
            // idempotent replay), so a miss here is not an error.
            if let Some(park) = self.store.get_park(id)? {
                c.location = park.location;
            }
        }
        Ok(())
    }

    /// Validates one create request's company and assigns its name.
    pub(super) fn build_company(
        &self,
        v: &mut Violations,
        path: &str,
        r: &CreateCompanyRequest,
    ) -> Option<Company> {
        if !r.company_id.is_empty() && !validate::is_valid_id(&r.company_id) {
            v.add(
                format!("{path}company_id"),
                "must match ^[a-z][a-z0-9-]{0,62}$",
            );
        }
        let Some(company) = r.company.clone() else {
            v.add(format!("{path}company"), "is required");
            return None;
        };
        let id = if r.company_id.is_empty() {
            new_id('c')
        } else {
            r.company_id.clone()
        };
        let mut company = prepare_company(company, &id);
        validate::company(v, &format!("{path}company"), &mut company);
        Some(company)
    }

    /// Stores new companies (filling each one's location from its park)
    /// in one write.
    pub(super) async fn create_companies(
        &self,
        companies_in: Vec<Company>,
        request: Option<RequestKey>,
        entry_path: &(dyn Fn(usize) -> String + Sync),
    ) -> std::result::Result<(Vec<Company>, u64), ApiError> {
        let mut list = companies_in;
        // Locations come from the parks as they are now.
        self.sync().await?;
        for c in &mut list {
            self.fill_location(c)?;
        }
        let outcome = self
            .store
            .write(Write::CreateCompanies {
                companies: list,
                request,
            })
            .await
            .map_err(|e| ApiError::from_store(e, entry_path))?;
        Ok((companies(outcome.entities)?, outcome.revision))
    }
}
