//! The `zgc.registry.v1.RegistryService` handlers: thin glue between the
//! wire (validation, masks, errors) and the store.
//!
//! GetCompany is served by [`GetCompany`], which passes the stored bytes
//! on without decoding them; the trait's `get_company` decodes the same
//! answer, for callers of the service as a Rust value.

use std::sync::Arc;

use futures::future::BoxFuture;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::server::UnaryService;
use tonic::{Request, Response, Status};
use zgc_proto::registry::v1::registry_service_server::RegistryService;
use zgc_proto::registry::v1::{
    BatchCreateCompaniesRequest, BatchCreateCompaniesResponse, BatchGetCompaniesRequest,
    BatchGetCompaniesResponse, Company, CreateCompanyRequest, CreateParkRequest,
    DeleteCompanyRequest, DeleteParkRequest, Entity, GetCompanyRequest, GetParkRequest,
    ListCompaniesRequest, ListCompaniesResponse, ListParksRequest, ListParksResponse, Park,
    UpdateCompanyRequest, UpdateParkRequest, WatchChangesRequest, entity,
};
use zgc_proto::wire::{REVISION_HEADER, STORE_ID_HEADER, reason};
use zgc_query::PageTokenKey;
use zgc_server::encoded::Encoded;
use zgc_store::{RequestKey, Store, StoreError, Write, WriteOutcome};

use crate::error::ApiError;
use crate::list::{Page, Query};
use crate::listing;
use crate::mask;
use crate::resource::{CompanyRecord, ParkRecord};
use crate::scans::ScanLimit;
use crate::validate::{self, Violations};
use crate::watch;

/// Most names in one BatchGetCompanies.
pub const MAX_BATCH_GET: usize = 1000;
/// Most entries in one BatchCreateCompanies.
pub const MAX_BATCH_CREATE: usize = 1000;
/// How often an update re-reads and retries after a concurrent change when
/// the client sent no etag.
const UPDATE_ATTEMPTS: usize = 8;

/// GetCompany as the server runs it: the stored bytes go on the wire as
/// they are (`zgc_server::encoded::EncodedMethod`).
#[derive(Clone)]
pub struct GetCompany(pub Registry);

impl GetCompany {
    /// The method's path, which this handler takes over.
    pub const PATH: &'static str = "/zgc.registry.v1.RegistryService/GetCompany";
}

impl UnaryService<GetCompanyRequest> for GetCompany {
    type Response = Encoded<Company>;
    type Future = BoxFuture<'static, Result<Encoded<Company>>>;

    fn call(&mut self, request: Request<GetCompanyRequest>) -> Self::Future {
        let registry = self.0.clone();
        Box::pin(async move { registry.company(request).await })
    }
}

/// The registry service.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    token_key: PageTokenKey,
    watch: watch::WatchConfig,
    /// One permit per open WatchChanges stream.
    watchers: Arc<Semaphore>,
    /// How many `List*` pages are read at once.
    scans: ScanLimit,
    shutdown: CancellationToken,
}

impl Registry {
    /// GetCompany's answer: the company as it is stored, not decoded.
    pub async fn company(&self, request: Request<GetCompanyRequest>) -> Result<Encoded<Company>> {
        let name = request.into_inner().name;
        let Some(id) = validate::parse_name(&name, "companies") else {
            return Err(ApiError::invalid("name", "must be `companies/{id}`").into());
        };
        match self.store.get_company_encoded(id).map_err(ApiError::from)? {
            Some(stored) => Ok(Response::new(Encoded::trusted(stored))),
            None => Err(ApiError::NotFound(name).into()),
        }
    }

    /// A service over `store` whose `List*` pages are read within
    /// `scans`; watch streams end when `shutdown` fires.
    pub fn new(
        store: Store,
        watch: watch::WatchConfig,
        scans: ScanLimit,
        shutdown: CancellationToken,
    ) -> Self {
        let token_key = PageTokenKey::new(store.page_token_secret());
        let watchers = Arc::new(Semaphore::new(
            watch.max_watchers.clamp(1, Semaphore::MAX_PERMITS),
        ));
        Self {
            store,
            token_key,
            watch,
            watchers,
            scans,
            shutdown,
        }
    }
}

impl Registry {
    /// The watcher limit's semaphore (its free permits say how many more
    /// streams may open).
    pub fn watchers(&self) -> Arc<Semaphore> {
        self.watchers.clone()
    }
}

type Result<T> = std::result::Result<Response<T>, Status>;

fn with_revision<T>(message: T, revision: u64) -> Response<T> {
    let mut response = Response::new(message);
    response
        .metadata_mut()
        .insert(REVISION_HEADER, revision.into());
    response
}

fn fingerprint<M: Message>(request: &M) -> Vec<u8> {
    Sha256::digest(request.encode_to_vec()).to_vec()
}

fn request_key<M: Message>(request_id: &str, request: &M) -> Option<RequestKey> {
    (!request_id.is_empty()).then(|| RequestKey {
        request_id: request_id.to_string(),
        fingerprint: fingerprint(request),
    })
}

fn new_id(prefix: char) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn invalid(v: Violations) -> std::result::Result<(), ApiError> {
    v.finish().map_err(ApiError::Invalid)
}

fn one_park(outcome: WriteOutcome) -> std::result::Result<(Park, u64), ApiError> {
    match outcome.entities.into_iter().next().and_then(|e| e.kind) {
        Some(entity::Kind::Park(p)) => Ok((p, outcome.revision)),
        _ => Err(ApiError::Internal("a park write returned no park".into())),
    }
}

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

/// Clears the output-only fields of a new resource and names it.
fn prepare_park(mut p: Park, id: &str) -> Park {
    p.name = format!("parks/{id}");
    p.uid = uuid::Uuid::new_v4().to_string();
    p.create_time = None;
    p.update_time = None;
    p.revision = 0;
    p.etag.clear();
    p
}

fn prepare_company(mut c: Company, id: &str) -> Company {
    c.name = format!("companies/{id}");
    c.uid = uuid::Uuid::new_v4().to_string();
    c.create_time = None;
    c.update_time = None;
    c.revision = 0;
    c.etag.clear();
    c
}

fn parse_etag(etag: &str) -> Option<u64> {
    if etag.is_empty() {
        None
    } else {
        // An etag we never issued matches no revision.
        Some(etag.parse().unwrap_or(u64::MAX))
    }
}

impl Registry {
    /// Copies the park's location into a company that has none.
    fn fill_location(&self, c: &mut Company) -> std::result::Result<(), ApiError> {
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
    fn build_company(
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

    async fn create_companies(
        &self,
        companies_in: Vec<Company>,
        request: Option<RequestKey>,
        entry_path: &(dyn Fn(usize) -> String + Sync),
    ) -> std::result::Result<(Vec<Company>, u64), ApiError> {
        let mut list = companies_in;
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

impl Registry {
    /// One page of a `List*` call: validates the request fields, then
    /// reads the page off the async runtime (it may scan), within the
    /// scan limit.
    async fn list<T: listing::Stored>(
        &self,
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
    ) -> std::result::Result<Page<T>, ApiError> {
        let q = Query::parse::<T>(page_size, page_token, filter, order_by, &self.token_key)?;
        let store = self.store.clone();
        let key = self.token_key.clone();
        self.scans
            .run(move |abandoned| listing::page::<T>(&store, &q, &key, abandoned))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    }
}

/// What an update needs to know about a resource type.
trait Updatable: Clone + Send + Sync + Sized + 'static {
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
    async fn update<T: Updatable>(
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
            invalid(v)?;
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

#[tonic::async_trait]
impl RegistryService for Registry {
    async fn create_park(&self, request: Request<CreateParkRequest>) -> Result<Park> {
        let req = request.into_inner();
        let mut v = Violations::default();
        validate::check_request_id(&mut v, "request_id", &req.request_id);
        if !req.park_id.is_empty() && !validate::is_valid_id(&req.park_id) {
            v.add("park_id", "must match ^[a-z][a-z0-9-]{0,62}$");
        }
        let Some(park) = req.park.clone() else {
            v.add("park", "is required");
            return Err(ApiError::Invalid(v.finish().err().unwrap_or_default()).into());
        };
        let id = if req.park_id.is_empty() {
            new_id('p')
        } else {
            req.park_id.clone()
        };
        let mut park = prepare_park(park, &id);
        validate::park(&mut v, "park", &mut park);
        invalid(v)?;
        let outcome = self
            .store
            .write(Write::CreatePark {
                park,
                request: request_key(&req.request_id, &req),
            })
            .await
            .map_err(|e| ApiError::from_store(e, &|_| "park".into()))?;
        let (park, revision) = one_park(outcome)?;
        Ok(with_revision(park, revision))
    }

    async fn get_park(&self, request: Request<GetParkRequest>) -> Result<Park> {
        let name = request.into_inner().name;
        let Some(id) = validate::parse_name(&name, "parks") else {
            return Err(ApiError::invalid("name", "must be `parks/{id}`").into());
        };
        match self.store.get_park(id).map_err(ApiError::from)? {
            Some(p) => Ok(Response::new(p)),
            None => Err(ApiError::NotFound(name).into()),
        }
    }

    async fn list_parks(&self, request: Request<ListParksRequest>) -> Result<ListParksResponse> {
        let req = request.into_inner();
        let page = self
            .list::<ParkRecord>(req.page_size, &req.page_token, &req.filter, &req.order_by)
            .await?;
        Ok(Response::new(ListParksResponse {
            parks: page.items.into_iter().map(|p| p.0).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn update_park(&self, request: Request<UpdateParkRequest>) -> Result<Park> {
        let req = request.into_inner();
        self.update(req.park, req.update_mask.as_ref()).await
    }

    async fn delete_park(&self, request: Request<DeleteParkRequest>) -> Result<()> {
        let req = request.into_inner();
        if validate::parse_name(&req.name, "parks").is_none() {
            return Err(ApiError::invalid("name", "must be `parks/{id}`").into());
        }
        let outcome = self
            .store
            .write(Write::DeletePark {
                name: req.name,
                expected_revision: parse_etag(&req.etag),
            })
            .await
            .map_err(ApiError::from)?;
        Ok(with_revision((), outcome.revision))
    }

    async fn create_company(&self, request: Request<CreateCompanyRequest>) -> Result<Company> {
        let req = request.into_inner();
        let mut v = Violations::default();
        validate::check_request_id(&mut v, "request_id", &req.request_id);
        let company = self.build_company(&mut v, "", &req);
        invalid(v)?;
        let company = company.ok_or_else(|| ApiError::Internal("no company".into()))?;
        let (mut list, revision) = self
            .create_companies(vec![company], request_key(&req.request_id, &req), &|_| {
                "company".into()
            })
            .await?;
        let company = list
            .pop()
            .ok_or_else(|| ApiError::Internal("no company created".into()))?;
        Ok(with_revision(company, revision))
    }

    async fn get_company(&self, request: Request<GetCompanyRequest>) -> Result<Company> {
        let (metadata, encoded, extensions) = self.company(request).await?.into_parts();
        Ok(Response::from_parts(
            metadata,
            encoded.decode()?,
            extensions,
        ))
    }

    async fn batch_get_companies(
        &self,
        request: Request<BatchGetCompaniesRequest>,
    ) -> Result<BatchGetCompaniesResponse> {
        let names = request.into_inner().names;
        if names.len() > MAX_BATCH_GET {
            return Err(
                ApiError::invalid("names", format!("at most {MAX_BATCH_GET} names")).into(),
            );
        }
        let mut v = Violations::default();
        for (i, n) in names.iter().enumerate() {
            validate::check_name(&mut v, &format!("names[{i}]"), n, "companies");
        }
        invalid(v)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let id = validate::parse_name(&name, "companies").unwrap_or_default();
            match self.store.get_company(id).map_err(ApiError::from)? {
                Some(c) => out.push(c),
                None => return Err(ApiError::NotFound(name).into()),
            }
        }
        Ok(Response::new(BatchGetCompaniesResponse { companies: out }))
    }

    async fn list_companies(
        &self,
        request: Request<ListCompaniesRequest>,
    ) -> Result<ListCompaniesResponse> {
        let req = request.into_inner();
        let page = self
            .list::<CompanyRecord>(req.page_size, &req.page_token, &req.filter, &req.order_by)
            .await?;
        Ok(Response::new(ListCompaniesResponse {
            companies: page.items.into_iter().map(|c| c.0).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn update_company(&self, request: Request<UpdateCompanyRequest>) -> Result<Company> {
        let req = request.into_inner();
        self.update(req.company, req.update_mask.as_ref()).await
    }

    async fn delete_company(&self, request: Request<DeleteCompanyRequest>) -> Result<()> {
        let req = request.into_inner();
        if validate::parse_name(&req.name, "companies").is_none() {
            return Err(ApiError::invalid("name", "must be `companies/{id}`").into());
        }
        let outcome = self
            .store
            .write(Write::DeleteCompany {
                name: req.name,
                expected_revision: parse_etag(&req.etag),
            })
            .await
            .map_err(ApiError::from)?;
        Ok(with_revision((), outcome.revision))
    }

    async fn batch_create_companies(
        &self,
        request: Request<BatchCreateCompaniesRequest>,
    ) -> Result<BatchCreateCompaniesResponse> {
        let req = request.into_inner();
        let mut v = Violations::default();
        validate::check_request_id(&mut v, "request_id", &req.request_id);
        if req.requests.is_empty() {
            v.add("requests", "must hold at least one request");
        }
        if req.requests.len() > MAX_BATCH_CREATE {
            v.add(
                "requests",
                format!(
                    "at most {MAX_BATCH_CREATE} requests, not {}",
                    req.requests.len()
                ),
            );
            return Err(ApiError::Invalid(v.finish().err().unwrap_or_default()).into());
        }
        let mut list = Vec::with_capacity(req.requests.len());
        for (i, r) in req.requests.iter().enumerate() {
            let path = format!("requests[{i}].");
            if !r.request_id.is_empty() {
                v.add(
                    format!("{path}request_id"),
                    "must be empty; set the batch's request_id",
                );
            }
            list.extend(self.build_company(&mut v, &path, r));
        }
        invalid(v)?;
        let (companies, revision) = self
            .create_companies(list, request_key(&req.request_id, &req), &|i| {
                format!("requests[{i}].company")
            })
            .await?;
        Ok(with_revision(
            BatchCreateCompaniesResponse { companies },
            revision,
        ))
    }

    type WatchChangesStream = watch::ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Self::WatchChangesStream> {
        let start = request.into_inner().start_revision;
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            ApiError::Exhausted {
                message: format!(
                    "{} WatchChanges streams are open, the most this registry serves; retry later",
                    self.watch.max_watchers
                ),
                reason: reason::TOO_MANY_WATCHERS,
            }
        })?;
        let stream = watch::start(
            self.store.clone(),
            start,
            self.watch.clone(),
            self.shutdown.clone(),
            permit,
        )?;
        let mut response = with_revision(stream, self.store.revision());
        if let Ok(id) = self.store.store_id().parse() {
            response.metadata_mut().insert(STORE_ID_HEADER, id);
        }
        Ok(response)
    }
}
