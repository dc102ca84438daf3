//! The transport baseline: a bare tonic server with no storage,
//! validation or layers, answering each call with a canned reply that is
//! already encoded (the way the registry and the stats service send their
//! pre-encoded answers, so neither side of the comparison pays for encoding
//! and the baseline does nothing but decode the request and send bytes).
//! Run as its own process (`zgc-bench echo-server`) so it is measured like
//! the real servers.
//!
//! The suite runs it twice: bare, for the throughput baselines, and
//! observed (`--metrics-listen`), with the one layer that times every call
//! of the services, for the transport's own server-side latency under the
//! same load. The timed echo is never a throughput baseline: the layer's
//! cost would flatter the ratios.
//!
//! Its replies are real answers the suite read from the servers before it
//! started this one (`--replies`), so each scenario is measured against a
//! transport baseline with its own payload. Its methods:
//! - [`PATH`] takes a `GetCompanyRequest` and answers a stored `Company`
//!   of the median encoded size;
//! - [`SUMMARY_PATH`] takes the same `GetSummaryRequest` the stats service
//!   is sent and answers the `Summary` the stats service gave for its
//!   scope;
//! - [`LIST_PATH`] takes the same `ListCompaniesRequest` the registry is
//!   sent and answers the page the registry gave for it;
//! - [`FLOWS_PATH`], [`FOOTPRINT_PATH`] and [`SERIES_PATH`] take the
//!   suite's GetRelocationFlows, GetBranchFootprint and GetTimeSeries
//!   requests and answer what the stats service gave for them.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::Message;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use zgc_proto::registry::v1::{
    Company, GetCompanyRequest, ListCompaniesRequest, ListCompaniesResponse,
};
use zgc_proto::stats::v1::{
    GetBranchFootprintRequest, GetBranchFootprintResponse, GetRelocationFlowsRequest,
    GetRelocationFlowsResponse, GetSummaryRequest, GetTimeSeriesRequest, GetTimeSeriesResponse,
    Scope, Summary,
};
use zgc_server::encoded::{Encoded, EncodedCodec};
use zgc_server::metrics::Metrics;
use zgc_server::observe::ObserveLayer;

/// The company echo's path.
pub const PATH: &str = "/zgc.bench.v1.Echo/Echo";
/// The summary echo's path.
pub const SUMMARY_PATH: &str = "/zgc.bench.v1.Echo/EchoSummary";
/// The listing echo's path.
pub const LIST_PATH: &str = "/zgc.bench.v1.Echo/EchoList";
/// The relocation flows echo's path.
pub const FLOWS_PATH: &str = "/zgc.bench.v1.Echo/EchoRelocationFlows";
/// The branch footprint echo's path.
pub const FOOTPRINT_PATH: &str = "/zgc.bench.v1.Echo/EchoBranchFootprint";
/// The time series echo's path.
pub const SERIES_PATH: &str = "/zgc.bench.v1.Echo/EchoTimeSeries";

/// The echo server's replies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replies {
    /// The answer to every company call.
    pub company: Company,
    /// The answer to a summary call, by its scope.
    pub summaries: Vec<(Scope, Summary)>,
    /// The answer to a listing call, by its request.
    pub pages: Vec<(ListCompaniesRequest, ListCompaniesResponse)>,
    /// The answer to every relocation flows call.
    pub flows: GetRelocationFlowsResponse,
    /// The answer to every branch footprint call.
    pub footprint: GetBranchFootprintResponse,
    /// The answer to every time series call.
    pub series: GetTimeSeriesResponse,
}

/// The echo service.
#[derive(Clone)]
pub struct Echo {
    company: Encoded<Company>,
    flows: Encoded<GetRelocationFlowsResponse>,
    footprint: Encoded<GetBranchFootprintResponse>,
    series: Encoded<GetTimeSeriesResponse>,
    summaries: Arc<Vec<(Scope, Encoded<Summary>)>>,
    pages: Arc<Vec<(ListCompaniesRequest, Encoded<ListCompaniesResponse>)>>,
}

impl Echo {
    /// Answers with `replies`.
    pub fn new(replies: &Replies) -> Self {
        Self {
            company: Encoded::new(&replies.company),
            flows: Encoded::new(&replies.flows),
            footprint: Encoded::new(&replies.footprint),
            series: Encoded::new(&replies.series),
            summaries: Arc::new(
                replies
                    .summaries
                    .iter()
                    .map(|(scope, summary)| (scope.clone(), Encoded::new(summary)))
                    .collect(),
            ),
            pages: Arc::new(
                replies
                    .pages
                    .iter()
                    .map(|(request, page)| (request.clone(), Encoded::new(page)))
                    .collect(),
            ),
        }
    }
}

impl NamedService for Echo {
    const NAME: &'static str = "zgc.bench.v1.Echo";
}

/// Answers every call with one reply.
struct Canned<T>(Encoded<T>);

impl<Req, T> tonic::server::UnaryService<Req> for Canned<T> {
    type Response = Encoded<T>;
    type Future = Ready<Result<Response<Encoded<T>>, Status>>;

    fn call(&mut self, _request: Request<Req>) -> Self::Future {
        ready(Ok(Response::new(self.0.clone())))
    }
}

/// Serves `request` as a `Req` answered with `reply`.
fn canned<Req, T>(
    reply: Encoded<T>,
    request: http::Request<tonic::body::Body>,
) -> Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>
where
    Req: prost::Message + Default + Send + 'static,
    T: prost::Message + Default + Send + Sync + 'static,
{
    Box::pin(async move {
        let codec = EncodedCodec::<T, Req>::default();
        let mut grpc = tonic::server::Grpc::new(codec);
        Ok(grpc.unary(Canned(reply), request).await)
    })
}

struct SummaryEcho(Arc<Vec<(Scope, Encoded<Summary>)>>);

impl tonic::server::UnaryService<GetSummaryRequest> for SummaryEcho {
    type Response = Encoded<Summary>;
    type Future = Ready<Result<Response<Encoded<Summary>>, Status>>;

    fn call(&mut self, request: Request<GetSummaryRequest>) -> Self::Future {
        let scope = request.into_inner().scope.unwrap_or_default();
        ready(
            self.0
                .iter()
                .find(|(s, _)| *s == scope)
                .map(|(_, summary)| Response::new(summary.clone()))
                .ok_or_else(|| Status::not_found("no canned summary for this scope")),
        )
    }
}

struct ListEcho(Arc<Vec<(ListCompaniesRequest, Encoded<ListCompaniesResponse>)>>);

impl tonic::server::UnaryService<ListCompaniesRequest> for ListEcho {
    type Response = Encoded<ListCompaniesResponse>;
    type Future = Ready<Result<Response<Encoded<ListCompaniesResponse>>, Status>>;

    fn call(&mut self, request: Request<ListCompaniesRequest>) -> Self::Future {
        let request = request.into_inner();
        ready(
            self.0
                .iter()
                .find(|(r, _)| *r == request)
                .map(|(_, page)| Response::new(page.clone()))
                .ok_or_else(|| Status::not_found("no canned page for this request")),
        )
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() == LIST_PATH {
            let pages = self.pages.clone();
            return Box::pin(async move {
                let codec = EncodedCodec::<ListCompaniesResponse, ListCompaniesRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(ListEcho(pages), request).await)
            });
        }
        if request.uri().path() == SUMMARY_PATH {
            let summaries = self.summaries.clone();
            return Box::pin(async move {
                let codec = EncodedCodec::<Summary, GetSummaryRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(SummaryEcho(summaries), request).await)
            });
        }
        match request.uri().path() {
            FLOWS_PATH => canned::<GetRelocationFlowsRequest, _>(self.flows.clone(), request),
            FOOTPRINT_PATH => {
                canned::<GetBranchFootprintRequest, _>(self.footprint.clone(), request)
            }
            SERIES_PATH => canned::<GetTimeSeriesRequest, _>(self.series.clone(), request),
            _ => canned::<GetCompanyRequest, _>(self.company.clone(), request),
        }
    }
}

/// Writes `replies` to `path` for `--replies`: the company, then the
/// number of summaries and each scope and its summary, then the number of
/// pages and each request and its page, then the flows, footprint and
/// series answers, length-delimited.
pub fn write_replies(path: &Path, replies: &Replies) -> io::Result<()> {
    let mut out = Vec::new();
    replies.company.encode_length_delimited(&mut out)?;
    prost::encoding::encode_varint(replies.summaries.len() as u64, &mut out);
    for (scope, summary) in &replies.summaries {
        scope.encode_length_delimited(&mut out)?;
        summary.encode_length_delimited(&mut out)?;
    }
    prost::encoding::encode_varint(replies.pages.len() as u64, &mut out);
    for (request, page) in &replies.pages {
        request.encode_length_delimited(&mut out)?;
        page.encode_length_delimited(&mut out)?;
    }
    replies.flows.encode_length_delimited(&mut out)?;
    replies.footprint.encode_length_delimited(&mut out)?;
    replies.series.encode_length_delimited(&mut out)?;
    std::fs::write(path, out)
}

/// Reads what [`write_replies`] wrote.
pub fn read_replies(path: &Path) -> io::Result<Replies> {
    let bytes = std::fs::read(path)?;
    let mut buf = bytes.as_slice();
    let company = Company::decode_length_delimited(&mut buf).map_err(invalid)?;
    let mut summaries = Vec::new();
    for _ in 0..prost::encoding::decode_varint(&mut buf).map_err(invalid)? {
        let scope = Scope::decode_length_delimited(&mut buf).map_err(invalid)?;
        let summary = Summary::decode_length_delimited(&mut buf).map_err(invalid)?;
        summaries.push((scope, summary));
    }
    let mut pages = Vec::new();
    for _ in 0..prost::encoding::decode_varint(&mut buf).map_err(invalid)? {
        let request = ListCompaniesRequest::decode_length_delimited(&mut buf).map_err(invalid)?;
        let page = ListCompaniesResponse::decode_length_delimited(&mut buf).map_err(invalid)?;
        pages.push((request, page));
    }
    let flows = GetRelocationFlowsResponse::decode_length_delimited(&mut buf).map_err(invalid)?;
    let footprint =
        GetBranchFootprintResponse::decode_length_delimited(&mut buf).map_err(invalid)?;
    let series = GetTimeSeriesResponse::decode_length_delimited(&mut buf).map_err(invalid)?;
    if !buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bytes after the last reply",
        ));
    }
    Ok(Replies {
        company,
        summaries,
        pages,
        flows,
        footprint,
        series,
    })
}

fn invalid(e: prost::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Serves the echo service on `listener` forever. With `observed`, every
/// call passes the layer that times the services' calls
/// ([`zgc_server::observe`]) and lands in `observed`'s latency histogram:
/// the transport's own server-side latency, measured as the services'
/// is.
pub async fn serve(
    listener: tokio::net::TcpListener,
    echo: Echo,
    observed: Option<Arc<Metrics>>,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    match observed {
        None => {
            tonic::transport::Server::builder()
                .add_service(echo)
                .serve_with_incoming(incoming)
                .await
        }
        Some(metrics) => {
            tonic::transport::Server::builder()
                .layer(ObserveLayer::new(metrics))
                .add_service(echo)
                .serve_with_incoming(incoming)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zgc_proto::stats::v1::scope::Selector;

    #[test]
    fn replies_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replies");
        let replies = Replies {
            company: Company {
                name: "companies/a".into(),
                employees: 5,
                ..Default::default()
            },
            summaries: vec![
                (
                    Scope {
                        selector: Some(Selector::All(true)),
                        include_affiliates: false,
                    },
                    Summary {
                        company_count: 7,
                        ..Default::default()
                    },
                ),
                (
                    Scope {
                        selector: Some(Selector::Park("parks/zgc".into())),
                        include_affiliates: true,
                    },
                    Summary {
                        company_count: 3,
                        ..Default::default()
                    },
                ),
            ],
            pages: vec![(
                ListCompaniesRequest {
                    page_size: 50,
                    filter: "high_tech".into(),
                    ..Default::default()
                },
                ListCompaniesResponse {
                    total_size: 9,
                    ..Default::default()
                },
            )],
            flows: GetRelocationFlowsResponse {
                flows: vec![zgc_proto::stats::v1::RelocationFlow {
                    count: 4,
                    ..Default::default()
                }],
                ..Default::default()
            },
            footprint: GetBranchFootprintResponse {
                as_of_revision: 8,
                ..Default::default()
            },
            series: GetTimeSeriesResponse {
                as_of_revision: 9,
                ..Default::default()
            },
        };
        write_replies(&path, &replies).unwrap();
        assert_eq!(read_replies(&path).unwrap(), replies);
    }

    #[test]
    fn a_truncated_replies_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replies");
        std::fs::write(&path, [0x0a, 0x05, 0x08]).unwrap();
        assert_eq!(
            read_replies(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
