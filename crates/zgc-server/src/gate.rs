//! A gate in front of every call: it admits the call (keeping a pass
//! until the response starts) or answers it at once with a status, before
//! the handler runs. Load shedding and write authorization are gates.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

/// Decides, from a call's path and headers, whether it may run.
pub trait Gate: Clone + Send + Sync + 'static {
    /// Held while the admitted call runs (a permit, or nothing).
    type Pass: Send + 'static;

    /// Admits the call, or says why not.
    fn admit(&self, path: &str, headers: &HeaderMap) -> Result<Self::Pass, Status>;
}

/// Puts a [`Gate`] in front of a service.
#[derive(Clone, Debug)]
pub struct GateLayer<G>(pub G);

impl<S, G: Gate> Layer<S> for GateLayer<G> {
    type Service = GateService<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// The service [`GateLayer`] wraps around the server.
#[derive(Clone, Debug)]
pub struct GateService<S, G> {
    inner: S,
    gate: G,
}

impl<S, G, B, R> Service<Request<B>> for GateService<S, G>
where
    S: Service<Request<B>, Response = Response<R>>,
    G: Gate,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = GateFuture<S::Future, G::Pass, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.gate.admit(request.uri().path(), request.headers()) {
            Ok(pass) => GateFuture::Admitted {
                future: self.inner.call(request),
                pass: Some(pass),
            },
            Err(status) => GateFuture::Refused {
                response: Some(status.into_http()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// [`GateService`]'s future: the admitted call, holding its pass until
    /// it answers, or the refusal.
    #[project = GateProjection]
    pub enum GateFuture<F, P, R> {
        /// Admitted: the inner call.
        Admitted { #[pin] future: F, pass: Option<P> },
        /// Refused: the error response.
        Refused { response: Option<Response<R>> },
    }
}

impl<F, P, R, E> Future for GateFuture<F, P, R>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: Default,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProjection::Admitted { future, pass } => {
                let response = std::task::ready!(future.poll(cx));
                drop(pass.take());
                Poll::Ready(response)
            }
            GateProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}
