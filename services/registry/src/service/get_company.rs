//! GetCompany as the server runs it: the company's stored bytes go on the
//! wire as they are, never decoded (the store keeps each company as its
//! `Company` encoding). The trait's `get_company` decodes the same answer,
//! for callers of the service as a Rust value.

use futures::future::BoxFuture;
use tonic::server::UnaryService;
use tonic::{Request, Response};
use zgc_proto::registry::v1::{Company, GetCompanyRequest};
use zgc_server::encoded::Encoded;

use super::{Registry, Result};
use crate::error::ApiError;
use crate::validate;

/// GetCompany's handler as the server mounts it, in place of the
/// generated one (`zgc_server::encoded::EncodedMethod`).
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

impl Registry {
    /// GetCompany's answer: the company as it is stored, not decoded.
    pub async fn company(&self, request: Request<GetCompanyRequest>) -> Result<Encoded<Company>> {
        let name = request.into_inner().name;
        let Some(id) = validate::parse_name(&name, "companies") else {
            return Err(ApiError::invalid("name", "must be `companies/{id}`").into());
        };
        self.sync().await?;
        match self.store.get_company_encoded(id).map_err(ApiError::from)? {
            Some(stored) => Ok(Response::new(Encoded::trusted(stored))),
            None => Err(ApiError::NotFound(name).into()),
        }
    }
}
