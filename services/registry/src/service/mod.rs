//! The `zgc.registry.v1.RegistryService` handlers: thin glue between the
//! wire (validation, masks, errors) and the store. The handlers are here;
//! what creating ([`create`]) and updating ([`update`]) need beside the
//! store is in its own module, and GetCompany's encoded path in
//! [`get_company`].

mod create;
mod get_company;
mod list_companies;
mod update;

pub use get_company::GetCompany;
pub use list_companies::ListCompanies;

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use zgc_proto::registry::v1::registry_service_server::RegistryService;
use zgc_proto::registry::v1::{
    BatchCreateCompaniesRequest, BatchCreateCompaniesResponse, BatchGetCompaniesRequest,
    BatchGetCompaniesResponse, Company, CreateCompanyRequest, CreateParkRequest,
    DeleteCompanyRequest, DeleteParkRequest, GetCompanyRequest, GetParkRequest,
    ListCompaniesRequest, ListCompaniesResponse, ListParksRequest, ListParksResponse, Park,
    UpdateCompanyRequest, UpdateParkRequest, WatchChangesRequest,
};
use zgc_proto::wire::{REVISION_HEADER, STORE_ID_HEADER, reason};
use zgc_query::PageTokenKey;
use zgc_store::{RequestKey, Store, Write};

use self::create::{new_id, one_park, prepare_park};
use self::update::parse_etag;

use crate::error::ApiError;
use crate::listing::{self, CompanyRecord, Page, ParkRecord, Query, ScanLimit};
use crate::validate::{self, Violations};
use crate::watch;

/// Most names in one BatchGetCompanies.
pub const MAX_BATCH_GET: usize = 1000;
/// Most entries in one BatchCreateCompanies.
pub const MAX_BATCH_CREATE: usize = 1000;

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

    /// The watcher limit's semaphore (its free permits say how many more
    /// streams may open).
    pub fn watchers(&self) -> Arc<Semaphore> {
        self.watchers.clone()
    }

    /// Waits until the store holds every write committed before the call
    /// (on etcd, a replica catches up with the cluster first: KEP-2340's
    /// consistent read; a sled store always does).
    pub(crate) async fn sync(&self) -> std::result::Result<u64, ApiError> {
        let revision = self.store.sync().await.map_err(ApiError::from)?;
        zgc_server::revision_header::reflects_at_least(revision);
        Ok(revision)
    }

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
        self.sync().await?;
        let store = self.store.clone();
        let key = self.token_key.clone();
        self.scans
            .run(move |abandoned| listing::page::<T>(&store, &q, &key, abandoned))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    }
}

type Result<T> = std::result::Result<Response<T>, Status>;

/// Fails with every violation found, if there is any.
fn ensure_valid(v: Violations) -> std::result::Result<(), ApiError> {
    v.finish().map_err(ApiError::Invalid)
}

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
        ensure_valid(v)?;
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
        self.sync().await?;
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
        ensure_valid(v)?;
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
        ensure_valid(v)?;
        self.sync().await?;
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
        ensure_valid(v)?;
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
        self.sync().await?;
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
