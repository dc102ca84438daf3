//! The transport baseline: a bare tonic server that answers every call
//! with a canned `Company` (the same payload GetCompany returns), with no
//! storage, validation or layers. Run as its own process
//! (`zgc-bench echo-server`) so it is measured like the real servers.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use zgc_proto::registry::v1::{Company, GetCompanyRequest};

/// The echo method's path.
pub const PATH: &str = "/zgc.bench.v1.Echo/Echo";

/// The echo service.
#[derive(Clone)]
pub struct Echo {
    reply: Arc<Company>,
}

impl Echo {
    /// Answers every call with `reply`.
    pub fn new(reply: Company) -> Self {
        Self {
            reply: Arc::new(reply),
        }
    }
}

impl NamedService for Echo {
    const NAME: &'static str = "zgc.bench.v1.Echo";
}

struct Unary(Arc<Company>);

impl tonic::server::UnaryService<GetCompanyRequest> for Unary {
    type Response = Company;
    type Future = Ready<Result<Response<Company>, Status>>;

    fn call(&mut self, _request: Request<GetCompanyRequest>) -> Self::Future {
        ready(Ok(Response::new((*self.0).clone())))
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
        let reply = self.reply.clone();
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<Company, GetCompanyRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.unary(Unary(reply), request).await)
        })
    }
}

/// Serves the echo service on `listener` forever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    reply: Company,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(Echo::new(reply))
        .serve_with_incoming(incoming)
        .await
}
