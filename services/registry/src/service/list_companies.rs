//! ListCompanies as the server runs it: the page's companies go on the
//! wire as their stored encodings, never decoded (only the last one is,
//! for the next page's token). The trait's `list_companies` answers the
//! same page as Rust values, for callers of the service in-process.

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::server::UnaryService;
use tonic::{Request, Response};
use zgc_proto::registry::v1::{ListCompaniesRequest, ListCompaniesResponse};
use zgc_server::encoded::Encoded;

use super::{Registry, Result};
use crate::error::ApiError;
use crate::listing::{self, CompanyRecord, Page, Query};

/// ListCompanies' handler as the server mounts it, in place of the
/// generated one (`zgc_server::encoded::EncodedMethod`).
#[derive(Clone)]
pub struct ListCompanies(pub Registry);

impl ListCompanies {
    /// The method's path, which this handler takes over.
    pub const PATH: &'static str = "/zgc.registry.v1.RegistryService/ListCompanies";
}

impl UnaryService<ListCompaniesRequest> for ListCompanies {
    type Response = Encoded<ListCompaniesResponse>;
    type Future = BoxFuture<'static, Result<Encoded<ListCompaniesResponse>>>;

    fn call(&mut self, request: Request<ListCompaniesRequest>) -> Self::Future {
        let registry = self.0.clone();
        Box::pin(async move { registry.company_page(request).await })
    }
}

impl Registry {
    /// ListCompanies' answer, its companies as they are stored.
    pub async fn company_page(
        &self,
        request: Request<ListCompaniesRequest>,
    ) -> Result<Encoded<ListCompaniesResponse>> {
        let req = request.into_inner();
        let q = Query::parse::<CompanyRecord>(
            req.page_size,
            &req.page_token,
            &req.filter,
            &req.order_by,
            &self.token_key,
        )?;
        self.sync().await?;
        let store = self.store.clone();
        let key = self.token_key.clone();
        let page = self
            .scans
            .run(move |abandoned| listing::encoded_company_page(&store, &q, &key, abandoned))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
        Ok(Response::new(Encoded::trusted(encode(&page))))
    }
}

/// The `ListCompaniesResponse` encoding of `page`: each company's stored
/// bytes as field 1, then the token and the total (omitted when empty or
/// zero, as proto3 encodes them).
fn encode(page: &Page<Bytes>) -> Bytes {
    let size: usize = page.items.iter().map(|c| c.len() + 6).sum();
    let mut out = BytesMut::with_capacity(size + page.next_page_token.len() + 16);
    for company in &page.items {
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(company.len() as u64, &mut out);
        out.put_slice(company);
    }
    if !page.next_page_token.is_empty() {
        prost::encoding::string::encode(2, &page.next_page_token, &mut out);
    }
    if page.total_size != 0 {
        prost::encoding::int32::encode(3, &page.total_size, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use zgc_proto::registry::v1::Company;

    use super::*;

    #[test]
    fn a_page_of_stored_companies_encodes_as_the_response_would() {
        let companies: Vec<Company> = (0..3)
            .map(|i| Company {
                name: format!("companies/c{i}"),
                employees: i,
                ..Default::default()
            })
            .collect();
        for (token, total) in [("next", 7), ("", 0), ("", 3)] {
            let page = Page {
                items: companies
                    .iter()
                    .map(|c| Bytes::from(c.encode_to_vec()))
                    .collect(),
                next_page_token: token.to_string(),
                total_size: total,
            };
            let want = ListCompaniesResponse {
                companies: companies.clone(),
                next_page_token: token.into(),
                total_size: total,
            };
            assert_eq!(encode(&page), want.encode_to_vec());
        }
    }
}
